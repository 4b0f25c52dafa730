/* check-imap.h: a strict checker of RFC 3501 section 9 "envelope" and "body" syntax, used by
 * lib/mime's tests and fuzz target to prove every summary is valid on the wire. Header-only. */
#ifndef COFFER_MIME_CHECK_IMAP_H
#define COFFER_MIME_CHECK_IMAP_H
#include <stddef.h>
#include <string.h>
#include <strings.h>

struct chk { const char *p, *e; int depth; };

static int chk_c(struct chk *c, char ch)
{
    if (c->p < c->e && *c->p == ch) { c->p++; return 1; }
    return 0;
}

static int chk_nil(struct chk *c)
{
    if (c->e - c->p >= 3 && !memcmp(c->p, "NIL", 3)) { c->p += 3; return 1; }
    return 0;
}

static int chk_number(struct chk *c, unsigned long long *v)
{
    const char *s = c->p;
    unsigned long long x = 0;
    while (c->p < c->e && *c->p >= '0' && *c->p <= '9') x = x * 10 + (unsigned)(*c->p++ - '0');
    if (v) *v = x;
    return c->p > s;
}

/* chk_string: quoted or literal; the content (quoted form only) is copied to out if given. */
static int chk_string(struct chk *c, char *out, size_t outsz)
{
    size_t o = 0;
    if (chk_c(c, '"')) {
        while (c->p < c->e && *c->p != '"') {
            unsigned char ch = (unsigned char)*c->p;
            if (ch == '\\') {
                c->p++;
                if (c->p >= c->e || (*c->p != '"' && *c->p != '\\')) return 0;
                ch = (unsigned char)*c->p;
            } else if (ch == 0 || ch >= 0x80 || ch == '\r' || ch == '\n') {
                return 0;
            }
            if (out && o + 1 < outsz) out[o++] = (char)ch;
            c->p++;
        }
        if (out && outsz) out[o] = '\0';
        return chk_c(c, '"');
    }
    if (chk_c(c, '{')) {
        unsigned long long n, i;
        if (!chk_number(c, &n) || !chk_c(c, '}') || !chk_c(c, '\r') || !chk_c(c, '\n'))
            return 0;
        if ((unsigned long long)(c->e - c->p) < n) return 0;
        for (i = 0; i < n; i++)
            if (c->p[i] == 0) return 0;
        c->p += n;
        if (out && outsz) out[0] = '\0';
        return 1;
    }
    return 0;
}

static int chk_nstring(struct chk *c) { return chk_nil(c) || chk_string(c, NULL, 0); }

static int chk_address(struct chk *c)
{
    return chk_c(c, '(') && chk_nstring(c) && chk_c(c, ' ') && chk_nstring(c) &&
           chk_c(c, ' ') && chk_nstring(c) && chk_c(c, ' ') && chk_nstring(c) && chk_c(c, ')');
}

static int chk_addrlist(struct chk *c)
{
    if (chk_nil(c)) return 1;
    if (!chk_c(c, '(') || !chk_address(c)) return 0;
    while (c->p < c->e && *c->p == '(')
        if (!chk_address(c)) return 0;
    return chk_c(c, ')');
}

static int chk_envelope(struct chk *c)
{
    int i;
    if (!chk_c(c, '(') || !chk_nstring(c) || !chk_c(c, ' ') || !chk_nstring(c)) return 0;
    for (i = 0; i < 6; i++)
        if (!chk_c(c, ' ') || !chk_addrlist(c)) return 0;
    return chk_c(c, ' ') && chk_nstring(c) && chk_c(c, ' ') && chk_nstring(c) && chk_c(c, ')');
}

static int chk_params(struct chk *c)
{
    if (chk_nil(c)) return 1;
    if (!chk_c(c, '(') || !chk_string(c, NULL, 0) || !chk_c(c, ' ') || !chk_string(c, NULL, 0))
        return 0;
    while (chk_c(c, ' '))
        if (!chk_string(c, NULL, 0) || !chk_c(c, ' ') || !chk_string(c, NULL, 0)) return 0;
    return chk_c(c, ')');
}

static int chk_dsp(struct chk *c)
{
    if (chk_nil(c)) return 1;
    return chk_c(c, '(') && chk_string(c, NULL, 0) && chk_c(c, ' ') && chk_params(c) &&
           chk_c(c, ')');
}

static int chk_lang(struct chk *c)
{
    if (chk_nstring(c)) return 1;
    if (!chk_c(c, '(') || !chk_string(c, NULL, 0)) return 0;
    while (chk_c(c, ' '))
        if (!chk_string(c, NULL, 0)) return 0;
    return chk_c(c, ')');
}

/* chk_body: one "body"; ext = 1 requires the four extension fields, 0 forbids them. */
static int chk_body(struct chk *c, int ext)
{
    char type[64], sub[64];
    if (++c->depth > 300 || !chk_c(c, '(')) return 0;
    if (c->p < c->e && *c->p == '(') {
        while (c->p < c->e && *c->p == '(')
            if (!chk_body(c, ext)) return 0;
        if (!chk_c(c, ' ') || !chk_string(c, NULL, 0)) return 0;
        if (ext && !(chk_c(c, ' ') && chk_params(c) && chk_c(c, ' ') && chk_dsp(c) &&
                     chk_c(c, ' ') && chk_lang(c) && chk_c(c, ' ') && chk_nstring(c)))
            return 0;
    } else {
        type[0] = sub[0] = '\0';
        if (!chk_string(c, type, sizeof(type)) || !chk_c(c, ' ') ||
            !chk_string(c, sub, sizeof(sub)) || !chk_c(c, ' ') || !chk_params(c) ||
            !chk_c(c, ' ') || !chk_nstring(c) || !chk_c(c, ' ') || !chk_nstring(c) ||
            !chk_c(c, ' ') || !chk_string(c, NULL, 0) || !chk_c(c, ' ') ||
            !chk_number(c, NULL))
            return 0;
        if (!strcasecmp(type, "MESSAGE") && !strcasecmp(sub, "RFC822")) {
            if (!chk_c(c, ' ') || !chk_envelope(c) || !chk_c(c, ' ') || !chk_body(c, ext) ||
                !chk_c(c, ' ') || !chk_number(c, NULL))
                return 0;
        } else if (!strcasecmp(type, "TEXT")) {
            if (!chk_c(c, ' ') || !chk_number(c, NULL)) return 0;
        }
        if (ext && !(chk_c(c, ' ') && chk_nstring(c) && chk_c(c, ' ') && chk_dsp(c) &&
                     chk_c(c, ' ') && chk_lang(c) && chk_c(c, ' ') && chk_nstring(c)))
            return 0;
    }
    c->depth--;
    return chk_c(c, ')');
}

/* check_imap_body / check_imap_envelope: 1 if s[0,n) is exactly one valid item. */
static inline int check_imap_body(const char *s, size_t n, int ext)
{
    struct chk c = { s, s + n, 0 };
    return chk_body(&c, ext) && c.p == c.e;
}

static inline int check_imap_envelope(const char *s, size_t n)
{
    struct chk c = { s, s + n, 0 };
    return chk_envelope(&c) && c.p == c.e;
}

#endif
