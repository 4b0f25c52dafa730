/* decode.c: content and header decoding to UTF-8 for SEARCH (RFC 2045 section 6, RFC 2047,
 * RFC 2231 section 5), charset conversion through iconv, and case-insensitive UTF-8 matching. */
#include <errno.h>
#include <iconv.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "core/error.h"
#include "core/xmalloc.h"
#include "mime/decode.h"
#include "mime/mime-int.h"
#if defined(__SSE2__) && defined(__x86_64__)
#include <emmintrin.h>
#endif

/* ---- base64 and quoted-printable ---- */

/* The value of each byte in base64 text: 0-63 for the alphabet (RFC 2045 section 6.8), B64_WS
 * for the line breaks and blanks mail puts in it, B64_PAD for '=', B64_BAD for anything else.
 * One lookup per byte, shared by the decoder and the size counter so they cannot disagree. */
enum { B64_BAD = -1, B64_WS = -2, B64_PAD = -3 };
static const signed char b64tab[256] = {
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -2, -2, -1, -1, -2, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -2, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, 62, -1, -1, -1, 63,
    52, 53, 54, 55, 56, 57, 58, 59, 60, 61, -1, -1, -1, -3, -1, -1,
    -1, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14,
    15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, -1, -1, -1, -1, -1,
    -1, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40,
    41, 42, 43, 44, 45, 46, 47, 48, 49, 50, 51, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
};

/* mime_decode_base64 writes into one reserved block: three bytes per group of four alphabet
 * characters in the common case (76-character lines of whole groups), one character at a time
 * around line breaks, bad bytes and the end. It used to append byte by byte (buf_putc), which
 * was most of lmtpd's user time: every delivery computes the BINARY.SIZE table (binsize.c), and
 * FETCH BINARY and SEARCH decode whole attachments. */
int mime_decode_base64(const char *in, size_t n, struct buf *out)
{
    const unsigned char *s = (const unsigned char *)in;
    uint32_t acc = 0;
    int bits = 0, bad = 0, pad = 0;
    size_t i = 0;
    char *o;
    /* at most 3 bytes per 4 alphabet characters (n / 4 * 3 + 2), and room for the NUL */
    if (buf_ensure(out, n / 4 * 3 + 3) < 0) return CF_E_LIMIT;
    o = out->s + out->len;
    while (i < n) {
        if (bits == 0) {            /* at a group boundary: whole groups while they last */
            while (i + 4 <= n) {
                int a = b64tab[s[i]], b = b64tab[s[i + 1]], c = b64tab[s[i + 2]],
                    d = b64tab[s[i + 3]];
                if ((a | b | c | d) < 0) break;
                uint32_t v = (uint32_t)a << 18 | (uint32_t)b << 12 | (uint32_t)c << 6 | (uint32_t)d;
                o[0] = (char)(v >> 16);
                o[1] = (char)(v >> 8);
                o[2] = (char)v;
                o += 3;
                i += 4;
            }
            if (i >= n) break;
        }
        int v = b64tab[s[i++]];
        if (v < 0) {
            if (v == B64_PAD) { pad = 1; break; }
            if (v == B64_BAD) bad = 1;
            continue;
        }
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            *o++ = (char)((acc >> bits) & 0xff);
        }
    }
    out->len = (size_t)(o - out->s);
    /* Leftover bits: 0 after whole groups, 2 or 4 before a proper pad, 6 never legal. */
    if (bits == 6 || (!pad && bits != 0)) bad = 1;
    return bad ? CF_E_PARSE : 0;
}

/* b64_alphabet_count: how many of s[0,n) are base64 alphabet characters. Attachments make
 * this most of what the BINARY.SIZE table costs at delivery (a 300 KB attachment is 300 KB to
 * look at), so with SSE2 (every x86-64) 16 bytes are classified at a time: a lane is 0xff for
 * 'A'-'Z' or 'a'-'z' (c | 0x20 in 'a'-'z'), '0'-'9', '+' or '/'. Signed byte compares are
 * right here: bytes from 0x80 up are negative, below every bound, so never counted. */
static size_t b64_alphabet_count(const unsigned char *s, size_t n)
{
    size_t k = 0, i = 0;
#if defined(__SSE2__) && defined(__x86_64__)
    const __m128i lo_a = _mm_set1_epi8('a' - 1), hi_z = _mm_set1_epi8('z' + 1),
                  lo_0 = _mm_set1_epi8('0' - 1), hi_9 = _mm_set1_epi8('9' + 1),
                  plus = _mm_set1_epi8('+'), slash = _mm_set1_epi8('/'),
                  case_bit = _mm_set1_epi8(0x20), zero = _mm_setzero_si128();
    while (n - i >= 16) {
        /* per-lane byte counters, summed before they can wrap (at most 255 rounds) */
        __m128i acc = zero;
        for (int r = 0; r < 255 && n - i >= 16; r++, i += 16) {
            __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(s + i));
            __m128i f = _mm_or_si128(v, case_bit);
            __m128i ok = _mm_and_si128(_mm_cmpgt_epi8(f, lo_a), _mm_cmplt_epi8(f, hi_z));
            ok = _mm_or_si128(ok, _mm_and_si128(_mm_cmpgt_epi8(v, lo_0), _mm_cmplt_epi8(v, hi_9)));
            ok = _mm_or_si128(ok, _mm_or_si128(_mm_cmpeq_epi8(v, plus), _mm_cmpeq_epi8(v, slash)));
            acc = _mm_sub_epi8(acc, ok);                    /* 0xff is -1: one more */
        }
        __m128i sums = _mm_sad_epu8(acc, zero);             /* two 64-bit lane sums */
        k += (size_t)_mm_cvtsi128_si64(sums) + (size_t)_mm_cvtsi128_si64(_mm_unpackhi_epi64(sums, sums));
    }
