/* kv.h: Coffer's small key-value API over a transactional Berkeley DB environment. Coffer's
 * own databases reach Berkeley DB only through kv.c, so the engine can change without touching
 * callers. The one other file that includes db.h is lib/auth/sasl.c: it reads (and, to delete
 * a user, edits) Cyrus SASL's sasldb, a Berkeley DB hash file that SASL's own plugin writes
 * without an environment, because SASL has no API to list users. That file is SASL's, not
 * one of ours, and its format is fixed by the plugin, so it does not go through kv.
 *
 * The environment is a directory (configdir/db). cofferd runs recovery once at start, before
 * any worker opens it (kv_env_recover); everybody else opens it without recovery. Several
 * processes (workers, tools) may have it open at once; handles are per process and must not
 * cross a fork(): open them in the child.
 *
 * Databases are B-trees with byte-ordered keys (memcmp order, a shorter key before its
 * extensions). Keys and values are byte strings; the functions below hand them to callbacks
 * NUL-terminated for convenience.
 *
 * Transactions: every function taking a struct kv_txn * accepts NULL, meaning "this one call
 * is its own transaction" (with the database's sync policy, deadlocks retried inside kv.c).
 * Inside a caller's transaction, a deadlock is returned as CF_E_AGAIN: the caller must abort
 * the transaction and run it again from the start (kv_txn_run or KV_RETRY do that). */
#ifndef COFFER_STORE_KV_H
#define COFFER_STORE_KV_H
#include "core/buf.h"
#include "core/error.h"   /* CF_E_AGAIN, used by KV_RETRY */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct kv_env;
struct kv_db;
struct kv_txn;

/* Flags of kv_txn_begin and kv_db_open. */
#define KV_TXN_NOSYNC 0x1  /* commit writes the log but does not fsync it: a system crash may
                            * lose the last commits (never half of one); for the duplicate and
                            * seen databases. Default: durable commits (log fsync). */

/* How many times kv_txn_run and KV_RETRY try a transaction that keeps deadlocking. */
#define KV_RETRY_MAX 200

/* kv_version_check: 0 when a Berkeley DB library of run-time version major.minor matches the
 * db.h this build was compiled with (major and minor equal; the patch level may differ), else
 * CF_E_IO, logged with both versions (db_version_mismatch). kv_env_recover, kv_failchk and
 * kv_env_open make this check on the library actually loaded (db_version()) and fail with
 * CF_E_IO before touching the environment. */
int kv_version_check(int major, int minor);
/* kv_version_built: the major.minor of the db.h this build was compiled with. */
void kv_version_built(int *major_r, int *minor_r);

/* kv_env_recover: run Berkeley DB normal recovery on the environment in dir (created, mode
 * 0700, if missing). Must run with no other process using the environment. 0 or CF_E_IO
 * (logged with the reason). */
int kv_env_recover(const char *dir);

/* kv_failchk: release the locks and abort the transactions of processes that died while
 * using the environment in dir (a worker killed with SIGKILL in the middle of a transaction),
 * so that live processes do not wait for them forever. Safe while others use the
 * environment; cofferd runs it whenever it reaps a worker that did not exit cleanly, and in
 * its periodic maintenance. 0, CF_E_CORRUPT when the environment needs a full recovery (a
 * process died inside the library where failchk cannot undo it: DB_RUNRECOVERY; cofferd then
 * stops every worker and runs kv_env_recover), or CF_E_IO (both logged). */
int kv_failchk(const char *dir);

/* kv_env_open: join (or create) the environment in dir, without recovery. *env_r is the
 * caller's, closed with kv_env_close. 0 or CF_E_IO (logged; also when the loaded Berkeley DB
 * library is not the version this build was compiled with: kv_version_check). */
int kv_env_open(const char *dir, struct kv_env **env_r);

/* kv_env_close: close every database still open on env, then env; sets *envp to NULL. */
void kv_env_close(struct kv_env **envp);

