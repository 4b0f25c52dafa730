/* mailbox.h: one mailbox on disk (directory, header, index, cache, message files): creating,
 * opening a session view, appending, copying, storing flags, expunging, syncing, reading. */
#ifndef COFFER_STORE_MAILBOX_H
#define COFFER_STORE_MAILBOX_H
#include <stddef.h>
#include <stdint.h>
#include "store/cache.h"
#include "store/index.h"
#include "core/strarr.h"

struct mailbox;

/* Quota hook for append and copy: called under the mailbox's write lock before the commit
 * (the message files are already written, and removed on refusal), with the bytes and
 * messages about to be added. Returns 0 to allow, CF_E_QUOTA to
 * refuse (or another CF_E_*, passed through). */
struct mailbox_quota {
    int (*check)(void *rock, const char *uniqueid, uint64_t add_bytes, uint32_t add_msgs);
    void *rock;
};

/* One message to append. Give data/len, or data NULL and an open fd (read from offset 0 to
 * its end, through mmap; not closed). internaldate 0 means now. flags are FLAG_* system flags
 * (FLAG_EXPUNGED is ignored); keywords a NULL-terminated array of keyword names, or NULL. */
struct mailbox_msg {
    const char *data;
    size_t len;
    int fd;
    int64_t internaldate;
    uint32_t flags;
    const char *const *keywords;
    uint32_t uid;            /* out: the UID given to the message */
};

/* mailbox_create: make the mailbox directory PARTITION/xx/UNIQUEID (mode 0700) with its header
 * file, an empty index and an empty cache. uidvalidity 0 picks the current time. 0,
 * CF_E_EXISTS (directory already there), CF_E_PARSE (a name/ACL with CR or LF, a bad uniqueid)
 * or CF_E_IO (logged). Blocks on disk (fsyncs). */
int mailbox_create(const char *partition, const char *name, const char *uniqueid,
                   const char *acl, uint32_t uidvalidity);

/* mailbox_create_nosync: mailbox_create for bulk creation: the files are written straight
 * into the new directory (nothing else can see it yet, so no temp file and rename), the
 * header last, and nothing is fsynced: the caller makes the partition durable (syncfs) before
 * it commits the mailboxes' list entries. A crash before that leaves directories without list
 * entries, which reconstruct adopts (header present) or sees as unfinished (no header), as
 * after a crash inside mailbox_create. Returns as mailbox_create. */
int mailbox_create_nosync(const char *partition, const char *name, const char *uniqueid,
                          const char *acl, uint32_t uidvalidity);

/* mailbox_reuse: make mb, an open session on some mailbox that nothing uses any more, what
 * mailbox_open(partition, uniqueid, name) would return now: CF_E_NOTFOUND (mb unchanged) when
 * it is on another mailbox; else, under the shared lock, the header read again and the view
 * brought up to date with the records (rebuilt when a repack changed the file), the changes
 * it would report dropped. Costs what changed since mb last looked, not the mailbox's size.
 * 0 or an error of mailbox_open (then mb must be closed). */
int mailbox_reuse(struct mailbox *mb, const char *partition, const char *uniqueid,
                  const char *name, int unseen);   /* unseen: as mailbox_open_select */

/* mailbox_open: open the mailbox for a session and build its view (all existing messages) from
 * the index alone: one mmap, no message file is touched. name is used in log lines (may be
 * NULL: the uniqueid is logged). On success *mb_r is the handle (free with mailbox_close).
 * 0, CF_E_NOTFOUND, CF_E_CORRUPT (logged) or CF_E_IO. Blocks on the shared lock. */
int mailbox_open(const char *partition, const char *uniqueid, const char *name,
                 struct mailbox **mb_r);

/* mailbox_open_select: mailbox_open for SELECT and EXAMINE: under the same lock, the first
 * message of the view without \Seen is found too, so that mailbox_first_unseen_synced (the
 * [UNSEEN] code, RFC 3501 section 7.1) answers without locking again while nothing changed.
 * Reads at most the records up to that message (none when the uid column names it or every
 * message is \Seen). Same returns as mailbox_open. (mailbox_reuse's unseen does the same.) */
int mailbox_open_select(const char *partition, const char *uniqueid, const char *name,
                        struct mailbox **mb_r);

