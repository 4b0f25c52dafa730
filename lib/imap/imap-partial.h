/* imap-partial.h: the PARTIAL range of a SEARCH/SORT result (RFC 5267 section 4.4, with the
 * negative ranges of RFC 9394): "m:n" picks results m through n counted from the
 * first, "-m:-n" results m through n counted from the last. A range given reversed
 * ("500:400", "-500:-400") means the same as its ordered form (RFC 9394). */
#ifndef COFFER_IMAP_IMAP_PARTIAL_H
#define COFFER_IMAP_IMAP_PARTIAL_H
#include "core/buf.h"
#include <stddef.h>
#include <stdint.h>

struct imap_partial {
    uint32_t lo, hi;    /* 1 <= lo <= hi: positions, from the first or (last) from the last */
    int last;           /* the range was negative: counted from the end of the result */
};

/* imap_partial_parse: parse s[0,len) (partial-range: nz-number ":" nz-number, or both
 * negated; nz-number up to 4294967295, no leading zeros) into *p, ordered. 0, or CF_E_PARSE
 * with a reason (static text) in *err. */
int imap_partial_parse(const char *s, size_t len, struct imap_partial *p, const char **err);

/* imap_partial_format: append the range as the ESEARCH PARTIAL data echoes it, ordered:
 * "1:100" or "-1:-100". */
void imap_partial_format(const struct imap_partial *p, struct buf *out);

/* imap_partial_window: which results of count (in result order, 0-based) the range picks:
 * indices [*first, *end). Returns 0 when it picks none (then *first == *end), else 1. */
int imap_partial_window(const struct imap_partial *p, uint64_t count, uint64_t *first,
                        uint64_t *end);

#endif
