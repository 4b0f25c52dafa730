/* reconstruct.h: repairing the store from what is on disk: one mailbox's index and cache from
 * its message files (keeping what survives in the damaged index), the mailbox list from the
 * partitions' header files, and tombstones left by an interrupted delete. The same analysis,
 * run with RECON_DRY_RUN, is the read-only consistency check of `coffer check`.
 *
 * Locking: a mailbox is rebuilt under its write lock (flock on DIR/lock, as mailbox.c), so it is
 * safe beside live sessions: they notice the new index (a new inode and generation) at their
 * next sync, and see dropped records as expunged. A dry run takes the shared lock only. */
#ifndef COFFER_STORE_RECONSTRUCT_H
#define COFFER_STORE_RECONSTRUCT_H
#include <stdint.h>
#include "core/strarr.h"
#include "store/store.h"

#define RECON_DRY_RUN 0x1     /* look only: report what is wrong (what would change) */

/* What was found or changed: one entry per item, in parallel arrays (index i of each). */
struct recon_report {
    struct strarr mailbox;    /* internal name (or the directory when it has none) */
    struct strarr what;       /* a short code, listed in man coffer-reconstruct(8) */
    struct strarr detail;     /* human text, may be "" */
    uint32_t adopted;         /* message files without a record, given one */
    uint32_t dropped;         /* records whose message file is gone */
    uint32_t fixed;           /* records rewritten from their file (bad checksum, size) */
    uint32_t messages;        /* messages in the mailboxes looked at, after the repair */
    uint32_t mailboxes;       /* mailboxes looked at */
    /* UIDVALIDITY (mboxlist_next_uidvalidity): in: when not 0, what a mailbox none of whose
     * UIDVALIDITY survives gets instead of the clock (the list's counter + 1, so it is above
     * every value the name ever had); out: the highest UIDVALIDITY of the mailboxes looked
     * at, for mboxlist_raise_uidvalidity (reconstruct_mailboxlist raises it itself) */
    uint32_t uidvalidity_next;
    uint32_t uidvalidity_max;
};

void recon_report_init(struct recon_report *rep);
void recon_report_fini(struct recon_report *rep);

/* recon_report_add: append one item (detail printf-style, may be ""). */
void recon_report_add(struct recon_report *rep, const char *mailbox, const char *what,
                      const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* reconstruct_mailbox: check and (without RECON_DRY_RUN) rebuild the mailbox in
 * PARTITION_PATH/xx/UNIQUEID: its index from the damaged index and the message files
 * ("<uid>." files), its cache from the message files, and its header file when it is missing,
 * damaged or names another mailbox (name and acl are then written; acl NULL keeps the old ACL).
 * Flags, keywords, internal dates, modseqs and UIDs of records that pass their checksum are kept;
 * a message file without a usable record is adopted with its UID, no flags and its file time
 * as the internal date; a record whose file is gone is dropped; files of expunged records are
 * removed. Nothing is written when nothing is wrong. Every finding goes to rep. Returns the
 * number of findings (0: the mailbox was clean), CF_E_NOTFOUND (no directory), CF_E_PARSE (bad
 * uniqueid) or CF_E_IO (logged). Blocks on the lock and on reading every message file that
 * needs it. */
int reconstruct_mailbox(const char *partition_path, const char *uniqueid, const char *name,
                        const char *acl, unsigned flags, struct recon_report *rep);

/* reconstruct_lock: take the write lock of the mailbox in PARTITION_PATH/xx/UNIQUEID, as
 * every writer does (close *fd_r to release it). 0, CF_E_NOTFOUND or CF_E_IO. Blocks. */
int reconstruct_lock(const char *partition_path, const char *uniqueid, int *fd_r);

/* One message file already in a mailbox directory as "<uid>.", for reconstruct_import. */
struct recon_import {
    uint32_t uid;
    uint32_t flags;                  /* FLAG_* system flags */
    int64_t internaldate;
    const char *const *keywords;     /* NULL-terminated names, or NULL */
    uint64_t modseq;                 /* RFC 7162 mod-sequence; 0 (or above highestmodseq):
                                      * highestmodseq */
};

/* reconstruct_import: with the caller holding the mailbox's write lock (reconstruct_lock),
 * replace its index and cache by ones describing exactly msgs (any order; each file must exist),
 * with the given uidvalidity (also written to the header file), uidnext (raised above the
 * highest uid when lower) and highestmodseq (at least 1). For restoring
 * a dump with its UIDs (mailbox_append always takes the next UID). 0, CF_E_NOTFOUND (a file is
 * missing), CF_E_LIMIT (more than INDEX_MAX_KEYWORDS keywords) or CF_E_IO. */
int reconstruct_import(const char *partition_path, const char *uniqueid, uint32_t uidvalidity,
                       uint32_t uidnext, uint64_t highestmodseq, const struct recon_import *msgs,
                       size_t n);

/* reconstruct_mailboxlist: compare the mailbox list with the partitions. A directory whose
 * header names a mailbox missing from the list is added back (partition, uniqueid, ACL from its
 * header; special-use flags are not kept there and are lost); an entry pointing at the wrong
 * partition is corrected; an entry whose directory exists nowhere is reported (not removed: a
 * partition may be offline); a directory without a header file and without messages (a create
 * cut short) is removed; a tombstone "<uniqueid>.deleted" (a delete cut short) is finished when
 * no list entry uses that uniqueid, else renamed back. With RECON_DRY_RUN only reports.
 * Returns the number of findings or an error. Blocks on directory scans and the database. */
int reconstruct_mailboxlist(struct store *st, unsigned flags, struct recon_report *rep);

#endif
