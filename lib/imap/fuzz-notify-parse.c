/* fuzz-notify-parse.c: fuzz target for the NOTIFY argument parser: the input is a client's
 * byte stream, each command's arguments go to notify_parse. Seeds in
 * test/fuzz/corpus/notify-parse; the driver is libFuzzer (make fuzz) or test/fuzz/fuzz-main.c. */
#include "core/error.h"
#include "imap/imap-memsource.h"
#include "imap/imap-parser.h"
#include "imap/notify-parse.h"
#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct imap_memsource ms;
    struct imap_source src;
    struct imap_parser_limits lim;
    imap_parser_limits_default(&lim);
    lim.max_line = 512;
    lim.max_literal = 2048;
    lim.max_command = 8192;
    lim.max_depth = 8;
    imap_memsource_init(&ms, data, size, lim.max_line, &src);
    struct imap_parser *p = imap_parser_new(&src, &lim);
    volatile size_t sink = 0;
    for (int n = 0; n < 1000; n++) {
        struct imap_command cmd;
        int r = imap_parser_read(p, &cmd);
        if (r == 0) {
            struct notify_request req;
            const char *err = NULL;
            r = notify_parse(cmd.args, cmd.nargs, &req, &err);
            if (r == 0) {
                for (size_t g = 0; g < req.ngroups; g++) {
                    sink += req.groups[g].events + req.groups[g].filter;
                    for (size_t i = 0; i < req.groups[g].nnames; i++)
                        sink += strlen(imap_arg_astring(&req.groups[g].names[i]));
                    if (req.groups[g].fetch_atts) sink += req.groups[g].fetch_atts->count;
                }
            } else if (r != CF_E_PARSE || !err || !*err) {
                __builtin_trap();
            }
            notify_request_fini(&req);
            continue;
        }
        if (r != CF_E_PARSE && r != CF_E_LIMIT) break;
        if (imap_parser_fatal(p)) break;
    }
    imap_parser_free(&p);
    (void)sink;
    return 0;
}
