/* store.h: the mail store as the services and tools see it: one opaque handle on the
 * database environment and its databases (the fields are lib/store's, store-int.h; the
 * databases are reached through store-db.h), and mailbox-level operations (create with parents, delete,
 * rename, open, status) that keep the mailbox list and the mailbox directories in step.
 *
 * Crash ordering (coffer-store(5)): create makes the directory first, then the list entry;
 * delete renames the directory to a tombstone first, then removes the entry, then the files;
 * a cross-partition rename copies first and updates the entry after. A crash in between leaves
 * an orphan directory or tombstone that reconstruct adopts or finishes, never a list entry
 * that points at half a mailbox. */
#ifndef COFFER_STORE_STORE_H
#define COFFER_STORE_STORE_H
#include "core/config.h"
#include "store/mailbox.h"
#include "store/mboxlist.h"   /* struct mboxlist_entry, handed out by the lookups */
#include "store/quotadb.h"    /* struct quota, QUOTA_UNLIMITED */

struct store;

/* store_open: open configdir/db and every database. 0 or CF_E_IO (logged). */
int store_open(const struct config *cfg, struct store **st_r);
void store_close(struct store **stp);

/* store_partition_path: the directory of a partition by name, or NULL when the config has
 * no such partition. */
const char *store_partition_path(const struct store *st, const char *partition);

#define STORE_CREATE_PARENTS 0x1   /* create missing ancestors too (RFC 3501 section 6.3.3) */

/* store_create: create the mailbox with internal name `name`. partition NULL: the parent's
 * partition when the parent exists, else partition_select(). acl NULL: the default (the owner
 * of a personal mailbox gets every right, ACL_RIGHTS_ALL; a new child inherits its parent's ACL).
 * flags: RFC 6154 special-use words or NULL. 0, CF_E_EXISTS, CF_E_PARSE (invalid name),
 * CF_E_NOTFOUND (unknown partition, or a missing parent without STORE_CREATE_PARENTS), or
 * an I/O / database error. */
int store_create(struct store *st, const char *name, const char *partition, const char *acl,
                 const char *flags, unsigned opts);

/* store_create_many: store_create(names[i], partition, NULL, NULL, 0) for a batch of names,
 * for provisioning many mailboxes at once: each name's parent must exist already or come
 * earlier in names. The directories are written without an fsync each, then the partitions
 * are synced once (syncfs), then every list entry is committed in one transaction: the same
 * order, and the same state after a crash, as one create (directory first, reconstruct adopts
 * an orphan), at a fraction of the disk flushes. results[i] gets 0 or the error store_create
 * would give for names[i] (CF_E_EXISTS, CF_E_PARSE, CF_E_NOTFOUND). Returns the number
 * created, or an error of the whole batch (nothing created, directories removed). Keep a
 * batch to some hundreds: its transaction holds a lock per page it writes. Blocks on disk. */
int store_create_many(struct store *st, const char *const *names, size_t n,
                      const char *partition, int *results);

/* store_delete: delete one mailbox (not its children) and its messages, subscriptions stay
 * (RFC 3501 section 6.3.4), seen state goes (with delete_mode delayed: the mailbox is hidden
 * instead, store-retained.h, and its seen state goes when coffer expire removes it). Its
 * quota root stops counting it (its ledger record goes with its usage), under the root's
 * lock (see "Quota accounting" below). 0, CF_E_NOTFOUND, or an
 * error (CF_E_IO when the quota lock cannot be taken: nothing was deleted). */
int store_delete(struct store *st, const char *name);

#define STORE_DELETE_NOW 0x1   /* remove at once whatever delete_mode says */

/* store_delete_opts: store_delete with options: STORE_DELETE_NOW for a mailbox its own caller
 * created moments ago and now takes back (a refused restore): nothing to keep for undelete. */
int store_delete_opts(struct store *st, const char *name, unsigned opts);

/* store_rename: rename oldname and every mailbox below it; when new_partition is given (and
 * differs) the mailbox oldname itself moves there (its children stay where they are). A quota
 * root that is oldname or below it is renamed with it (limits and usage) unless its new name
 * is a root already. A mailbox whose governing quota root otherwise changes with its name
 * takes its usage along (credited to the old root, charged to the new one, never refused for
 * being over the limit), under both roots' locks. Returns the number renamed (>= 1) or
 * mboxlist_rename's errors. */
int store_rename(struct store *st, const char *oldname, const char *newname,
                 const char *new_partition);

/* store_lookup: mboxlist_lookup without a transaction. */
int store_lookup(struct store *st, const char *name, struct mboxlist_entry *e);

