/* fuzz-dump-tar.c: fuzz target for the tar reader of `coffer restore` (tools/dump-read.c):
 * the input is the whole dump stream. The first entry is read as restore reads
 * manifest.json and parsed; the others are read into memory or skipped in turn. An input of
 * odd length gets every 512-byte block's header checksum fixed up first (its last byte
 * dropped), so that mutations get past the checksum. */
#include "fuzz-util.h"
#include "core/buf.h"
#include "dump-read.h"

static void fix_checksums(unsigned char *p, size_t len)
{
    for (size_t off = 0; off + TAR_BLOCK <= len; off += TAR_BLOCK) {
        unsigned char *h = p + off;
        unsigned sum = 0;
        for (int i = 0; i < TAR_BLOCK; i++) sum += (i >= 148 && i < 156) ? ' ' : h[i];
        char tmp[9];
        snprintf(tmp, sizeof tmp, "%06o", sum & 0777777);
        memcpy(h + 148, tmp, 7);
        h[155] = ' ';
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t len = size;
    unsigned char *copy = malloc(size ? size : 1);
    if (!copy) abort();
    memcpy(copy, data, size);
    if (size % 2) {
        len = size - 1;
        fix_checksums(copy, len);
    }
    FILE *f = fuzz_stream(copy, len);
    struct tar_entry e;
    struct buf b = BUF_INIT;
    int n = 0, r;
    while ((r = tar_next(f, &e)) == 1 && n < 64) {
        FUZZ_ASSERT(strlen(e.name) < sizeof e.name);
        if (n == 0) {
            if (tar_read(f, &e, &b, 1u << 20) < 0) break;
            struct jval j;
            struct jparser jp = { b.s ? b.s : "", (b.s ? b.s : "") + b.len, 0 };
            (void)jvalue(&jp, &j);
            jfree(&j);
        } else if (n % 2) {
            if (tar_read(f, &e, &b, 1u << 16) < 0 && tar_copy(f, &e, -1) < 0) break;
        } else {
            if (tar_copy(f, &e, -1) < 0) break;
        }
        n++;
    }
    FUZZ_ASSERT(r >= -1 && r <= 1);
    buf_fini(&b);
    fclose(f);
    free(copy);
    return 0;
}
