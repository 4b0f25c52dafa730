/* search-text.c: the string matching of SEARCH (search-int.h): needles found ignoring case
 * in header fields (RFC 2047 decoded, addresses parsed) and in the decoded text parts of a
 * message, with a fast byte scan where it cannot miss and the exact path where it could. */
#include "imap/search-int.h"
#include "mime/decode.h"
#include "mime/mime.h"
#include "core/error.h"
#include "core/xmalloc.h"
#include <stdlib.h>

static unsigned char lower_tab[256];

static int lower_tab_ready;

void lower_tab_init(void)
{
    if (lower_tab_ready) return;
    for (int i = 0; i < 256; i++)
        lower_tab[i] = (unsigned char)(i >= 'A' && i <= 'Z' ? i + 32 : i);
    lower_tab_ready = 1;
}

static int is_ascii(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] >= 0x80) return 0;
    return 1;
}

/* ci_find: 1 if the ASCII-lowercased needle nd->lower occurs in h[0,n) ignoring ASCII case.
 * A Knuth-Morris-Pratt scan over folded bytes: O(n + m) for any needle and haystack (the
 * naive compare-at-every-start was O(n * m): 'a' * 16M against 'a' * 16M + 'b' took hours,
 * review M6). Between partial matches it skips ahead eight bytes at a time for the first
 * needle byte (letters are found in either case by OR-ing 0x20, which maps exactly 'A'..'Z'
 * onto 'a'..'z' among bytes that can equal a lowercase letter), so the common case costs
 * what the old scan did. */
static int ci_find(const char *h, size_t n, const struct needle *nd)
{
    const unsigned char *p = (const unsigned char *)h, *nl = (const unsigned char *)nd->lower;
    size_t m = nd->len, i = 0, q = 0;   /* q: needle bytes matched before p[i] */
    unsigned char c0;
    int letter;
    if (m == 0) return 1;
    if (n < m) return 0;
    c0 = nl[0];
    letter = c0 >= 'a' && c0 <= 'z';
    while (i < n) {
        if (q == 0) {
            /* find the next possible start; none after n - m */
            size_t last = n - m;
            if (i > last) return 0;
            if (!letter) {
                const unsigned char *x = memchr(p + i, c0, last - i + 1);
                if (!x) return 0;
                i = (size_t)(x - p);
            } else {
                const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
                const uint64_t pat = ones * c0, low = ones * 0x20;
                while (i + 8 <= last + 1) {
                    uint64_t w, x;
                    memcpy(&w, p + i, 8);
                    x = (w | low) ^ pat;
                    if ((x - ones) & ~x & highs) break;
                    i += 8;
                }
                while (i <= last && (p[i] | 0x20) != c0) i++;
                if (i > last) return 0;
            }
            q = 1;
            i++;
            if (q == m) return 1;
            continue;
        }
        unsigned char c = lower_tab[p[i]];
        while (q > 0 && nl[q] != c) q = nd->border[q];
        if (nl[q] == c) q++;
        i++;
        if (q == m) return 1;
    }
    return 0;
}

void needle_init(struct needle *nd, const char *s, size_t len)
{
    nd->s = xstrndup(s, len);
    nd->len = len;
    nd->lower = xstrndup(s, len);
    nd->border = NULL;
    nd->ascii = 1;
    nd->has_ws = nd->has_colon = nd->has_sk = 0;
    struct buf fb = BUF_INIT;
    mime_text_fold(s, len, &fb);
    nd->folded_len = fb.len;
    nd->folded = fb.s ? buf_release(&fb) : xstrdup("");
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        nd->lower[i] = (char)lower_tab[c];
        if (c >= 0x80) nd->ascii = 0;
        if (c == ' ' || c == '\t' || c == '\r' || c == '\n') nd->has_ws = 1;
        if (c == ':') nd->has_colon = 1;
        if (lower_tab[c] == 's' || lower_tab[c] == 'k') nd->has_sk = 1;
    }
    if (len > 1) {
        /* border[k] for the prefix of length k (k >= 1); border[1] = 0 */
        const char *l = nd->lower;
        nd->border = xmalloc((len + 1) * sizeof *nd->border);
        nd->border[0] = nd->border[1] = 0;
        uint32_t b = 0;
        for (size_t k = 1; k < len; k++) {
            while (b > 0 && l[k] != l[b]) b = nd->border[b];
            if (l[k] == l[b]) b++;
            nd->border[k + 1] = b;
        }
    }
}