/* kv_env_guard: until this process exits, check every KV_GUARD_SECONDS that env's shared
 * region is still the one it joined. When cofferd has recovered the environment meanwhile (a
 * process died inside Berkeley DB: cofferd(8)), the process exits at once with exit_code and
 * a line on standard error: its cache is stale, and it may be waiting for ever on a mutex of
 * the old region. For the admin tools, which cofferd cannot stop itself. Uses SIGALRM and
 * ITIMER_REAL (with SA_RESTART). 0, or CF_E_IO when the region cannot be found. */
#define KV_GUARD_SECONDS 2
int kv_env_guard(struct kv_env *env, int exit_code);

/* kv_env_panic: mark env as needing recovery (DB_PANIC_ENVIRONMENT), the state a process
 * dying inside the library can leave: every process then gets DB_RUNRECOVERY. For crash
 * tests (test/helpers/lmtp-testtool). 0 or CF_E_IO. */
int kv_env_panic(struct kv_env *env);

/* kv_env_dir: the directory env was opened on (owned by env). */
const char *kv_env_dir(const struct kv_env *env);

/* kv_checkpoint: write a checkpoint (flush dirty pages so recovery starts later) and remove
 * log files no longer needed (the environment also runs with DB_LOG_AUTO_REMOVE). Blocks for
 * the disk writes. cofferd calls it periodically. 0 or CF_E_IO. */
int kv_checkpoint(struct kv_env *env);

/* Berkeley DB's own counters since the environment's region was made (recovery starts them
 * again), for cofferd's metrics endpoint. */
struct kv_stats {
    uint64_t cache_hit, cache_miss;      /* memp_stat: pages found in / read into the cache */
    uint64_t lock_wait, lock_nowait;     /* lock_stat: requests that waited / did not */
    uint64_t deadlocks;                  /* lock_stat */
    uint64_t log_flushes;                /* log_stat: flushes of the log to disk */
};

/* kv_env_stats: *out from env's regions (no statistics are reset). 0 or CF_E_IO (logged). */
int kv_env_stats(struct kv_env *env, struct kv_stats *out);

/* kv_db_open: open (creating if needed) the database file name inside env. flags: 0 or
 * KV_TXN_NOSYNC, the policy for single-call transactions (txn NULL). The handle belongs to env
 * (closed by kv_env_close at the latest). 0 or CF_E_IO. */
int kv_db_open(struct kv_env *env, const char *name, unsigned flags, struct kv_db **db_r);
void kv_db_close(struct kv_db **dbp);
const char *kv_db_name(const struct kv_db *db);
struct kv_env *kv_db_env(const struct kv_db *db);

/* kv_txn_begin: start a transaction (flags 0 or KV_TXN_NOSYNC). Must end with exactly one of
 * kv_txn_commit or kv_txn_abort, which free it and set *txnp to NULL. 0 or CF_E_IO. */
int kv_txn_begin(struct kv_env *env, unsigned flags, struct kv_txn **txn_r);
/* kv_txn_commit: 0, or CF_E_AGAIN / CF_E_IO (the transaction is gone either way). */
int kv_txn_commit(struct kv_txn **txnp);
void kv_txn_abort(struct kv_txn **txnp);   /* NULL *txnp is fine */

/* kv_txn_run: run fn(txn, rock) in a new transaction and commit it when fn returns >= 0; on
 * CF_E_AGAIN (deadlock) abort and run again, up to KV_RETRY_MAX times with a short random
 * pause; on any other error abort. Returns fn's (>= 0) result, or the error. fn must have no
 * effects outside the transaction that would be wrong to repeat. */
int kv_txn_run(struct kv_env *env, unsigned flags, int (*fn)(struct kv_txn *txn, void *rock),
               void *rock);

/* kv_retry_wait: for retry loops: pause a little (random, growing with attempt) and return 1
 * while attempt < KV_RETRY_MAX, else log and return 0. */
int kv_retry_wait(int attempt);

/* KV_RETRY(r) { ...body that sets r... }: runs the body again while it sets r to CF_E_AGAIN
 * (after kv_retry_wait). The body begins and ends its own transaction. Example:
 *     int r;
 *     KV_RETRY(r) {
 *         struct kv_txn *t = NULL;
 *         r = kv_txn_begin(env, 0, &t);
 *         if (!r) r = kv_put(db, t, "k", 1, "v", 1);
 *         if (!r) r = kv_txn_commit(&t); else kv_txn_abort(&t);
 *     } */
