/* imap-seqset.h: IMAP sequence sets (RFC 3501 section 9 sequence-set, RFC 9051 section 9
 * wording for "*" in ranges) parsed into sorted, merged ranges. */
#ifndef COFFER_IMAP_IMAP_SEQSET_H
#define COFFER_IMAP_IMAP_SEQSET_H
#include "core/buf.h"
#include <stddef.h>
#include <stdint.h>

struct imap_seq_range {
    uint32_t lo, hi;            /* lo <= hi, both >= 1 */
};

/* A normalized set: ranges sorted, disjoint and not adjacent (2:3,5 never 2,3,4:5 or 5,2:3).
 * "*" means the largest number in use, unknown until the mailbox is open; every range that
 * involves "*" contains that number, so together they are one range, kept apart:
 * star is set, and star_lo..star_hi are the smallest and largest numbers written next to a
 * "*" (both 0 when "*" only appeared alone). imap_seqset_resolve() turns it concrete. */
struct imap_seqset {
    struct imap_seq_range *r;   /* owned */
    size_t count, alloc;
    int star;
    uint32_t star_lo, star_hi;
    /* RFC 5182 seq-last-command: the set was "$" alone (the saved search result, which the
     * caller substitutes); then it holds no ranges and no "*" */
    int saved;
};

#define IMAP_SEQSET_INIT { NULL, 0, 0, 0, 0, 0, 0 }

void imap_seqset_init(struct imap_seqset *set);
void imap_seqset_fini(struct imap_seqset *set);
void imap_seqset_clear(struct imap_seqset *set);

/* imap_seqset_parse: replace set with the parsed text ("1:4,7,9:*", "5:2", or "$" alone,
 * which sets saved: RFC 5182 allows "$" only as the whole set). Returns 0, or
 * CF_E_PARSE with a reason in *err (static text) and set emptied. */
int imap_seqset_parse(struct imap_seqset *set, const char *text, size_t len, const char **err);

/* imap_seqset_add: add lo..hi (either order; both >= 1), keeping the set normalized. */
void imap_seqset_add(struct imap_seqset *set, uint32_t lo, uint32_t hi);

/* imap_seqset_subtract: out = a without the elements of b (a and b normalized; out is cleared
 * first and must be neither). */
void imap_seqset_subtract(const struct imap_seqset *a, const struct imap_seqset *b,
                          struct imap_seqset *out);

/* imap_seqset_resolve: out (cleared first) = in with "*" replaced by max. With max 0 (an
 * empty mailbox) the ranges involving "*" match nothing. */
void imap_seqset_resolve(const struct imap_seqset *in, uint32_t max, struct imap_seqset *out);

/* imap_seqset_contains: 1 when n is in one of the concrete ranges ("*" is not considered). */
int imap_seqset_contains(const struct imap_seqset *set, uint32_t n);

/* imap_seqset_size: how many numbers the concrete ranges hold. */
uint64_t imap_seqset_size(const struct imap_seqset *set);

/* imap_seqset_format: append the set in its shortest text form ("1:3,5,7:*"); "*" ranges are
 * written last; "$" for a saved-result set. Appends nothing for an empty set. */
void imap_seqset_format(const struct imap_seqset *set, struct buf *out);

#endif
