/* mboxname.c: mailbox name rules, modified UTF-7, namespaces and LIST matching. */
#include "store/mboxname.h"
#include "core/error.h"
#include "core/xmalloc.h"
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define USER_PREFIX_LEN (sizeof MBOXNAME_USER_PREFIX - 1)

/* ---- UTF-8 ---- */

/* utf8_next: decode the code point at s[*i], advancing *i. Rejects overlong forms, surrogates
 * and values past U+10FFFF. 0, or -1 on malformed input (including the NUL at the end). */
static int utf8_next(const unsigned char *s, size_t *i, uint32_t *cp)
{
    unsigned char c = s[*i];
    uint32_t v, min;
    int more;
    if (c == 0) return -1;
    if (c < 0x80) {
        *cp = c;
        (*i)++;
        return 0;
    }
    if ((c & 0xe0) == 0xc0) {
        v = c & 0x1f;
        more = 1;
        min = 0x80;
    } else if ((c & 0xf0) == 0xe0) {
        v = c & 0x0f;
        more = 2;
        min = 0x800;
    } else if ((c & 0xf8) == 0xf0) {
        v = c & 0x07;
        more = 3;
        min = 0x10000;
    } else {
        return -1;
    }
    for (int k = 1; k <= more; k++) {
        unsigned char d = s[*i + (size_t)k];
        if ((d & 0xc0) != 0x80) return -1;  /* also stops at the NUL */
        v = v << 6 | (d & 0x3f);
    }
    if (v < min || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff)) return -1;
    *i += (size_t)more + 1;
    *cp = v;
    return 0;
}

