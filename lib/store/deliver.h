/* deliver.h: filing one incoming message into several mailboxes at once, for lmtpd (the only
 * user: `coffer deliver` hands its message to lmtpd over LMTP): duplicate suppression (dupdb),
 * quota (quotadb), and a single-instance store (the message file is written once per partition
 * and hard-linked into the other mailboxes).
 *
 * Order per mailbox: duplicate check, then store_append (or store_copy) which checks the
 * quota under the root's and the mailbox's locks, commits and fsyncs, and settles the root's
 * usage from the index header (store-mail.h); then the duplicate record is written. A crash
 * between the commit and the settle is rolled forward by the next settle of that mailbox
 * (store.h "Quota accounting"); one between the commit and the duplicate record lets one
 * duplicate through: never a lost message. */
#ifndef COFFER_STORE_DELIVER_H
#define COFFER_STORE_DELIVER_H
#include "core/buf.h"
#include "store/store.h"
#include <stddef.h>
#include <stdint.h>

/* The message: data/len, or data NULL and an open fd read from offset 0 to its end (not
 * closed). msgid is the normalised Message-ID (deliver_message_id) or NULL: messages without
 * one are never suppressed as duplicates. internaldate 0 means now. */
struct deliver_msg {
    const char *data;
    size_t len;
    int fd;
    const char *msgid;
    int64_t internaldate;
};

#define DELIVER_OK 0           /* result: stored, uid set */
#define DELIVER_DUPLICATE 1    /* result: already delivered there within duplicate_lifetime */

/* One mailbox to file the message into. */
struct deliver_target {
    const char *mailbox;            /* in: internal name (must exist) */
    const char *user;               /* in: for the log line (may be NULL) */
    uint32_t flags;                 /* in: FLAG_* system flags to set */
    const char *const *keywords;    /* in: NULL-terminated keyword names, or NULL */
    int no_dupcheck;                /* in: file it even when the Message-ID was seen */
    int result;                     /* out: DELIVER_OK, DELIVER_DUPLICATE or a CF_E_* code:
                                     * CF_E_QUOTA, CF_E_NOTFOUND (no such mailbox), ... */
    uint32_t uid;                   /* out: the new message's uid (DELIVER_OK) */
};

/* deliver_message: file m into each of the n targets, in order, each independently (one
 * failing never stops the others). The same mailbox named twice gets one copy (the later
 * target reports the earlier's result). Logs event=delivered (or duplicate_suppressed, or
 * delivery_failed) per target with the user and mailbox in the log context. Returns the
 * number of targets with DELIVER_OK or DELIVER_DUPLICATE. Blocks on disk and locks. */
int deliver_message(struct store *st, const struct deliver_msg *m, struct deliver_target *t,
                    size_t n);

/* deliver_message_id: the first Message-ID header field of the message's header (RFC 5322
 * section 3.6.4), unfolded, as "<id>" with the surrounding text and comments removed, into
 * out (reset first). 1 found, 0 absent or empty. */
int deliver_message_id(const char *msg, size_t len, struct buf *out);

/* deliver_quota_full: whether the quota root governing mailbox is already at or over a limit
 * even before adding add_bytes (0 when unknown) and one message: 1 yes, 0 no (or no root),
 * or a database error. For LMTP RCPT, before the size is known. */
int deliver_quota_full(struct store *st, const char *mailbox, int64_t add_bytes);

#endif
