/* metadb.h: mailbox and server annotations (RFC 5464 METADATA), "metadata.db" in the kv
 * environment, beside the mailbox list.
 *
 * An entry is a scope (shared, or private to one user) and a path below it: "/comment" is
 * the path of both "/shared/comment" and "/private/comment". Paths are stored lower-cased
 * (RFC 5464 section 3.2: entry names are case-insensitive); the caller validates them.
 * Mailboxes are named by their unique id (mboxlist.h), so a RENAME keeps their annotations
 * without touching this database; the server's own annotations have the unique id "".
 *
 * Keys (byte strings; man/coffer-store.5):
 *     'S' NUL UNIQUEID NUL PATH            a shared entry
 *     'P' NUL USER NUL UNIQUEID NUL PATH   USER's private entry
 * so one user's private entries are one prefix (counted against a per-user limit, removed with
 * the user) and a mailbox's shared entries are another. Value, version 1: "1 " followed by the
 * value's bytes as they are (binary values allowed).
 *
 * Commits are durable (no KV_TXN_NOSYNC): a client that was told OK must find its value
 * again. Functions taking txn accept NULL (kv.h). */
#ifndef COFFER_STORE_METADB_H
#define COFFER_STORE_METADB_H
#include "core/buf.h"
#include "store/kv.h"

#define METADB_DB "metadata.db"

struct metadb;

int metadb_open(struct kv_env *env, struct metadb **m_r);
void metadb_close(struct metadb **mp);
struct kv_db *metadb_kv(struct metadb *m);

/* metadb_get: 1 and the value in val (reset first) when the entry (user NULL: shared) of
 * uniqueid exists, 0 when not, or an error (CF_E_CORRUPT for a bad record, logged). */
int metadb_get(struct metadb *m, struct kv_txn *txn, const char *uniqueid, const char *user,
               const char *path, struct buf *val);

/* metadb_put: store the entry; val NULL removes it. 1 when the entry existed before, 0 when
 * not, CF_E_PARSE (empty path, a NUL in user or path), or a kv error. */
int metadb_put(struct metadb *m, struct kv_txn *txn, const char *uniqueid, const char *user,
               const char *path, const void *val, size_t vlen);

/* metadb_fn: one entry (path below its scope, value bytes NUL-terminated), valid during the
 * call; 0 goes on, > 0 stops, < 0 is an error. */
typedef int metadb_fn(const char *path, const char *val, size_t vlen, void *rock);

/* metadb_foreach: cb for every entry of uniqueid in one scope (user NULL: shared) whose path
 * starts with prefix ("" all), in byte order. 0, cb's value, or an error. */
int metadb_foreach(struct metadb *m, struct kv_txn *txn, const char *uniqueid,
                   const char *user, const char *prefix, metadb_fn *cb, void *rock);

/* metadb_usage: how many entries and value bytes uniqueid holds in one scope. 0 or an error. */
int metadb_usage(struct metadb *m, struct kv_txn *txn, const char *uniqueid, const char *user,
                 long long *count_r, long long *bytes_r);

/* metadb_user_count: how many private entries user holds on all mailboxes and the server. */
int metadb_user_count(struct metadb *m, struct kv_txn *txn, const char *user,
                      long long *count_r);

/* metadb_delete_mailbox: forget every entry (shared and every user's private ones) of
 * uniqueid (not ""). The private ones need a scan of all users' entries, in batches. Count
 * removed or an error. */
int metadb_delete_mailbox(struct metadb *m, const char *uniqueid);

/* metadb_delete_user: forget user's private entries everywhere. Count or an error. */
int metadb_delete_user(struct metadb *m, const char *user);

#endif
