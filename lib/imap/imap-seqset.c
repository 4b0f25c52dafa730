/* imap-seqset.c: sequence sets parsed, merged, resolved against "*" and formatted. */
#include "imap/imap-seqset.h"
#include "core/error.h"
#include "core/xmalloc.h"
#include <stdlib.h>
#include <string.h>

void imap_seqset_init(struct imap_seqset *set)
{
    memset(set, 0, sizeof *set);
}

void imap_seqset_fini(struct imap_seqset *set)
{
    free(set->r);
    memset(set, 0, sizeof *set);
}

void imap_seqset_clear(struct imap_seqset *set)
{
    set->count = 0;
    set->star = 0;
    set->saved = 0;
    set->star_lo = set->star_hi = 0;
}

/* find_first: index of the first range whose hi + 1 >= n (the first one n could touch). */
static size_t find_first(const struct imap_seqset *set, uint64_t n)
{
    size_t lo = 0, hi = set->count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if ((uint64_t)set->r[mid].hi + 1 < n) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}

void imap_seqset_add(struct imap_seqset *set, uint32_t lo, uint32_t hi)
{
    if (lo > hi) { uint32_t t = lo; lo = hi; hi = t; }
    size_t i = find_first(set, lo);
    /* ranges i..j-1 touch or overlap lo..hi: merge them into one */
    size_t j = i;
    while (j < set->count && (uint64_t)set->r[j].lo <= (uint64_t)hi + 1) {
        if (set->r[j].lo < lo) lo = set->r[j].lo;
        if (set->r[j].hi > hi) hi = set->r[j].hi;
        j++;
    }
    if (j == i) {
        if (set->count == set->alloc) {
            set->alloc = set->alloc ? set->alloc * 2 : 8;
            set->r = xreallocarray(set->r, set->alloc, sizeof *set->r);
        }
        memmove(&set->r[i + 1], &set->r[i], (set->count - i) * sizeof *set->r);
        set->count++;
    } else if (j > i + 1) {
        memmove(&set->r[i + 1], &set->r[j], (set->count - j) * sizeof *set->r);
        set->count -= j - i - 1;
    }
    set->r[i].lo = lo;
    set->r[i].hi = hi;
}

static void add_star(struct imap_seqset *set, uint32_t n)
{
    if (!set->star) {
        set->star = 1;
        set->star_lo = set->star_hi = n;
        return;
    }
    if (!n) return;
    if (!set->star_lo || n < set->star_lo) set->star_lo = n;
    if (n > set->star_hi) set->star_hi = n;
}

/* seq_number: nz-number or "*" (returned as 0). */
static int seq_number(const char *s, size_t len, size_t *pos, uint32_t *out, const char **err)
{
    if (*pos < len && s[*pos] == '*') {
        (*pos)++;
        *out = 0;
        return 0;
    }
    if (*pos >= len || s[*pos] < '1' || s[*pos] > '9') {
        *err = (*pos < len && s[*pos] == '0') ? "Sequence numbers start at 1"
                                                : "Invalid sequence set";
        return CF_E_PARSE;
    }
    uint64_t v = 0;
    while (*pos < len && s[*pos] >= '0' && s[*pos] <= '9') {
        v = v * 10 + (uint64_t)(s[*pos] - '0');
        if (v > UINT32_MAX) {
            *err = "Sequence number too large";
            return CF_E_PARSE;
        }
        (*pos)++;
    }
    *out = (uint32_t)v;
    return 0;
}

int imap_seqset_parse(struct imap_seqset *set, const char *text, size_t len, const char **err)
{
    imap_seqset_clear(set);
    size_t pos = 0;
    *err = NULL;
    if (len == 0) {
        *err = "Empty sequence set";
        return CF_E_PARSE;
    }
    if (text[0] == '$') {
        if (len == 1) {
            set->saved = 1;
            return 0;
        }
        *err = "$ must be the whole sequence set";
        return CF_E_PARSE;
    }
    for (;;) {
        uint32_t a, b;
        if (seq_number(text, len, &pos, &a, err)) goto bad;
        if (pos < len && text[pos] == ':') {
            pos++;
            if (seq_number(text, len, &pos, &b, err)) goto bad;
        } else {
            b = a;
        }
        if (a == 0 || b == 0) add_star(set, a ? a : b);
        else imap_seqset_add(set, a, b);
        if (pos == len) return 0;
        if (text[pos] != ',') {
            *err = "Invalid sequence set";
            goto bad;
        }
        pos++;
    }
bad:
    imap_seqset_clear(set);
    return CF_E_PARSE;
}

void imap_seqset_resolve(const struct imap_seqset *in, uint32_t max, struct imap_seqset *out)
{
    imap_seqset_clear(out);
    for (size_t i = 0; i < in->count; i++) imap_seqset_add(out, in->r[i].lo, in->r[i].hi);
    if (!in->star || max == 0) return;
    uint32_t lo = max, hi = max;
    if (in->star_lo && in->star_lo < lo) lo = in->star_lo;
    if (in->star_hi > hi) hi = in->star_hi;
    imap_seqset_add(out, lo, hi);
}

int imap_seqset_contains(const struct imap_seqset *set, uint32_t n)
{
    size_t i = find_first(set, (uint64_t)n + 1);   /* first range with hi >= n */
    return i < set->count && set->r[i].lo <= n && n <= set->r[i].hi;
}

uint64_t imap_seqset_size(const struct imap_seqset *set)
{
    uint64_t n = 0;
    for (size_t i = 0; i < set->count; i++) n += (uint64_t)set->r[i].hi - set->r[i].lo + 1;
    return n;
}

void imap_seqset_format(const struct imap_seqset *set, struct buf *out)
{
    if (set->saved) {
        buf_putc(out, '$');
        return;
    }
    for (size_t i = 0; i < set->count; i++) {
        if (i) buf_putc(out, ',');
        if (set->r[i].lo == set->r[i].hi) buf_printf(out, "%u", (unsigned)set->r[i].lo);
        else buf_printf(out, "%u:%u", (unsigned)set->r[i].lo, (unsigned)set->r[i].hi);
    }
    if (!set->star) return;
    if (set->count) buf_putc(out, ',');
    if (!set->star_lo) buf_putc(out, '*');
    else if (set->star_lo == set->star_hi) buf_printf(out, "%u:*", (unsigned)set->star_lo);
    else buf_printf(out, "%u:*,%u:*", (unsigned)set->star_lo, (unsigned)set->star_hi);
}

void imap_seqset_subtract(const struct imap_seqset *a, const struct imap_seqset *b,
                          struct imap_seqset *out)
{
    imap_seqset_clear(out);
    size_t j = 0;
    for (size_t i = 0; i < a->count; i++) {
        uint64_t x = a->r[i].lo, hi = a->r[i].hi;
        while (j < b->count && b->r[j].hi < x) j++;
        for (size_t k = j; k < b->count && b->r[k].lo <= hi && x <= hi; k++) {
            if (b->r[k].lo > x) imap_seqset_add(out, (uint32_t)x, b->r[k].lo - 1);
            if ((uint64_t)b->r[k].hi + 1 > x) x = (uint64_t)b->r[k].hi + 1;
        }
        if (x <= hi) imap_seqset_add(out, (uint32_t)x, (uint32_t)hi);
    }
}
