/* store-db.h: the store's databases as the services and tools use them: the mailbox list,
 * subscriptions, per-user \Seen of shared mailboxes, quota roots and limits, duplicate
 * delivery, the Sieve vacation answers, and whole-database dump/load/checkpoint. Included by
 * store.h; nothing outside lib/store opens a database or sees a transaction.
 *
 * Every call is its own transaction (deadlocks retried inside) and blocks on the database
 * (and, where said, on the disk or a quota root's lock). Errors are CF_E_* codes (core/error.h),
 * logged where they happen. Quota usage (charge, recount, fix) is in store.h. */
#ifndef COFFER_STORE_STORE_DB_H
#define COFFER_STORE_STORE_DB_H
#include "core/buf.h"
#include "core/strarr.h"
#include "store/kv.h"
#include <stdint.h>
#include <stdio.h>

struct config;
struct mboxlist_entry;
struct quota;
struct store;
struct store_txn;

/* ---- mailbox list ---- */

/* store_mailbox_fn: one mailbox (name, its entry e, both valid during the call only); return
 * 0 to go on, > 0 to stop, < 0 for an error. */
typedef int store_mailbox_fn(const char *name, const struct mboxlist_entry *e, void *rock);

/* store_mailbox_foreach: cb for every mailbox whose internal name starts with prefix ("" all,
 * "a/b/" the mailboxes below a/b), in byte order. Not a snapshot: cb runs with no lock held
 * and may call the store. 0, cb's value, or an error. */
int store_mailbox_foreach(struct store *st, const char *prefix, store_mailbox_fn *cb,
                          void *rock);

/* store_mailbox_foreach_tree: cb for name and every mailbox below it (mboxlist_foreach_tree:
 * not the other names that merely start with name). Not a snapshot, as store_mailbox_foreach. */
int store_mailbox_foreach_tree(struct store *st, const char *name, store_mailbox_fn *cb,
                               void *rock);

/* store_has_children: 1 when some mailbox lies below name, 0 when none, or an error. */
int store_has_children(struct store *st, const char *name);

/* store_list_fn: a mailbox for LIST (mboxlist_list_fn in mboxlist.h: extname is user's view
 * of name; when matchlen < strlen(extname) only the ancestor extname[0..matchlen) matched). */
typedef int store_list_fn(const char *extname, size_t matchlen, const char *name,
                          const struct mboxlist_entry *e, void *rock);
/* store_visible_fn: 1 when the caller may see mailbox name (entry e), else 0. */
typedef int store_visible_fn(const char *name, const struct mboxlist_entry *e, void *rock);

/* store_list: every mailbox whose external name for user (NULL: internal names) matches the
 * LIST pattern (UTF-8, '*' and '%'), or has a matching ancestor, skipping those visible()
 * refuses (visible NULL: none), as mboxlist_list_visible. 0, cb's value, CF_E_LIMIT for a
 * pattern over MBOXNAME_PATTERN_MAX, or an error. */
int store_list(struct store *st, const char *user, const char *pattern,
               store_visible_fn *visible, store_list_fn *cb, void *rock);

/* store_list_granted: store_list for a user who is no administrator: the other users' and
 * shared mailboxes come from the list's grant index (mboxlist_list_granted), so the cost
 * follows what user may see, not how many mailboxes the server holds. */
int store_list_granted(struct store *st, const char *user, const char *pattern,
                       store_visible_fn *visible, store_list_fn *cb, void *rock);

/* store_lookup_in: store_lookup (store.h) read through txn, the transaction a rename check
 * runs in (txn NULL: a transaction of its own). 1 and e (may be NULL) when name exists, 0 when
 * not, or an error; inside txn CF_E_AGAIN, which the check must return as it is. */
int store_lookup_in(struct store *st, struct store_txn *txn, const char *name,
                    struct mboxlist_entry *e);

/* store_rename_check_fn: asked, inside the rename's transaction and before anything is
 * written, about each mailbox that would move (oldname, its entry e, the name it would get).
 * Lookups that must see the same state go through store_lookup_in(st, txn, ...), never a
 * transaction of their own (it would wait on this one). 0 allows; a negative code (or > 0,
 * taken as CF_E_PERM) refuses the whole rename. May run more than once (deadlock retries), so
 * it must have no other effects. */
typedef int store_rename_check_fn(struct store_txn *txn, const char *oldname,
                                  const char *newname, const struct mboxlist_entry *e,
                                  void *rock);

/* store_rename_with_check: store_rename (store.h) in the mailbox's own partition, refused as a
 * whole (nothing written) when check refuses one of the mailboxes that move: the permission
 * check sees exactly the set moved (RFC 4314 section 4, RENAME). Returns as store_rename, or
 * check's error. Blocks on the quota roots' locks, the database and the disk. */
