/* fuzz-pop3.c: fuzz target for the POP3 command line split (server/pop3d/pop3-parse.c): each
 * input line as pop3d's session loop gives it. Properties: the keyword is upper case without
 * spaces, no argument holds a space, and the arguments joined by single spaces give back the
 * rest of the line. */
#include "fuzz-util.h"
#include "core/buf.h"
#include "pop3d/pop3-parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = fuzz_cstr(data, size);
    char *line = text;
    while (line) {
        char *nl = strchr(line, '\n');
        if (nl) {
            *nl = '\0';
            if (nl > line && nl[-1] == '\r') nl[-1] = '\0';
        }
        struct pop3_command cmd;
        pop3_parse_line(line, &cmd);
        FUZZ_ASSERT(cmd.name && !strchr(cmd.name, ' '));
        for (const char *p = cmd.name; *p; p++) FUZZ_ASSERT(!(*p >= 'a' && *p <= 'z'));
        FUZZ_ASSERT(cmd.rest && (!*cmd.rest || (cmd.rest > line && cmd.rest <= line + strlen(line))));
        struct buf joined = BUF_INIT;
        for (size_t i = 0; i < cmd.args.count; i++) {
            FUZZ_ASSERT(!strchr(cmd.args.v[i], ' '));
            if (i) buf_putc(&joined, ' ');
            buf_appends(&joined, cmd.args.v[i]);
        }
        FUZZ_ASSERT(!strcmp(buf_cstr(&joined), cmd.rest));
        buf_fini(&joined);
        free(cmd.name);
        strarr_fini(&cmd.args);
        line = nl ? nl + 1 : NULL;
    }
    free(text);
    return 0;
}