#endif
    for (; i < n; i++) k += b64tab[s[i]] >= 0;
    return k;
}

size_t mime_decode_base64_size(const char *in, size_t n)
{
    const char *pad = memchr(in, '=', n);         /* decoding stops at the first '=' */
    size_t k = b64_alphabet_count((const unsigned char *)in, pad ? (size_t)(pad - in) : n);
    /* 6 bits each, a byte out for every 8: whole groups give 3, a partial one 0, 1 or 2 */
    return k / 4 * 3 + (k % 4) * 6 / 8;
}

static int hexval(unsigned char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

/* qp_run: the first i' >= i with in[i'] one of '=', CR, LF (or n): the end of a run of bytes
 * that quoted-printable decoding copies as they are (most of every line). 16 bytes a step
 * with SSE2. */
static size_t qp_run(const char *in, size_t i, size_t n)
{
#if defined(__SSE2__) && defined(__x86_64__)
    const __m128i eq = _mm_set1_epi8('='), cr = _mm_set1_epi8('\r'), lf = _mm_set1_epi8('\n');
    while (n - i >= 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(in + i));
        int m = _mm_movemask_epi8(_mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, eq),
                                                            _mm_cmpeq_epi8(v, cr)),
                                               _mm_cmpeq_epi8(v, lf)));
        if (m) return i + (size_t)__builtin_ctz((unsigned)m);
        i += 16;
    }
#endif
    while (i < n && in[i] != '=' && in[i] != '\r' && in[i] != '\n') i++;
    return i;
}

/* mime_decode_qp writes into one reserved block (every input byte yields at most one output
 * byte) instead of a call per byte: it is most of the cost of SEARCH BODY/TEXT on HTML mail
 * and of FETCH BINARY on quoted-printable parts. */
int mime_decode_qp(const char *in, size_t n, int header, struct buf *out)
{
    char *o, *ls;
    size_t i = 0;
    int bad = 0;
    if (buf_ensure(out, n) < 0) return CF_E_LIMIT;
    o = out->s + out->len;
    ls = o;                                 /* where the current output line starts */
    while (i < n) {
        unsigned char c = (unsigned char)in[i];
        if (!header && c != '=' && c != '\r' && c != '\n') {
            size_t e = qp_run(in, i + 1, n);   /* copied whole ("Q" form: '_' is special) */
            memcpy(o, in + i, e - i);
            o += e - i;
            i = e;
            continue;
        }
        if (c == '=') {
            size_t j = i + 1;
            int h1, h2;
            if (j + 1 < n && (h1 = hexval((unsigned char)in[j])) >= 0 &&
                (h2 = hexval((unsigned char)in[j + 1])) >= 0) {
                *o++ = (char)(h1 * 16 + h2);
                i += 3;
                continue;
            }
            /* soft line break: "=" then optional white space then the line end */
            while (j < n && (in[j] == ' ' || in[j] == '\t')) j++;
            if (j == n) { i = n; continue; }
            if (in[j] == '\n' || (in[j] == '\r' && j + 1 < n && in[j + 1] == '\n')) {
                i = (in[j] == '\r' ? j + 1 : j) + 1;
                continue;
            }
            bad = 1;
            *o++ = '=';
            i++;
        } else if (c == '\n' && !header) {
            /* RFC 2045 section 6.7 rule 3: white space at a line end was added in transit */
            char *e = o;
            int cr = 0;
            if (e > ls && e[-1] == '\r') { e--; cr = 1; }
            while (e > ls && (e[-1] == ' ' || e[-1] == '\t')) e--;
            if (e < o && cr) { o = e; *o++ = '\r'; }
            else if (e < o) o = e;
            *o++ = '\n';
            ls = o;
            i++;
        } else {
            *o++ = c == '_' && header ? ' ' : (char)c;
            i++;
        }
    }
    out->len = (size_t)(o - out->s);
    return bad ? CF_E_PARSE : 0;
}

/* qp_count: one output byte b of mime_decode_qp, for mime_decode_qp_size: the length, and what
 * a line end would strip again: *ws blanks that end the output line, before a final CR when
 * *cr. */
static inline void qp_count(unsigned char b, size_t *len, size_t *ws, int *cr)
{
    (*len)++;
    if (b == ' ' || b == '\t') {
        if (*cr) { *ws = 1; *cr = 0; }      /* the CR before it is no longer at the end */
        else (*ws)++;
    } else if (b == '\r') {
        if (*cr) *ws = 0;                   /* a CR before a CR ends the run of blanks */
        *cr = 1;
    } else {
        *ws = 0;
        *cr = 0;
    }
}