int store_rename_with_check(struct store *st, const char *oldname, const char *newname,
                            store_rename_check_fn *check, void *rock);

/* store_raise_uidvalidity: make the list's last given-out UIDVALIDITY at least seen (a value
 * found on disk, or restored from a dump), so later mailboxes get higher ones; never lowered.
 * seen 0 only reads it. The value after the call into *last_r (may be NULL). 0 or an error. */
int store_raise_uidvalidity(struct store *st, uint32_t seen, uint32_t *last_r);

/* ---- subscriptions (RFC 3501 section 6.3.6) ---- */

/* store_subscribe: subscribe user to mailbox (which need not exist). With limited set, a new
 * subscription past max_subscriptions_per_user (when > 0) is CF_E_LIMIT: LSUB reads the list
 * whole. 0 (also when already subscribed), CF_E_LIMIT, CF_E_PARSE (invalid user or name), or
 * an error. */
int store_subscribe(struct store *st, const char *user, const char *mailbox, int limited);

/* store_unsubscribe: 0 (also when not subscribed), CF_E_PARSE, or an error. */
int store_unsubscribe(struct store *st, const char *user, const char *mailbox);

/* store_subscriptions: append user's subscribed internal names to out (the caller's), in byte
 * order. 0 or an error. */
int store_subscriptions(struct store *st, const char *user, struct strarr *out);

/* ---- per-user \Seen of shared mailboxes (RFC 3501 section 2.3.2) ---- */

/* store_seen_get: user's \Seen set of the mailbox with unique id uniqueid, as IMAP sequence
 * set text, into seqset (reset first). 1 stored, 0 none (seqset empty), or an error
 * (CF_E_CORRUPT for a bad record, logged). */
int store_seen_get(struct store *st, const char *uniqueid, const char *user, struct buf *seqset);

/* store_seen_set: store user's set (printable ASCII without spaces, "" for none); not fsynced
 * (a crash may only make messages unseen again). 0, CF_E_PARSE, or an error. */
int store_seen_set(struct store *st, const char *uniqueid, const char *user, const char *seqset);

/* ---- quota roots and limits (RFC 9208); usage accounting is in store.h ---- */

/* store_quota_get: 1 and *qt (may be NULL) when root is a quota root, 0 when not, or an error
 * (CF_E_CORRUPT for a bad record, logged). */
int store_quota_get(struct store *st, const char *root, struct quota *qt);

/* store_quota_root: the quota root governing mailbox (the nearest of itself and its ancestors)
 * into root (reset first). 1 found, 0 none, or an error. */
int store_quota_root(struct store *st, const char *mailbox, struct buf *root);

/* store_quota_of: store_quota_root and store_quota_get in one: 1 with root and *qt filled, 0
 * when mailbox has no root, or an error. */
int store_quota_of(struct store *st, const char *mailbox, struct buf *root, struct quota *qt);

/* store_quota_set, store_quota_delete: in store.h (they move usage between roots). */

/* store_quota_fn: one root and its record (valid during the call); 0 goes on, > 0 stops,
 * < 0 is an error. */
typedef int store_quota_fn(const char *root, const struct quota *qt, void *rock);

/* store_quota_foreach: cb for every quota root starting with prefix ("" all), in byte order.
 * 0, cb's value, or an error. */
int store_quota_foreach(struct store *st, const char *prefix, store_quota_fn *cb, void *rock);

/* ---- duplicate delivery (dupdb.h) ---- */

/* store_dup_check: 1 and the earlier delivery's time in *when (may be NULL) when msgid (as
 * normalised by the caller) was delivered to mailbox, 0 when not, CF_E_PARSE (empty msgid or
 * mailbox), or an error. */
int store_dup_check(struct store *st, const char *msgid, const char *mailbox, int64_t *when);

/* store_dup_mark: record the delivery of msgid to mailbox at time when (not fsynced: a crash
 * at worst lets a duplicate through). 0, CF_E_PARSE, or an error. */
int store_dup_mark(struct store *st, const char *msgid, const char *mailbox, int64_t when);

/* store_dup_expire: remove the records of deliveries before `before` (and undecodable ones),
 * in small batches so deliveries are not held up; with dry_run only count them. The count
 * (>= 0) or an error. */
int store_dup_expire(struct store *st, int64_t before, int dry_run);

/* ---- Sieve vacation answers (RFC 5230), "vacation.db" ---- */

/* store_vacation_check: 1 when user's vacation action answered sender less than days days
 * before now (so it must not answer again), 0 when not (or no answer recorded), or an error.
 * The database is created on first use. */
int store_vacation_check(struct store *st, const char *user, const char *sender, int days,
                         int64_t now);

