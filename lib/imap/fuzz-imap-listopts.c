/* fuzz-imap-listopts.c: fuzz target for the LIST-EXTENDED argument parser and STATUS item
 * lists (imap-listopts.h): the input is a client's byte stream; every command read is given to
 * imap_list_opts_parse, and every list argument to imap_status_items_parse. Seeds in
 * test/fuzz/corpus/imap-listopts; the driver is libFuzzer (make fuzz) or test/fuzz/fuzz-main.c. */
#include "core/error.h"
#include "imap/imap-listopts.h"
#include "imap/fuzz-commands.h"
#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* statuses: imap_status_items_parse on a and every list below it. */
static size_t statuses(const struct imap_arg *a)
{
    size_t sum = 0;
    if (a->type != IMAP_ARG_LIST) return 0;
    unsigned order[IMAP_STATUS_ITEMS_MAX];
    size_t n = 0;
    if (!imap_status_items_parse(a, order, &n))
        for (size_t i = 0; i < n; i++) sum += strlen(imap_status_item_name(order[i]));
    for (size_t i = 0; i < a->count; i++) sum += statuses(&a->list[i]);
    return sum;
}

static void one_command(const struct imap_command *cmd, void *ctx)
{
    volatile size_t *sink = ctx;
    struct imap_list_opts o;
    const char *why = NULL;
    if (!imap_list_opts_parse(cmd->args, cmd->nargs, &o, &why)) {
        /* everything it points at must be readable */
        *sink += strlen(o.ref) + o.nstatus + o.sel + o.ret;
        for (size_t i = 0; i < o.npats; i++) *sink += strlen(imap_arg_astring(&o.pats[i]));
    } else {
        *sink += strlen(why);
    }
    for (size_t i = 0; i < cmd->nargs; i++) *sink += statuses(&cmd->args[i]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    volatile size_t sink = 0;
    fuzz_each_command(data, size, 1024, 4096, 10000, one_command, (void *)&sink);
    return 0;
}
