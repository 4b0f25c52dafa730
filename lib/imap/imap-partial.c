/* imap-partial.c: PARTIAL ranges (imap-partial.h; RFC 5267 section 4.4, RFC 9394). */
#include "imap/imap-partial.h"
#include "core/error.h"

/* nz_number: an nz-number (RFC 3501 section 9) at s[*i]; 0 or -1. */
static int nz_number(const char *s, size_t len, size_t *i, uint32_t *out)
{
    uint64_t v = 0;
    size_t start = *i;
    if (*i >= len || s[*i] < '1' || s[*i] > '9') return -1;
    while (*i < len && s[*i] >= '0' && s[*i] <= '9') {
        v = v * 10 + (uint64_t)(s[*i] - '0');
        if (v > UINT32_MAX) return -1;
        (*i)++;
    }
    if (*i == start) return -1;
    *out = (uint32_t)v;
    return 0;
}

int imap_partial_parse(const char *s, size_t len, struct imap_partial *p, const char **err)
{
    size_t i = 0;
    uint32_t a = 0, b = 0;
    int neg = len > 0 && s[0] == '-';
    if (neg) i++;
    if (nz_number(s, len, &i, &a) < 0 || i >= len || s[i] != ':') goto bad;
    i++;
    if (neg) {
        /* both ends carry the sign: "-1:100" and "1:-100" are malformed */
        if (i >= len || s[i] != '-') goto bad;
        i++;
    }
    if (nz_number(s, len, &i, &b) < 0 || i != len) goto bad;
    p->lo = a < b ? a : b;
    p->hi = a < b ? b : a;
    p->last = neg;
    return 0;
bad:
    *err = "Invalid PARTIAL range";
    return CF_E_PARSE;
}

void imap_partial_format(const struct imap_partial *p, struct buf *out)
{
    if (p->last) buf_printf(out, "-%u:-%u", (unsigned)p->lo, (unsigned)p->hi);
    else buf_printf(out, "%u:%u", (unsigned)p->lo, (unsigned)p->hi);
}

int imap_partial_window(const struct imap_partial *p, uint64_t count, uint64_t *first,
                        uint64_t *end)
{
    uint64_t lo = p->lo, hi = p->hi;
    *first = *end = 0;
    if (lo > count) return 0;
    if (hi > count) hi = count;
    if (p->last) {
        /* position k from the end is index count - k */
        *first = count - hi;
        *end = count - lo + 1;
    } else {
        *first = lo - 1;
        *end = hi;
    }
    return 1;
}