/* mime_decode_qp_size walks the input exactly as mime_decode_qp does (keep the two in step:
 * fuzz-cte checks that they agree on every input), counting what it would write. The trailing
 * white space that a line end strips includes blanks that came from "=20" or "=09", as the
 * decoder strips the output line, not the input. */
size_t mime_decode_qp_size(const char *in, size_t n, int header)
{
    size_t i = 0, len = 0, ws = 0;
    int cr = 0;
    while (i < n) {
        unsigned char c = (unsigned char)in[i];
        if (c != '=' && c != '\r' && c != '\n') {
            /* most of every line: counted whole, then only its trailing blanks looked at
             * (what qp_count would leave in *ws and *cr; '_' in the "Q" form is a blank,
             * but nothing is stripped in that form) */
            size_t s = i, e;
            i = qp_run(in, i + 1, n);
            len += i - s;
            for (e = i; e > s && (in[e - 1] == ' ' || in[e - 1] == '\t'); e--) {}
            ws = e > s ? i - e : (cr ? 0 : ws) + (i - s);
            cr = 0;
            continue;
        }
        if (c == '=') {
            size_t j = i + 1;
            int h1, h2;
            if (j + 1 < n && (h1 = hexval((unsigned char)in[j])) >= 0 &&
                (h2 = hexval((unsigned char)in[j + 1])) >= 0) {
                qp_count((unsigned char)(h1 * 16 + h2), &len, &ws, &cr);
                i += 3;
                continue;
            }
            while (j < n && (in[j] == ' ' || in[j] == '\t')) j++;
            if (j == n) break;
            if (in[j] == '\n' || (in[j] == '\r' && j + 1 < n && in[j + 1] == '\n')) {
                i = (in[j] == '\r' ? j + 1 : j) + 1;
                continue;
            }
            qp_count('=', &len, &ws, &cr);
            i++;
        } else if (c == '\n' && !header) {
            len = len - ws + 1;
            ws = 0;
            cr = 0;
            i++;
        } else {
            qp_count(c == '_' && header ? ' ' : c, &len, &ws, &cr);
            i++;
        }
    }
    return len;
}

long long mime_cte_decoded_size(enum mime_cte cte, const char *in, size_t n)
{
    switch (cte) {
    case MIME_CTE_BASE64: return (long long)mime_decode_base64_size(in, n);
    case MIME_CTE_QP: return (long long)mime_decode_qp_size(in, n, 0);
    case MIME_CTE_IDENTITY: return (long long)n;
    default: return CF_E_NOTFOUND;
    }
}

enum mime_cte mime_cte_parse(const char *value, size_t n)
{
    const char *end = value + n, *p = mime_skip_cfws(value, end), *e;
    if (p >= end) return MIME_CTE_IDENTITY;         /* empty: as if absent (7bit) */
    e = mime_token(p, end);
    if (e == p) return MIME_CTE_UNKNOWN;        /* what follows the token is not looked at */
    if (mime_ieq(p, (size_t)(e - p), "base64")) return MIME_CTE_BASE64;
    if (mime_ieq(p, (size_t)(e - p), "quoted-printable")) return MIME_CTE_QP;
    if (mime_ieq(p, (size_t)(e - p), "7bit") || mime_ieq(p, (size_t)(e - p), "8bit") ||
        mime_ieq(p, (size_t)(e - p), "binary"))
        return MIME_CTE_IDENTITY;
    return MIME_CTE_UNKNOWN;
}

enum mime_cte mime_cte_of_header(const char *h, size_t n)
{
    const char *v;
    size_t vl;
    if (!mime_header_find(h, n, "Content-Transfer-Encoding", &v, &vl)) return MIME_CTE_IDENTITY;
    return mime_cte_parse(v, vl);
}

int mime_cte_decode(enum mime_cte cte, const char *in, size_t n, struct buf *out)
{
    switch (cte) {
    case MIME_CTE_BASE64: return mime_decode_base64(in, n, out);
    case MIME_CTE_QP: return mime_decode_qp(in, n, 0, out);
    case MIME_CTE_IDENTITY: buf_append(out, in, n); return 0;
    default: return CF_E_NOTFOUND;
    }
}

/* ---- UTF-8 ---- */

/* utf8_next: decode one code point at s (n > 0 bytes); returns its length, or 0 when the bytes
 * are not valid UTF-8 (overlongs, surrogates and values past U+10FFFF are invalid). */
static size_t utf8_next(const unsigned char *s, size_t n, uint32_t *cp)
{
    uint32_t c = s[0];
    size_t len, i;
    if (c < 0x80) { *cp = c; return 1; }
    if (c >= 0xc2 && c <= 0xdf) { len = 2; c &= 0x1f; }
    else if (c >= 0xe0 && c <= 0xef) { len = 3; c &= 0x0f; }
    else if (c >= 0xf0 && c <= 0xf4) { len = 4; c &= 0x07; }
    else return 0;
    if (n < len) return 0;
    for (i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80) return 0;
        c = (c << 6) | (s[i] & 0x3f);
    }
    if ((len == 3 && c < 0x800) || (len == 4 && (c < 0x10000 || c > 0x10ffff)) ||
        (c >= 0xd800 && c <= 0xdfff))
        return 0;
    *cp = c;
    return len;
}

