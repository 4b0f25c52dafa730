/* lmtp-parse.c: reverse and forward paths of MAIL and RCPT, and local parts of addresses. */
#include "lmtp-parse.h"
#include "core/error.h"
#include <string.h>

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
