/* preview.c: the RFC 8970 preview text of a message (first text part, HTML made plain, white
 * space collapsed, cut at 256 characters on a character boundary) and the thread root
 * Message-ID behind RFC 8474 THREADID. */
#include "mime/preview.h"
#include "mime/decode.h"
#include "mime/mime-int.h"
#include <stdint.h>
#include <string.h>
#include <strings.h>

/* ---- choosing the part ---- */

/* is_attachment: the part's Content-Disposition is "attachment" (RFC 2183 section 2.2). */
static int is_attachment(const struct mime_node *n)
{
    const struct mime_field *f = &n->hdr[MH_CONTENT_DISPOSITION];
    if (!f->p) return 0;
    const char *end = f->p + f->n;
    const char *p = mime_skip_cfws(f->p, end);
    const char *e = mime_token(p, end);
    return mime_ieq(p, (size_t)(e - p), "attachment");
}

/* in_attached_message: the node lies inside a message/rfc822 part (a forwarded message is not
 * this message's text). */
static int in_attached_message(const struct mime_tree *t, int i)
{
    for (int p = t->nodes[i].parent; p >= 0; p = t->nodes[p].parent)
        if (t->nodes[p].kind == MIME_MESSAGE) return 1;
    return 0;
}

/* pick_part: the node of the first body text/plain part, else of the first text/html one;
 * -1 when there is neither. *html_r tells which. */
static int pick_part(const struct mime_tree *t, int *html_r)
{
    int html = -1;
    for (int i = 0; i < t->count; i++) {
        const struct mime_node *n = &t->nodes[i];
        if (!mime_node_is_text(n) || is_attachment(n) || in_attached_message(t, i)) continue;
        if (mime_ieq(n->subtype, n->subtype_len, "plain")) {
            *html_r = 0;
            return i;
        }
        if (html < 0 && mime_ieq(n->subtype, n->subtype_len, "html")) html = i;
    }
    *html_r = 1;
    return html;
}

/* The chosen part's body as the preview reads it: the charset named in its Content-Type, its
 * transfer encoding, and its first MIME_PREVIEW_SCAN_MAX bytes. */
struct part_src {
    struct buf cs;
    const char *charset;                /* cs as a C string ("" when none) */
    enum mime_cte how;
    const char *body;
    size_t blen;
};

static void part_src_init(const char *msg, const struct mime_node *n, struct part_src *src)
{
    const char *tt, *st, *params;
    size_t tl, sl;
    const struct mime_field *ct = &n->hdr[MH_CONTENT_TYPE];
    buf_init(&src->cs);
    if (n->params == MIME_PARAMS_HEADER && ct->p &&
        mime_parse_ctype(ct->p, ct->n, &tt, &tl, &st, &sl, &params))
        mime_find_param(params, ct->p + ct->n, "charset", &src->cs);
    src->charset = buf_cstr(&src->cs);
    src->body = msg + n->boff;
    src->blen = n->blen < MIME_PREVIEW_SCAN_MAX ? n->blen : MIME_PREVIEW_SCAN_MAX;
    const struct mime_field *cte = &n->hdr[MH_CONTENT_TRANSFER_ENCODING];
    src->how = cte->p ? mime_cte_parse(cte->p, cte->n) : MIME_CTE_IDENTITY;
}

/* part_text: the first blen bytes of the part's body, transfer encoding removed and converted
 * to UTF-8, into utf. */
static void part_text(const struct part_src *src, size_t blen, struct buf *utf)
{
    struct buf raw = BUF_INIT;
    const char *cs = src->charset;
    if (src->how == MIME_CTE_BASE64 || src->how == MIME_CTE_QP) {
        mime_cte_decode(src->how, src->body, blen, &raw);
        mime_charset_to_utf8(cs, raw.s ? raw.s : "", raw.len, utf);
    } else if (src->how == MIME_CTE_IDENTITY) {
        mime_charset_to_utf8(cs, src->body, blen, utf);
    }   /* an unknown encoding has no text to show */
    buf_fini(&raw);
}

/* ---- HTML ---- */

/* put_cp: append code point c as UTF-8 (U+FFFD for surrogates, 0 and out-of-range values). */
static void put_cp(struct buf *out, uint32_t c)
{
    char b[4];
    if (c == 0 || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff)) c = 0xfffd;
    if (c < 0x80) {
        buf_putc(out, (char)c);
    } else if (c < 0x800) {
        b[0] = (char)(0xc0 | c >> 6);
        b[1] = (char)(0x80 | (c & 0x3f));
        buf_append(out, b, 2);
    } else if (c < 0x10000) {
        b[0] = (char)(0xe0 | c >> 12);
        b[1] = (char)(0x80 | ((c >> 6) & 0x3f));
        b[2] = (char)(0x80 | (c & 0x3f));
        buf_append(out, b, 3);
    } else {
        b[0] = (char)(0xf0 | c >> 18);
        b[1] = (char)(0x80 | ((c >> 12) & 0x3f));
        b[2] = (char)(0x80 | ((c >> 6) & 0x3f));
        b[3] = (char)(0x80 | (c & 0x3f));
        buf_append(out, b, 4);
    }
}

