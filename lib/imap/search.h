/* search.h: IMAP SEARCH programs: the search keys of RFC 3501 section 6.4.4 parsed into a tree
 * and evaluated against one message at a time through a small accessor interface, so the
 * engine knows nothing of mailboxes and can be tested on messages held in memory.
 *
 * Evaluation is lazy and ordered by cost: keys that need only the index record (flags, size,
 * dates, numbers) run first, then keys that need the header block, and the message itself is
 * asked for only when a BODY or TEXT key still decides the answer. */
#ifndef COFFER_IMAP_SEARCH_H
#define COFFER_IMAP_SEARCH_H
#include "imap/imap-arg.h"
#include "imap/imap-seqset.h"
#include "core/strarr.h"
#include <stddef.h>
#include <stdint.h>

/* What the engine needs of a message's index record. flags uses the store's FLAG_* bits
 * (store/index.h): FLAG_SEEN 0x01, FLAG_ANSWERED 0x02, FLAG_FLAGGED 0x04, FLAG_DELETED 0x08,
 * FLAG_DRAFT 0x10. */
struct search_record {
    uint32_t uid;
    uint32_t flags;
    int recent;                 /* \Recent in this session */
    int64_t internaldate;       /* seconds since the epoch */
    uint64_t size;              /* RFC822.SIZE */
    const uint8_t *user_flags;  /* keyword bitmap (bit k = byte k/8, bit k%8 = keyword k of the
                                 * list given to search_prepare); NULL = none */
    size_t user_flags_len;      /* bytes in user_flags */
    uint64_t modseq;            /* the message's mod-sequence as the session shows it (RFC 7162) */
    int64_t savedate;           /* RFC 8514 save date, seconds since the epoch; 0 = unknown */
    const uint8_t *guid;        /* 20 bytes, the EMAILID of RFC 8474 ("E" and them in hex);
                                 * NULL = none */
    uint64_t threadid;          /* RFC 8474 THREADID number ("T" and 16 hex digits); 0 = not
                                 * known yet: the threadid accessor is asked */
};

/* The accessors, all for one message number at a time. Each returns 0 or a negative CF_E_*
 * code (which ends the search with that code). The pointers they hand out must stay valid
 * until release() for that message (or the next call for another message when release is
 * NULL). */
struct search_msg_ops {
    /* record: fill *r (every message; called first). */
    int (*record)(void *ctx, uint32_t msgno, struct search_record *r);
    /* header: the raw top-level header block, through its empty line; from the cache where
     * possible. */
    int (*header)(void *ctx, uint32_t msgno, const char **p, size_t *len);
    /* sections: the serialized section table of lib/mime/mime.h (cache field), or
     * CF_E_NOTFOUND when there is none: the engine then builds it from the message. May be
     * NULL (same as always CF_E_NOTFOUND). */
    int (*sections)(void *ctx, uint32_t msgno, const char **p, size_t *len);
    /* message: the raw message bytes (mapped). */
    int (*message)(void *ctx, uint32_t msgno, const char **p, size_t *len);
    /* release: the engine is done with this message (unmap, free the cache entry). May be
     * NULL. */
    void (*release)(void *ctx, uint32_t msgno);
    /* threadid: the THREADID number of a message whose record gave 0 (computed from its
     * header). May be NULL: such a message matches no THREADID key. */
    int (*threadid)(void *ctx, uint32_t msgno, uint64_t *id);
    /* column: the message's header search column blob (imap/search-column.h), or
     * CF_E_NOTFOUND when there is none (the header is read instead). May be NULL. */
    int (*column)(void *ctx, uint32_t msgno, const unsigned char **p, size_t *len);
};

struct search_program;

/* What a program will ask for, from search_needs(). */
#define SEARCH_NEEDS_HEADER 1       /* a key reads the header block */
#define SEARCH_NEEDS_BODY   2       /* a key reads the message (BODY, TEXT) */

/* Most bytes of search strings one SEARCH may carry (review M6): every message searched is
 * scanned for each of them. */
#define SEARCH_MAX_STRINGS (64 * 1024)

