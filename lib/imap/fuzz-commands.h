/* fuzz-commands.h: the driver the fuzz targets of the IMAP argument parsers share: the
 * input is a client's byte stream, read by the real IMAP parser with small limits, and every
 * command it yields goes to the target's own check. Header-only: fuzz targets only. */
#ifndef COFFER_IMAP_FUZZ_COMMANDS_H
#define COFFER_IMAP_FUZZ_COMMANDS_H

#include "core/error.h"
#include "imap/imap-memsource.h"
#include "imap/imap-parser.h"
#include <stddef.h>
#include <stdint.h>

/* fuzz_each_command: parse data as IMAP commands (lines up to 512 bytes, literals up to
 * max_literal, commands up to max_command, nesting 8) and call fn(cmd, ctx) for each one read,
 * until the input ends, the parser gives up, or max_cmds commands. */
static inline void fuzz_each_command(const uint8_t *data, size_t size, size_t max_literal,
                                     size_t max_command, int max_cmds,
                                     void (*fn)(const struct imap_command *cmd, void *ctx),
                                     void *ctx)
{
    struct imap_memsource ms;
    struct imap_source src;
    struct imap_parser_limits lim;
    imap_parser_limits_default(&lim);
    lim.max_line = 512;
    lim.max_literal = max_literal;
    lim.max_command = max_command;
    lim.max_depth = 8;
    imap_memsource_init(&ms, data, size, lim.max_line, &src);
    struct imap_parser *p = imap_parser_new(&src, &lim);
    for (int n = 0; n < max_cmds; n++) {
        struct imap_command cmd;
        int r = imap_parser_read(p, &cmd);
        if (r == 0) fn(&cmd, ctx);
        else if (r != CF_E_PARSE && r != CF_E_LIMIT) break;   /* end of input */
        else if (imap_parser_fatal(p)) break;
    }
    imap_parser_free(&p);
}

#endif
