/* lmtp-parse.c: reverse and forward paths of MAIL and RCPT, MAIL's parameters, local parts of
 * addresses, and the lines of a server's reply. */
#include "lmtp-parse.h"
#include "core/error.h"
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

int lmtp_parse_path(const char *s, struct buf *path, const char **rest)
{
    buf_reset(path);
    while (*s == ' ') s++;             /* "MAIL FROM: <x>" is common enough to allow */
    if (*s != '<') return CF_E_PARSE;
    s++;
    if (*s == '@') {                   /* obsolete source route "@a,@b:" */
        const char *colon = strchr(s, ':');
        if (!colon) return CF_E_PARSE;
        s = colon + 1;
    }
    int quoted = 0;
    for (; *s; s++) {
        if (quoted && *s == '\\' && s[1]) {
            /* quoted-pairSMTP is a backslash and a printable character (RFC 5321 section
             * 4.1.2): an escaped control character would reach the Return-Path header
             * field and the replies that echo the address */
            if ((unsigned char)s[1] < 0x20 || s[1] == 0x7f) return CF_E_PARSE;
            buf_putc(path, *s++);
            buf_putc(path, *s);
            continue;
        }
        if (*s == '"') quoted = !quoted;
        else if (!quoted && *s == '>') break;
        else if ((unsigned char)*s < 0x20 || *s == 0x7f) return CF_E_PARSE;
        buf_putc(path, *s);
    }
    if (*s != '>') return CF_E_PARSE;
    s++;
    if (*s && *s != ' ') return CF_E_PARSE;
    while (*s == ' ') s++;
    *rest = s;
    buf_cstr(path);
    return 0;
}

void lmtp_local_part(const char *addr, struct buf *local)
{
    const char *at = strrchr(addr, '@');
    size_t llen = at ? (size_t)(at - addr) : strlen(addr);
    if (llen >= 2 && addr[0] == '"' && addr[llen - 1] == '"') {   /* quoted local part */
        for (size_t i = 1; i + 1 < llen; i++) {
            if (addr[i] == '\\' && i + 2 < llen) i++;
            buf_putc(local, addr[i]);
        }
    } else {
        buf_append(local, addr, llen);
    }
}

int lmtp_data_line(const char *s, size_t n, int bare_lf, int *prev_bare_lf, size_t *skip)
{
    int prev = *prev_bare_lf;
    *prev_bare_lf = bare_lf;
    *skip = 0;
    if (n == 1 && s[0] == '.') return !bare_lf && !prev;
    if (n && s[0] == '.') *skip = 1;
    return 0;
}

int lmtp_parse_mail_params(const char *rest, long long max, long long *size, struct buf *reply)
{
    *size = 0;
    while (*rest) {
        const char *sp = strchr(rest, ' ');
        size_t len = sp ? (size_t)(sp - rest) : strlen(rest);
        if (len > 5 && !strncasecmp(rest, "SIZE=", 5)) {              /* RFC 1870 section 6 */
            char *end;
            long long n = strtoll(rest + 5, &end, 10);
            if (end != rest + len || n < 0 || !isdigit((unsigned char)rest[5])) {
                buf_appends(reply, "501 5.5.4 Syntax: SIZE=number");
                return CF_E_PARSE;
            }
            if (n > max) {
                buf_appends(reply, "552 5.3.4 Message size exceeds fixed maximum message size");
                return CF_E_PARSE;
            }
            *size = n;
        } else if (len > 5 && !strncasecmp(rest, "BODY=", 5)) {       /* RFC 6152 */
            if (!(len == 9 && !strncasecmp(rest + 5, "7BIT", 4)) &&
                !(len == 13 && !strncasecmp(rest + 5, "8BITMIME", 8))) {
                buf_appends(reply, "555 5.5.4 Unsupported BODY type");
                return CF_E_PARSE;
            }
        } else if (len > 5 && !strncasecmp(rest, "AUTH=", 5)) {
            /* RFC 4954 section 5: nothing to do with it here */
        } else {
            buf_printf(reply, "555 5.5.4 Unsupported parameter %.*s", (int)(len > 40 ? 40 : len),
                       rest);
            return CF_E_PARSE;
        }
        rest += len;
        while (*rest == ' ') rest++;
    }
    return 0;
}

int lmtp_parse_reply_line(const char *line, size_t len, int *code, int *last, const char **text)
{
    if (len < 3 || line[0] < '2' || line[0] > '5' || !isdigit((unsigned char)line[1]) ||
        !isdigit((unsigned char)line[2]))
        return CF_E_PARSE;
    *code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
    if (len == 3) {
        *last = 1;
        *text = line + 3;
        return 0;
    }
    if (line[3] != ' ' && line[3] != '-') return CF_E_PARSE;
    for (size_t i = 4; i < len; i++)
        if (((unsigned char)line[i] < 0x20 && line[i] != '\t') || line[i] == 0x7f)
            return CF_E_PARSE;
    *last = line[3] == ' ';
    *text = line + 4;
    return 0;
}
