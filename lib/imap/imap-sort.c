/* imap-sort.c: the string keys of SORT and THREAD (imap-sort.h): RFC 5256 base subjects, the
 * RFC 5051 i;unicode-casemap canonical form from a generated table, and msg-id lists. */
#include "imap/imap-sort.h"
#include "mime/decode.h"
#include <stdint.h>
#include <string.h>
#include <strings.h>

#include "imap/unicasemap-table.h"

static int is_wsp(char c) { return c == ' ' || c == '\t'; }

/* ieq_at: s[i, i+len(lit)) equals lit (lowercase ASCII) ignoring case, within [0,end). */
static int ieq_at(const char *s, size_t i, size_t end, const char *lit)
{
    size_t l = strlen(lit);
    return end >= i && end - i >= l && strncasecmp(s + i, lit, l) == 0;
}

/* blob_end: subj-blob = "[" *BLOBCHAR "]" *WSP at s[i] (BLOBCHAR: CHAR, %x01-7F, except
 * the brackets; RFC 5256 section 5): the index after it, or 0 when none matches. */
static size_t blob_end(const char *s, size_t i, size_t end)
{
    if (i >= end || s[i] != '[') return 0;
    size_t j = i + 1;
    while (j < end && s[j] != ']') {
        unsigned char c = (unsigned char)s[j];
        if (c == 0 || c >= 0x80 || c == '[') return 0;
        j++;
    }
    if (j >= end) return 0;
    j++;
    while (j < end && is_wsp(s[j])) j++;
    return j;
}

/* refwd_end: subj-refwd = ("re" / ("fw" ["d"])) *WSP [subj-blob] ":" at s[i]: the index
 * after it, or 0. */
static size_t refwd_end(const char *s, size_t i, size_t end)
{
    size_t j;
    if (ieq_at(s, i, end, "re")) j = i + 2;
    else if (ieq_at(s, i, end, "fwd")) j = i + 3;
    else if (ieq_at(s, i, end, "fw")) j = i + 2;
    else return 0;
    while (j < end && is_wsp(s[j])) j++;
    size_t b = blob_end(s, j, end);
    if (b) j = b;
    if (j < end && s[j] == ':') return j + 1;
    /* "fwd" failed where "fw" might not: "fw" followed by "d" is only "fwd" */
    return 0;
}

/* leader_end: subj-leader = (*subj-blob subj-refwd) / WSP at s[i]: the index after it, or 0;
 * *refwd set when a subj-refwd was part of it. */
static size_t leader_end(const char *s, size_t i, size_t end, int *refwd)
{
    if (i < end && is_wsp(s[i])) return i + 1;
    size_t p = i;
    for (;;) {
        size_t r = refwd_end(s, p, end);
        if (r) { *refwd = 1; return r; }
        size_t b = blob_end(s, p, end);
        if (!b) return 0;
        p = b;
    }
}

static int has_nonwsp(const char *s, size_t i, size_t end)
{
    for (; i < end; i++)
        if (!is_wsp(s[i])) return 1;
    return 0;
}

void imap_base_subject_decoded(const char *in, size_t n, struct buf *out, int *reply_r)
{
    size_t base = out->len, start, end;
    int reply = 0;
    /* step 1: tabs and line breaks to spaces, runs of spaces to one */
    buf_ensure(out, n);
    for (size_t i = 0; i < n; i++) {
        char c = in[i];
        if (c == '\t' || c == '\r' || c == '\n') c = ' ';
        if (c == ' ' && out->len > base && out->s[out->len - 1] == ' ') continue;
        buf_putc(out, c);
    }
    char *s = out->s ? out->s + base : NULL;
    start = 0;
    end = out->len - base;
    for (;;) {
        /* step 2: subj-trailer = "(fwd)" / WSP, removed from the end until none is left */
        for (;;) {
            if (end - start >= 5 && strncasecmp(s + end - 5, "(fwd)", 5) == 0) {
                end -= 5;
                reply = 1;
            } else if (end > start && is_wsp(s[end - 1])) {
                end--;
            } else {
                break;
            }
        }
        /* steps 3 to 5: subj-leaders, and a leading subj-blob that leaves a non-empty
         * subj-base, until neither is left */
        for (;;) {
            int changed = 0, refwd = 0;
            size_t e;
            while ((e = leader_end(s, start, end, &refwd)) != 0) {
                start = e;
                changed = 1;
            }
            if (refwd) reply = 1;
            e = blob_end(s, start, end);
            if (e && has_nonwsp(s, e, end)) {
                start = e;
                changed = 1;
            }
            if (!changed) break;
        }
        /* step 6: subj-fwd-hdr "[fwd:" ... subj-fwd-trl "]" */
        if (end - start >= 6 && strncasecmp(s + start, "[fwd:", 5) == 0 && s[end - 1] == ']') {
            start += 5;
            end -= 1;
            reply = 1;
            continue;
        }
        break;
    }
    if (start) memmove(s, s + start, end - start);
    buf_truncate(out, base + (end - start));
    if (reply_r) *reply_r = reply;
}