/* mailbox_open_target: mailbox_open without the view, for a handle that only writes into the
 * mailbox (a delivery, an APPEND or COPY target, the source of a copy): its cost does not
 * depend on the mailbox's size (building the view reads every record). Until a mailbox_sync,
 * which builds the view as an open does (every message reported as new), the view is empty:
 * mailbox_count is 0 and msgno lookups find nothing. Same returns as mailbox_open. */
int mailbox_open_target(const char *partition, const char *uniqueid, const char *name,
                        struct mailbox **mb_r);
void mailbox_close(struct mailbox **mb);

/* mailbox_target_check: for a handle without a view kept open between uses (the store's kept
 * targets, store.h): 0 when mb's directory still holds the lock file mb has open, so that mb
 * may be used as a fresh mailbox_open_target would be (every change through it takes the
 * lock and reads the index header again, following a repack or a reconstruct); name (may be
 * NULL: unchanged) becomes its name in log lines. CF_E_NOTFOUND when the directory or its
 * lock file is gone or another (the mailbox moved away and back): close mb. One stat (and
 * an fstat the first time). Does not block on locks. */
int mailbox_target_check(struct mailbox *mb, const char *name);

/* mailbox_set_nofsync: skip every fsync (for building test data fast; never in servers). */
void mailbox_set_nofsync(struct mailbox *mb, int on);

/* mailbox_append: append n messages in one commit: each message file is written (O_EXCL) and
 * fsynced before the write lock is taken, then under it the mailbox directory is fsynced
 * (unless a concurrent writer's fsync already covered the new names: group commit, see
 * mailbox.c), cache records and index records are appended, the index header is written and
 * the index fdatasynced. UIDs are ascending but may have gaps. Sets msgs[i].uid. Does not change the session view: the next
 * mailbox_sync reports the new messages. q may be NULL. 0, CF_E_QUOTA, CF_E_LIMIT (more than
 * INDEX_MAX_KEYWORDS keywords), CF_E_CORRUPT or CF_E_IO; on failure nothing was committed. */
int mailbox_append(struct mailbox *mb, struct mailbox_msg *msgs, size_t n,
                   const struct mailbox_quota *q);

/* mailbox_copy: copy the messages with the n given uids (sorted or not) from src to dst,
 * keeping flags, keywords, internal date and cache data. The message file is hard-linked when
 * both mailboxes are on one file system, else copied. dst_uids_r (n slots, may be NULL) gets the
 * new uid of each, or 0 for a uid that does not exist (or was expunged meanwhile). Never holds
 * both mailboxes' locks at once. 0, CF_E_QUOTA, CF_E_LIMIT, CF_E_CORRUPT or CF_E_IO. */
int mailbox_copy(struct mailbox *src, const uint32_t *uids, size_t n, struct mailbox *dst,
                 uint32_t *dst_uids_r, const struct mailbox_quota *q);

/* The system flags mailbox_copy_flags can keep or drop. */
#define MAILBOX_COPY_ALL_FLAGS (FLAG_SEEN | FLAG_ANSWERED | FLAG_FLAGGED | FLAG_DELETED | FLAG_DRAFT)

/* mailbox_copy_flags: mailbox_copy keeping on the copies only the system flags in keep_flags
 * and, when keep_keywords is 0, no keyword: a user copies only the flags they may set on dst
 * (RFC 4314 section 4, COPY and MOVE as APPEND). Same returns. */
int mailbox_copy_flags(struct mailbox *src, const uint32_t *uids, size_t n, struct mailbox *dst,
                       uint32_t *dst_uids_r, const struct mailbox_quota *q, uint32_t keep_flags,
                       int keep_keywords);

enum mailbox_store_op { STORE_SET, STORE_ADD, STORE_REMOVE };

/* What mailbox_store does: op with system flags and keywords. unchangedsince, when not 0, is
 * RFC 7162 section 3.1.3 UNCHANGEDSINCE: records with a higher modseq are left alone and listed
 * in the result. */
struct mailbox_store {
    enum mailbox_store_op op;
    uint32_t flags;
    const char *const *keywords;
    uint64_t unchangedsince;
};