void needle_fini(struct needle *nd)
{
    free(nd->s);
    free(nd->lower);
    free(nd->border);
    free(nd->folded);
    nd->folded = NULL;
    nd->s = nd->lower = NULL;
    nd->border = NULL;
}

/* fold_to_ascii_risk: p holds a character outside ASCII that folds to an ASCII letter (U+017F
 * to s, U+212A to k), so a byte-level ASCII scan could miss a match. */
static int fold_to_ascii_risk(const char *p, size_t n)
{
    return memmem(p, n, "\xc5\xbf", 2) || memmem(p, n, "\xe2\x84\xaa", 3);
}

/* header_value_match: needle in one raw header field value, decoded (RFC 2047, unfolded). */
static int header_value_match(const char *v, size_t vlen, const struct needle *nd,
                              struct buf *tmp)
{
    if (nd->len == 0) return 1;
    /* Plain ASCII without encoded-words decodes to itself apart from unfolding, which only
     * touches white space: a needle without white space can be looked for in the raw bytes. */
    if (nd->ascii && !nd->has_ws && is_ascii(v, vlen) && !memmem(v, vlen, "=?", 2))
        return ci_find(v, vlen, nd);
    buf_reset(tmp);
    mime_decode_header(v, vlen, tmp);
    return mime_text_contains_n(tmp->s ? tmp->s : "", tmp->len, nd->s, nd->len);
}

struct field_rock {
    const char *name;
    size_t name_len;
    const struct needle *nd;
    struct buf *tmp;
    int addr;
};

/* addr_text_may_differ: whether the parsed addresses of an address field can hold text that
 * its decoded value does not: only comments, quoted-pairs, a quoted local part, or white
 * space (folding included) next to the '@' or a '.' of an address change the text. Most
 * fields have none, and the parse is skipped. */
int addr_text_may_differ(const char *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char c = v[i];
        if (c == '(' || c == '\\') return 1;
        if (c == '"' && i + 1 < n && v[i + 1] == '@') return 1;
        if ((c == '@' || c == '.') &&
            ((i > 0 && strchr(" \t\r\n", v[i - 1])) || (i + 1 < n && strchr(" \t\r\n", v[i + 1]))))
            return 1;
    }
    return 0;
}

struct addr_rock {
    const struct needle *nd;
    struct buf text;
};

/* addr_cb: the needle in "mailbox@domain" or in the (RFC 2047 decoded) display name. */
static int addr_cb(void *rock, int kind, const struct mime_address *a)
{
    struct addr_rock *ar = rock;
    if (kind == MIME_ADDRESS_GROUP_END) return 0;
    buf_reset(&ar->text);
    if (kind == MIME_ADDRESS) {
        buf_append(&ar->text, a->mailbox, a->mailbox_len);
        if (a->domain_len) {
            buf_putc(&ar->text, '@');
            buf_append(&ar->text, a->domain, a->domain_len);
        }
        if (mime_text_contains_n(buf_cstr(&ar->text), ar->text.len, ar->nd->s, ar->nd->len))
            return 1;
        buf_reset(&ar->text);
    }
    if (!a->name_len) return 0;
    mime_decode_header(a->name, a->name_len, &ar->text);
    return mime_text_contains_n(buf_cstr(&ar->text), ar->text.len, ar->nd->s, ar->nd->len);
}

static int field_cb(void *rock, const char *name, size_t name_len, const char *value,
                    size_t value_len)
{
    struct field_rock *fr = rock;
    if (name_len != fr->name_len || strncasecmp(name, fr->name, name_len)) return 0;
    if (header_value_match(value, value_len, fr->nd, fr->tmp)) return 1;
    /* FROM/TO/CC/BCC: "user@domain.org" must find "<user (c)@ (c) domain.org>", as the
     * address ENVELOPE shows (RFC 3501 section 6.4.4 leaves address matching open; clients
     * search for what they display) */
    if (!fr->addr || !addr_text_may_differ(value, value_len)) return 0;
    struct addr_rock ar = { fr->nd, BUF_INIT };
    int r = mime_address_foreach(value, value_len, addr_cb, &ar);
    buf_fini(&ar.text);
    return r > 0;
}