/* search_parse: parse the arguments that follow SEARCH (RFC 3501 section 6.4.4 and the
 * section 9 grammar: an optional CHARSET astring, then one or more search keys, implicitly
 * ANDed). On success *prog_r is the program (free with search_free) and 0 is returned.
 * CF_E_PARSE: malformed; *err_r says why (static text, fit to follow "BAD ").
 * CF_E_NOTFOUND: a CHARSET other than UTF-8 or US-ASCII (answer
 * "NO [BADCHARSET (UTF-8 US-ASCII)]"). CF_E_LIMIT: the search strings (and HEADER field
 * names) add up to more than SEARCH_MAX_STRINGS bytes (answer "NO [LIMIT]").
 * The program copies what it needs from args. */
int search_parse(const struct imap_arg *args, size_t nargs, struct search_program **prog_r,
                 const char **err_r);
void search_free(struct search_program **prog);

/* search_prepare: bind a program to a mailbox view before matching: exists is the highest
 * message number ("*" in a sequence set), max_uid the uid of that message ("*" in a UID set;
 * 0 for an empty view), keywords the mailbox's keyword names in bit order (may be NULL: no
 * keywords). Keyword names are compared ignoring ASCII case. Can be called again for a
 * changed view. */
void search_prepare(struct search_program *prog, uint32_t exists, uint32_t max_uid,
                    const struct strarr *keywords);

/* search_set_saved: give the "$" keys of the program (RFC 5182 section 2.1, the saved search
 * result) their uids: concrete uid ranges (NULL or empty: "$" matches nothing, as before any
 * SAVE). Call before search_prepare. */
void search_set_saved(struct search_program *prog, const struct imap_seqset *uids);

/* search_pin: for a search kept live (RFC 5267 section 4.3, UPDATE): after search_prepare,
 * turn the message-number keys into the uids they matched then (uid_of maps a message number
 * of the view to its uid) and fix "*" of UID keys at the view's highest uid, so that later
 * search_prepare calls (for a changed view: new keywords) keep the meaning the keys had when
 * the search ran. exists: the view's highest message number. */
void search_pin(struct search_program *prog, uint32_t exists,
                uint32_t (*uid_of)(void *ctx, uint32_t msgno), void *ctx);
/* search_uses_modseq: 1 when the program has a MODSEQ key (RFC 7162 section 3.1.5: the
 * SEARCH response then carries the highest mod-sequence of the matches). */
int search_uses_modseq(const struct search_program *prog);

/* search_uses_column: 1 when a key of the program (FROM, TO, CC, BCC, SUBJECT, or HEADER on
 * one of those fields) can be answered from the header search column (search-column.h), so
 * the caller may fetch the blobs for the messages ahead and offer ops->column. */
int search_uses_column(const struct search_program *prog);

/* search_needs: SEARCH_NEEDS_* bits of what the program reads beyond the record. */
unsigned search_needs(const struct search_program *prog);

/* search_match: evaluate the program against message msgno. Returns 1 match, 0 no match, or
 * the first negative code an accessor returned. Calls ops->release for the message before
 * returning when it asked for more than the record. Blocks only in the accessors. */
int search_match(struct search_program *prog, const struct search_msg_ops *ops, void *ctx,
                 uint32_t msgno);

/* search_text_match: the BODY/TEXT test on its own: 1 when needle (UTF-8) occurs, ignoring
 * case, in the decoded text parts of msg (base64/quoted-printable decoded, charsets converted
 * to UTF-8), or with with_header set also in its decoded header fields ("Name: value");
 * 0 otherwise. sections (may be NULL) is the message's section table. Exposed for tests and
 * benchmarks; search_match uses it. */
int search_text_match(const char *msg, size_t len, const char *sections, size_t sections_len,
                      const char *needle, size_t needle_len, int with_header);

/* search_text_match_exact: the same answer computed the slow, obvious way (every text part
 * decoded and converted, then matched); the fast path must agree with it. For tests. */
int search_text_match_exact(const char *msg, size_t len, const char *needle, size_t needle_len,
                            int with_header);

#endif
