/* imap-url.c: IMAP URLs of one message or part (RFC 5092 section 9 imessagepart with the
 * RFC 4467 URLAUTH tail) and their section text; see imap-url.h. */
#include "imap/imap-url.h"
#include "core/buf.h"
#include "core/error.h"
#include "core/xmalloc.h"
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

struct cursor {
    const char *p, *end;
};

/* take: 1 and advance when the text at c starts with word (ASCII case ignored: ABNF strings
 * are case-insensitive, RFC 5234 section 2.3), else 0. */
static int take(struct cursor *c, const char *word)
{
    size_t n = strlen(word);
    if ((size_t)(c->end - c->p) < n || strncasecmp(c->p, word, n)) return 0;
    c->p += n;
    return 1;
}

static int hexval(int ch)
{
    if (ch >= '0' && ch <= '9') return ch - '0';
    if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
    return -1;
}

/* decode: s[0,n) with its %XX escapes resolved, as a new string (*out_r), or CF_E_PARSE for a
 * bad escape, a decoded NUL, or a byte no URL may carry unescaped. */
static int decode(const char *s, size_t n, char **out_r)
{
    struct buf b = BUF_INIT;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch == '%') {
            if (n - i < 3) goto bad;
            int h = hexval(s[i + 1]), l = hexval(s[i + 2]);
            if (h < 0 || l < 0 || (h == 0 && l == 0)) goto bad;
            buf_putc(&b, (char)(h * 16 + l));
            i += 2;
            continue;
        }
        /* RFC 3986 section 2: only printable ASCII other than space travels unescaped */
        if (ch <= 0x20 || ch >= 0x7f) goto bad;
        buf_putc(&b, (char)ch);
    }
    *out_r = xstrdup(buf_cstr(&b));
    buf_fini(&b);
    return 0;
bad:
    buf_fini(&b);
    return CF_E_PARSE;
}

/* number: digits at c into *v (RFC 3501 number: 32 bits); nz: 0 refused. 0 or CF_E_PARSE. */
static int number(struct cursor *c, int nz, uint32_t *v)
{
    uint64_t x = 0;
    const char *start = c->p;
    while (c->p < c->end && *c->p >= '0' && *c->p <= '9') {
        x = x * 10 + (uint64_t)(*c->p - '0');
        if (x > UINT32_MAX) return CF_E_PARSE;
        c->p++;
    }
    if (c->p == start || (nz && x == 0)) return CF_E_PARSE;
    *v = (uint32_t)x;
    return 0;
}

/* span: the bytes from c up to (not including) the first byte of stop, or the end */
static size_t span(const struct cursor *c, const char *stop)
{
    const char *q = c->p;
    while (q < c->end && !strchr(stop, *q)) q++;
    return (size_t)(q - c->p);
}

/* digits: exactly n digits at p into *v; 0 or CF_E_PARSE */
static int digits(const char *p, const char *end, int n, int *v)
{
    if (end - p < n) return CF_E_PARSE;
    *v = 0;
    for (int i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9') return CF_E_PARSE;
        *v = *v * 10 + (p[i] - '0');
    }
    return 0;
}

