/* fuzz-notify-parse.c: fuzz target for the NOTIFY argument parser: the input is a client's
 * byte stream, each command's arguments go to notify_parse. Seeds in
 * test/fuzz/corpus/notify-parse; the driver is libFuzzer (make fuzz) or test/fuzz/fuzz-main.c. */
#include "core/error.h"
#include "imap/fuzz-commands.h"
#include "imap/notify-parse.h"
#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* one_command: notify_parse on the command's arguments; a refusal must say why. */
static void one_command(const struct imap_command *cmd, void *ctx)
{
    volatile size_t *sink = ctx;
    struct notify_request req;
    const char *err = NULL;
    int r = notify_parse(cmd->args, cmd->nargs, &req, &err);
    if (r == 0) {
        for (size_t g = 0; g < req.ngroups; g++) {
            *sink += req.groups[g].events + req.groups[g].filter;
            for (size_t i = 0; i < req.groups[g].nnames; i++)
                *sink += strlen(imap_arg_astring(&req.groups[g].names[i]));
            if (req.groups[g].fetch_atts) *sink += req.groups[g].fetch_atts->count;
        }
    } else if (r != CF_E_PARSE || !err || !*err) {
        __builtin_trap();
    }
    notify_request_fini(&req);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    volatile size_t sink = 0;
    fuzz_each_command(data, size, 2048, 8192, 1000, one_command, (void *)&sink);
    return 0;
}