/* entity: decode the character reference at p ('&'); returns the bytes it spans (0: not one
 * we know, the '&' stays as text). */
static size_t entity(const char *p, const char *end, struct buf *out)
{
    static const struct { const char *name; uint32_t cp; } named[] = {
        { "amp", '&' }, { "lt", '<' }, { "gt", '>' }, { "quot", '"' }, { "apos", '\'' },
        { "nbsp", 0xa0 }, { "copy", 0xa9 }, { "reg", 0xae }, { "hellip", 0x2026 },
        { "mdash", 0x2014 }, { "ndash", 0x2013 }, { "lsquo", 0x2018 }, { "rsquo", 0x2019 },
        { "ldquo", 0x201c }, { "rdquo", 0x201d }, { "euro", 0x20ac }, { "zwnj", 0x200c },
    };
    const char *q = p + 1;
    if (q < end && *q == '#') {
        uint32_t v = 0;
        int hex = 0, digits = 0;
        q++;
        if (q < end && (*q == 'x' || *q == 'X')) { hex = 1; q++; }
        for (; q < end && digits < 8; q++, digits++) {
            char c = *q;
            if (c >= '0' && c <= '9') v = v * (hex ? 16 : 10) + (uint32_t)(c - '0');
            else if (hex && c >= 'a' && c <= 'f') v = v * 16 + (uint32_t)(c - 'a' + 10);
            else if (hex && c >= 'A' && c <= 'F') v = v * 16 + (uint32_t)(c - 'A' + 10);
            else break;
        }
        if (!digits) return 0;
        if (q < end && *q == ';') q++;
        put_cp(out, v);
        return (size_t)(q - p);
    }
    for (size_t i = 0; i < sizeof named / sizeof named[0]; i++) {
        size_t l = strlen(named[i].name);
        if ((size_t)(end - q) > l && !memcmp(q, named[i].name, l) && q[l] == ';') {
            put_cp(out, named[i].cp);
            return l + 2;
        }
    }
    return 0;
}

/* tag_name: the element name of the tag at p ('<'), lowercased into name (truncated); sets
 * *closing for "</". Returns the name length. */
static size_t tag_name(const char *p, const char *end, char *name, size_t size, int *closing)
{
    const char *q = p + 1;
    *closing = 0;
    if (q < end && *q == '/') { *closing = 1; q++; }
    size_t n = 0;
    while (q < end && ((*q >= 'a' && *q <= 'z') || (*q >= 'A' && *q <= 'Z') ||
                       (*q >= '0' && *q <= '9'))) {
        if (n + 1 < size) name[n++] = (char)(*q >= 'A' && *q <= 'Z' ? *q + 32 : *q);
        q++;
    }
    name[n] = '\0';
    return n;
}

/* find_ci: the first occurrence of the ASCII needle (lower case) in [p, end) ignoring case,
 * or NULL. */
static const char *find_ci(const char *p, const char *end, const char *needle)
{
    size_t l = strlen(needle);
    for (; (size_t)(end - p) >= l; p++)
        if (!strncasecmp(p, needle, l)) return p;
    return NULL;
}

/* tag_end: the byte after the '>' that closes the tag starting at p (quoted attribute values
 * may hold '>'), or end. */
static const char *tag_end(const char *p, const char *end)
{
    char quote = 0;
    for (p++; p < end; p++) {
        if (quote) {
            if (*p == quote) quote = 0;
        } else if (*p == '"' || *p == '\'') {
            quote = *p;
        } else if (*p == '>') {
            return p + 1;
        }
    }
    return end;
}