/* datetime: RFC 3339 date-time (RFC 4467 expire) at c, to seconds since the epoch */
static int datetime(struct cursor *c, int64_t *t_r)
{
    const char *p = c->p, *e = c->end;
    int Y, M, D, h, m, s;
    if (digits(p, e, 4, &Y) || e - p < 19 || p[4] != '-' || digits(p + 5, e, 2, &M) ||
        p[7] != '-' || digits(p + 8, e, 2, &D) || (p[10] != 'T' && p[10] != 't') ||
        digits(p + 11, e, 2, &h) || p[13] != ':' || digits(p + 14, e, 2, &m) || p[16] != ':' ||
        digits(p + 17, e, 2, &s))
        return CF_E_PARSE;
    if (M < 1 || M > 12 || D < 1 || D > 31 || h > 23 || m > 59 || s > 60) return CF_E_PARSE;
    p += 19;
    if (p < e && *p == '.') {           /* time-secfrac: ignored */
        p++;
        const char *f = p;
        while (p < e && *p >= '0' && *p <= '9') p++;
        if (p == f) return CF_E_PARSE;
    }
    int64_t off = 0;
    if (p < e && (*p == 'Z' || *p == 'z')) {
        p++;
    } else if (p < e && (*p == '+' || *p == '-')) {
        int oh, om;
        if (digits(p + 1, e, 2, &oh) || e - p < 6 || p[3] != ':' || digits(p + 4, e, 2, &om) ||
            oh > 23 || om > 59)
            return CF_E_PARSE;
        off = (int64_t)(oh * 3600 + om * 60) * (*p == '-' ? -1 : 1);
        p += 6;
    } else {
        return CF_E_PARSE;
    }
    struct tm tm = { 0 };
    tm.tm_year = Y - 1900;
    tm.tm_mon = M - 1;
    tm.tm_mday = D;
    tm.tm_hour = h;
    tm.tm_min = m;
    tm.tm_sec = s == 60 ? 59 : s;
    *t_r = (int64_t)timegm(&tm) - off;
    c->p = p;
    return 0;
}

/* server: iserver of RFC 5092 (after "imap://" or "//"): [iuserinfo "@"] host [":" port] */
static int server(struct cursor *c, struct imap_url *u)
{
    size_t n = span(c, "/");
    const char *at = NULL;
    for (const char *q = c->p; q < c->p + n; q++)
        if (*q == '@') at = q;
    if (at) {
        /* iuserinfo = enc-user [iauth] / [enc-user] iauth; iauth = ";AUTH=" ( "*" / type ) */
        const char *semi = memchr(c->p, ';', (size_t)(at - c->p));
        const char *uend = semi ? semi : at;
        if (uend > c->p && decode(c->p, (size_t)(uend - c->p), &u->user)) return CF_E_PARSE;
        if (semi) {
            struct cursor a = { semi, at };
            if (!take(&a, ";AUTH=") || a.p == a.end) return CF_E_PARSE;
            if (decode(a.p, (size_t)(a.end - a.p), &u->auth)) return CF_E_PARSE;
        }
        if (!u->user && !u->auth) return CF_E_PARSE;
        if (u->user && !*u->user) return CF_E_PARSE;
        n -= (size_t)(at + 1 - c->p);
        c->p = at + 1;
    }
    /* host: an IP-literal in brackets or a reg-name; then [":" port] */
    const char *h = c->p, *hend;
    if (n && *h == '[') {
        const char *close = memchr(h, ']', n);
        if (!close) return CF_E_PARSE;
        for (const char *q = h + 1; q < close; q++)
            if (!isxdigit((unsigned char)*q) && *q != ':' && *q != '.') return CF_E_PARSE;
        hend = close + 1;
    } else {
        hend = h;
        while (hend < c->p + n && *hend != ':') {
            unsigned char ch = (unsigned char)*hend;
            if (!isalnum(ch) && !strchr("-._~%!$&'()*+,;=", ch)) return CF_E_PARSE;
            hend++;
        }
    }
    if (hend == h) return CF_E_PARSE;
    u->host = xstrndup(h, (size_t)(hend - h));
    for (char *q = u->host; *q; q++) *q = (char)tolower((unsigned char)*q);
    c->p = hend;
    if (c->p < c->end && *c->p == ':') {
        c->p++;
        if (number(c, 1, &u->port) || u->port > 65535) return CF_E_PARSE;
    }
    if (c->p < c->end && *c->p != '/') return CF_E_PARSE;
    return 0;
}

/* urlauth: [";EXPIRE=" date-time] ";URLAUTH=" access [":" mech ":" token] to the end
 * (RFC 4467 section 9); start is the URL's first byte, for the rump length */