void imap_base_subject(const char *s, size_t n, struct buf *out, int *reply_r)
{
    struct buf dec = BUF_INIT;
    mime_decode_header(s, n, &dec);
    imap_base_subject_decoded(dec.s ? dec.s : "", dec.len, out, reply_r);
    buf_fini(&dec);
}

/* utf8_next: the code point at s[*i] (advancing *i), or -1 for a byte that does not start a
 * valid, shortest-form sequence (*i advanced by one). */
static int32_t utf8_next(const unsigned char *s, size_t n, size_t *i)
{
    unsigned char c = s[*i];
    uint32_t cp;
    size_t len;
    if (c < 0x80) { (*i)++; return c; }
    if (c >= 0xC2 && c <= 0xDF) { cp = c & 0x1F; len = 2; }
    else if (c >= 0xE0 && c <= 0xEF) { cp = c & 0x0F; len = 3; }
    else if (c >= 0xF0 && c <= 0xF4) { cp = c & 0x07; len = 4; }
    else { (*i)++; return -1; }
    if (n - *i < len) { (*i)++; return -1; }
    for (size_t k = 1; k < len; k++) {
        if ((s[*i + k] & 0xC0) != 0x80) { (*i)++; return -1; }
        cp = (cp << 6) | (s[*i + k] & 0x3F);
    }
    if ((len == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) ||
        (len == 4 && (cp < 0x10000 || cp > 0x10FFFF))) {
        (*i)++;
        return -1;
    }
    *i += len;
    return (int32_t)cp;
}

static void utf8_put(struct buf *out, uint32_t cp)
{
    char b[4];
    size_t n;
    if (cp < 0x80) { b[0] = (char)cp; n = 1; }
    else if (cp < 0x800) { b[0] = (char)(0xC0 | (cp >> 6)); b[1] = (char)(0x80 | (cp & 0x3F)); n = 2; }
    else if (cp < 0x10000) {
        b[0] = (char)(0xE0 | (cp >> 12)); b[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        b[2] = (char)(0x80 | (cp & 0x3F)); n = 3;
    } else {
        b[0] = (char)(0xF0 | (cp >> 18)); b[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
        b[2] = (char)(0x80 | ((cp >> 6) & 0x3F)); b[3] = (char)(0x80 | (cp & 0x3F)); n = 4;
    }
    buf_append(out, b, n);
}

void imap_casemap(const char *str, size_t n, struct buf *out)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0;
    buf_ensure(out, n);
    while (i < n) {
        if (s[i] < 0x80) {
            char c = (char)s[i++];
            if (c >= 'a' && c <= 'z') c = (char)(c - 'a' + 'A');
            buf_putc(out, c);
            continue;
        }
        size_t at = i;
        int32_t cp = utf8_next(s, n, &i);
        if (cp < 0) {
            buf_putc(out, (char)s[at]);
            continue;
        }
        if (cp >= 0xAC00 && cp <= 0xD7A3) {
            /* Hangul syllable: canonical decomposition by arithmetic (Unicode 3.12) */
            uint32_t sidx = (uint32_t)cp - 0xAC00;
            utf8_put(out, 0x1100 + sidx / (21 * 28));
            utf8_put(out, 0x1161 + (sidx % (21 * 28)) / 28);
            if (sidx % 28) utf8_put(out, 0x11A7 + sidx % 28);
            continue;
        }
        size_t lo = 0, hi = sizeof unicasemap_tab / sizeof unicasemap_tab[0];
        while (lo < hi) {
            size_t mid = (lo + hi) / 2;
            if (unicasemap_tab[mid].cp < (uint32_t)cp) lo = mid + 1;
            else hi = mid;
        }
        if (lo < sizeof unicasemap_tab / sizeof unicasemap_tab[0] &&
            unicasemap_tab[lo].cp == (uint32_t)cp) {
            for (unsigned k = 0; k < unicasemap_tab[lo].len; k++)
                utf8_put(out, unicasemap_pool[unicasemap_tab[lo].off + k]);
        } else {
            buf_append(out, s + at, i - at);
        }
    }
}

int imap_msgid_next(const char **pp, const char *end, const char **id_r, size_t *len_r)
{
    const char *p = *pp;
    while (p < end) {
        const char *lt = memchr(p, '<', (size_t)(end - p));
        if (!lt) break;
        const char *q = lt + 1;
        int at = 0, bad = 0;
        while (q < end && *q != '>') {
            if (*q == '<') break;
            if (*q == ' ' || *q == '\t' || *q == '\r' || *q == '\n') bad = 1;
            if (*q == '@') at = 1;
            q++;
        }
        if (q < end && *q == '>') {
            if (!bad && at && q > lt + 1) {
                *id_r = lt + 1;
                *len_r = (size_t)(q - lt - 1);
                *pp = q + 1;
                return 1;
            }
            p = q + 1;
        } else {
            p = q;      /* a new '<' or the end */
        }
    }
    *pp = end;
    return 0;
}