/* mailbox_store: change flags of the records with the given uids (expunged or absent uids are
 * skipped). Every changed record gets the one new modseq of this commit; unchanged records keep
 * theirs. *failed_r (caller frees, may be NULL) and *nfailed_r list the uids refused by
 * unchangedsince. 0, CF_E_LIMIT (keyword table full), CF_E_CORRUPT or CF_E_IO. */
int mailbox_store(struct mailbox *mb, const uint32_t *uids, size_t n,
                  const struct mailbox_store *st, uint32_t **failed_r, size_t *nfailed_r);

/* mailbox_store_records: mailbox_store, and when recs_r is not NULL (n entries) recs_r[i] gets
 * the record of uids[i] as this commit left it (changed or not; uid 0 when absent, expunged
 * or refused by unchangedsince), so that a caller reporting the new flags (RFC 3501 section
 * 6.4.6) need not look each message up again. Filled only when 0 is returned. A caller that
 * takes recs_r tells its client every change of this commit itself: when the handle's view
 * held every commit before this one, the view takes this commit in as well, so that the next
 * mailbox_sync does not read the changed records back only to have them skipped (it reports
 * none of them; a commit by anyone else in between makes it read them all, as before). */
int mailbox_store_records(struct mailbox *mb, const uint32_t *uids, size_t n,
                          const struct mailbox_store *st, uint32_t **failed_r, size_t *nfailed_r,
                          struct index_record *recs_r);

/* A caller's step inside mailbox_store_hooked. ready is called under the write lock, before
 * any record is changed, with recs_r[0, done) as the commit will leave them should it
 * succeed: every STORE_HOOK_STEP uids while they are worked out, and last with done = n. The
 * commit may still fail after it (the call then returns an error and nothing changed). It
 * must not block, nor touch the mailbox: it lets IMAP STORE send its FETCH lines while the
 * records are changed and the change is flushed (cmd-store.c), without adding to the time in
 * which other sessions can read changed records that are not yet durable. */
#define STORE_HOOK_STEP 1024
struct mailbox_store_hook {
    void (*ready)(void *arg, const struct index_record *recs, size_t done);
    void *arg;
};

/* mailbox_store_hooked: mailbox_store_records (recs_r not NULL) with hook (may be NULL). */
int mailbox_store_hooked(struct mailbox *mb, const uint32_t *uids, size_t n,
                         const struct mailbox_store *st, uint32_t **failed_r, size_t *nfailed_r,
                         struct index_record *recs_r, const struct mailbox_store_hook *hook);

/* mailbox_expunge: expunge the records with FLAG_DELETED among uids (uids NULL: all of them):
 * mark them expunged with a new modseq and commit, then unlink their files -- unless the
 * handle is in delayed mode (mailbox_set_expunge_delayed): then the records get expunged_at
 * (now) and the files stay for mailbox_unexpunge until mailbox_repack_expired. Either way
 * the messages leave every view, count and quota at once. *count_r (may be NULL) gets how
 * many. The records stay in the index until a repack. 0, CF_E_CORRUPT or CF_E_IO. */
int mailbox_expunge(struct mailbox *mb, const uint32_t *uids, size_t n, uint32_t *count_r);

/* mailbox_expunge_sized: mailbox_expunge that also gives the summed size of the records it
 * expunged (*bytes_r, may be NULL), counted under the write lock from the records themselves:
 * what the quota root must be credited (store_expunge in store.h; services call that). */
int mailbox_expunge_sized(struct mailbox *mb, const uint32_t *uids, size_t n, uint32_t *count_r,
                          uint64_t *bytes_r);

/* mailbox_expunge_replaced: mailbox_expunge_sized of exactly the records uids (never NULL:
 * CF_E_INTERNAL), \Deleted or not, in one commit: the second half of REPLACE (RFC 8508
 * section 3.4: the replaced message never shows \Deleted; store_replace in store-mail.h). */
int mailbox_expunge_replaced(struct mailbox *mb, const uint32_t *uids, size_t n,
                             uint32_t *count_r, uint64_t *bytes_r);

/* mailbox_repack: rewrite the index without its expunged records (temp file, fsync, rename,
 * fsync dir), bumping the generation; files of expunged records still present are unlinked.
 * Sessions elsewhere notice at their next sync. 0, CF_E_CORRUPT or CF_E_IO. */
int mailbox_repack(struct mailbox *mb);

