/* test-msieve-parse.c: the ManageSieve grammar (msieve-parse.c), table-driven: each case is a
 * command's lines with its literals inline as {n+}CRLF bytes, and the expected outcome (the
 * name and arguments as NAME|s:text|n:123, or "ERR"). Literals are fed as client_read does. */
#include "core/buf.h"
#include "core/unit.h"
#include "msieve-parse.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* run: input through the parser like the session loop; the outcome as text into out. */
static void run(const char *input, int response, struct buf *out)
{
    struct msieve_parser p;
    msieve_parser_init(&p, response);
    const char *s = input, *end = input + strlen(input);
    buf_reset(out);
    for (;;) {
        const char *nl = strstr(s, "\r\n");
        size_t len = nl ? (size_t)(nl - s) : (size_t)(end - s);
        size_t lit;
        const char *err;
        enum msieve_step st = msieve_parse_line(&p, s, len, &lit, &err);
        s += nl ? len + 2 : len;
        if (st == MSIEVE_ERROR) {
            buf_appends(out, "ERR");
            break;
        }
        if (st == MSIEVE_DONE) {
            buf_appends(out, p.cmd.name ? p.cmd.name : "-");
            for (size_t i = 0; i < p.cmd.nargs; i++) {
                if (p.cmd.args[i].type == MSIEVE_NUMBER)
                    buf_printf(out, "|n:%llu", p.cmd.args[i].num);
                else
                    buf_printf(out, "|s:%s", p.cmd.args[i].s);
            }
            break;
        }
        msieve_parse_literal(&p, s, lit);
        s += lit;
    }
    msieve_parser_reset(&p);
}

int main(void)
{
    static const struct { const char *in; int response; const char *want; } cases[] = {
        { "logout", 0, "LOGOUT" },
        { "Capability", 0, "CAPABILITY" },
        { "AUTHENTICATE \"PLAIN\" \"AGEAYg==\"", 0, "AUTHENTICATE|s:PLAIN|s:AGEAYg==" },
        { "NOOP \"a \\\"b\\\" \\\\c\"", 0, "NOOP|s:a \"b\" \\c" },
        { "HAVESPACE \"x\" 4294967295", 0, "HAVESPACE|s:x|n:4294967295" },
        { "HAVESPACE \"x\" 4294967296", 0, "ERR" },
        { "HAVESPACE \"x\" 12a", 0, "ERR" },
        { "PUTSCRIPT \"s\" {6+}\r\nkeep;\n\r\n", 0, "PUTSCRIPT|s:s|s:keep;\n" },
        { "PUTSCRIPT {1+}\r\na {2}\r\nbc\r\n", 0, "PUTSCRIPT|s:a|s:bc" },
        { "RENAMESCRIPT {1+}\r\na \"b\"", 0, "RENAMESCRIPT|s:a|s:b" },
        { "GETSCRIPT {0+}\r\n", 0, "GETSCRIPT|s:" },
        { "GETSCRIPT {3+} \"x\"", 0, "ERR" },                  /* a literal ends its line */
        { "GETSCRIPT {+}", 0, "ERR" },
        { "GETSCRIPT {99999999999+}", 0, "ERR" },
        { "GETSCRIPT \"unterminated", 0, "ERR" },
        { "GETSCRIPT \"bad \\n escape\"", 0, "ERR" },
        { "GETSCRIPT  \"two spaces\"", 0, "ERR" },
        { "GETSCRIPT \"x\" ", 0, "ERR" },
        { "GETSCRIPT atom", 0, "ERR" },
        { "\"no name\"", 0, "ERR" },
        { "", 0, "ERR" },
        { "N \"1\" \"2\" \"3\" \"4\" \"5\" \"6\" \"7\" \"8\"", 0, "N|s:1|s:2|s:3|s:4|s:5|s:6|s:7|s:8" },
        { "N \"1\" \"2\" \"3\" \"4\" \"5\" \"6\" \"7\" \"8\" \"9\"", 0, "ERR" },
        /* SASL responses: one string, quoted or literal */
        { "\"dGVzdA==\"", 1, "-|s:dGVzdA==" },
        { "{4+}\r\nabcd\r\n", 1, "-|s:abcd" },
        { "\"*\"", 1, "-|s:*" },
        { "\"a\" \"b\"", 1, "ERR" },
        { "", 1, "ERR" },
        { "dGVzdA==", 1, "ERR" },
    };
    struct buf out = BUF_INIT;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        run(cases[i].in, cases[i].response, &out);
        UNIT_EQ_STR(buf_cstr(&out), cases[i].want);
    }
    buf_fini(&out);
    UNIT_DONE();
}