void mime_html_to_text(const char *in, size_t n, struct buf *out)
{
    static const char *const skip_content[] = { "script", "style", "head", "title" };
    static const char *const blocks[] = {
        "br", "p", "div", "tr", "td", "th", "li", "ul", "ol", "table", "h1", "h2", "h3", "h4",
        "h5", "h6", "hr", "blockquote", "pre", "section", "article", "header", "footer", "dd",
        "dt", "body", "html",
    };
    const char *p = in, *end = in + n;
    /* the next '<' and '&' at or after p (end: none) */
    const char *lt = n ? memchr(in, '<', n) : NULL, *amp = n ? memchr(in, '&', n) : NULL;
    if (!lt) lt = end;
    if (!amp) amp = end;
    while (p < end) {
        /* found again only once passed, so the text between markup is scanned once */
        if (lt < p) lt = memchr(p, '<', (size_t)(end - p));
        if (!lt) lt = end;
        if (amp < p) amp = memchr(p, '&', (size_t)(end - p));
        if (!amp) amp = end;
        if (*p == '&') {
            size_t k = entity(p, end, out);
            if (k) { p += k; continue; }
            buf_putc(out, '&');
            p++;
            continue;
        }
        if (*p != '<') {
            const char *stop = lt < amp ? lt : amp;
            buf_append(out, p, (size_t)(stop - p));
            p = stop;
            continue;
        }
        if (end - p >= 4 && !memcmp(p, "<!--", 4)) {
            const char *c = find_ci(p + 4, end, "-->");
            p = c ? c + 3 : end;
            continue;
        }
        char name[16];
        int closing;
        size_t nl = tag_name(p, end, name, sizeof name, &closing);
        if (!nl && !(p + 1 < end && (p[1] == '!' || p[1] == '?' || p[1] == '/'))) {
            buf_putc(out, '<');     /* a lone '<' in text */
            p++;
            continue;
        }
        p = tag_end(p, end);
        if (!closing) {
            for (size_t i = 0; i < sizeof skip_content / sizeof skip_content[0]; i++) {
                if (strcmp(name, skip_content[i])) continue;
                char close[24];
                memcpy(close, "</", 2);
                memcpy(close + 2, name, strlen(name) + 1);
                const char *c = find_ci(p, end, close);
                p = c ? tag_end(c, end) : end;
                break;
            }
        }
        for (size_t i = 0; i < sizeof blocks / sizeof blocks[0]; i++)
            if (!strcmp(name, blocks[i])) { buf_putc(out, ' '); break; }
    }
}

/* ---- white space and the cut ---- */

/* utf8_len: the length of the (valid) UTF-8 sequence starting with byte c. */
static size_t utf8_len(unsigned char c)
{
    return c < 0x80 ? 1 : c < 0xe0 ? 2 : c < 0xf0 ? 3 : 4;
}

/* squeeze: append text (valid UTF-8) to out with runs of white space and control characters
 * (C0, DEL, C1, U+00A0, U+2028/9, U+FEFF) as one space, trimmed, cut after
 * MIME_PREVIEW_MAX_CHARS code points. Returns the bytes appended; *full_r is 1 when the cut was
 * reached (then no text after s[0,n) could change what was appended), else 0. */
static size_t squeeze(const char *s, size_t n, struct buf *out, int *full_r)
{
    size_t start = out->len, chars = 0, i = 0;
    int pending_space = 0;
    while (i < n && chars < MIME_PREVIEW_MAX_CHARS) {
        unsigned char c = (unsigned char)s[i];
        size_t l = utf8_len(c);
        if (i + l > n) break;                 /* never: the input is valid UTF-8 */
        int space = 0;
        if (l == 1) {
            space = c <= 0x20 || c == 0x7f;
        } else if (l == 2) {
            unsigned char d = (unsigned char)s[i + 1];
            space = c == 0xc2 && d <= 0xa0;        /* C1 controls, NBSP */
        } else if (l == 3) {
            unsigned char d = (unsigned char)s[i + 1], e = (unsigned char)s[i + 2];
            space = (c == 0xe2 && d == 0x80 && (e == 0xa8 || e == 0xa9 || e == 0x8b)) ||
                    (c == 0xef && d == 0xbb && e == 0xbf);        /* LS, PS, ZWSP, BOM */
        }
        if (space) {
            pending_space = out->len > start;
            i += l;
            continue;
        }
        if (pending_space) {
            if (++chars >= MIME_PREVIEW_MAX_CHARS) break;
            buf_putc(out, ' ');
            pending_space = 0;
        }
        buf_append(out, s + i, l);
        chars++;
        i += l;
    }
    *full_r = chars >= MIME_PREVIEW_MAX_CHARS;
    return out->len - start;
}

/* preview_of: the preview from utf (the part's text so far) appended to out; *full_r as
 * squeeze's. */
static size_t preview_of(const char *utf, size_t n, int html, struct buf *out, int *full_r)
{
    if (!html) return squeeze(utf, n, out, full_r);
    struct buf text = BUF_INIT;
    mime_html_to_text(utf, n, &text);
    size_t r = squeeze(text.s ? text.s : "", text.len, out, full_r);
    buf_fini(&text);
    return r;
}