/* store_open_mailbox: look up name and open a session on it. When the directory is not on the
 * recorded partition but on another one (a cross-partition move cut short by a crash), the
 * list entry is corrected and logged. e (may be NULL) receives the list entry.
 * 0, CF_E_NOTFOUND, CF_E_CORRUPT, CF_E_IO. */
int store_open_mailbox(struct store *st, const char *name, struct mboxlist_entry *e,
                       struct mailbox **mb_r);

/* store_open_select: store_open_mailbox for SELECT and EXAMINE: the first unseen message is
 * found under the open's lock (mailbox_open_select), also when a parked session is reused. */
int store_open_select(struct store *st, const char *name, struct mboxlist_entry *e,
                      struct mailbox **mb_r);

/* store_is_mailbox: 1 when mb is an open handle on the mailbox e (a fresh list entry) names,
 * on the partition store_open_target would open it on: a caller that holds such a handle
 * (the selected mailbox) may write through it instead of opening another. 0 otherwise (another
 * mailbox, one deleted and made again under the name, one moved to another partition).
 * Never blocks. */
int store_is_mailbox(struct store *st, const struct mboxlist_entry *e, const struct mailbox *mb);

/* store_open_target: store_open_mailbox through mailbox_open_target: a handle without a view,
 * for writing into the mailbox (delivery, APPEND, COPY/MOVE destination), whose cost does not
 * grow with the mailbox. A parked session (store_park_mailbox) is neither used nor dropped. */
int store_open_target(struct store *st, const char *name, struct mboxlist_entry *e,
                      struct mailbox **mb_r);

/* Kept targets: a process that writes into the same mailboxes again and again (lmtpd's
 * deliveries) keeps up to STORE_KEPT_TARGETS handles without a view open between writes,
 * so that the mailbox's lock file, index, cache and key files (mailbox-sort.h) are not
 * opened, mapped, read and closed for every message.
 *
 * store_take_target: store_open_target, through a kept handle when one is on the mailbox
 * the list names now (same uniqueid and partition: a mailbox deleted and made again under
 * the name, or moved, is opened afresh) and its directory still holds the lock file the
 * handle has open (mailbox_target_check); the handle leaves the kept ones (the caller owns
 * it: mailbox_close, or store_keep_target to give it back). A kept handle is as fresh as an
 * opened one: every change through it takes the lock and reads the index header again.
 * Same returns as store_open_target. */
#define STORE_KEPT_TARGETS 8
int store_take_target(struct store *st, const char *name, struct mboxlist_entry *e,
                      struct mailbox **mb_r);

/* store_keep_target: keep *mbp (a handle from store_take_target or store_open_target; set
 * to NULL) for the next store_take_target of its mailbox; the least recently kept handle is
 * closed when STORE_KEPT_TARGETS are kept. store_drop_targets closes them all (store_close
 * does). */
void store_keep_target(struct store *st, struct mailbox **mbp);
void store_drop_targets(struct store *st);

/* For tests: store_take_target's kept handles used, and mailboxes it opened. */
struct store_target_stats {
    uint64_t hits, opens;
};
extern struct store_target_stats store_target_stats;

/* store_park_mailbox: end the session *mbp (set to NULL) but keep it, in place of any kept
 * before, for store_open_mailbox: opening the same mailbox next reuses it (mailbox_reuse)
 * instead of building the session view again, so a repeat SELECT costs what changed since,
 * not what the mailbox holds. The kept session holds its files open and its view in memory
 * until the next open of another mailbox, store_close, or store_park_mailbox(st, NULL), which
 * only closes the kept one (a service ends each client session with it: a store outlives its
 * sessions in a worker). */
void store_park_mailbox(struct store *st, struct mailbox **mbp);

/* store_status: the index header of a mailbox without a session. */
int store_status(struct store *st, const char *name, struct index_header *h);

/* ---- Quota accounting ----
 * quota.db's usage of a root is the sum of quota_used and exists over the index headers of
 * the mailboxes it governs, and always the sum of the root's ledger records (quotadb.h): what
 * it counts for each mailbox, changed with the usage in one transaction.
 *
 * The settle protocol: every operation that changes a mailbox's usage (store_append,
 * store_copy, store_move in store-mail.h; store_expunge, store_delete, store_rename,
 * store_reconstruct here) takes the root's lock (quotalock.h; before any mailbox lock), settles
 * the mailbox (reads its index header and applies header - ledger record to the root) before
 * its quota check, commits the index, and settles again. A recount under the same lock
 * (store_quota_fix: SETQUOTA, `coffer quota fix`) sees no change half done and rewrites the
 * ledger. The index header is the truth and the ledger rolls forward from it:
 *  - a process killed between its commit and its settle leaves the root behind by exactly
 *    that change, which the next settle of the mailbox applies before its check;
 *  - cofferd recounts the roots a worker killed by a signal had noted (quotalock_set_note),
 *    and every root after an unclean stop (server/cofferd/settle.h);
 *  - usage commits are not fsynced: a power loss loses only what that recount restores.
 * After any mix of operations and kill -9 of workers reaped by cofferd, a recount finds
 * nothing to correct. */

