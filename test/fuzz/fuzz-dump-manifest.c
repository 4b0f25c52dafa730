/* fuzz-dump-manifest.c: fuzz target for the JSON reader of `coffer restore`
 * (tools/dump-read.c): the input is manifest.json's bytes, as tar_read leaves them (not
 * NUL-terminated). A parsed value is walked the way restore reads it. */
#include "fuzz-util.h"
#include "dump-read.h"

static size_t walk(const struct jval *j, int depth)
{
    size_t n = 1;
    FUZZ_ASSERT(depth <= 33);
    switch (j->t) {
    case J_STR:
        FUZZ_ASSERT(j->str != NULL);
        n += strlen(j->str);
        break;
    case J_OBJ:
        for (size_t i = 0; i < j->n; i++) {
            FUZZ_ASSERT(j->keys[i] != NULL);
            FUZZ_ASSERT(jget(j, j->keys[i]) != NULL);
        }
        /* fall through */
    case J_ARR:
        for (size_t i = 0; i < j->n; i++) n += walk(&j->v[i], depth + 1);
        break;
    default:
        break;
    }
    return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct jval man;
    struct jparser jp = { (const char *)data, (const char *)data + size, 0 };
    int r = jvalue(&jp, &man);
    FUZZ_ASSERT(r == 0 || r == -1);
    if (r == 0) {
        FUZZ_ASSERT(jp.p <= jp.end && jp.depth == 0);
        volatile size_t sink = walk(&man, 0);
        /* what restore asks of a manifest */
        sink += jstr(&man, "format") ? 1 : 0;
        sink += (size_t)jnum(&man, "version", 0);
        const struct jval *boxes = jget(&man, "mailboxes");
        for (size_t i = 0; boxes && boxes->t == J_ARR && i < boxes->n; i++) {
            const struct jval *b = &boxes->v[i];
            sink += jstr(b, "name") ? 1 : 0;
            sink += (size_t)jnum(b, "uidvalidity", 0);
            const struct jval *msgs = jget(b, "messages");
            for (size_t k = 0; msgs && msgs->t == J_ARR && k < msgs->n; k++)
                sink += (size_t)jnum(&msgs->v[k], "uid", 0);
        }
        (void)sink;
    }
    jfree(&man);
    return 0;
}
