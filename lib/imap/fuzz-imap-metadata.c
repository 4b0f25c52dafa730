/* fuzz-imap-metadata.c: fuzz target for the RFC 5464 parsers (imap-metadata.h): every command
 * the IMAP parser reads from the input has its arguments handed to the GETMETADATA and
 * SETMETADATA parsers, every value written back as a response would, and every atom or string
 * checked as an entry name. Seeds in test/fuzz/corpus/imap-metadata. */
#include "core/error.h"
#include "imap/imap-metadata.h"
#include "imap/fuzz-commands.h"
#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint64_t names(const struct imap_arg *a)
{
    uint64_t sum = 0;
    if (a->s) sum += (uint64_t)imap_metadata_entry_valid(a->s, a->len, 0) +
                     (uint64_t)imap_metadata_entry_valid(a->s, a->len, 1);
    for (size_t i = 0; i < a->count; i++) sum += names(&a->list[i]);
    return sum;
}

static void one_command(const struct imap_command *cmd, void *ctx)
{
    volatile uint64_t *sink = ctx;
    const char *why = NULL;
    struct imap_metadata_get g;
    if (imap_metadata_parse_get(cmd->args, cmd->nargs, &g, &why) == 0)
        *sink += g.entries.count + (uint64_t)g.depth + (uint64_t)g.maxsize + strlen(g.mailbox);
    else
        *sink += strlen(why);
    imap_metadata_get_fini(&g);
    struct imap_metadata_set s;
    if (imap_metadata_parse_set(cmd->args, cmd->nargs, &s, &why) == 0) {
        struct buf out = BUF_INIT;
        for (size_t i = 0; i < s.n; i++) {
            buf_appends(&out, s.items[i].entry);
            buf_putc(&out, ' ');
            imap_metadata_value_append(&out, s.items[i].value, s.items[i].len);
        }
        *sink += out.len;
        buf_fini(&out);
    } else {
        *sink += strlen(why);
    }
    imap_metadata_set_fini(&s);
    for (size_t i = 0; i < cmd->nargs; i++) *sink += names(&cmd->args[i]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    volatile uint64_t sink = 0;
    fuzz_each_command(data, size, 1024, 4096, 1000, one_command, (void *)&sink);
    return 0;
}
