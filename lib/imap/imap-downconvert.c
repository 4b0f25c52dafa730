/* imap-downconvert.c: UTF-8 strings of ENVELOPE and BODYSTRUCTURE as RFC 2047 encoded-words
 * for sessions without UTF8=ACCEPT (RFC 6855 section 7, RFC 6857 section 3). */
#include "imap/imap-downconvert.h"
#include "core/base64.h"
#include <stdint.h>
#include <string.h>

int imap_downconvert_utf8(const unsigned char *s, size_t n)
{
    int wide = 0;
    for (size_t i = 0; i < n;) {
        unsigned char c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t k;
        uint32_t cp, min;
        if (c >= 0xc2 && c <= 0xdf) { k = 1; cp = c & 0x1f; min = 0x80; }
        else if (c >= 0xe0 && c <= 0xef) { k = 2; cp = c & 0x0f; min = 0x800; }
        else if (c >= 0xf0 && c <= 0xf4) { k = 3; cp = c & 0x07; min = 0x10000; }
        else return 0;
        if (n - i <= k) return 0;
        for (size_t j = 1; j <= k; j++) {
            if ((s[i + j] & 0xc0) != 0x80) return 0;
            cp = (cp << 6) | (s[i + j] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
        wide = 1;
        i += k + 1;
    }
    return wide;
}

/* encode_words: s[0,n) (valid UTF-8) as a quoted string of encoded-words. */
static void encode_words(const unsigned char *s, size_t n, struct buf *out)
{
    buf_putc(out, '"');
    for (size_t i = 0; i < n;) {
        size_t take = n - i < IMAP_DOWNCONVERT_WORD ? n - i : IMAP_DOWNCONVERT_WORD;
        /* never cut a character: back off over continuation bytes at the cut */
        while (i + take < n && take > 0 && (s[i + take] & 0xc0) == 0x80) take--;
        if (i) buf_putc(out, ' ');
        buf_appends(out, "=?UTF-8?B?");
        base64_encode(s + i, take, out);
        buf_appends(out, "?=");
        i += take;
    }
    buf_putc(out, '"');
}

/* literal_header: at in[i] == '{': 1 with the content's offset and length when "{n}\r\n"
 * parses and its n bytes are all there, else 0. */
static int literal_header(const char *in, size_t len, size_t i, size_t *start, size_t *n)
{
    size_t j = i + 1;
    uint64_t v = 0;
    if (j >= len || in[j] < '0' || in[j] > '9') return 0;
    while (j < len && in[j] >= '0' && in[j] <= '9') {
        v = v * 10 + (uint64_t)(in[j] - '0');
        if (v > len) return 0;              /* longer than all the text: damaged */
        j++;
    }
    if (len - j < 3 || in[j] != '}' || in[j + 1] != '\r' || in[j + 2] != '\n') return 0;
    j += 3;
    if (v > len - j) return 0;
    *start = j;
    *n = (size_t)v;
    return 1;
}

size_t imap_downconvert_append(const char *in, size_t len, struct buf *out)
{
    /* Only literals are rewritten, and every literal starts with '{': text without one (the
     * common case: lib/mime writes quoted strings where it can) is copied in one go, after a
     * memchr instead of the byte-by-byte walk below (a FETCH 1:* ENVELOPE BODYSTRUCTURE
     * spent a fifth of its CPU in that walk, docs/perf/fetch-search.md). */
    if (!memchr(in, '{', len)) {
        buf_append(out, in, len);
        return 0;
    }
    size_t done = 0, i = 0, copied = 0;
    while (i < len) {
        if (in[i] == '"') {
            /* a quoted string: through its closing quote (backslash escapes skipped) */
            for (i++; i < len && in[i] != '"'; i++)
                if (in[i] == '\\') i++;
            i = i < len ? i + 1 : len;
            continue;
        }
        if (in[i] != '{') {
            i++;
            continue;
        }
        size_t start, n;
        if (!literal_header(in, len, i, &start, &n)) break;   /* the rest goes as it is */
        const unsigned char *s = (const unsigned char *)in + start;
        int plain = 1;
        for (size_t k = 0; k < n && plain; k++)
            if (s[k] == '\0' || s[k] == '\r' || s[k] == '\n') plain = 0;
        if (plain && imap_downconvert_utf8(s, n)) {
            buf_append(out, in + copied, i - copied);
            encode_words(s, n, out);
            copied = start + n;
            done++;
        }
        i = start + n;
    }
    buf_append(out, in + copied, len - copied);
    return done;
}