static void put_utf8(struct buf *out, uint32_t c)
{
    char b[4];
    if (c < 0x80) { buf_putc(out, (char)c); return; }
    if (c < 0x800) {
        b[0] = (char)(0xc0 | (c >> 6)); b[1] = (char)(0x80 | (c & 0x3f));
        buf_append(out, b, 2);
    } else if (c < 0x10000) {
        b[0] = (char)(0xe0 | (c >> 12)); b[1] = (char)(0x80 | ((c >> 6) & 0x3f));
        b[2] = (char)(0x80 | (c & 0x3f));
        buf_append(out, b, 3);
    } else {
        b[0] = (char)(0xf0 | (c >> 18)); b[1] = (char)(0x80 | ((c >> 12) & 0x3f));
        b[2] = (char)(0x80 | ((c >> 6) & 0x3f)); b[3] = (char)(0x80 | (c & 0x3f));
        buf_append(out, b, 4);
    }
}

static int utf8_valid(const char *in, size_t n)
{
    const unsigned char *s = (const unsigned char *)in;
    size_t i = 0, l;
    uint32_t cp;
    while (i < n) {
        if (s[i] < 0x80) { i++; continue; }
        if (!(l = utf8_next(s + i, n - i, &cp))) return 0;
        i += l;
    }
    return 1;
}

/* windows-1252 in 0x80-0x9f, where Latin-1 has only C1 controls. Mail labelled iso-8859-1 is
 * very often windows-1252 (quotes, dashes, the euro), and WHATWG's Encoding Standard maps the
 * label that way too; the five unassigned bytes stay C1 controls. */
static const uint16_t cp1252_c1[32] = {
    0x20ac, 0x0081, 0x201a, 0x0192, 0x201e, 0x2026, 0x2020, 0x2021,
    0x02c6, 0x2030, 0x0160, 0x2039, 0x0152, 0x008d, 0x017d, 0x008f,
    0x0090, 0x2018, 0x2019, 0x201c, 0x201d, 0x2022, 0x2013, 0x2014,
    0x02dc, 0x2122, 0x0161, 0x203a, 0x0153, 0x009d, 0x017e, 0x0178,
};

/* latin1_to_utf8 writes into one reserved block (at most 3 bytes per input byte: the
 * windows-1252 punctuation) rather than a call per byte. */
static void latin1_to_utf8(const char *in, size_t n, struct buf *out)
{
    if (n > ((size_t)-1 - 16) / 3 || buf_ensure(out, 3 * n) < 0) {
        /* a capped buffer: byte by byte, as much as fits */
        for (size_t i = 0; i < n; i++) {
            unsigned char c = (unsigned char)in[i];
            put_utf8(out, c < 0xa0 ? (c < 0x80 ? c : cp1252_c1[c - 0x80]) : c);
        }
        return;
    }
    char *o = out->s + out->len;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)in[i];
        uint32_t cp = c < 0xa0 ? (c < 0x80 ? c : cp1252_c1[c - 0x80]) : c;
        if (cp < 0x80) {
            *o++ = (char)cp;
        } else if (cp < 0x800) {
            *o++ = (char)(0xc0 | (cp >> 6));
            *o++ = (char)(0x80 | (cp & 0x3f));
        } else {
            *o++ = (char)(0xe0 | (cp >> 12));
            *o++ = (char)(0x80 | ((cp >> 6) & 0x3f));
            *o++ = (char)(0x80 | (cp & 0x3f));
        }
    }
    out->len = (size_t)(o - out->s);
}

/* guess_to_utf8: text of unknown charset: UTF-8 if it is valid UTF-8, else Latin-1, which
 * maps every byte, so nothing is lost or invalid. */
static void guess_to_utf8(const char *in, size_t n, struct buf *out)
{
    if (utf8_valid(in, n)) buf_append(out, in, n);
    else latin1_to_utf8(in, n, out);
}

/* ---- charsets ---- */

static const struct { const char *mime, *iconv_name; } charset_alias[] = {
    { "gb2312", "GB18030" }, { "gbk", "GB18030" }, { "x-gbk", "GB18030" },
    { "ks_c_5601-1987", "CP949" }, { "ks_c_5601", "CP949" }, { "euc-kr", "CP949" },
    { "iso-8859-8-i", "ISO-8859-8" }, { "iso-8859-6-i", "ISO-8859-6" },
    { "x-sjis", "SHIFT_JIS" }, { "shift-jis", "SHIFT_JIS" }, { "x-mac-roman", "MACINTOSH" },
    { "tis-620", "TIS-620" }, { "windows-874", "CP874" },
};

/* How mime_charset_to_utf8 converts a charset: its own UTF-8 check, the guess (UTF-8 when the
 * whole text is valid UTF-8, else Latin-1), Latin-1, or iconv. */
enum cs_kind { CS_UTF8, CS_GUESS, CS_LATIN1, CS_ICONV };

/* charset_kind: the charset's name normalized into name (trimmed, lowercased, an RFC 2231
 * section 5 "*language" suffix dropped) and how it is converted. */