/* store_quota_lock: find the quota root governing mailbox name into root and take its lock
 * (*fd_r, -1 when none; release with quotalock_release). 1 root found and locked, 0 no root
 * (no lock), or an error (CF_E_IO when the lock failed, logged). Take it before any mailbox
 * lock, never while one is held. */
int store_quota_lock(struct store *st, const char *name, struct buf *root, int *fd_r);

/* store_expunge: expunge the \Deleted messages among uids (uids NULL: all of them) of mb, the
 * open mailbox called name (mailbox_expunge), and settle its quota root, under the root's
 * lock. Nothing is counted when the mailbox was deleted or replaced since mb was opened
 * (store_delete settled it). *count_r (may be NULL): how many went. 0,
 * CF_E_IO (quota lock: nothing expunged), or mailbox_expunge's errors. Blocks on both locks. */
int store_expunge(struct store *st, struct mailbox *mb, const char *name, const uint32_t *uids,
                  size_t n, uint32_t *count_r);

/* store_quota_recount: the usage of root counted from the index headers of the mailboxes it
 * governs (root itself and those below it without a nearer root). The caller holds root's
 * lock for a count that no session changes meanwhile. 0 or an error (CF_E_CORRUPT: an index
 * that cannot be read; run reconstruct). */
int store_quota_recount(struct store *st, const char *root, int64_t *bytes_r,
                        int64_t *messages_r);

/* store_quota_fix: under root's lock, recount it; store the count and rewrite the ledger
 * when either differs. *was_r (may be NULL) gets the usage before. 1 the usage was corrected,
 * 0 it was right (a missing or stale ledger is rewritten silently), or an error. */
int store_quota_fix(struct store *st, const char *root, struct quota *was_r);

/* store_quota_set: make root (a mailbox name) a quota root with these limits (QUOTA_UNLIMITED
 * for none) or change an existing root's. A new root counts what its mailboxes hold at once,
 * and the root that governed them until then recounts, under both roots' locks (the
 * enclosing one first). *q_r (may be NULL): the root afterwards. 0, CF_E_PARSE, CF_E_LIMIT
 * (quotadb_set_limits), CF_E_IO (a lock), or a database error. */
int store_quota_set(struct store *st, const char *root, int64_t storage_kib, int64_t messages,
                    struct quota *q_r);

/* store_quota_delete: root stops being a quota root; the enclosing root, which governs its
 * mailboxes again, recounts at once, under both locks. 0, CF_E_NOTFOUND (no such root),
 * CF_E_IO, or a database error. */
int store_quota_delete(struct store *st, const char *root);

/* store_quota_fix_all: store_quota_fix of every root (failures logged, the others still
 * done). *fixed_r (may be NULL): how many were corrected. 0 or the last error. */
int store_quota_fix_all(struct store *st, int *fixed_r);

struct recon_report;

/* store_reconstruct: reconstruct_mailbox (reconstruct.h) of the listed mailbox name (entry e)
 * with flags and rep as there; without RECON_DRY_RUN its quota root follows the records
 * dropped or adopted: credited or charged the change of the index header's usage, under the
 * root's lock (recounted when the old header could not be read). Returns as
 * reconstruct_mailbox. */
int store_reconstruct(struct store *st, const char *name, const struct mboxlist_entry *e,
                      unsigned flags, struct recon_report *rep);

/* store_reconstruct_mailboxlist: reconstruct_mailboxlist; when it changed something (a
 * mailbox adopted back, a delete finished), every quota root is recounted (store_quota_fix):
 * which roots an adopted mailbox falls under is only known afterwards. */
int store_reconstruct_mailboxlist(struct store *st, unsigned flags, struct recon_report *rep);

/* store_ensure_inbox: create user's INBOX (user/NAME) when missing. 1 created, 0 existed,
 * or an error. */
int store_ensure_inbox(struct store *st, const char *user);

#include "store/store-db.h"

#endif