static int urlauth(struct cursor *c, const char *start, struct imap_url *u)
{
    if (take(c, ";EXPIRE=")) {
        if (datetime(c, &u->expire)) return CF_E_PARSE;
        u->has_expire = 1;
    }
    if (!take(c, ";URLAUTH=")) return CF_E_PARSE;
    size_t n = span(c, ":");
    struct cursor a = { c->p, c->p + n };
    if (take(&a, "anonymous") && a.p == a.end) {
        u->access = IMAP_URL_ACCESS_ANONYMOUS;
    } else if ((a.p = c->p, take(&a, "authuser")) && a.p == a.end) {
        u->access = IMAP_URL_ACCESS_AUTHUSER;
    } else {
        a.p = c->p;
        if (take(&a, "submit+")) u->access = IMAP_URL_ACCESS_SUBMIT;
        else if (take(&a, "user+")) u->access = IMAP_URL_ACCESS_USER;
        else return CF_E_PARSE;
        if (a.p == a.end || decode(a.p, (size_t)(a.end - a.p), &u->access_user) ||
            !*u->access_user)
            return CF_E_PARSE;
    }
    c->p += n;
    u->rump_len = (size_t)(c->p - start);
    if (c->p == c->end) return 0;
    /* iua-verifier = ":" uauth-mechanism ":" enc-urlauth; mechanism 1*(ALPHA/DIGIT/"-"/".") */
    c->p++;
    const char *m = c->p;
    while (c->p < c->end && (isalnum((unsigned char)*c->p) || *c->p == '-' || *c->p == '.'))
        c->p++;
    if (c->p == m || c->p == c->end || *c->p != ':') return CF_E_PARSE;
    u->mech = xstrndup(m, (size_t)(c->p - m));
    c->p++;
    const char *t = c->p;
    while (c->p < c->end && isxdigit((unsigned char)*c->p)) c->p++;
    /* enc-urlauth = 32*HEXDIG */
    if (c->p != c->end || c->p - t < 32) return CF_E_PARSE;
    u->token = xstrndup(t, (size_t)(c->p - t));
    return 0;
}

int imap_url_parse(const char *s, size_t len, struct imap_url *u)
{
    memset(u, 0, sizeof *u);
    if (len > IMAP_URL_MAX) return CF_E_LIMIT;
    if (memchr(s, '\0', len)) return CF_E_PARSE;
    struct cursor c = { s, s + len };
    int r = CF_E_PARSE;
    if (take(&c, "imap://")) {
        u->form = IMAP_URL_ABSOLUTE;
        if (server(&c, u)) goto done;
    } else if (take(&c, "//")) {
        u->form = IMAP_URL_NETWORK_PATH;
        if (server(&c, u)) goto done;
    } else if (c.p < c.end && *c.p == ';') {
        u->form = IMAP_URL_RELATIVE;
    } else if (c.p < c.end && *c.p == '/') {
        u->form = IMAP_URL_ABSOLUTE_PATH;
    } else {
        goto done;
    }
    if (u->form != IMAP_URL_RELATIVE) {
        /* "/" enc-mailbox [";UIDVALIDITY=" nz-number] "/" ;UID=...: the mailbox may hold
         * '/', never ';' (bchar) */
        if (c.p == c.end || *c.p != '/') goto done;
        c.p++;
        size_t n = span(&c, ";");
        struct cursor rest = { c.p + n, c.end };
        if (n && c.p[n - 1] == '/' && !take(&rest, ";UIDVALIDITY="))
            n--;            /* the '/' before ;UID= */
        if (!n || decode(c.p, n, &u->mailbox)) goto done;
        c.p += n;
        if (take(&c, ";UIDVALIDITY=") && number(&c, 1, &u->uidvalidity)) goto done;
        if (c.p == c.end || *c.p != '/') goto done;
        c.p++;
    }
    if (!take(&c, ";UID=") || number(&c, 1, &u->uid)) goto done;
    if (take(&c, "/;SECTION=")) {
        size_t n = span(&c, ";");
        if (n && c.p[n - 1] == '/' && c.p + n < c.end) n--;   /* the '/' before ;PARTIAL= */
        if (!n || decode(c.p, n, &u->section)) goto done;
        c.p += n;
    }
    if (take(&c, "/;PARTIAL=")) {
        /* partial-range = number ["." nz-number] */
        if (number(&c, 0, &u->partial_offset)) goto done;
        if (c.p < c.end && *c.p == '.') {
            c.p++;
            if (number(&c, 1, &u->partial_length)) goto done;
        }
        u->has_partial = 1;
    }
    if (c.p < c.end && urlauth(&c, s, u)) goto done;
    if (c.p != c.end) goto done;
    r = 0;
done:
    return r;
}