static enum cs_kind charset_kind(const char *charset, char name[64])
{
    size_t i, nl = 0;
    const char *cs = charset ? charset : "";
    while (*cs == ' ' || *cs == '\t' || *cs == '"') cs++;
    for (i = 0; cs[i] && cs[i] != '*' && cs[i] != '"' && cs[i] != ' ' && nl < 63; i++)
        name[nl++] = (char)(cs[i] >= 'A' && cs[i] <= 'Z' ? cs[i] + 32 : cs[i]);
    name[nl] = '\0';
    if (!strcmp(name, "utf-8") || !strcmp(name, "utf8")) return CS_UTF8;
    if (!nl || !strcmp(name, "us-ascii") || !strcmp(name, "ascii") ||
        !strcmp(name, "ansi_x3.4-1968") || !strcmp(name, "unknown-8bit") ||
        !strcmp(name, "x-unknown") || !strcmp(name, "default"))
        return CS_GUESS;
    if (!strcmp(name, "iso-8859-1") || !strcmp(name, "latin1") || !strcmp(name, "l1") ||
        !strcmp(name, "iso_8859-1"))
        return CS_LATIN1;
    return CS_ICONV;
}

size_t mime_charset_safe_prefix(const char *charset, const char *in, size_t n)
{
    char name[64];
    const unsigned char *s = (const unsigned char *)in;
    size_t k;
    switch (charset_kind(charset, name)) {
    case CS_LATIN1:
        return n;                       /* byte by byte: any cut */
    case CS_UTF8:
        /* up to the last ASCII byte: no sequence can run through it (a continuation byte is
         * 10xxxxxx), so every decision before it is the same whatever follows */
        for (k = n; k > 0 && s[k - 1] >= 0x80; k--) {}
        return k;
    case CS_GUESS:
        /* ASCII comes out the same whether the whole turns out UTF-8 or Latin-1 */
        for (k = 0; k < n && s[k] < 0x80; k++) {}
        return k;
    default:
        return 0;                       /* iconv: multi-byte and stateful charsets */
    }
}

int mime_charset_to_utf8(const char *charset, const char *in, size_t n, struct buf *out)
{
    char name[64];
    size_t i;
    iconv_t cd;
    char *inp, *outp;
    size_t inleft, outleft, start;
    int bad = 0;
    enum cs_kind kind = charset_kind(charset, name);

    if (kind == CS_UTF8) {
        /* valid runs are copied whole; each invalid byte becomes U+FFFD */
        const unsigned char *s = (const unsigned char *)in;
        size_t l, run = 0;
        uint32_t cp;
        for (i = 0; i < n; ) {
            if (s[i] < 0x80) { i++; continue; }
            if ((l = utf8_next(s + i, n - i, &cp))) { i += l; continue; }
            buf_append(out, in + run, i - run);
            put_utf8(out, 0xfffd);
            run = ++i;
            bad = 1;
        }
        buf_append(out, in + run, n - run);
        return bad ? CF_E_PARSE : 0;
    }
    if (kind == CS_GUESS) {
        guess_to_utf8(in, n, out);
        return 0;
    }
    if (kind == CS_LATIN1) {
        latin1_to_utf8(in, n, out);
        return 0;
    }
    for (i = 0; i < sizeof(charset_alias) / sizeof(charset_alias[0]); i++)
        if (!strcmp(name, charset_alias[i].mime)) {
            snprintf(name, sizeof(name), "%s", charset_alias[i].iconv_name);
            break;
        }
    cd = iconv_open("UTF-8", name);
    if (cd == (iconv_t)-1) {
        guess_to_utf8(in, n, out);
        return CF_E_NOTFOUND;
    }
    start = out->len;
    inp = (char *)in;
    inleft = n;
    while (inleft > 0) {
        size_t r;
        if (buf_ensure(out, inleft * 4 + 16) < 0) break;
        outp = out->s + out->len;
        outleft = out->alloc - out->len - 1;
        r = iconv(cd, &inp, &inleft, &outp, &outleft);
        out->len = (size_t)(outp - out->s);
        if (r != (size_t)-1 || errno == E2BIG) continue;
        bad = 1;
        put_utf8(out, 0xfffd);
        if (errno == EILSEQ) { inp++; inleft--; continue; }
        break;                                                   /* EINVAL: cut short */
    }
    /* Flush a stateful encoding's shift state (ISO-2022-JP). */
    if (buf_ensure(out, 16) == 0) {
        outp = out->s + out->len;
        outleft = out->alloc - out->len - 1;
        iconv(cd, NULL, NULL, &outp, &outleft);
        out->len = (size_t)(outp - out->s);
    }
    iconv_close(cd);
    /* glibc's converters pass some invalid sequences through (code points past U+10FFFF from
     * a "UTF-8" that was named oddly): check what came out. */
    if (!utf8_valid(out->s + start, out->len - start)) {
        char *copy = xmemdup(out->s + start, out->len - start);
        size_t cl = out->len - start;
        buf_truncate(out, start);
        mime_charset_to_utf8("utf-8", copy, cl, out);
        free(copy);
        bad = 1;
    }
    return bad ? CF_E_PARSE : 0;
}

/* ---- RFC 2047 ---- */