/* header_field_match: 1 when some field called name has needle in its decoded value (an
 * empty needle: when the field is present, RFC 3501 section 6.4.4 HEADER); with addr also
 * when it is in one of the field's parsed addresses or display names. */
int header_field_match(const char *hdr, size_t hlen, const char *name, int addr,
                              const struct needle *nd, struct buf *tmp)
{
    struct field_rock fr = { name, strlen(name), nd, tmp, addr };
    return mime_header_foreach(hdr, hlen, field_cb, &fr) > 0;
}

static int any_field_cb(void *rock, const char *name, size_t name_len, const char *value,
                        size_t value_len)
{
    struct field_rock *fr = rock;
    buf_reset(fr->tmp);
    buf_append(fr->tmp, name, name_len);
    buf_append(fr->tmp, ": ", 2);
    mime_decode_header(value, value_len, fr->tmp);
    return mime_text_contains_n(fr->tmp->s, fr->tmp->len, fr->nd->s, fr->nd->len);
}

/* header_text_match: the header half of TEXT: needle in any field as "Name: decoded value". */
int header_text_match(const char *hdr, size_t hlen, const struct needle *nd,
                             struct buf *tmp)
{
    struct field_rock fr = { NULL, 0, nd, tmp, 0 };
    if (nd->len == 0) return 1;
    if (nd->ascii && !nd->has_ws && !nd->has_colon && is_ascii(hdr, hlen) &&
        !memmem(hdr, hlen, "=?", 2) && !ci_find(hdr, hlen, nd))
        return 0;
    return mime_header_foreach(hdr, hlen, any_field_cb, &fr) > 0;
}

struct text_rock {
    const struct needle *nd;
};

static int text_cb(void *rock, const char *subtype, const char *text, size_t len)
{
    struct text_rock *tr = rock;
    (void)subtype;
    return mime_text_contains_n(text, len, tr->nd->s, tr->nd->len);
}

static int body_exact(const char *msg, size_t len, const struct needle *nd)
{
    struct text_rock tr = { nd };
    if (nd->len == 0) return 1;
    return mime_foreach_text(msg, len, text_cb, &tr) > 0;
}

/* What body_fast learns of one part from its MIME header. */
struct part_info {
    int text;           /* 1 text, 0 clearly not text, 2 a leaf typed multipart or message */
    int cte;            /* 0 identity, 1 base64, 2 quoted-printable */
    int charset_ok;     /* ASCII bytes are ASCII characters in its charset */
    int unsure;         /* something our small parser does not handle: use the slow path */
    int n_ct, n_cte;
};

static int is_tspecial_or_end(unsigned char c)
{
    return c <= 32 || c >= 127 || strchr("()<>@,;:\\\"/[]?=", c) != NULL;
}

static size_t skip_ws(const char *s, size_t n, size_t i)
{
    while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == '\r' || s[i] == '\n')) i++;
    return i;
}

/* charset_ascii_safe: charsets in which every byte below 0x80 is that ASCII character and no
 * other byte sequence decodes to an ASCII character (so the decoded text holds an ASCII needle
 * only where the raw bytes do). Unknown names decode as UTF-8 or Latin-1 (decode.h), which is
 * safe too, but a name iconv knows (UTF-16, UTF-7, EBCDIC) is not: only listed names pass. */
static int charset_ascii_safe(const char *cs, size_t n)
{
    static const char *const exact[] = {
        "us-ascii", "ascii", "utf-8", "utf8", "latin1", "koi8-r", "koi8-u", "ansi_x3.4-1968",
    };
    for (size_t i = 0; i < sizeof(exact) / sizeof(exact[0]); i++)
        if (ieq(cs, n, exact[i])) return 1;
    if ((n >= 10 && n <= 11 && !strncasecmp(cs, "iso-8859-", 9)) ||
        (n >= 9 && n <= 10 && !strncasecmp(cs, "iso8859-", 8)) ||
        (n == 12 && !strncasecmp(cs, "windows-125", 11)) ||
        (n == 6 && !strncasecmp(cs, "cp125", 5))) {
        char c = cs[n - 1];
        return c >= '0' && c <= '9';
    }
    return 0;
}