void imap_url_fini(struct imap_url *u)
{
    free(u->user);
    free(u->auth);
    free(u->host);
    free(u->mailbox);
    free(u->section);
    free(u->access_user);
    free(u->mech);
    free(u->token);
    memset(u, 0, sizeof *u);
}

int imap_url_section_parse(const char *s, struct imap_url_section *sec)
{
    memset(sec, 0, sizeof *sec);
    strarr_init(&sec->fields);
    sec->text = IMAP_SECTION_NONE;
    struct cursor c = { s, s + strlen(s) };
    /* section-part = nz-number *("." nz-number), each then followed by "." and the text */
    while (c.p < c.end && *c.p >= '0' && *c.p <= '9') {
        if (sec->nparts == sizeof sec->parts / sizeof sec->parts[0]) return CF_E_PARSE;
        if (number(&c, 1, &sec->parts[sec->nparts])) return CF_E_PARSE;
        sec->nparts++;
        if (c.p == c.end) return 0;
        if (*c.p != '.') return CF_E_PARSE;
        c.p++;
        if (c.p == c.end) return CF_E_PARSE;
    }
    if (c.p == c.end) return 0;     /* "" : the whole message */
    if (take(&c, "MIME")) {
        if (!sec->nparts) return CF_E_PARSE;
        sec->text = IMAP_SECTION_MIME;
    } else if (take(&c, "TEXT")) {
        sec->text = IMAP_SECTION_TEXT;
    } else if (take(&c, "HEADER.FIELDS")) {
        sec->text = take(&c, ".NOT") ? IMAP_SECTION_HEADER_FIELDS_NOT : IMAP_SECTION_HEADER_FIELDS;
        /* SP "(" header-fld-name *(SP header-fld-name) ")" */
        if (!take(&c, " (")) return CF_E_PARSE;
        for (;;) {
            size_t n = span(&c, " )");
            if (!n) return CF_E_PARSE;
            for (size_t i = 0; i < n; i++) {
                unsigned char ch = (unsigned char)c.p[i];
                if (ch <= 0x20 || ch >= 0x7f || ch == ':' || ch == '"') return CF_E_PARSE;
            }
            strarr_take(&sec->fields, xstrndup(c.p, n));
            c.p += n;
            if (c.p == c.end) return CF_E_PARSE;
            if (*c.p++ == ')') break;
        }
    } else if (take(&c, "HEADER")) {
        sec->text = IMAP_SECTION_HEADER;
    } else {
        return CF_E_PARSE;
    }
    return c.p == c.end ? 0 : CF_E_PARSE;
}

void imap_url_section_fini(struct imap_url_section *sec)
{
    strarr_fini(&sec->fields);
}

void imap_url_printable(const char *s, size_t len, struct buf *out)
{
    if (len > 512) len = 512;
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)s[i];
        buf_putc(out, ch > 0x20 && ch < 0x7f && ch != ']' ? (char)ch : '?');
    }
}