/* parse_ew: an encoded-word "=?charset?E?text?=" at s; returns its length and the pieces, or 0. */
static size_t parse_ew(const char *s, size_t n, const char **cs, size_t *csl, char *enc,
                       const char **text, size_t *tl)
{
    size_t i = 2, j;
    if (n < 8 || s[0] != '=' || s[1] != '?') return 0;
    for (j = i; j < n && s[j] != '?'; j++)
        if ((unsigned char)s[j] <= ' ' || j - i > 60) return 0;
    if (j == i || j + 2 >= n || s[j + 2] != '?') return 0;
    *cs = s + i; *csl = j - i;
    *enc = s[j + 1];
    if (*enc != 'B' && *enc != 'b' && *enc != 'Q' && *enc != 'q') return 0;
    i = j + 3;
    for (j = i; j + 1 < n; j++) {
        if (s[j] == '?' && s[j + 1] == '=') {
            *text = s + i; *tl = j - i;
            return j + 2;
        }
        if ((unsigned char)s[j] <= ' ') return 0;
    }
    return 0;
}

static void flush_pending(struct buf *out, struct buf *pending, char *pcs)
{
    if (pending->len) mime_charset_to_utf8(pcs, pending->s, pending->len, out);
    buf_reset(pending);
    pcs[0] = '\0';
}

int mime_decode_header(const char *value, size_t n, struct buf *out)
{
    struct buf text = BUF_INIT, pending = BUF_INIT;
    char pcs[64] = "";
    size_t i, ws_start = 0, plain_start;
    int last_ew = 0;
    const char *s;

    /* Unfold first: an encoded word may not span lines, but the white space between two may. */
    for (i = 0; i < n; i++)
        if (value[i] != '\r' && value[i] != '\n') buf_putc(&text, value[i]);
    s = text.s ? text.s : "";
    n = text.len;
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t')) n--;
    i = 0;
    while (i < n && (s[i] == ' ' || s[i] == '\t')) i++;

    while (i < n) {
        const char *cs, *et;
        size_t csl, tl, l;
        char enc;
        if (s[i] == '=' && (l = parse_ew(s + i, n - i, &cs, &csl, &enc, &et, &tl))) {
            char name[64];
            size_t k = 0, mark;
            for (k = 0; k < csl && k < sizeof(name) - 1 && cs[k] != '*'; k++) name[k] = cs[k];
            name[k] = '\0';
            if (pending.len && strcasecmp(name, pcs)) flush_pending(out, &pending, pcs);
            mark = pending.len;
            if (enc == 'B' || enc == 'b') mime_decode_base64(et, tl, &pending);
            else mime_decode_qp(et, tl, 1, &pending);
            if (pending.len > mark || !pcs[0]) snprintf(pcs, sizeof(pcs), "%s", name);
            i += l;
            last_ew = 1;
            continue;
        }
        if (s[i] == ' ' || s[i] == '\t') {
            ws_start = i;
            while (i < n && (s[i] == ' ' || s[i] == '\t')) i++;
            /* RFC 2047 section 6.2: white space between adjacent encoded words is dropped */
            if (last_ew && i < n && s[i] == '=' &&
                parse_ew(s + i, n - i, &cs, &csl, &enc, &et, &tl))
                continue;
            flush_pending(out, &pending, pcs);
            buf_append(out, s + ws_start, i - ws_start);
            last_ew = 0;
            continue;
        }
        flush_pending(out, &pending, pcs);
        plain_start = i;
        while (i < n && s[i] != ' ' && s[i] != '\t') i++;
        guess_to_utf8(s + plain_start, i - plain_start, out);
        last_ew = 0;
    }
    flush_pending(out, &pending, pcs);
    buf_fini(&text);
    buf_fini(&pending);
    return 0;
}

/* ---- walking a message ---- */

int mime_header_foreach_raw(const char *msg, size_t len, mime_header_cb *cb, void *rock)
{
    const char *p = msg, *end = msg + len;
    int r;
    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        const char *next = eol ? eol + 1 : end;
        if (*p == '\n' || (*p == '\r' && p + 1 < end && p[1] == '\n')) break;   /* empty line */
        const char *fend = next;                   /* this line and its continuation lines */
        while (fend < end && (*fend == ' ' || *fend == '\t')) {
            const char *e2 = memchr(fend, '\n', (size_t)(end - fend));
            fend = e2 ? e2 + 1 : end;
        }
        const char *colon = memchr(p, ':', (size_t)(next - p)), *ne = colon;
        if (colon)
            while (ne > p && (ne[-1] == ' ' || ne[-1] == '\t')) ne--;
        if ((r = cb(rock, colon ? p : NULL, colon ? (size_t)(ne - p) : 0, p, (size_t)(fend - p))))
            return r;
        p = fend;
    }
    return 0;
}

struct foreach_rock { mime_header_cb *cb; void *rock; };

/* foreach_cb: a raw field to mime_header_foreach's callback: well-formed ones only, the value
 * without the final line break. */
static int foreach_cb(void *rock, const char *name, size_t name_len, const char *field,
                      size_t field_len)
{
    struct foreach_rock *fr = rock;
    if (!name || !name_len || *name == ' ' || *name == '\t') return 0;
    const char *val = memchr(field, ':', field_len) + 1;
    size_t vl = (size_t)(field + field_len - val);
    if (vl && val[vl - 1] == '\n') vl--;
    if (vl && val[vl - 1] == '\r') vl--;
    return fr->cb(fr->rock, name, name_len, val, vl);
}