static void parse_ctype(const char *v, size_t n, struct part_info *pi)
{
    size_t i = skip_ws(v, n, 0), ts, te, ss;
    int have_cs = 0;
    if (memchr(v, '(', n)) { pi->unsure = 1; return; }
    ts = i;
    while (i < n && !is_tspecial_or_end((unsigned char)v[i])) i++;
    te = i;
    i = skip_ws(v, n, i);
    if (te == ts || i >= n || v[i] != '/') { pi->unsure = 1; return; }
    i = skip_ws(v, n, i + 1);
    ss = i;
    while (i < n && !is_tspecial_or_end((unsigned char)v[i])) i++;
    if (i == ss) { pi->unsure = 1; return; }
    if (ieq(v + ts, te - ts, "text")) pi->text = 1;
    else if (ieq(v + ts, te - ts, "multipart") || ieq(v + ts, te - ts, "message")) pi->text = 2;
    else pi->text = 0;
    pi->charset_ok = 1;
    for (;;) {
        size_t ns, ne, vs, ve;
        i = skip_ws(v, n, i);
        if (i >= n) break;
        if (v[i] != ';') { pi->unsure = 1; return; }
        i = skip_ws(v, n, i + 1);
        if (i >= n) break;
        ns = i;
        while (i < n && !is_tspecial_or_end((unsigned char)v[i])) i++;
        ne = i;
        if (ne > ns && v[ne - 1] == '*' ) { /* not a token char anyway; kept for clarity */ }
        i = skip_ws(v, n, i);
        if (ne == ns || i >= n || v[i] != '=') { pi->unsure = 1; return; }
        i = skip_ws(v, n, i + 1);
        if (i < n && v[i] == '"') {
            vs = ++i;
            while (i < n && v[i] != '"') {
                if (v[i] == '\\') { pi->unsure = ieq(v + ns, ne - ns, "charset"); i++; }
                i++;
            }
            if (i >= n) { pi->unsure = 1; return; }
            ve = i++;
        } else {
            vs = i;
            while (i < n && !is_tspecial_or_end((unsigned char)v[i])) i++;
            ve = i;
        }
        if (ne - ns >= 7 && !strncasecmp(v + ns, "charset", 7)) {
            if (ne - ns != 7 || have_cs) { pi->unsure = 1; return; }   /* RFC 2231 forms */
            have_cs = 1;
            pi->charset_ok = ve == vs || charset_ascii_safe(v + vs, ve - vs);
        }
    }
}

/* parse_cte: the encoding as FETCH BINARY and the exact path see it (mime_cte_parse);
 * unknown ones are searched as they stand. */
static void parse_cte(const char *v, size_t n, struct part_info *pi)
{
    enum mime_cte cte = mime_cte_parse(v, n);
    pi->cte = cte == MIME_CTE_BASE64 ? 1 : cte == MIME_CTE_QP ? 2 : 0;
}

static int part_header_cb(void *rock, const char *name, size_t name_len, const char *value,
                          size_t value_len)
{
    struct part_info *pi = rock;
    if (ieq(name, name_len, "Content-Type")) {
        if (pi->n_ct++) pi->unsure = 1;
        else parse_ctype(value, value_len, pi);
    } else if (ieq(name, name_len, "Content-Transfer-Encoding")) {
        if (pi->n_cte++) pi->unsure = 1;
        else parse_cte(value, value_len, pi);
    }
    return 0;
}

static int parse_u64(const char **pp, const char *end, uint64_t *v)
{
    const char *p = *pp;
    uint64_t x = 0;
    if (p >= end || *p < '0' || *p > '9') return -1;
    while (p < end && *p >= '0' && *p <= '9') {
        if (x > (UINT64_MAX - 9) / 10) return -1;
        x = x * 10 + (uint64_t)(*p++ - '0');
    }
    if (p < end && *p == ' ') p++;
    *pp = p;
    *v = x;
    return 0;
}

/* body_fast: the BODY test through the section table, decoding only text parts and scanning
 * their bytes for an ASCII needle without converting charsets. Returns 1 found, 0 not found,
 * -1 when it cannot tell (a charset or header it does not handle): use body_exact. */