/* mailbox_set_expunge_delayed: on (store_open_mailbox sets it from expunge_mode): expunges
 * through this handle keep the message files (see mailbox_expunge). Off by default. */
void mailbox_set_expunge_delayed(struct mailbox *mb, int on);

/* mailbox_repack_expired: mailbox_repack that keeps the expunged records whose file was
 * retained (expunged_at set) after cutoff (seconds since the epoch; INT64_MAX drops all), and
 * rewrites only when some record goes. *removed_r (may be NULL): how many went. 0,
 * CF_E_CORRUPT or CF_E_IO. */
int mailbox_repack_expired(struct mailbox *mb, int64_t cutoff, uint32_t *removed_r);

/* mailbox_expunged_due: how many expunged records mailbox_repack_expired with cutoff would
 * drop (*due_r) and keep for unexpunge (*kept_r), under the shared lock. 0 or an error. */
int mailbox_expunged_due(struct mailbox *mb, int64_t cutoff, uint32_t *due_r, uint32_t *kept_r);

/* mailbox_retained: the expunged records whose files were retained and that mailbox_unexpunge
 * would bring back (uids NULL: all of them, else only those among the n uids): a record whose
 * GUID and internal date match a live message is left out (already there: a restore cut
 * short before it dropped the original), and of several alike only the highest uid counts.
 * *recs_r (caller frees) in uid order, *n_r of them. 0, CF_E_CORRUPT or CF_E_IO. */
int mailbox_retained(struct mailbox *mb, const uint32_t *uids, size_t n,
                     struct index_record **recs_r, size_t *n_r);

/* mailbox_unexpunge: bring back the retained expunged messages recs (from mailbox_retained) as
 * new messages in one append (new uids, their system flags but \Deleted, keywords and
 * internal date; q as for mailbox_append), then, in a second commit, mark the originals as
 * having no file and unlink their files. A crash between the two leaves the originals hidden
 * and left out by mailbox_retained: never a duplicate, never a loss. new_uids_r (n slots, may
 * be NULL) gets each new uid, 0 for one no longer retained. Returns how many came back (>= 0),
 * or mailbox_append's errors (nothing came back). */
int mailbox_unexpunge(struct mailbox *mb, const struct index_record *recs, size_t n,
                      const struct mailbox_quota *q, uint32_t *new_uids_r);

/* What changed since the session's last sync (see mailbox_sync). */
struct mailbox_changes {
    uint32_t *expunged_msgnos;  /* in the order to send EXPUNGE (each valid when sent) */
    uint32_t *expunged_uids;    /* same order */
    size_t n_expunged;
    uint32_t *changed_uids;     /* messages still in the view whose modseq grew (flags) */
    struct index_record *changed_recs;   /* their records as the sync read them under the
                                          * lock (checksum checked): a reply needs no second
                                          * lookup, each a page or more of a fresh mapping */
    size_t n_changed;
    uint32_t n_new;             /* messages appended to the view */
    uint32_t exists;            /* the view's size after the sync */
    uint64_t highestmodseq;
};
void mailbox_changes_init(struct mailbox_changes *c);
void mailbox_changes_fini(struct mailbox_changes *c);

#define MAILBOX_SYNC_NO_EXPUNGE 1   /* keep expunged messages in the view for now (RFC 3501
                                        section 7.4.1: no EXPUNGE during FETCH/STORE/SEARCH) */

/* mailbox_sync: bring the session view up to date with the index under a shared lock and say
 * what changed (ch is reset first). Cheap when nothing changed (header compare). 0,
 * CF_E_NOTFOUND (mailbox deleted), CF_E_CORRUPT or CF_E_IO. */
int mailbox_sync(struct mailbox *mb, unsigned flags, struct mailbox_changes *ch);

/* Session view: messages numbered 1..mailbox_count() (IMAP message sequence numbers). A view
 * made from the group summary is lazy: mailbox_uid and mailbox_msgno read the records of the
 * group of 1,024 a number falls in the first time (one pread under the shared lock, taken
 * when the handle holds none), so they may block; their answers are the same. */