/* preview_prefix: the preview made from only the first lim bytes of the part (lim < its
 * scanned length), appended to out, when that is sure to be the preview of the whole: 1 with
 * *n_r the bytes appended, else 0 with out unchanged. Every step must give the start of what
 * it gives for the whole text, so each input is cut where what follows cannot change what came
 * before: quoted-printable after a line end (a line's trailing blanks are dropped at its end,
 * "=XX" needs its two digits); base64 anywhere (bytes come out as soon as their bits are in,
 * and nothing at the end); the charset as mime_charset_safe_prefix says; HTML before a '<' or
 * '&' (so no tag name, character reference or lone '<' is cut); and squeeze must reach its 256
 * characters. */
static int preview_prefix(const struct part_src *src, size_t lim, int html, struct buf *out,
                          size_t *n_r)
{
    struct buf raw = BUF_INIT, utf = BUF_INIT;
    const char *cs = src->charset, *p;
    size_t k, start = out->len;
    int full = 0;
    if (src->how == MIME_CTE_QP) {
        while (lim > 0 && src->body[lim - 1] != '\n') lim--;
        if (!lim) goto done;
    }
    if (src->how == MIME_CTE_BASE64 || src->how == MIME_CTE_QP) {
        mime_cte_decode(src->how, src->body, lim, &raw);
        p = raw.s ? raw.s : "";
        k = raw.len;
    } else {
        p = src->body;
        k = lim;
    }
    k = mime_charset_safe_prefix(cs, p, k);
    if (!k) goto done;
    mime_charset_to_utf8(cs, p, k, &utf);
    k = utf.len;
    if (html) {
        while (k > 0 && utf.s[k - 1] != '<' && utf.s[k - 1] != '&') k--;
        if (!k) goto done;
        k--;                                    /* before that '<' or '&' */
    }
    *n_r = preview_of(utf.s ? utf.s : "", k, html, out, &full);
    if (!full) buf_truncate(out, start);
done:
    buf_fini(&raw);
    buf_fini(&utf);
    return full;
}

size_t mime_preview_tree(const char *msg, const struct mime_tree *t, int whole, struct buf *out)
{
    struct buf utf = BUF_INIT;
    struct part_src src;
    size_t n = 0;
    int html = 0, full;
    int i = pick_part(t, &html);
    if (i < 0) return 0;
    part_src_init(msg, &t->nodes[i], &src);
    if (src.how == MIME_CTE_UNKNOWN) goto done;     /* no text to show */
    /* Most text parts give their 256 characters in the first few KiB: try the start, then
     * more, before converting up to MIME_PREVIEW_SCAN_MAX bytes (all of a long text part, a
     * quarter MiB of HTML with its style sheets, for 256 characters). */
    for (size_t lim = MIME_PREVIEW_FIRST_SCAN; !whole && lim < src.blen; lim *= 8)
        if (preview_prefix(&src, lim, html, out, &n)) goto done;
    part_text(&src, src.blen, &utf);
    n = preview_of(utf.s ? utf.s : "", utf.len, html, out, &full);
done:
    buf_fini(&utf);
    buf_fini(&src.cs);
    return n;
}

size_t mime_preview(const char *msg, size_t len, struct buf *out)
{
    struct mime_tree t;
    memset(&t, 0, sizeof t);
    mime_tree_parse(msg, len, &t);
    size_t n = mime_preview_tree(msg, &t, 0, out);
    mime_tree_fini(&t);
    return n;
}

/* ---- thread root ---- */

/* first_msgid: append the first "<...>" of a field value (comments skipped, white space and
 * folding inside dropped) to out; 1, or 0 when there is none. */
static int first_msgid(const char *p, size_t n, struct buf *out)
{
    const char *end = p + n;
    while (p < end) {
        if (*p == '(') {
            const char *q = mime_skip_cfws(p, end);
            p = q > p ? q : p + 1;
            continue;
        }
        if (*p != '<') { p++; continue; }
        size_t start = out->len;
        const char *q = p + 1;
        for (; q < end && *q != '>' && *q != '<'; q++)
            if (*q != ' ' && *q != '\t' && *q != '\r' && *q != '\n') buf_putc(out, *q);
        if (q < end && *q == '>' && out->len > start) return 1;
        buf_truncate(out, start);
        p = q;
    }
    return 0;
}

int mime_thread_root(const char *hdr, size_t len, struct buf *out)
{
    static const char *const fields[] = { "References", "In-Reply-To", "Message-ID" };
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        const char *v;
        size_t vl;
        if (mime_header_find(hdr, len, fields[i], &v, &vl) && first_msgid(v, vl, out)) return 1;
    }
    return 0;
}