static void utf8_put(struct buf *out, uint32_t cp)
{
    char b[4];
    size_t n;
    if (cp < 0x80) {
        b[0] = (char)cp;
        n = 1;
    } else if (cp < 0x800) {
        b[0] = (char)(0xc0 | cp >> 6);
        b[1] = (char)(0x80 | (cp & 0x3f));
        n = 2;
    } else if (cp < 0x10000) {
        b[0] = (char)(0xe0 | cp >> 12);
        b[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        b[2] = (char)(0x80 | (cp & 0x3f));
        n = 3;
    } else {
        b[0] = (char)(0xf0 | cp >> 18);
        b[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
        b[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
        b[3] = (char)(0x80 | (cp & 0x3f));
        n = 4;
    }
    buf_append(out, b, n);
}

/* ---- validity ---- */

int mboxname_valid(const char *name)
{
    const unsigned char *s = (const unsigned char *)name;
    size_t len = strlen(name), i = 0, comp_start = 0;
    int depth = 1;
    if (len == 0 || len > MBOXNAME_MAX_LEN) return CF_E_PARSE;
    if (!strcmp(name, "user")) return CF_E_PARSE;  /* the parent of all INBOXes, no mailbox */
    while (i <= len) {
        if (i == len || s[i] == MBOXNAME_SEP) {
            size_t clen = i - comp_start;
            if (clen == 0 || clen > MBOXNAME_MAX_COMPONENT) return CF_E_PARSE;
            if ((clen == 1 && s[comp_start] == '.') ||
                (clen == 2 && s[comp_start] == '.' && s[comp_start + 1] == '.'))
                return CF_E_PARSE;
            if (i == len) break;
            if (++depth > MBOXNAME_MAX_DEPTH) return CF_E_PARSE;
            comp_start = ++i;
            continue;
        }
        uint32_t cp;
        if (utf8_next(s, &i, &cp)) return CF_E_PARSE;
        if (cp < 0x20 || (cp >= 0x7f && cp <= 0x9f) || cp == '%' || cp == '*') return CF_E_PARSE;
    }
    return 0;
}

int mboxname_valid_user(const char *user)
{
    if (!user || !*user || strchr(user, MBOXNAME_SEP)) return CF_E_PARSE;
    struct buf b = BUF_INIT;
    mboxname_user_inbox(user, &b);
    int r = mboxname_valid(buf_cstr(&b));
    buf_fini(&b);
    return r;
}

/* ---- modified UTF-7 (RFC 3501 section 5.1.3) ---- */

static const char b64chars[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,";

static int b64val(unsigned char c)
{
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == ',') return 63;
    return -1;
}

int mboxname_utf7_to_utf8(const char *in, struct buf *out)
{
    const unsigned char *s = (const unsigned char *)in;
    size_t i = 0, shift_end = (size_t)-1;
    while (s[i]) {
        unsigned char c = s[i];
        if (c < 0x20 || c > 0x7e) return CF_E_PARSE;
        if (c != '&') {
            buf_putc(out, (char)c);
            i++;
            continue;
        }
        if (s[i + 1] == '-') {
            buf_putc(out, '&');
            i += 2;
            continue;
        }
        /* RFC 3501: a shifted run that directly follows another is not canonical */
        if (i == shift_end) return CF_E_PARSE;
        uint32_t bits = 0, high = 0;
        int nbits = 0, units = 0;
        for (i++; s[i] && s[i] != '-'; i++) {
            int v = b64val(s[i]);
            if (v < 0) return CF_E_PARSE;
            bits = ((bits << 6) | (uint32_t)v) & 0x3fffff;
            nbits += 6;
            if (nbits < 16) continue;
            nbits -= 16;
            uint32_t u = (bits >> nbits) & 0xffff;
            units++;
            if (u >= 0xd800 && u <= 0xdbff) {
                if (high) return CF_E_PARSE;
                high = u;
            } else if (u >= 0xdc00 && u <= 0xdfff) {
                if (!high) return CF_E_PARSE;
                utf8_put(out, 0x10000 + ((high - 0xd800) << 10) + (u - 0xdc00));
                high = 0;
            } else {
                /* printable ASCII must be written directly, and NUL ends C strings */
                if (high || u == 0 || (u >= 0x20 && u <= 0x7e)) return CF_E_PARSE;
                utf8_put(out, u);
            }
        }
        if (!s[i]) return CF_E_PARSE;                         /* unterminated */
        if (!units || high) return CF_E_PARSE;                 /* empty, or a lone surrogate */
        if (nbits >= 6 || (bits & ((1u << nbits) - 1))) return CF_E_PARSE;  /* stray bits */
        shift_end = ++i;
    }
    return 0;
}

/* b64_emit: emit the whole 6-bit groups of *bits (and, when final, the rest padded with 0). */
static void b64_emit(struct buf *out, uint32_t *bits, int *nbits, int final)
{
    while (*nbits >= 6) {
        *nbits -= 6;
        buf_putc(out, b64chars[(*bits >> *nbits) & 0x3f]);
    }
    if (final && *nbits > 0) {
        buf_putc(out, b64chars[(*bits << (6 - *nbits)) & 0x3f]);
        *nbits = 0;
    }
}

int mboxname_utf8_to_utf7(const char *in, struct buf *out)
{
    const unsigned char *s = (const unsigned char *)in;
    size_t i = 0;
    int shifted = 0, nbits = 0;
    uint32_t bits = 0;
    while (s[i]) {
        uint32_t cp;
        if (utf8_next(s, &i, &cp)) return CF_E_PARSE;
        if (cp >= 0x20 && cp <= 0x7e) {
            if (shifted) {
                b64_emit(out, &bits, &nbits, 1);
                buf_putc(out, '-');
                shifted = 0;
            }
            if (cp == '&') buf_appends(out, "&-");
            else buf_putc(out, (char)cp);
            continue;
        }
        if (!shifted) {
            buf_putc(out, '&');
            shifted = 1;
            bits = 0;
            nbits = 0;
        }
        uint32_t units[2];
        int n = 0;
        if (cp >= 0x10000) {
            units[n++] = 0xd800 + ((cp - 0x10000) >> 10);
            units[n++] = 0xdc00 + ((cp - 0x10000) & 0x3ff);
        } else {
            units[n++] = cp;
        }
        for (int k = 0; k < n; k++) {
            bits = ((bits << 16) | units[k]) & 0x3fffff;
            nbits += 16;
            b64_emit(out, &bits, &nbits, 0);
        }
    }
    if (shifted) {
        b64_emit(out, &bits, &nbits, 1);
        buf_putc(out, '-');
    }
    return 0;
}

/* ---- namespaces ---- */

void mboxname_user_inbox(const char *user, struct buf *out)
{
    buf_reset(out);
    buf_appends(out, MBOXNAME_USER_PREFIX);
    buf_appends(out, user);
}

/* ns_root: whether ext is just a namespace prefix, with or without its '/'. */
static int ns_root(const char *ext, const char *ns)
{
    size_t n = strlen(ns) - 1;
    return !strncmp(ext, ns, n) && (ext[n] == '\0' || (ext[n] == MBOXNAME_SEP && !ext[n + 1]));
}

static int is_inbox_word(const char *s, char next_allowed)
{
    return !strncasecmp(s, "INBOX", 5) && (s[5] == '\0' || s[5] == next_allowed);
}

int mboxname_from_external(const char *user, const char *ext, struct buf *out)
{
    buf_reset(out);
    if (!user) {
        buf_appends(out, ext);
        return mboxname_valid(buf_cstr(out));
    }
    if (mboxname_valid_user(user)) return CF_E_PARSE;
    if (is_inbox_word(ext, '\0')) {
        mboxname_user_inbox(user, out);
        return 0;
    }
    if (is_inbox_word(ext, MBOXNAME_SEP)) return CF_E_PERM;
    if (ns_root(ext, MBOXNAME_NS_OTHER) || ns_root(ext, MBOXNAME_NS_SHARED)) return CF_E_NOTFOUND;
    if (!strncmp(ext, MBOXNAME_NS_OTHER, strlen(MBOXNAME_NS_OTHER))) {
        buf_appends(out, MBOXNAME_USER_PREFIX);
        buf_appends(out, ext + strlen(MBOXNAME_NS_OTHER));
    } else if (!strncmp(ext, MBOXNAME_NS_SHARED, strlen(MBOXNAME_NS_SHARED))) {
        const char *rest = ext + strlen(MBOXNAME_NS_SHARED);
        if (!strcmp(rest, "user") || !strncmp(rest, MBOXNAME_USER_PREFIX, USER_PREFIX_LEN))
            return CF_E_PERM;
        buf_appends(out, rest);
    } else {
        mboxname_user_inbox(user, out);
        buf_putc(out, MBOXNAME_SEP);
        buf_appends(out, ext);
    }
    return mboxname_valid(buf_cstr(out));
}

int mboxname_to_external(const char *user, const char *name, struct buf *out)
{
    buf_reset(out);
    if (mboxname_valid(name)) return CF_E_PARSE;
    if (!user) {
        buf_appends(out, name);
        buf_cstr(out);
        return 0;
    }
    size_t ulen = strlen(user);
    if (!strncmp(name, MBOXNAME_USER_PREFIX, USER_PREFIX_LEN)) {
        const char *u = name + USER_PREFIX_LEN;
        if (!strncmp(u, user, ulen) && u[ulen] == '\0') {
            buf_appends(out, "INBOX");
        } else if (!strncmp(u, user, ulen) && u[ulen] == MBOXNAME_SEP) {
            buf_appends(out, u + ulen + 1);
        } else {
            buf_appends(out, MBOXNAME_NS_OTHER);
            buf_appends(out, u);
        }
    } else {
        buf_appends(out, MBOXNAME_NS_SHARED);
        buf_appends(out, name);
    }
    buf_cstr(out);
    return 0;
}

int mboxname_from_imap(const char *user, const char *imapname, struct buf *out)
{
    struct buf ext = BUF_INIT;
    int r = mboxname_utf7_to_utf8(imapname, &ext);
    if (!r) r = mboxname_from_external(user, buf_cstr(&ext), out);
    buf_fini(&ext);
    return r;
}

int mboxname_to_imap(const char *user, const char *name, struct buf *out)
{
    struct buf ext = BUF_INIT;
    int r = mboxname_to_external(user, name, &ext);
    buf_reset(out);
    if (!r) r = mboxname_utf8_to_utf7(buf_cstr(&ext), out);
    buf_cstr(out);
    buf_fini(&ext);
    return r;
}

int mboxname_owner(const char *name, struct buf *owner)
{
    buf_reset(owner);
    buf_cstr(owner);
    if (strncmp(name, MBOXNAME_USER_PREFIX, USER_PREFIX_LEN)) return 0;
    const char *u = name + USER_PREFIX_LEN;
    buf_append(owner, u, strcspn(u, MBOXNAME_SEP_STR));
    buf_cstr(owner);
    return 1;
}

int mboxname_is_inbox(const char *name)
{
    return !strncmp(name, MBOXNAME_USER_PREFIX, USER_PREFIX_LEN) &&
           name[USER_PREFIX_LEN] != '\0' && !strchr(name + USER_PREFIX_LEN, MBOXNAME_SEP);
}

int mboxname_parent(const char *name, struct buf *parent)
{
    buf_reset(parent);
    buf_cstr(parent);
    const char *slash = strrchr(name, MBOXNAME_SEP);
    if (!slash || mboxname_is_inbox(name)) return 0;
    buf_append(parent, name, (size_t)(slash - name));
    buf_cstr(parent);
    return 1;
}

int mboxname_is_descendant(const char *name, const char *ancestor)
{
    size_t n = strlen(ancestor);
    return n && !strncmp(name, ancestor, n) && name[n] == MBOXNAME_SEP && name[n + 1];
}

/* ---- LIST matching (RFC 3501 section 6.3.8) ---- */

size_t mboxname_pattern_literal(const char *pattern)
{
    return strcspn(pattern, "*%");
}

/* The matcher is a bit-parallel NFA (review M6). State j means "the first j pattern
 * characters match what was read"; runs of wildcards are merged first ("**", "%*" and "*%"
 * are "*", "%%" is "%"), so a wildcard never follows a wildcard and the empty-match closure
 * is one shift. Each name byte then costs one pass over (m + 64) / 64 words: linear in the
 * name for any pattern up to MBOXNAME_PATTERN_MAX, with no backtracking and no allocation
 * per name. */
struct mboxname_pattern {
    size_t m;                   /* merged pattern length */
    size_t words;               /* 64-bit words per state set (states 0..m) */
    uint64_t *star, *pct;       /* states entered by a '*' / '%' */
    uint64_t *lit;              /* nlit sets: states entered by byte b, for b = litbyte[k] */
    uint16_t litidx[256];       /* byte -> index into lit (0: no literal position) */
    uint64_t *cur, *nxt, *tmp;  /* scratch for one run */
};

int mboxname_pattern_new(const char *pattern, struct mboxname_pattern **r)
{
    *r = NULL;
    size_t len = strlen(pattern);
    if (len > MBOXNAME_PATTERN_MAX) return CF_E_LIMIT;
    char *pat = xmalloc(len + 1);
    size_t m = 0;
    for (size_t i = 0; i < len; i++) {
        char ch = pattern[i];
        if (ch == '*' || ch == '%') {
            if (m && (pat[m - 1] == '*' || pat[m - 1] == '%')) {
                if (ch == '*') pat[m - 1] = '*';
                continue;
            }
        }
        pat[m++] = ch;
    }
    pat[m] = '\0';
    /* INBOX is case-insensitive (RFC 3501 section 5.1): fold a leading "inbox" word */
    if (!strncasecmp(pat, "INBOX", 5) && strchr("/*%", pat[5])) memcpy(pat, "INBOX", 5);

    struct mboxname_pattern *p = xzmalloc(sizeof *p);
    p->m = m;
    p->words = (m + 1 + 63) / 64;
    size_t nlit = 1;                            /* set 0 stays empty: bytes not in pattern */
    for (size_t i = 0; i < m; i++) {
        unsigned char b = (unsigned char)pat[i];
        if (b != '*' && b != '%' && !p->litidx[b]) p->litidx[b] = (uint16_t)nlit++;
    }
    size_t w = p->words;
    uint64_t *all = xzmalloc((5 + nlit) * w * sizeof *all);
    p->star = all;
    p->pct = all + w;
    p->cur = all + 2 * w;
    p->nxt = all + 3 * w;
    p->tmp = all + 4 * w;
    p->lit = all + 5 * w;
    for (size_t i = 0; i < m; i++) {
        size_t j = i + 1;                       /* the state pattern character i leads to */
        uint64_t bit = (uint64_t)1 << (j % 64);
        unsigned char b = (unsigned char)pat[i];
        if (b == '*') p->star[j / 64] |= bit;
        else if (b == '%') p->pct[j / 64] |= bit;
        else p->lit[p->litidx[b] * w + j / 64] |= bit;
    }
    free(pat);
    *r = p;
    return 0;
}

void mboxname_pattern_free(struct mboxname_pattern **pp)
{
    struct mboxname_pattern *p = *pp;
    if (!p) return;
    free(p->star);              /* the one block of every set */
    free(p);
    *pp = NULL;
}

size_t mboxname_pattern_length(const struct mboxname_pattern *p)
{
    return p->m;
}

/* shift1: out = in << 1 across words (state j to state j + 1). */
static void shift1(uint64_t *out, const uint64_t *in, size_t w)
{
    uint64_t carry = 0;
    for (size_t k = 0; k < w; k++) {
        uint64_t v = in[k];
        out[k] = (v << 1) | carry;
        carry = v >> 63;
    }
}

int mboxname_pattern_run(struct mboxname_pattern *p, const char *name, size_t *anc_r)
{
    size_t w = p->words, m = p->m;
    uint64_t *cur = p->cur, *nxt = p->nxt, *tmp = p->tmp;
    const uint64_t wild_m = (uint64_t)1 << (m % 64);
    memset(cur, 0, w * sizeof *cur);
    cur[0] = 1;
    if (m && (p->star[0] & 2 || p->pct[0] & 2)) cur[0] |= 2;   /* a leading wildcard: empty */
    if (anc_r) *anc_r = 0;
    for (size_t i = 0; name[i]; i++) {
        unsigned char c = (unsigned char)name[i];
        if (c == MBOXNAME_SEP && anc_r && i > 0 && (cur[m / 64] & wild_m)) *anc_r = i;
        const uint64_t *lit = p->lit + p->litidx[c] * w;
        uint64_t any = 0;
        shift1(tmp, cur, w);
        for (size_t k = 0; k < w; k++) {
            tmp[k] &= lit[k];                   /* a literal matched c */
            nxt[k] = tmp[k] | (cur[k] & p->star[k]);
            if (c != MBOXNAME_SEP) nxt[k] |= cur[k] & p->pct[k];
        }
        /* a wildcard right after a literal that just matched matches the empty string */
        uint64_t carry = 0;
        for (size_t k = 0; k < w; k++) {
            uint64_t v = tmp[k];
            nxt[k] |= ((v << 1) | carry) & (p->star[k] | p->pct[k]);
            carry = v >> 63;
            any |= nxt[k];
        }
        uint64_t *t = cur;
        cur = nxt;
        nxt = t;
        if (!any) return 0;                     /* nothing can match any more */
    }
    return (cur[m / 64] & wild_m) != 0;
}

/* match_run: compile, run once, free (the one-shot forms below). */
static int match_run(const char *pattern, const char *name, size_t *anc_r)
{
    struct mboxname_pattern *p;
    if (anc_r) *anc_r = 0;
    if (mboxname_pattern_new(pattern, &p)) return 0;
    int r = mboxname_pattern_run(p, name, anc_r);
    mboxname_pattern_free(&p);
    return r;
}

int mboxname_match(const char *pattern, const char *name)
{
    return match_run(pattern, name, NULL);
}

size_t mboxname_match_ancestor(const char *pattern, const char *name)
{
    size_t anc = 0;
    match_run(pattern, name, &anc);
    return anc;
}