uint32_t mailbox_count(const struct mailbox *mb);
uint32_t mailbox_uid(const struct mailbox *mb, uint32_t msgno);   /* 0 if out of range */
uint32_t mailbox_msgno(const struct mailbox *mb, uint32_t uid);   /* 0 if not in the view */
/* mailbox_msgno_ge: the smallest message number whose uid is >= uid, or count + 1. A lazy
 * view reads only the group that holds uid (found by the groups' last uids), not the groups
 * a search by message number would pass through. */
uint32_t mailbox_msgno_ge(const struct mailbox *mb, uint64_t uid);

/* mailbox_view_lazy: 1 when mb's view is a lazy one (made from the group summary: message
 * numbers of a group of 1,024 records are read when first asked for, which may block on the
 * shared lock), 0 when it is an array. For tests and benchmarks. */
int mailbox_view_lazy(const struct mailbox *mb);

/* mailbox_view_state: where mb's session view stands, for handing the session to another
 * process (imapd's hibernation): the highest uid it ever held and the mod-sequence up to which
 * its flag changes were reported. The uids themselves are mailbox_uid(mb, 1..count). */
void mailbox_view_state(const struct mailbox *mb, uint32_t *maxuid_r, uint64_t *modseq_r);

/* mailbox_view_restore: give mb, a handle without a view yet (mailbox_open_target), the view
 * another process saved with mailbox_view_state: uids (n of them, ascending, at most maxuid;
 * taken over and freed by mb) as messages 1..n. The next mailbox_sync compares it with the
 * records and reports the expunges, arrivals and flag changes since, exactly as it would have
 * to the session that saved it. Does not block. */
void mailbox_view_restore(struct mailbox *mb, uint32_t *uids, uint32_t n, uint32_t maxuid,
                          uint64_t modseq);

/* mailbox_first_unseen: the message number of the first message of the view whose record has
 * neither \Seen nor EXPUNGED now (RFC 3501 [UNSEEN]), 0 if none, or <0 (lock error). Reads the
 * records in order under the shared lock and stops at the first: costs what precedes it. */
int mailbox_first_unseen(struct mailbox *mb);

/* mailbox_first_unseen_synced: the same, for a caller that has just synced mb (SELECT, right
 * after the open or reuse that brought the view up to date under the lock): as of that sync
 * when the handle knows it without reading (the view came from the uid column, which named
 * the first unseen message, and the header has not changed since), without taking the lock
 * again; otherwise mailbox_first_unseen. Changes made after the sync are the next sync's. */
int mailbox_first_unseen_synced(struct mailbox *mb);

/* mailbox_header: the index header as of the last lock (open, sync or a change). */
const struct index_header *mailbox_header(const struct mailbox *mb);

/* mailbox_record: the current index record of uid (from the mapping; checksum checked). 1
 * found, 0 absent, CF_E_CORRUPT (logged). An expunged record not yet repacked is found, with
 * FLAG_EXPUNGED set. */
int mailbox_record(struct mailbox *mb, uint32_t uid, struct index_record *r);

/* mailbox_record_next: mailbox_record for a walk over ascending uids (FETCH 1:*, SEARCH):
 * *hint (0 to start) is where the previous lookup of the walk left off, and is moved past
 * the record found. The record is looked for a few positions from the hint first, so a walk
 * reads the mapping in order instead of a lookup per uid (each a page or more of it). Any
 * hint gives the right answer (a wrong one costs the full lookup). Same returns as
 * mailbox_record. */
int mailbox_record_next(struct mailbox *mb, uint32_t uid, uint32_t *hint,
                        struct index_record *r);

/* What changed after a modseq (RFC 7162 CHANGEDSINCE, QRESYNC), from mailbox_modseq_scan. */
struct mailbox_modseq_scan {
    uint32_t *changed;          /* uids of live records with a higher modseq, ascending */
    size_t n_changed;
    struct index_record *changed_recs;   /* their records as scanned (checksum checked);
                                          * uid 0 where the check failed: read it again */
    uint32_t *expunged;         /* uids of expunged records still in the file with a higher
                                 * modseq (expunged after it), ascending */
    size_t n_expunged;
    uint64_t highestmodseq;     /* of the index at the scan */
    uint64_t vanished_modseq;   /* expunged is complete only when since >= this (index.h) */
    int view_current;           /* the session's view was made from this very header (its
                                 * last sync saw every change) and holds no message kept
                                 * after its expunge: each message of the view is live, so a
                                 * message not listed in changed has modseq <= since */
};