int mime_header_foreach(const char *msg, size_t len, mime_header_cb *cb, void *rock)
{
    struct foreach_rock fr = { cb, rock };
    return mime_header_foreach_raw(msg, len, foreach_cb, &fr);
}

struct find_rock { const char *name; const char *value; size_t value_len; };

static int find_cb(void *rock, const char *name, size_t name_len, const char *value,
                   size_t value_len)
{
    struct find_rock *fr = rock;
    if (!mime_ieq(name, name_len, fr->name)) return 0;
    fr->value = value;
    fr->value_len = value_len;
    return 1;
}

int mime_header_find(const char *msg, size_t len, const char *name, const char **value_r,
                     size_t *value_len_r)
{
    struct find_rock fr = { name, NULL, 0 };
    if (!mime_header_foreach(msg, len, find_cb, &fr)) return 0;
    *value_r = fr.value;
    *value_len_r = fr.value_len;
    return 1;
}

void mime_header_unfold(const char *value, size_t n, struct buf *out)
{
    size_t i = 0;
    while (i < n && (value[i] == ' ' || value[i] == '\t' || value[i] == '\r' || value[i] == '\n'))
        i++;
    for (; i < n; i++)
        if (value[i] != '\r' && value[i] != '\n') buf_putc(out, value[i]);
}

int mime_foreach_text(const char *msg, size_t len, mime_text_cb *cb, void *rock)
{
    struct mime_tree t;
    struct buf raw = BUF_INIT, utf = BUF_INIT, cs = BUF_INIT;
    int i, r = 0;
    memset(&t, 0, sizeof(t));
    mime_tree_parse(msg, len, &t);
    for (i = 0; i < t.count && !r; i++) {
        const struct mime_node *n = &t.nodes[i];
        const struct mime_field *cte = &n->hdr[MH_CONTENT_TRANSFER_ENCODING];
        const char *body = msg + n->boff, *tt, *st, *params;
        size_t tl, sl, k;
        char subtype[64];
        if (!mime_node_is_text(n)) continue;
        buf_reset(&cs);
        if (n->params == MIME_PARAMS_HEADER && n->hdr[MH_CONTENT_TYPE].p &&
            mime_parse_ctype(n->hdr[MH_CONTENT_TYPE].p, n->hdr[MH_CONTENT_TYPE].n, &tt, &tl,
                             &st, &sl, &params))
            mime_find_param(params, n->hdr[MH_CONTENT_TYPE].p + n->hdr[MH_CONTENT_TYPE].n,
                            "charset", &cs);
        buf_reset(&raw);
        buf_reset(&utf);
        enum mime_cte how = cte->p ? mime_cte_parse(cte->p, cte->n) : MIME_CTE_IDENTITY;
        if (how == MIME_CTE_BASE64 || how == MIME_CTE_QP) {
            mime_cte_decode(how, body, n->blen, &raw);
            body = raw.s ? raw.s : "";
            mime_charset_to_utf8(buf_cstr(&cs), body, raw.len, &utf);
        } else {
            mime_charset_to_utf8(buf_cstr(&cs), body, n->blen, &utf);
        }
        for (k = 0; k < n->subtype_len && k < sizeof(subtype) - 1; k++)
            subtype[k] = (char)(n->subtype[k] >= 'a' && n->subtype[k] <= 'z' ?
                                n->subtype[k] - 32 : n->subtype[k]);
        subtype[k] = '\0';
        r = cb(rock, subtype, buf_cstr(&utf), utf.len);
    }
    buf_fini(&raw);
    buf_fini(&utf);
    buf_fini(&cs);
    mime_tree_fini(&t);
    return r;
}

/* ---- case folding and matching ---- */