static int body_fast(const char *msg, size_t len, const char *sec, size_t seclen,
                     const struct needle *nd, struct buf *tmp)
{
    const char *p = sec, *end = sec + seclen;
    if (seclen < 3 || memcmp(sec, "S1\n", 3)) return -1;
    p += 3;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p)), *le = nl ? nl : end;
        const char *part = p, *q;
        uint64_t hoff, hlen, boff, blen, mhlen;
        size_t partlen;
        struct part_info pi;
        const char *body;
        size_t bodylen;
        int multi = 0;

        q = memchr(p, ' ', (size_t)(le - p));
        if (!q) return -1;
        partlen = (size_t)(q - part);
        q++;
        if (parse_u64(&q, le, &hoff) || parse_u64(&q, le, &hlen) || parse_u64(&q, le, &boff) ||
            parse_u64(&q, le, &blen))
            return -1;
        for (; q < le && *q != ' '; q++)
            if (*q == 'M' || *q == 'R') multi = 1;
        if (q < le) q++;
        if (parse_u64(&q, le, &mhlen)) return -1;
        p = nl ? nl + 1 : end;
        if (hoff > len || hlen > len - hoff || boff > len || blen > len - boff) return -1;
        if (multi || (partlen == 1 && part[0] == '0')) continue;

        memset(&pi, 0, sizeof(pi));
        pi.text = 1;
        pi.charset_ok = 1;
        mime_header_foreach(msg + hoff, (size_t)hlen, part_header_cb, &pi);
        if (pi.unsure) return -1;
        if (pi.text == 0) continue;
        if (!pi.charset_ok) return -1;
        body = msg + boff;
        bodylen = (size_t)blen;
        if (pi.cte) {
            buf_reset(tmp);
            mime_cte_decode(pi.cte == 1 ? MIME_CTE_BASE64 : MIME_CTE_QP, body, bodylen, tmp);
            body = tmp->s ? tmp->s : "";
            bodylen = tmp->len;
        }
        if (ci_find(body, bodylen, nd)) return pi.text == 1 ? 1 : -1;
        if (nd->has_sk && fold_to_ascii_risk(body, bodylen)) return -1;
    }
    return 0;
}

/* body_match: BODY on msg with its (possibly absent) section table. */
int body_match(const char *msg, size_t len, const char *sec, size_t seclen,
                      const struct needle *nd, struct buf *tmp)
{
    int r;
    if (nd->len == 0) return 1;
    if (nd->ascii && sec) {
        r = body_fast(msg, len, sec, seclen, nd, tmp);
        if (r >= 0) return r;
    }
    return body_exact(msg, len, nd);
}

/* header_block_len: bytes of msg's top-level header through its empty line. */
static size_t header_block_len(const char *msg, size_t len)
{
    size_t i = 0;
    while (i < len) {
        const char *nl = memchr(msg + i, '\n', len - i);
        size_t ll;
        if (!nl) return len;
        ll = (size_t)(nl - (msg + i));
        if (ll == 0 || (ll == 1 && msg[i] == '\r')) return (size_t)(nl - msg) + 1;
        i = (size_t)(nl - msg) + 1;
    }
    return len;
}

int search_text_match(const char *msg, size_t len, const char *sections, size_t sections_len,
                      const char *needle, size_t needle_len, int with_header)
{
    struct needle nd;
    struct buf tmp = BUF_INIT;
    int r = 0;
    lower_tab_init();
    needle_init(&nd, needle, needle_len);
    if (with_header) r = header_text_match(msg, header_block_len(msg, len), &nd, &tmp);
    if (!r) r = body_match(msg, len, sections, sections_len, &nd, &tmp);
    buf_fini(&tmp);
    needle_fini(&nd);
    return r;
}

int search_text_match_exact(const char *msg, size_t len, const char *needle, size_t needle_len,
                            int with_header)
{
    struct needle nd;
    struct buf tmp = BUF_INIT;
    struct field_rock fr;
    int r = 0;
    lower_tab_init();
    needle_init(&nd, needle, needle_len);
    fr.name = NULL;
    fr.name_len = 0;
    fr.addr = 0;
    fr.nd = &nd;
    fr.tmp = &tmp;
    if (with_header)
        r = needle_len == 0 || mime_header_foreach(msg, len, any_field_cb, &fr) > 0;
    if (!r) r = body_exact(msg, len, &nd);
    buf_fini(&tmp);
    needle_fini(&nd);
    return r;
}