/* mailbox_modseq_scan: under the shared lock, the records
 * whose modseq is above since, live ones and expunged ones apart (*s, released with
 * mailbox_modseq_scan_fini even on error). Reads only the uid, flags and modseq of each
 * record (no checksum, no cache, no message file), and of those only the blocks of 32 records
 * whose highest modseq is above since, when a summary of the current header is at hand (the
 * session's, or the uid column's); else one pass over all of them, which makes the summary.
 * 0, CF_E_CORRUPT or CF_E_IO. */
int mailbox_modseq_scan(struct mailbox *mb, uint64_t since, struct mailbox_modseq_scan *s);
void mailbox_modseq_scan_fini(struct mailbox_modseq_scan *s);

/* mailbox_keywords: the mailbox's keyword names, index k = user flag bit k. Owned by mb,
 * valid until the next call into mb. */
const struct strarr *mailbox_keywords(struct mailbox *mb);

/* mailbox_message_path: "DIR/<uid>." (caller frees). */
char *mailbox_message_path(const struct mailbox *mb, uint32_t uid);

/* mailbox_message_open: open the message file of uid read-only. *fd_r (caller closes),
 * *size_r (may be NULL). 0, CF_E_NOTFOUND, CF_E_IO. */
int mailbox_message_open(struct mailbox *mb, uint32_t uid, int *fd_r, uint64_t *size_r);

/* mailbox_message_map: map the message file of uid read-only; free with
 * mailbox_message_unmap. An empty message maps to "" with length 0. 0, CF_E_NOTFOUND, CF_E_IO. */
int mailbox_message_map(struct mailbox *mb, uint32_t uid, const char **p_r, size_t *len_r);
void mailbox_message_unmap(const char *p, size_t len);

/* mailbox_cache_fetch: the cached fields of uid into e (cache_entry_init'ed by the caller).
 * A missing or damaged cache record (checksum, uid) is logged and rebuilt in memory from the
 * message file, so the answer is always right. 0, CF_E_NOTFOUND (no such uid or file),
 * CF_E_CORRUPT (index record) or CF_E_IO. */
int mailbox_cache_fetch(struct mailbox *mb, uint32_t uid, struct cache_entry *e);

/* mailbox_lock_shared / mailbox_unlock: hold the shared lock across several reads for one
 * consistent snapshot (the header is refreshed). Changes (append, store, ...) through this
 * handle fail with CF_E_INTERNAL while it is held. 0, CF_E_CORRUPT or CF_E_IO. */
int mailbox_lock_shared(struct mailbox *mb);
void mailbox_unlock(struct mailbox *mb);

/* mailbox_claim_recent: \Recent for one session (RFC 3501 section 2.3.2). The mailbox keeps a
 * high-water mark (side file "recent"): uids below it were already claimed by some session.
 * claim 1 (a read-write SELECT, or new messages seen by its sync): under the write lock, the
 * uids [*first_r, *end_r) become this session's recent ones and the mark moves to uidnext
 * (fast path without the lock when nothing new arrived: *first_r == *end_r). claim 0 (EXAMINE):
 * nothing changes; uids >= *first_r are unclaimed (*end_r is then uidnext). 0, CF_E_IO,
 * CF_E_CORRUPT. Blocks on the lock. The claim takes the mailbox's write lock without
 * refreshing the header: uidnext is the handle's as of its last refresh (what the session has
 * seen). After the first claim the handle keeps the file open; each later claim checks, under
 * the lock, that the path still names that file (one stat) and otherwise opens it again. */
int mailbox_claim_recent(struct mailbox *mb, int claim, uint32_t *first_r, uint32_t *end_r);

/* mailbox_recent_stats: opens of "recent" files by this process (for the tests) */
struct mailbox_recent_stats {
    uint64_t opens;
};
extern struct mailbox_recent_stats mailbox_recent_stats;

const char *mailbox_uniqueid(const struct mailbox *mb);
const char *mailbox_dir(const struct mailbox *mb);
/* mailbox_partition: the partition directory mb was opened on (as given to mailbox_open) */
const char *mailbox_partition(const struct mailbox *mb);