uint32_t mime_casefold(uint32_t c)
{
    if (c < 0x80) return c >= 'A' && c <= 'Z' ? c + 32 : c;
    if (c < 0x100) {
        if (c == 0xb5) return 0x3bc;                     /* micro sign -> mu */
        return c >= 0xc0 && c <= 0xde && c != 0xd7 ? c + 32 : c;
    }
    if (c <= 0x17f) {                                    /* Latin Extended-A */
        if (c == 0x130 || c == 0x131 || c == 0x138 || c == 0x149) return c;
        if (c == 0x178) return 0xff;
        if (c == 0x17f) return 's';
        if ((c >= 0x139 && c <= 0x148) || (c >= 0x179 && c <= 0x17e)) return c & 1 ? c + 1 : c;
        return c & 1 ? c : c + 1;
    }
    if (c <= 0x24f) {                                    /* Latin Extended-B, regular runs */
        if (c == 0x1c4 || c == 0x1c5) return 0x1c6;
        if (c == 0x1c7 || c == 0x1c8) return 0x1c9;
        if (c == 0x1ca || c == 0x1cb) return 0x1cc;
        if (c == 0x1f1 || c == 0x1f2) return 0x1f3;
        if (c == 0x1f4) return 0x1f5;
        if (c >= 0x1cd && c <= 0x1dc) return c & 1 ? c + 1 : c;
        if ((c >= 0x1de && c <= 0x1ef) || (c >= 0x1f8 && c <= 0x21f) ||
            (c >= 0x222 && c <= 0x233) || (c >= 0x246 && c <= 0x24f))
            return c & 1 ? c : c + 1;
        return c;
    }
    if (c >= 0x345 && c <= 0x3ff) {                      /* Greek */
        if (c == 0x345) return 0x3b9;
        if (c == 0x386) return 0x3ac;
        if (c >= 0x388 && c <= 0x38a) return c + 37;
        if (c == 0x38c) return 0x3cc;
        if (c == 0x38e || c == 0x38f) return c + 63;
        if ((c >= 0x391 && c <= 0x3a1) || (c >= 0x3a3 && c <= 0x3ab)) return c + 32;
        switch (c) {
        case 0x3c2: return 0x3c3;
        case 0x3d0: return 0x3b2;
        case 0x3d1: return 0x3b8;
        case 0x3d5: return 0x3c6;
        case 0x3d6: return 0x3c0;
        case 0x3f0: return 0x3ba;
        case 0x3f1: return 0x3c1;
        case 0x3f5: return 0x3b5;
        default: break;
        }
        if (c >= 0x3d8 && c <= 0x3ef) return c & 1 ? c : c + 1;
        return c;
    }
    if (c >= 0x400 && c <= 0x52f) {                      /* Cyrillic */
        if (c <= 0x40f) return c + 80;
        if (c <= 0x42f) return c + 32;
        if ((c >= 0x460 && c <= 0x481) || (c >= 0x48a && c <= 0x4bf) || c >= 0x4d0)
            return c & 1 ? c : c + 1;
        if (c == 0x4c0) return 0x4cf;
        if (c >= 0x4c1 && c <= 0x4ce) return c & 1 ? c + 1 : c;
        return c;
    }
    if (c >= 0x531 && c <= 0x556) return c + 48;         /* Armenian */
    if (c >= 0x1e00 && c <= 0x1eff) {                    /* Latin Extended Additional */
        if (c == 0x1e9e) return 0xdf;
        if (c <= 0x1e95 || c >= 0x1ea0) return c & 1 ? c : c + 1;
        return c;
    }
    if (c >= 0x1f08 && c <= 0x1f6f && (c & 0xf) >= 8) { /* Greek Extended, plain letters */
        uint32_t hi = (c >> 4) & 0xf;
        if (hi != 5 || (c & 1)) return c - 8;
        return c;
    }
    if (c == 0x2126) return 0x3c9;                       /* Ohm */
    if (c == 0x212a) return 'k';                         /* Kelvin */
    if (c == 0x212b) return 0xe5;                        /* Angstrom */
    if (c >= 0xff21 && c <= 0xff3a) return c + 32;       /* fullwidth Latin */
    return c;
}

/* fold_cp: append the folded form of the code point at s (n > 0) to out as UTF-8; returns the
 * bytes read. An invalid byte becomes U+10FF00 + byte (private use), so it matches only the
 * same invalid byte, and byte matching of the folded UTF-8 stays aligned to code points. */
static size_t fold_cp(const unsigned char *s, size_t n, struct buf *out)
{
    uint32_t cp;
    size_t l;
    if (s[0] < 0x80) {
        buf_putc(out, (char)(s[0] >= 'A' && s[0] <= 'Z' ? s[0] + 32 : s[0]));
        return 1;
    }
    l = utf8_next(s, n, &cp);
    if (!l) { put_utf8(out, 0x10ff00u + s[0]); return 1; }
    put_utf8(out, mime_casefold(cp));
    return l;
}

void mime_text_fold(const char *s, size_t n, struct buf *out)
{
    const unsigned char *u = (const unsigned char *)s;
    for (size_t i = 0; i < n; ) i += fold_cp(u + i, n - i, out);
}

/* Matching folds both sides to UTF-8 and uses memmem (linear, so a client's SEARCH cannot make
 * it quadratic), over the haystack in chunks that overlap by the needle's length, so memory
 * stays bounded for any body size. */
int mime_text_contains_n(const char *haystack, size_t hlen, const char *needle, size_t nlen)
{
    const unsigned char *h = (const unsigned char *)haystack;
    const unsigned char *nd = (const unsigned char *)needle;
    struct buf nb = BUF_INIT, hb = BUF_INIT;
    size_t i, chunk;
    int found = 0;

    if (nlen == 0) return 1;
    for (i = 0; i < nlen; ) i += fold_cp(nd + i, nlen - i, &nb);
    chunk = nb.len * 2 > 65536 ? nb.len * 2 : 65536;
    for (i = 0; i < hlen && !found; ) {
        while (i < hlen && hb.len < chunk) i += fold_cp(h + i, hlen - i, &hb);
        if (hb.len >= nb.len && memmem(hb.s, hb.len, nb.s, nb.len)) found = 1;
        else if (hb.len >= nb.len) buf_consume(&hb, hb.len - (nb.len - 1));
    }
    buf_fini(&nb);
    buf_fini(&hb);
    return found;
}

int mime_text_contains(const char *haystack, const char *needle)
{
    return mime_text_contains_n(haystack, strlen(haystack), needle, strlen(needle));
}