#define KV_RETRY(r) \
    for (int kv_attempt_ = ((r) = 0, 0); \
         kv_attempt_ == 0 || ((r) == CF_E_AGAIN && kv_retry_wait(kv_attempt_)); kv_attempt_++)

/* kv_get: the value of key into val (reset first; NUL-terminated after it). 1 found, 0 not
 * found (val empty), CF_E_AGAIN or CF_E_IO. */
int kv_get(struct kv_db *db, struct kv_txn *txn, const void *key, size_t klen, struct buf *val);
/* kv_put: store key -> val, replacing any value. 0, CF_E_AGAIN or CF_E_IO. */
int kv_put(struct kv_db *db, struct kv_txn *txn, const void *key, size_t klen, const void *val,
           size_t vlen);
/* kv_del: remove key. 1 removed, 0 was absent, CF_E_AGAIN or CF_E_IO. */
int kv_del(struct kv_db *db, struct kv_txn *txn, const void *key, size_t klen);

/* kv_foreach_fn: called for each record; key and val are NUL-terminated copies valid only
 * during the call. Return 0 to go on, > 0 to stop (kv_foreach returns that value), < 0 to stop
 * with that error. */
typedef int kv_foreach_fn(const char *key, size_t klen, const char *val, size_t vlen, void *rock);

/* kv_foreach: call cb for every record whose key starts with prefix (plen 0: all), in key
 * order. With a txn, the records are read in it and cb may write through the same txn. With
 * txn NULL, records are read in small batches and cb runs with no lock held, so cb may open
 * its own transactions; the scan is not a snapshot (each record is consistent). Returns 0, a
 * positive value from cb, or an error (CF_E_AGAIN only with a txn). */
int kv_foreach(struct kv_db *db, struct kv_txn *txn, const void *prefix, size_t plen,
               kv_foreach_fn *cb, void *rock);

/* kv_del_prefix: remove every record whose key starts with prefix. With txn NULL it runs in
 * batches of transactions (each batch atomic, not the whole). Returns the number removed (>= 0)
 * or an error. */
int kv_del_prefix(struct kv_db *db, struct kv_txn *txn, const void *prefix, size_t plen);

/* kv_del_if: remove the records under prefix for which doomed(key, ..., rock) returns 1, in
 * batches of small transactions (never holding locks long: for expiry sweeps). Returns the
 * number removed or an error. doomed may return < 0 to stop with that error. */
int kv_del_if(struct kv_db *db, const void *prefix, size_t plen, kv_foreach_fn *doomed,
              void *rock);

/* Text dump and load of one database (format in man/coffer-store.5, "Dump format"):
 *     coffer-kv-dump 1 NAME
 *     KEY VALUE            one line per record, in key order
 *     coffer-kv-end COUNT
 * KEY and VALUE are percent-escaped: bytes 0x21-0x7E other than '%' stand for themselves,
 * every other byte is %XX (two upper-case hex digits); an empty string is written "%". */

/* kv_dump: write db to f. Reads outside a transaction in batches: stop writers for an exact
 * copy. 0, CF_E_IO (write error, logged) or CF_E_AGAIN. */
int kv_dump(struct kv_db *db, FILE *f);

/* kv_load: read a dump from f into db, adding records and replacing those with the same key
 * (load into an empty database to restore). The header must name db (kv_db_name) and have
 * version 1; the trailer count must match. Records are committed in batches, so a failed load
 * leaves part of them. 0, CF_E_PARSE (logged with the line number) or another error. */
int kv_load(struct kv_db *db, FILE *f);

/* kv_escape / kv_unescape: the dump's percent-escaping, appended to out. kv_unescape returns 0
 * or CF_E_PARSE (bad %XX, or a byte that should have been escaped). */
void kv_escape(struct buf *out, const void *p, size_t n);
int kv_unescape(struct buf *out, const char *s, size_t n);

#endif