/* mailbox_status: the index header of a mailbox without opening a session (STATUS, LIST
 * counters): one shared lock, one read of the header area. 0, CF_E_NOTFOUND, CF_E_CORRUPT,
 * CF_E_IO. */
int mailbox_status(const char *partition, const char *uniqueid, struct index_header *h);

/* mailbox_delete: remove the mailbox directory and everything in it (under the write lock).
 * 0, CF_E_NOTFOUND or CF_E_IO. */
int mailbox_delete(const char *partition, const char *uniqueid);

/* mailbox_rename: give the mailbox a new internal name (rewrites its header file), and when
 * new_partition differs from old_partition move its directory there: copy every file (hard
 * links when on one file system), fsync, write the header last, then remove the old
 * directory. 0, CF_E_NOTFOUND, CF_E_EXISTS (target directory present), CF_E_PARSE or CF_E_IO. */
int mailbox_rename(const char *old_partition, const char *new_partition, const char *uniqueid,
                   const char *new_name);

/* mailbox_fault_hook: for crash tests only, NULL otherwise. When set, a commit calls it at the
 * points where a kill -9 or an I/O error leaves something to recover from: "record" after each
 * write of records rewritten in place (STORE, EXPUNGE: one write per run of adjacent records),
 * "commit" just before writing the header slot, "index_sync" in place of the index flush that
 * makes a commit durable, and "restore_sync" in
 * place of the flush after a failed commit put the previous header slot back. The hook
 * returns 0, or an errno value that makes the flush at an "..._sync" point fail with it. A test
 * forks, makes the hook _exit at the chosen call (or fail it), and checks what the next opener
 * sees. */
extern int (*mailbox_fault_hook)(const char *point);

/* mailbox_boot_id_hook: for tests only, NULL otherwise. When set, it gives the boot id that
 * the index's verified-counts marker is compared with and written with (index.h) instead of
 * the kernel's: a test simulates the reboot after a power loss by changing it. It fills id and
 * returns 0, or returns -1 for "unknown" (then every open recounts, as without a marker). */
extern int (*mailbox_boot_id_hook)(uint8_t id[16]);

/* mailbox_recounts: how many full recounts of the records (index_recount) this process did,
 * for tests and benchmarks. */
extern uint64_t mailbox_recounts;

/* mailbox_sync_stats: the fsync/fdatasync calls this process made for mailboxes (message
 * files, mailbox directories, index files), for tests and for measuring group commit. */
struct mailbox_sync_stats {
    uint64_t file, dir, index;
    uint64_t dir_shared;     /* directory fsyncs skipped: another writer's covered the names */
    uint64_t record_writes;  /* writes of records changed in place (STORE, EXPUNGE): one per
                              * run of adjacent records */
    uint64_t flaglog;        /* fdatasyncs of the flag change log (STORE commits) */
};

/* mailbox_uid_staged: 1 when an append in progress (in any process) has claimed uid of the
 * mailbox whose lock file is open as lock_fd: its message file may exist above uidnext and
 * must be left alone; 0 when not (such a file is garbage of a killed append). */
int mailbox_uid_staged(int lock_fd, uint32_t uid);
extern struct mailbox_sync_stats mailbox_sync_stats;

/* mailbox_summarize: what an append computes from a message's bytes: the cache fields
 * (ENVELOPE, BODYSTRUCTURE, BODY, section table, header block up to CACHE_HEADER_MAX) into e
 * (reset first, uid set), and when rec is not NULL its file-derived fields (size, header
 * size, body lines, sent date from the unfolded Date: field, SHA-1 GUID). Used by append,
 * the cache rebuild and reconstruct. Never fails: malformed input gets a best-effort summary. */
void mailbox_summarize(const char *p, size_t len, uint32_t uid, struct cache_entry *e,
                       struct index_record *rec);
/* (mailbox_summarize also fills the cache's RFC 8970 preview field (mime_preview, possibly
 * empty) and the record's threadid (mailbox_threadid).) */

/* mailbox_threadid: the RFC 8474 THREADID number of a message from its top-level header block
 * hdr[0,len) and its GUID: the first 8 bytes (little-endian) of the SHA-1 of its thread root
 * Message-ID (mime_thread_root), or of the GUID when the header names none; never 0. */
uint64_t mailbox_threadid(const char *hdr, size_t len, const uint8_t guid[20]);

#endif
