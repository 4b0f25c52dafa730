/* fuzz-imap-condstore.c: fuzz target for the RFC 7162 parsers (imap-condstore.h): each
 * command the IMAP parser reads from the input has every argument handed to the select
 * parameter, FETCH modifier and STORE modifier parsers and every atom to the mod-sequence
 * parser. Seeds in test/fuzz/corpus/imap-condstore. */
#include "core/error.h"
#include "imap/imap-condstore.h"
#include "imap/fuzz-commands.h"
#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint64_t try_all(const struct imap_arg *a)
{
    uint64_t sum = 0, v = 0;
    const char *err = NULL;
    struct imap_select_params p;
    imap_select_params_init(&p);
    if (imap_select_params_parse(a, &p, &err) == 0)
        sum += p.q.modseq + p.q.uidvalidity + imap_seqset_size(&p.q.known_uids) +
               imap_seqset_size(&p.q.uid_match) + (uint64_t)p.condstore;
    imap_select_params_fini(&p);
    int van = 0, has = 0;
    if (imap_fetch_modifiers_parse(a, &v, &van, &err) == 0) sum += v + (uint64_t)van;
    if (imap_store_modifiers_parse(a, &v, &has, &err) == 0) sum += v + (uint64_t)has;
    if (imap_modseq_arg(a, 1, &v) == 0) sum += v;
    for (size_t i = 0; i < a->count; i++) sum += try_all(&a->list[i]);
    return sum;
}

static void one_command(const struct imap_command *cmd, void *ctx)
{
    volatile uint64_t *sink = ctx;
    for (size_t i = 0; i < cmd->nargs; i++) *sink += try_all(&cmd->args[i]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    volatile uint64_t sink = 0;
    fuzz_each_command(data, size, 1024, 4096, 1000, one_command, (void *)&sink);
    return 0;
}