/* store_vacation_mark: record that user's vacation action answered sender at now (not
 * fsynced: a crash may at worst answer twice). 0 or an error. */
int store_vacation_mark(struct store *st, const char *user, const char *sender, int64_t now);

/* store_vacation_expire: remove the answers recorded before `before` (and unreadable ones);
 * with dry_run only count them. The count (>= 0), CF_E_NOTFOUND when lmtpd never made the
 * database (nothing is created), or an error. */
int store_vacation_expire(struct store *st, int64_t before, int dry_run);

/* ---- URLAUTH mailbox access keys (RFC 4467 section 3), "urlauth.db" ---- */

/* Bytes of a mailbox access key (RFC 4467 section 7: at least 128 bits). */
#define STORE_URLAUTH_KEY_LEN 32

/* store_urlauth_key: user's access key for the mailbox with unique id uniqueid into key
 * (STORE_URLAUTH_KEY_LEN bytes). With create, a missing key is made (OpenSSL RAND_bytes) in
 * the same transaction as the lookup, so two sessions never make two. 1 found (or made), 0
 * none, or an error (CF_E_CORRUPT for an unreadable record, logged). The database is created
 * on first use. */
int store_urlauth_key(struct store *st, const char *user, const char *uniqueid, int create,
                      unsigned char *key);

/* store_urlauth_reset: replace user's key for uniqueid by a new random one (RESETKEY
 * mailbox: every URL made with the old key fails); uniqueid NULL removes all of user's keys
 * (RESETKEY without arguments). 0 or an error. */
int store_urlauth_reset(struct store *st, const char *user, const char *uniqueid);

/* store_urlauth_restore: give user's record for uniqueid (a mailbox `coffer restore` made)
 * the key old (STORE_URLAUTH_KEY_LEN bytes) of the dumped mailbox as its restored key, which
 * verifies URLs only for UIDs below uidlimit while the mailbox's UIDVALIDITY is uidvalidity
 * (the messages the dump held: whoever has the dump knows old). The current key, used for
 * every new URL, stays or is made fresh. 0 or an error (CF_E_PARSE for a zero bound). */
int store_urlauth_restore(struct store *st, const char *user, const char *uniqueid,
                          const unsigned char *old, uint32_t uidvalidity, uint32_t uidlimit);

/* store_urlauth_restored: user's restored key for uniqueid into old, with its bounds. 1 when
 * there is one, 0 none, or an error (CF_E_CORRUPT for an unreadable record). */
int store_urlauth_restored(struct store *st, const char *user, const char *uniqueid,
                           unsigned char *old, uint32_t *uidvalidity, uint32_t *uidlimit);

/* store_urlauth_forget: remove every user's key for the mailbox with unique id uniqueid (the
 * mailbox is deleted; a rename keeps the unique id, so the keys stay valid). The number
 * removed or an error; nothing is created when no key was ever made. */
int store_urlauth_forget(struct store *st, const char *uniqueid);

/* ---- annotations of mailboxes and the server (RFC 5464 METADATA), "metadata.db" ----
 * Entries are named in full ("/shared/comment", "/private/vendor/x/y"), matched without regard
 * to ASCII case and reported lower-cased. A mailbox is named by its unique id (mboxlist.h):
 * a rename keeps its annotations, store_delete and the expiry of a hidden mailbox remove them.
 * The server's own annotations have the unique id STORE_METADATA_SERVER. Entry names are the
 * caller's to validate (lib/imap/imap-metadata.h); private entries need a user. */
#define STORE_METADATA_SERVER ""

/* One change of store_metadata_set: value NULL removes the entry (RFC 5464 section 4.3). */
struct store_metadata_item {
    const char *entry;
    const void *value;
    size_t len;
};

/* The entry that stands for a mailbox's RFC 6154 special-use flags (RFC 6154 section 4): not
 * kept in metadata.db; setting it replaces the flags of the mailbox list entry. */
#define STORE_METADATA_SPECIALUSE "/private/specialuse"

/* store_metadata_set: apply items to the entries of mailbox (internal name, looked up in the
 * change's own transaction: CF_E_NOTFOUND when it does not exist; STORE_METADATA_SERVER for
 * the server), private ones as user's (user may be NULL when there are none), in one
 * transaction, all or none. An item STORE_METADATA_SPECIALUSE of a mailbox replaces its
 * special-use flags in the same transaction (value: RFC 6154 words separated by spaces, as the
 * caller checked them; NULL or "" for none). Refused with CF_E_LIMIT when a
 * value is over metadata_max_entry_size (*maxsize_r set to it: RFC 5464 section 4.3, MAXSIZE),
 * or when the change would raise a scope's entry count or value bytes past
 * metadata_max_entries or metadata_max_size, or user's private entries past
 * metadata_max_entries_per_user (*maxsize_r 0: TOOMANY). Removing or shrinking is never
 * refused. 0, CF_E_LIMIT, CF_E_PARSE (an entry outside /shared and /private, or a private one
 * without user), or an error. Blocks on the database (a durable commit). */
