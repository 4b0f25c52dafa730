/* msieve-parse.c: ManageSieve command lines and literals into a name and arguments. */
#include "msieve-parse.h"
#include "core/xmalloc.h"
#include <stdlib.h>
#include <string.h>

void msieve_parser_init(struct msieve_parser *p, int response)
{
    memset(p, 0, sizeof *p);
    p->response = response;
}

void msieve_parser_reset(struct msieve_parser *p)
{
    free(p->cmd.name);
    for (size_t i = 0; i < p->cmd.nargs; i++) free(p->cmd.args[i].s);
    msieve_parser_init(p, p->response);
}

static struct msieve_arg *add_arg(struct msieve_parser *p, enum msieve_arg_type t)
{
    struct msieve_arg *a = &p->cmd.args[p->cmd.nargs++];
    memset(a, 0, sizeof *a);
    a->type = t;
    return a;
}

/* parse_quoted: the quoted string starting at *pos (the opening '"'); RFC 5804 section 4:
 * only \" and \\ are escapes, and CR, LF and NUL never appear. 0 or -1. */
static int parse_quoted(struct msieve_parser *p, const char *line, size_t len, size_t *pos)
{
    size_t i = *pos + 1;
    char *out = xmalloc(len - *pos);
    size_t n = 0;
    for (; i < len && line[i] != '"'; i++) {
        char ch = line[i];
        if (ch == '\\') {
            if (i + 1 >= len || (line[i + 1] != '"' && line[i + 1] != '\\')) goto bad;
            ch = line[++i];
        } else if (ch == '\0' || ch == '\r' || ch == '\n') {
            goto bad;
        }
        out[n++] = ch;
    }
    if (i >= len) goto bad;
    out[n] = '\0';
    struct msieve_arg *a = add_arg(p, MSIEVE_STRING);
    a->s = out;
    a->len = n;
    *pos = i + 1;
    return 0;
bad:
    free(out);
    return -1;
}

enum msieve_step msieve_parse_line(struct msieve_parser *p, const char *line, size_t len,
                                   size_t *literal_r, const char **err_r)
{
    size_t i = 0;
    *literal_r = 0;
    if (!p->started) {
        p->started = 1;
        if (!p->response) {
            while (i < len && ((line[i] >= 'A' && line[i] <= 'Z') ||
                               (line[i] >= 'a' && line[i] <= 'z'))) i++;
            if (!i) {
                *err_r = "Expected a command name";
                return MSIEVE_ERROR;
            }
            p->cmd.name = xstrndup(line, i);
            for (char *q = p->cmd.name; *q; q++) if (*q >= 'a' && *q <= 'z') *q = (char)(*q - 32);
        }
    }
    for (;;) {
        if (i >= len) break;
        /* arguments are separated by one space; a response has no leading space */
        if (line[i] == ' ' && (p->cmd.name || p->cmd.nargs)) i++;
        else if (p->cmd.name || p->cmd.nargs) {
            *err_r = "Expected a space between arguments";
            return MSIEVE_ERROR;
        }
        if (i >= len) {
            *err_r = "Trailing space";
            return MSIEVE_ERROR;
        }
        if (p->cmd.nargs >= MSIEVE_MAX_ARGS || (p->response && p->cmd.nargs)) {
            *err_r = "Too many arguments";
            return MSIEVE_ERROR;
        }
        char ch = line[i];
        if (ch == '"') {
            if (parse_quoted(p, line, len, &i) < 0) {
                *err_r = "Invalid quoted string";
                return MSIEVE_ERROR;
            }
        } else if (ch == '{') {
            /* literal-c2s: "{" number "+}" CRLF (RFC 5804 section 4); the synchronizing
             * form "{" number "}" of older clients is taken the same way, as the server
             * has no continuation to send */
            size_t j = i + 1;
            unsigned long long n = 0;
            while (j < len && line[j] >= '0' && line[j] <= '9' && j - i <= 10)
                n = n * 10 + (unsigned)(line[j++] - '0');
            if (j == i + 1 || j - i > 10 || n > MSIEVE_MAX_NUMBER) {
                *err_r = "Invalid literal length";
                return MSIEVE_ERROR;
            }
            if (j < len && line[j] == '+') j++;
            if (j + 1 != len || line[j] != '}') {
                *err_r = "A literal must end the line";
                return MSIEVE_ERROR;
            }
            p->literal = (size_t)n;
            *literal_r = (size_t)n;
            return MSIEVE_LITERAL;
        } else if (ch >= '0' && ch <= '9' && !p->response) {
            unsigned long long n = 0;
            size_t start = i;
            while (i < len && line[i] >= '0' && line[i] <= '9' && i - start < 10)
                n = n * 10 + (unsigned)(line[i++] - '0');
            if ((i < len && line[i] != ' ') || n > MSIEVE_MAX_NUMBER) {
                *err_r = "Invalid number";
                return MSIEVE_ERROR;
            }
            add_arg(p, MSIEVE_NUMBER)->num = n;
        } else {
            *err_r = "Expected a string or a number";
            return MSIEVE_ERROR;
        }
    }
    if (p->response && !p->cmd.nargs) {
        *err_r = "Expected a string";
        return MSIEVE_ERROR;
    }
    return MSIEVE_DONE;
}

void msieve_parse_literal(struct msieve_parser *p, const char *data, size_t len)
{
    struct msieve_arg *a = add_arg(p, MSIEVE_STRING);
    a->s = xmalloc(len + 1);
    if (len && data) memcpy(a->s, data, len);
    else len = 0;
    a->s[len] = '\0';
    a->len = len;
    p->literal = 0;
}
