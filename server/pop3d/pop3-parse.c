/* pop3-parse.c: a POP3 command line into keyword and arguments. */
#include "pop3-parse.h"
#include "core/xmalloc.h"
#include <string.h>

void pop3_parse_line(const char *line, struct pop3_command *cmd)
{
    const char *sp = strchr(line, ' ');
    size_t n = sp ? (size_t)(sp - line) : strlen(line);
    cmd->name = xstrndup(line, n);
    cmd->rest = sp ? sp + 1 : "";
    for (char *p = cmd->name; *p; p++) if (*p >= 'a' && *p <= 'z') *p = (char)(*p - 32);
    strarr_init(&cmd->args);
    while (sp) {
        const char *a = sp + 1;
        sp = strchr(a, ' ');
        strarr_take(&cmd->args, xstrndup(a, sp ? (size_t)(sp - a) : strlen(a)));
    }
}
