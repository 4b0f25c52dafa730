/* quotadb.h: quota roots, "quota.db" in the kv environment: root name -> limits and usage.
 *
 * A quota root is a mailbox name (usually a user's INBOX, "user/fred"); it governs itself and
 * every mailbox below it that has no nearer root (RFC 2087, RFC 9208). Key: the root name.
 * Value, version 1 (text): "1 STORAGE_KIB MESSAGES USED_BYTES USED_MESSAGES", decimal, a limit
 * of -1 meaning none (documented in man/coffer-store.5).
 *
 * The ledger: beside each root, quota.db keeps what each mailbox it governs has been counted
 * for: key ROOT NUL UNIQUEID, value "1 BYTES MESSAGES" (a mailbox holding nothing has no
 * record), and a marker ROOT NUL -> "1" saying the records are complete. Every change of a
 * root's usage made through quotadb_settle or quotadb_set_ledger changes the usage and the
 * records in one transaction, so the usage is always the sum of the records; a change made
 * any other way (quotadb_set_usage, quotadb_apply_delta, a root created or deleted below it)
 * drops the root's records and marker, and the next settle recounts (store.h "Quota
 * accounting" has the protocol). quotadb_foreach and quotadb_get never show ledger records.
 *
 * Functions taking txn accept NULL (own transaction, deadlocks retried; kv.h). */
#ifndef COFFER_STORE_QUOTADB_H
#define COFFER_STORE_QUOTADB_H
#include "core/buf.h"
#include "store/kv.h"
#include <stdint.h>

#define QUOTADB_DB "quota.db"
#define QUOTA_UNLIMITED (-1)
/* The largest STORAGE limit: its byte count must fit in int64_t (RFC 9208 section 4.1.3 limits
 * are 63-bit numbers of KiB, which would not). quotadb_set_limits refuses more. */
#define QUOTA_STORAGE_KIB_MAX (INT64_MAX / 1024)

struct quotadb;

struct quota {
    int64_t limit_storage_kib;   /* KiB (1024 bytes), or QUOTA_UNLIMITED */
    int64_t limit_messages;      /* messages, or QUOTA_UNLIMITED */
    int64_t used_bytes;
    int64_t used_messages;
};

/* quotadb_open / _close / _kv: as mboxlist_open (mboxlist.h). */
int quotadb_open(struct kv_env *env, struct quotadb **q_r);
void quotadb_close(struct quotadb **qp);
struct kv_db *quotadb_kv(struct quotadb *q);

/* quotadb_get: 1 and *qt when root is a quota root, 0 when not, or an error (CF_E_CORRUPT for an
 * undecodable record, logged). */
int quotadb_get(struct quotadb *q, struct kv_txn *txn, const char *root, struct quota *qt);

/* quotadb_set_limits: make root a quota root with these limits (QUOTA_UNLIMITED for none),
 * keeping its usage (0 for a new root, without a ledger: the first settle or the quota tool
 * counts its messages; the enclosing root's ledger is dropped, it governs fewer). 0,
 * CF_E_PARSE (invalid root name or negative limit other than -1), CF_E_LIMIT (storage_kib
 * above QUOTA_STORAGE_KIB_MAX), or a kv error. */
int quotadb_set_limits(struct quotadb *q, struct kv_txn *txn, const char *root,
                       int64_t storage_kib, int64_t messages);

/* quotadb_set_usage: overwrite root's usage (after a recount), dropping its ledger (the next
 * settle recounts; store_quota_fix sets both). 0, CF_E_NOTFOUND, kv error. */
int quotadb_set_usage(struct quotadb *q, struct kv_txn *txn, const char *root, int64_t bytes,
                      int64_t messages);

/* quotadb_delete: root stops being a quota root (with its ledger; the enclosing root's ledger
 * is dropped too: it governs root's mailboxes again). 0, CF_E_NOTFOUND, or a kv error. */
int quotadb_delete(struct quotadb *q, struct kv_txn *txn, const char *root);

/* quotadb_find_root: the quota root governing mailbox (the longest root equal to mailbox or
 * an ancestor of it at a '/' boundary) into root (reset first). 1 found, 0 none, or an error. */
int quotadb_find_root(struct quotadb *q, struct kv_txn *txn, const char *mailbox,
                      struct buf *root);

/* quota_would_exceed: whether adding add_bytes and add_messages to qt passes a limit (1) or
 * not (0). Removals (negative numbers) never exceed. Overflow-checked: a limit too large for
 * its byte count (a record written before QUOTA_STORAGE_KIB_MAX) counts as that maximum. */
int quota_would_exceed(const struct quota *qt, int64_t add_bytes, int64_t add_messages);

/* quota_percent: how full qt is, in percent of its fuller resource (0 with no limit; 100 for
 * any usage of a limit 0), computed without overflow for any stored numbers. */
int64_t quota_percent(const struct quota *qt);

/* quotadb_apply_delta: add delta_bytes and delta_messages (either sign) to root's usage,
 * dropping its ledger (for tests and repairs; the store settles instead); with txn NULL the
 * commit is KV_TXN_NOSYNC. When
 * enforce is set and the usage grows past a limit, nothing changes and CF_E_QUOTA is
 * returned. Usage never goes below 0 (clamped and logged: it means a miscount). 0,
 * CF_E_NOTFOUND (no such root), CF_E_QUOTA, or a kv error. */
int quotadb_apply_delta(struct quotadb *q, struct kv_txn *txn, const char *root,
                        int64_t delta_bytes, int64_t delta_messages, int enforce);

/* quotadb_settle: make the usage counted for mailbox uniqueid under root equal bytes and
 * messages (what its index header holds now; 0, 0 for a mailbox gone), adding the difference
 * to root's usage, in one transaction that is not fsynced. The caller holds root's lock.
 * *dbytes_r, *dmessages_r (may be NULL): the difference applied. 0 settled, 1 root has no
 * complete ledger (nothing changed: recount it with quotadb_set_ledger), CF_E_NOTFOUND (no
 * such root), or a kv error. */
int quotadb_settle(struct quotadb *q, const char *root, const char *uniqueid, int64_t bytes,
                   int64_t messages, int64_t *dbytes_r, int64_t *dmessages_r);

/* What one mailbox counts for under its root (quotadb_set_ledger). */
struct quotadb_applied {
    const char *uniqueid;
    int64_t bytes, messages;
};

/* quotadb_set_ledger: after a recount under root's lock: root's ledger becomes exactly v[0..n)
 * and its usage their sum, with the marker, in one (fsynced) transaction. 0, CF_E_NOTFOUND,
 * CF_E_PARSE (a negative count), or a kv error. */
int quotadb_set_ledger(struct quotadb *q, const char *root, const struct quotadb_applied *v,
                       size_t n);

/* quotadb_ledger_matches: 1 when root's ledger is complete and holds exactly v[0..n) (records
 * of 0, 0 count as absent), 0 when not, or a kv error. Not a snapshot: hold root's lock. */
int quotadb_ledger_matches(struct quotadb *q, const char *root,
                           const struct quotadb_applied *v, size_t n);

/* quotadb_foreach: every root starting with prefix, in order; cb returns 0 to go on, > 0 to
 * stop, < 0 for an error. Returns 0, cb's value, or an error. */
typedef int quotadb_foreach_fn(const char *root, const struct quota *qt, void *rock);
int quotadb_foreach(struct quotadb *q, struct kv_txn *txn, const char *prefix,
                    quotadb_foreach_fn *cb, void *rock);

#endif