int store_metadata_set(struct store *st, const char *mailbox, const char *user,
                       const struct store_metadata_item *items, size_t n, long long *maxsize_r);

/* store_metadata_get: 1 and the value in val (reset first) when uniqueid has the entry (a
 * private one as user's), 0 when not, or an error. */
int store_metadata_get(struct store *st, const char *uniqueid, const char *user,
                       const char *entry, struct buf *val);

/* store_metadata_fn: one entry (full name, lower-cased) and its value (NUL-terminated), valid
 * during the call; 0 goes on, > 0 stops, < 0 is an error. */
typedef int store_metadata_fn(const char *entry, const char *val, size_t len, void *rock);

/* store_metadata_foreach: cb for entry itself and, with depth 1, the entries one level below
 * it, with depth -1 all below it (RFC 5464 section 4.2.2, DEPTH 0 / 1 / infinity), in byte
 * order; entry may also be "/shared" or "/private" (only their descendants exist). Private
 * entries are user's (user NULL: none are reported). 0, cb's value, or an error. */
int store_metadata_foreach(struct store *st, const char *uniqueid, const char *user,
                           const char *entry, int depth, store_metadata_fn *cb, void *rock);

/* store_metadata_forget_mailbox: remove every entry of the mailbox uniqueid (deleted).
 * Count removed or an error (logged). */
int store_metadata_forget_mailbox(struct store *st, const char *uniqueid);

/* store_metadata_forget_user: remove user's private entries everywhere. Count or an error. */
int store_metadata_forget_user(struct store *st, const char *user);

/* ---- whole databases, for `coffer db` and cofferd ----
 * name is a file name in configdir/db ("mailboxes.db"); the store's own databases are used
 * through its handles, any other (vacation.db, or a name being restored) is opened, and
 * created if missing, for the call. Formats: man/coffer-store.5, "Dump format". */

/* store_db_count: the number of records of database name into *n_r. 0 or an error. */
int store_db_count(struct store *st, const char *name, long long *n_r);

/* store_db_dump: write database name to f as text (kv_dump: read in batches outside a
 * transaction, so stop writers for an exact copy). 0 or an error (CF_E_IO: f). */
int store_db_dump(struct store *st, const char *name, FILE *f);

/* store_db_load: read a text dump of database name from f into it, adding records and
 * replacing those with the same key; with replace, every record is removed first. Committed
 * in batches: a failed load leaves part of it. 0, CF_E_PARSE (logged with the line number), or
 * an error. */
int store_db_load(struct store *st, const char *name, FILE *f, int replace);

/* store_db_recover: Berkeley DB recovery of configdir/db (created if missing); only with no
 * other process using it (cofferd at start). 0 or CF_E_IO (logged). */
int store_db_recover(const struct config *cfg);

/* store_db_failchk: release the locks and transactions of processes that died inside one
 * (kv_failchk), so live ones do not wait forever. Safe while others use the databases.
 * CF_E_CORRUPT: only a recovery with nobody attached can help (kv_failchk). 0 or
 * CF_E_IO (logged: a full recovery, i.e. a cofferd restart, is needed). */
int store_db_failchk(const struct config *cfg);

/* store_db_guard: kv_env_guard for st's environment: exit with exit_code as soon as cofferd
 * recovers the databases under this process (the admin tools). 0 or CF_E_IO (logged). */
int store_db_guard(struct store *st, int exit_code);

/* store_db_maintain: cofferd's periodic work: a checkpoint of the environment (so recovery
 * replays little and old logs go) and the expiry of duplicate-delivery records past
 * duplicate_lifetime. Opens and closes the environment itself (no handle crosses a fork).
 * The number of duplicate records removed, or an error (logged). Blocks on the disk. */
int store_db_maintain(const struct config *cfg);

/* What cofferd's stats job shows on the metrics endpoint: Berkeley DB's counters and the quota
 * roots with a limit by usage ratio (used / limit, the larger of storage and messages). */
struct store_db_stats {
    struct kv_stats kv;
    uint64_t quota_roots;
    uint64_t quota_ratio_le[8];          /* roots with ratio <= bounds[i], not cumulative;
                                          * [nbounds]: above the last bound */
};

/* store_db_stats: *out for st, with the quota ratios counted in the nbounds (at most 7)
 * ascending bounds. Reads only. 0 or an error (logged). Blocks on the databases. */
int store_db_stats(struct store *st, const double *bounds, size_t nbounds,
                   struct store_db_stats *out);

#endif
