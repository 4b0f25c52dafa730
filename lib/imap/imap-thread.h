/* imap-thread.h: the THREAD algorithms of RFC 5256 section 3 (ORDEREDSUBJECT and
 * REFERENCES) over an array of precomputed message keys, and the parenthesised thread-list
 * of its section 4 grammar. Pure: no store, no I/O, so the unit test and the fuzz target run
 * it on keys built in memory. */
#ifndef COFFER_IMAP_IMAP_THREAD_H
#define COFFER_IMAP_IMAP_THREAD_H
#include "core/buf.h"
#include <stddef.h>
#include <stdint.h>

/* One message to thread. The strings are borrowed (they must outlive the call). */
struct thread_msg {
    uint32_t num;           /* what the response shows: sequence number or uid */
    uint32_t seq;           /* mailbox order, the tie-break of equal dates */
    int64_t date;           /* sent date (RFC 5256 section 2.2), seconds, UTC */
    const char *subject;    /* base subject in canonical (imap_casemap) form */
    size_t subject_len;
    int reply;              /* the base subject was taken from a reply or forward */
    const char *msgid;      /* raw Message-ID value (NULL: none) */
    size_t msgid_len;
    const char *refs;       /* raw References value (NULL: none) */
    size_t refs_len;
    const char *irt;        /* raw In-Reply-To value (NULL: none) */
    size_t irt_len;
    /* thread_references_hashed reads these instead of msgid, refs and irt: the message's id
     * and the ids step 1A links (imap-sortkeys.h), as 64-bit hashes */
    int has_id;
    uint64_t id_hash;
    const unsigned char *parents;   /* nparents 8-byte little-endian hashes */
    uint32_t nparents;
};

/* thread_orderedsubject / thread_references: append the threads of msgs[0,n) to out as the
 * thread-list of RFC 5256 section 4 ("(1)(2 3)(4 (5)(6))", nothing for n 0). Time
 * O(n log n) plus the length of the reference lists (the loop checks walk the parent chain);
 * memory O(n + references). msgs is not changed. Never blocks. */
void thread_orderedsubject(const struct thread_msg *msgs, size_t n, struct buf *out);
void thread_references(const struct thread_msg *msgs, size_t n, struct buf *out);

/* thread_references_hashed: thread_references over the hashed ids (has_id, id_hash, parents)
 * in place of the raw fields: two ids are the same when their hashes are, so the hashes must
 * be keyed (imap_sortkeys_hash) for a sender not to be able to make them collide. */
void thread_references_hashed(const struct thread_msg *msgs, size_t n, struct buf *out);

#endif
