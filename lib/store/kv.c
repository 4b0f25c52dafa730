/* kv.c: the Berkeley DB implementation of kv.h. */
#include "store/kv.h"
#include "core/error.h"
#include "core/fileutil.h"
#include "core/log.h"
#include "core/xmalloc.h"
#include <db.h>
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define KV_ENV_FLAGS (DB_CREATE | DB_INIT_TXN | DB_INIT_LOCK | DB_INIT_LOG | DB_INIT_MPOOL)

/* Records read per lock-free batch (kv_foreach with txn NULL, kv_dump) and per transaction of
 * the batched writers (kv_del_prefix, kv_del_if, kv_load): small enough that no transaction
 * holds many locks for long, large enough that the per-transaction log fsync is amortised. */
#define KV_READ_BATCH 64
/* the lock object hash table's buckets (env_configure) */
#define KV_LOCK_TABLESIZE 1031
#define KV_WRITE_BATCH 256

struct kv_db {
    DB *db;
    struct kv_env *env;
    char *name;
    unsigned flags;
    struct kv_db *next;
};

struct kv_env {
    DB_ENV *env;
    char *dir;
    struct kv_db *dbs;
};

struct kv_txn {
    DB_TXN *txn;
    struct kv_env *env;
};

/* ---- environment ---- */

static void kv_errcall(const DB_ENV *env, const char *pfx, const char *msg)
{
    (void)env;
    (void)pfx;
    log_err("db_message", "text=%s", log_quote(msg));
}

/* kv_isalive: Berkeley DB's question, during failchk, whether the process (or thread) that
 * owns a lock or transaction still exists. Our processes are single-threaded. */
static int kv_isalive(DB_ENV *env, pid_t pid, db_threadid_t tid, u_int32_t flags)
{
    (void)env;
    (void)tid;
    (void)flags;
    return kill(pid, 0) == 0 || errno == EPERM;
}

/* env_configure: settings that live in the shared region, so the first opener's choice is
 * everybody's: both kv_env_recover (which recreates the region) and kv_env_open apply them. */
static void env_configure(DB_ENV *env)
{
    env->set_errcall(env, kv_errcall);
    /* Run the deadlock detector whenever a lock request would block: with several processes
     * there is no thread of ours to run it periodically. */
    env->set_lk_detect(env, DB_LOCK_DEFAULT);
    /* A rename of a large hierarchy, or a long prefix delete, locks many pages in one txn. */
    env->set_lk_max_locks(env, 50000);
    env->set_lk_max_objects(env, 50000);
    env->set_lk_max_lockers(env, 5000);
    /* Buckets of the lock object hash table. Without this Berkeley DB sizes it from
     * lk_max_objects (~33,000 buckets plus a statistics record each: 13 of the region's 15 MB),
     * and every lock request touches a bucket and its statistics at a random place in it: each
     * process that joins the environment then maps ~1 MB of the region for the few objects
     * of a login (mapped pages count in its RSS; docs/perf/idle.md). A few hundred objects
     * are locked at once in normal operation; the 50,000 of a very large transaction make
     * chains of about 50, which only that transaction's lock requests walk. */
    env->set_lk_tablesize(env, KV_LOCK_TABLESIZE);
    env->set_cachesize(env, 0, 8 * 1024 * 1024, 1);
    /* Logs are removed once no longer needed for normal recovery; we rely on the text dumps,
     * not on catastrophic recovery from archived logs. */
    env->log_set_config(env, DB_LOG_AUTO_REMOVE, 1);
    /* Track which process holds what, so kv_failchk can free what a killed worker held
     * (one slot per process that uses the environment at once). */
    env->set_thread_count(env, 4096);
    env->set_isalive(env, kv_isalive);
}

void kv_version_built(int *major_r, int *minor_r)
{
    *major_r = DB_VERSION_MAJOR;
    *minor_r = DB_VERSION_MINOR;
}

int kv_version_check(int major, int minor)
{
    /* the environment's region files, log records and the DB_ENV/DB method tables this build
     * was compiled against are specific to a major.minor release: a different library could
     * misread them or crash in a method call, so refuse before touching anything */
    if (major == DB_VERSION_MAJOR && minor == DB_VERSION_MINOR) return 0;
    log_err("db_version_mismatch",
            "built=%d.%d running=%d.%d hint=\"rebuild coffer against the installed Berkeley DB, "
            "or install libdb %d.%d\"",
            DB_VERSION_MAJOR, DB_VERSION_MINOR, major, minor, DB_VERSION_MAJOR, DB_VERSION_MINOR);
    return CF_E_IO;
}

/* version_check: kv_version_check for the library this process has loaded. */
static int version_check(void)
{
    int major = 0, minor = 0;
    db_version(&major, &minor, NULL);
    return kv_version_check(major, minor);
}

int kv_env_recover(const char *dir)
{
    DB_ENV *env = NULL;
    int r = version_check();
    if (r) return r;
    r = mkdir_p(dir, 0700);
    if (r) return r;
    int e = db_env_create(&env, 0);
    if (!e) {
        env_configure(env);
        e = env->open(env, dir, KV_ENV_FLAGS | DB_RECOVER, 0600);
    }
    if (e) {
        log_err("db_recover_failed", "dir=%s error=%s", log_quote(dir), log_quote(db_strerror(e)));
        if (env) env->close(env, 0);
        return CF_E_IO;
    }
    env->close(env, 0);
    log_info("db_recovered", "dir=%s", log_quote(dir));
    return 0;
}

int kv_failchk(const char *dir)
{
    DB_ENV *env = NULL;
    if (version_check()) return CF_E_IO;
    int e = db_env_create(&env, 0);
    if (!e) {
        env_configure(env);
        e = env->open(env, dir, KV_ENV_FLAGS, 0600);
    }
    if (!e) e = env->failchk(env, 0);
    if (env) env->close(env, 0);
    if (e) {
        log_err("db_failchk_failed", "dir=%s error=%s%s", log_quote(dir), log_quote(db_strerror(e)),
                e == DB_RUNRECOVERY ? " hint=\"recovery needed\"" : "");
        return e == DB_RUNRECOVERY ? CF_E_CORRUPT : CF_E_IO;
    }
    return 0;
}

/* the region kv_env_guard watches, set once (a process guards one environment) */
static char g_guard_path[4096];
static dev_t g_guard_dev;
static ino_t g_guard_ino;
static int g_guard_exit;

/* guard_tick: SIGALRM: only async-signal-safe calls (stat, write, _exit). */
static void guard_tick(int sig)
{
    (void)sig;
    int saved = errno;
    struct stat sb;
    if (stat(g_guard_path, &sb) == 0 && sb.st_dev == g_guard_dev && sb.st_ino == g_guard_ino) {
        errno = saved;
        return;
    }
    static const char msg[] = "coffer: the databases were recovered by cofferd while this "
                              "command ran (a process died inside Berkeley DB); nothing it "
                              "did after that was kept: run it again\n";
    ssize_t w = write(2, msg, sizeof msg - 1);
    (void)w;
    _exit(g_guard_exit);
}

int kv_env_guard(struct kv_env *env, int exit_code)
{
    struct stat sb;
    int n = snprintf(g_guard_path, sizeof g_guard_path, "%s/__db.001", env->dir);
    if (n < 0 || (size_t)n >= sizeof g_guard_path || stat(g_guard_path, &sb) < 0) {
        log_err("db_guard_failed", "dir=%s error=%s", log_quote(env->dir),
                log_quote(n < 0 || (size_t)n >= sizeof g_guard_path ? "path too long"
                                                                     : strerror(errno)));
        return CF_E_IO;
    }
    g_guard_dev = sb.st_dev;
    g_guard_ino = sb.st_ino;
    g_guard_exit = exit_code;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = guard_tick;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    struct itimerval it = { { KV_GUARD_SECONDS, 0 }, { KV_GUARD_SECONDS, 0 } };
    if (sigaction(SIGALRM, &sa, NULL) < 0 || setitimer(ITIMER_REAL, &it, NULL) < 0) {
        log_err("db_guard_failed", "dir=%s error=%s", log_quote(env->dir),
                log_quote(strerror(errno)));
        return CF_E_IO;
    }
    return 0;
}

int kv_env_panic(struct kv_env *env)
{
    int e = env->env->set_flags(env->env, DB_PANIC_ENVIRONMENT, 1);
    if (e) log_err("db_panic_failed", "dir=%s error=%s", log_quote(env->dir), log_quote(db_strerror(e)));
    return e ? CF_E_IO : 0;
}

int kv_env_open(const char *dir, struct kv_env **env_r)
{
    DB_ENV *env = NULL;
    *env_r = NULL;
    int r = version_check();
    if (r) return r;
    r = mkdir_p(dir, 0700);
    if (r) return r;
    int e = db_env_create(&env, 0);
    if (!e) {
        env_configure(env);
        e = env->open(env, dir, KV_ENV_FLAGS, 0600);
    }
    if (e) {
        log_err("db_env_open_failed", "dir=%s error=%s%s", log_quote(dir),
                log_quote(db_strerror(e)),
                e == DB_RUNRECOVERY ? " hint=\"restart cofferd to run recovery\"" : "");
        if (env) env->close(env, 0);
        return CF_E_IO;
    }
    struct kv_env *k = xzmalloc(sizeof *k);
    k->env = env;
    k->dir = xstrdup(dir);
    *env_r = k;
    return 0;
}

void kv_env_close(struct kv_env **envp)
{
    struct kv_env *k = *envp;
    if (!k) return;
    while (k->dbs) {
        struct kv_db *d = k->dbs;
        kv_db_close(&d);
    }
    int e = k->env->close(k->env, 0);
    if (e) log_err("db_env_close_failed", "dir=%s error=%s", log_quote(k->dir),
                   log_quote(db_strerror(e)));
    free(k->dir);
    free(k);
    *envp = NULL;
}

const char *kv_env_dir(const struct kv_env *env)
{
    return env->dir;
}

int kv_checkpoint(struct kv_env *env)
{
    int e = env->env->txn_checkpoint(env->env, 0, 0, 0);
    if (!e) e = env->env->log_archive(env->env, NULL, DB_ARCH_REMOVE);
    if (e) {
        log_err("db_checkpoint_failed", "dir=%s error=%s", log_quote(env->dir),
                log_quote(db_strerror(e)));
        return CF_E_IO;
    }
    return 0;
}

int kv_env_stats(struct kv_env *env, struct kv_stats *out)
{
    memset(out, 0, sizeof *out);
    DB_MPOOL_STAT *mp = NULL;
    DB_LOCK_STAT *lk = NULL;
    DB_LOG_STAT *lg = NULL;
    int e = env->env->memp_stat(env->env, &mp, NULL, 0);
    if (!e) {
        out->cache_hit = mp->st_cache_hit;
        out->cache_miss = mp->st_cache_miss;
        e = env->env->lock_stat(env->env, &lk, 0);
    }
    if (!e) {
        out->lock_wait = lk->st_lock_wait;
        out->lock_nowait = lk->st_lock_nowait;
        out->deadlocks = lk->st_ndeadlocks;
        e = env->env->log_stat(env->env, &lg, 0);
    }
    if (!e) out->log_flushes = lg->st_scount;
    free(mp);
    free(lk);
    free(lg);
    if (e) {
        log_err("db_stats_failed", "dir=%s error=%s", log_quote(env->dir),
                log_quote(db_strerror(e)));
        return CF_E_IO;
    }
    return 0;
}

/* ---- errors and retries ---- */

static int is_deadlock(int e)
{
    return e == DB_LOCK_DEADLOCK || e == DB_LOCK_NOTGRANTED;
}

/* map_err: a Berkeley DB error as a CF_E code; logs everything but deadlocks. */
static int map_err(int e, const char *what, const struct kv_db *db)
{
    if (!e) return 0;
    if (is_deadlock(e)) return CF_E_AGAIN;
    log_err("db_error", "op=%s db=%s error=%s", what, db ? log_quote(db->name) : "-",
            log_quote(db_strerror(e)));
    return CF_E_IO;
}

static unsigned rand_state;

int kv_retry_wait(int attempt)
{
    if (attempt >= KV_RETRY_MAX) {
        log_err("db_deadlock_giving_up", "attempts=%d", attempt);
        return 0;
    }
    if (!rand_state) {
        struct timeval tv;
        gettimeofday(&tv, NULL);
        rand_state = (unsigned)getpid() ^ (unsigned)tv.tv_usec ^ 0x9e3779b9u;
    }
    /* xorshift: just enough randomness so two deadlocked processes do not retry in step */
    rand_state ^= rand_state << 13;
    rand_state ^= rand_state >> 17;
    rand_state ^= rand_state << 5;
    unsigned span = 200u * (unsigned)(attempt < 50 ? attempt : 50);  /* microseconds */
    usleep(rand_state % (span + 1));
    return 1;
}

/* ---- databases ---- */

int kv_db_open(struct kv_env *env, const char *name, unsigned flags, struct kv_db **db_r)
{
    DB *d = NULL;
    int e;
    *db_r = NULL;
    for (int attempt = 1;; attempt++) {
        e = db_create(&d, env->env, 0);
        if (e) break;
        /* Two processes creating the same file at once may deadlock: retry. */
        e = d->open(d, NULL, name, NULL, DB_BTREE, DB_CREATE | DB_AUTO_COMMIT, 0600);
        if (!e) break;
        d->close(d, 0);
        d = NULL;
        if (!is_deadlock(e) || !kv_retry_wait(attempt)) break;
    }
    if (e) {
        log_err("db_open_failed", "dir=%s db=%s error=%s", log_quote(env->dir), log_quote(name),
                log_quote(db_strerror(e)));
        return CF_E_IO;
    }
    struct kv_db *k = xzmalloc(sizeof *k);
    k->db = d;
    k->env = env;
    k->name = xstrdup(name);
    k->flags = flags;
    k->next = env->dbs;
    env->dbs = k;
    *db_r = k;
    return 0;
}

void kv_db_close(struct kv_db **dbp)
{
    struct kv_db *k = *dbp;
    if (!k) return;
    for (struct kv_db **pp = &k->env->dbs; *pp; pp = &(*pp)->next) {
        if (*pp == k) {
            *pp = k->next;
            break;
        }
    }
    int e = k->db->close(k->db, 0);
    if (e) log_err("db_close_failed", "db=%s error=%s", log_quote(k->name),
                   log_quote(db_strerror(e)));
    free(k->name);
    free(k);
    *dbp = NULL;
}

const char *kv_db_name(const struct kv_db *db)
{
    return db->name;
}

struct kv_env *kv_db_env(const struct kv_db *db)
{
    return db->env;
}

/* ---- transactions ---- */

static uint32_t txn_flags(unsigned flags)
{
    /* WRITE_NOSYNC rather than NOSYNC: the commit still reaches the kernel, so only a system
     * crash (not a killed process) can lose it, at almost no cost. */
    return (flags & KV_TXN_NOSYNC) ? DB_TXN_WRITE_NOSYNC : 0;
}

int kv_txn_begin(struct kv_env *env, unsigned flags, struct kv_txn **txn_r)
{
    DB_TXN *t = NULL;
    *txn_r = NULL;
    int e = env->env->txn_begin(env->env, NULL, &t, txn_flags(flags));
    if (e) return map_err(e, "txn_begin", NULL);
    struct kv_txn *k = xmalloc(sizeof *k);
    k->txn = t;
    k->env = env;
    *txn_r = k;
    return 0;
}

int kv_txn_commit(struct kv_txn **txnp)
{
    struct kv_txn *k = *txnp;
    int e = k->txn->commit(k->txn, 0);
    free(k);
    *txnp = NULL;
    return map_err(e, "txn_commit", NULL);
}

void kv_txn_abort(struct kv_txn **txnp)
{
    struct kv_txn *k = *txnp;
    if (!k) return;
    int e = k->txn->abort(k->txn);
    if (e) map_err(e, "txn_abort", NULL);
    free(k);
    *txnp = NULL;
}

int kv_txn_run(struct kv_env *env, unsigned flags, int (*fn)(struct kv_txn *txn, void *rock),
               void *rock)
{
    int r;
    for (int attempt = 1;; attempt++) {
        struct kv_txn *t = NULL;
        r = kv_txn_begin(env, flags, &t);
        if (!r) {
            r = fn(t, rock);
            if (r >= 0) {
                int c = kv_txn_commit(&t);
                if (c) r = c;
            } else {
                kv_txn_abort(&t);
            }
        }
        if (r != CF_E_AGAIN || !kv_retry_wait(attempt)) return r;
    }
}

/* ---- single operations ---- */

/* raw_op: one Berkeley DB operation; returns a Berkeley DB code. */
typedef int raw_op(DB *db, DB_TXN *t, void *arg);

/* run_op: op in the caller's txn, or (txn NULL) in its own transaction for writes / no
 * transaction for reads, retrying deadlocks. Returns a Berkeley DB code. */
static int run_op(struct kv_db *db, struct kv_txn *txn, int write, raw_op *op, void *arg)
{
    if (txn) return op(db->db, txn->txn, arg);
    for (int attempt = 1;; attempt++) {
        DB_TXN *t = NULL;
        int e = 0;
        if (write) e = db->env->env->txn_begin(db->env->env, NULL, &t, txn_flags(db->flags));
        if (!e) {
            e = op(db->db, t, arg);
            if (t) {
                if (!e || e == DB_NOTFOUND) {
                    int c = t->commit(t, 0);
                    if (c) e = c;
                } else {
                    t->abort(t);
                }
            }
        }
        if (!is_deadlock(e) || !kv_retry_wait(attempt)) return e;
    }
}

struct op_arg {
    DBT key, val;
    struct buf *out;
};

static void dbt_set(DBT *d, const void *p, size_t n)
{
    memset(d, 0, sizeof *d);
    d->data = (void *)p;
    d->size = (u_int32_t)n;
}

static int op_get(DB *db, DB_TXN *t, void *arg)
{
    struct op_arg *a = arg;
    DBT val;
    memset(&val, 0, sizeof val);
    int e = db->get(db, t, &a->key, &val, 0);
    if (!e) {
        buf_reset(a->out);
        buf_append(a->out, val.data, val.size);
        buf_cstr(a->out);
    }
    return e;
}

static int op_put(DB *db, DB_TXN *t, void *arg)
{
    struct op_arg *a = arg;
    return db->put(db, t, &a->key, &a->val, 0);
}

static int op_del(DB *db, DB_TXN *t, void *arg)
{
    struct op_arg *a = arg;
    return db->del(db, t, &a->key, 0);
}

int kv_get(struct kv_db *db, struct kv_txn *txn, const void *key, size_t klen, struct buf *val)
{
    struct op_arg a;
    dbt_set(&a.key, key, klen);
    a.out = val;
    buf_reset(val);
    buf_cstr(val);
    int e = run_op(db, txn, 0, op_get, &a);
    if (e == DB_NOTFOUND) return 0;
    if (e) return map_err(e, "get", db);
    return 1;
}

int kv_put(struct kv_db *db, struct kv_txn *txn, const void *key, size_t klen, const void *val,
           size_t vlen)
{
    struct op_arg a;
    dbt_set(&a.key, key, klen);
    dbt_set(&a.val, val, vlen);
    return map_err(run_op(db, txn, 1, op_put, &a), "put", db);
}

int kv_del(struct kv_db *db, struct kv_txn *txn, const void *key, size_t klen)
{
    struct op_arg a;
    dbt_set(&a.key, key, klen);
    int e = run_op(db, txn, 1, op_del, &a);
    if (e == DB_NOTFOUND) return 0;
    if (e) return map_err(e, "del", db);
    return 1;
}

/* ---- cursors ---- */

static int has_prefix(const DBT *k, const void *prefix, size_t plen)
{
    return k->size >= plen && (plen == 0 || !memcmp(k->data, prefix, plen));
}

/* cursor_start: position c on the first record under prefix, or (resume) on the first record
 * after the key last. Returns a Berkeley DB code; DB_NOTFOUND when there is none. */
static int cursor_start(DBC *c, DBT *key, DBT *val, const void *prefix, size_t plen,
                        const struct buf *last, int resume)
{
    memset(val, 0, sizeof *val);
    if (!resume) {
        dbt_set(key, prefix, plen);
        return c->get(c, key, val, plen ? DB_SET_RANGE : DB_FIRST);
    }
    dbt_set(key, last->s, last->len);
    int e = c->get(c, key, val, DB_SET_RANGE);
    if (!e && key->size == last->len && !memcmp(key->data, last->s, last->len))
        e = c->get(c, key, val, DB_NEXT);
    return e;
}

struct rec {
    struct buf k, v;
};

int kv_foreach(struct kv_db *db, struct kv_txn *txn, const void *prefix, size_t plen,
               kv_foreach_fn *cb, void *rock)
{
    DBC *c = NULL;
    DBT key, val;
    int e, r = 0;
    struct buf kb = BUF_INIT, vb = BUF_INIT;

    if (txn) {
        e = db->db->cursor(db->db, txn->txn, &c, 0);
        if (e) return map_err(e, "cursor", db);
        for (e = cursor_start(c, &key, &val, prefix, plen, NULL, 0);
             !e && has_prefix(&key, prefix, plen);
             e = c->get(c, &key, &val, DB_NEXT)) {
            buf_reset(&kb);
            buf_append(&kb, key.data, key.size);
            buf_reset(&vb);
            buf_append(&vb, val.data, val.size);
            r = cb(buf_cstr(&kb), kb.len, buf_cstr(&vb), vb.len, rock);
            if (r) break;
        }
        if (!r && e && e != DB_NOTFOUND) r = map_err(e, "cursor_get", db);
        c->close(c);
        buf_fini(&kb);
        buf_fini(&vb);
        return r;
    }

    /* No txn: read a batch, close the cursor (dropping its page lock), then call back. */
    struct rec recs[KV_READ_BATCH];
    memset(recs, 0, sizeof recs);
    struct buf last = BUF_INIT;
    int resume = 0, done = 0, attempt = 0;
    while (!done && !r) {
        int n = 0;
        e = db->db->cursor(db->db, NULL, &c, DB_READ_COMMITTED);
        if (!e) {
            for (e = cursor_start(c, &key, &val, prefix, plen, &last, resume);
                 !e && has_prefix(&key, prefix, plen);
                 e = c->get(c, &key, &val, DB_NEXT)) {
                buf_reset(&recs[n].k);
                buf_append(&recs[n].k, key.data, key.size);
                buf_reset(&recs[n].v);
                buf_append(&recs[n].v, val.data, val.size);
                if (++n == KV_READ_BATCH) break;
            }
            c->close(c);
        }
        if (is_deadlock(e)) {
            if (kv_retry_wait(++attempt)) continue;
            r = CF_E_AGAIN;
            break;
        }
        if (e && e != DB_NOTFOUND) {
            r = map_err(e, "cursor_get", db);
            break;
        }
        if (n < KV_READ_BATCH) done = 1;
        for (int i = 0; i < n && !r; i++)
            r = cb(buf_cstr(&recs[i].k), recs[i].k.len, buf_cstr(&recs[i].v), recs[i].v.len,
                   rock);
        if (n) {
            buf_reset(&last);
            buf_append(&last, recs[n - 1].k.s, recs[n - 1].k.len);
        }
        resume = 1;
    }
    for (int i = 0; i < KV_READ_BATCH; i++) {
        buf_fini(&recs[i].k);
        buf_fini(&recs[i].v);
    }
    buf_fini(&last);
    return r;
}

/* del_batch: in txn t, starting under prefix (or after *last when resume), look at up to
 * limit records (0: all) and delete those doomed accepts (all, when doomed is NULL). Sets
 * *more when records may remain and *last to the last key looked at. Returns the number
 * deleted, or a CF_E code (CF_E_AGAIN on deadlock). */
static int del_batch(struct kv_db *db, DB_TXN *t, const void *prefix, size_t plen,
                     struct buf *last, int resume, int limit, int *more, kv_foreach_fn *doomed,
                     void *rock)
{
    DBC *c = NULL;
    DBT key, val;
    struct buf kb = BUF_INIT, vb = BUF_INIT;
    int n = 0, seen = 0, r = 0;
    *more = 0;
    int e = db->db->cursor(db->db, t, &c, 0);
    if (e) return map_err(e, "cursor", db);
    for (e = cursor_start(c, &key, &val, prefix, plen, last, resume);
         !e && has_prefix(&key, prefix, plen);
         e = c->get(c, &key, &val, DB_NEXT)) {
        buf_reset(&kb);
        buf_append(&kb, key.data, key.size);
        int kill = 1;
        if (doomed) {
            buf_reset(&vb);
            buf_append(&vb, val.data, val.size);
            kill = doomed(buf_cstr(&kb), kb.len, buf_cstr(&vb), vb.len, rock);
            if (kill < 0) {
                r = kill;
                break;
            }
        }
        if (kill) {
            e = c->del(c, 0);
            if (e) break;
            n++;
        }
        if (++seen == limit) {
            *more = 1;
            break;
        }
    }
    if (!r && e && e != DB_NOTFOUND) r = map_err(e, "cursor_del", db);
    c->close(c);
    if (seen) {
        buf_reset(last);
        buf_append(last, kb.s, kb.len);
    }
    buf_fini(&kb);
    buf_fini(&vb);
    return r ? r : n;
}

/* del_batched: del_batch in successive own transactions. */
static int del_batched(struct kv_db *db, const void *prefix, size_t plen, kv_foreach_fn *doomed,
                       void *rock)
{
    struct buf last = BUF_INIT, saved = BUF_INIT;
    int total = 0, resume = 0, more = 1, attempt = 0, r = 0;
    while (more) {
        DB_TXN *t = NULL;
        buf_reset(&saved);
        buf_append(&saved, last.s, last.len);
        int e = db->env->env->txn_begin(db->env->env, NULL, &t, txn_flags(db->flags));
        if (e) {
            r = map_err(e, "txn_begin", db);
            break;
        }
        r = del_batch(db, t, prefix, plen, &last, resume, KV_WRITE_BATCH, &more, doomed,
                      rock);
        if (r >= 0) {
            e = t->commit(t, 0);
            if (e) r = map_err(e, "txn_commit", db);
        } else {
            t->abort(t);
        }
        if (r == CF_E_AGAIN && kv_retry_wait(++attempt)) {
            buf_reset(&last);               /* redo this batch */
            buf_append(&last, saved.s, saved.len);
            more = 1;
            continue;
        }
        if (r < 0) break;
        total += r;
        r = 0;
        resume = 1;
    }
    buf_fini(&last);
    buf_fini(&saved);
    return r < 0 ? r : total;
}

int kv_del_prefix(struct kv_db *db, struct kv_txn *txn, const void *prefix, size_t plen)
{
    if (txn) {
        struct buf last = BUF_INIT;
        int more;
        int r = del_batch(db, txn->txn, prefix, plen, &last, 0, 0, &more, NULL, NULL);
        buf_fini(&last);
        return r;
    }
    return del_batched(db, prefix, plen, NULL, NULL);
}

int kv_del_if(struct kv_db *db, const void *prefix, size_t plen, kv_foreach_fn *doomed,
              void *rock)
{
    return del_batched(db, prefix, plen, doomed, rock);
}

/* ---- dump and load ---- */

static const char hexdig[] = "0123456789ABCDEF";

void kv_escape(struct buf *out, const void *p, size_t n)
{
    const unsigned char *s = p;
    if (n == 0) {
        buf_putc(out, '%');
        return;
    }
    for (size_t i = 0; i < n; i++) {
        if (s[i] > 0x20 && s[i] < 0x7f && s[i] != '%') {
            buf_putc(out, (char)s[i]);
        } else {
            char e[3] = { '%', hexdig[s[i] >> 4], hexdig[s[i] & 15] };
            buf_append(out, e, 3);
        }
    }
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

int kv_unescape(struct buf *out, const char *s, size_t n)
{
    if (n == 1 && s[0] == '%') return 0;  /* the empty string */
    if (n == 0) return CF_E_PARSE;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '%') {
            if (i + 2 >= n) return CF_E_PARSE;
            int hi = hexval(s[i + 1]), lo = hexval(s[i + 2]);
            if (hi < 0 || lo < 0) return CF_E_PARSE;
            buf_putc(out, (char)(hi << 4 | lo));
            i += 2;
            continue;
        }
        if (c <= 0x20 || c >= 0x7f) return CF_E_PARSE;
        buf_putc(out, (char)c);
    }
    return 0;
}

struct dump_ctx {
    FILE *f;
    struct buf line;
    long count;
};

static int dump_one(const char *key, size_t klen, const char *val, size_t vlen, void *rock)
{
    struct dump_ctx *d = rock;
    buf_reset(&d->line);
    kv_escape(&d->line, key, klen);
    buf_putc(&d->line, ' ');
    kv_escape(&d->line, val, vlen);
    buf_putc(&d->line, '\n');
    if (fwrite(d->line.s, 1, d->line.len, d->f) != d->line.len) return CF_E_IO;
    d->count++;
    return 0;
}

int kv_dump(struct kv_db *db, FILE *f)
{
    struct dump_ctx d = { f, BUF_INIT, 0 };
    buf_appends(&d.line, "coffer-kv-dump 1 ");
    kv_escape(&d.line, db->name, strlen(db->name));
    buf_putc(&d.line, '\n');
    int r = fwrite(d.line.s, 1, d.line.len, f) == d.line.len ? 0 : CF_E_IO;
    if (!r) r = kv_foreach(db, NULL, NULL, 0, dump_one, &d);
    if (!r && fprintf(f, "coffer-kv-end %ld\n", d.count) < 0) r = CF_E_IO;
    if (!r && fflush(f)) r = CF_E_IO;
    if (r == CF_E_IO || (!r && ferror(f))) {
        log_err("db_dump_failed", "db=%s error=%s", log_quote(db->name), log_quote(strerror(errno)));
        r = CF_E_IO;
    }
    buf_fini(&d.line);
    return r;
}

struct load_batch {
    struct kv_db *db;
    struct rec recs[KV_WRITE_BATCH];
    int n;
};

static int load_put(struct kv_txn *txn, void *rock)
{
    struct load_batch *b = rock;
    for (int i = 0; i < b->n; i++) {
        int r = kv_put(b->db, txn, b->recs[i].k.s, b->recs[i].k.len, b->recs[i].v.s,
                       b->recs[i].v.len);
        if (r) return r;
    }
    return 0;
}

static int load_flush(struct load_batch *b)
{
    if (!b->n) return 0;
    int r = kv_txn_run(b->db->env, b->db->flags, load_put, b);
    b->n = 0;
    return r;
}

int kv_load(struct kv_db *db, FILE *f)
{
    struct load_batch *b = xzmalloc(sizeof *b);
    struct buf want = BUF_INIT;
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    long lineno = 0, count = 0;
    int r = 0, ended = 0;
    b->db = db;

    buf_appends(&want, "coffer-kv-dump 1 ");
    kv_escape(&want, db->name, strlen(db->name));
    while ((len = getline(&line, &cap, f)) >= 0) {
        lineno++;
        if (len == 0 || line[len - 1] != '\n') {
            r = CF_E_PARSE;   /* a truncated last line */
            break;
        }
        line[--len] = '\0';
        if (ended) {
            r = CF_E_PARSE;   /* anything after the trailer */
            break;
        }
        if (lineno == 1) {
            if (strcmp(line, buf_cstr(&want))) r = CF_E_PARSE;
            if (r) break;
            continue;
        }
        if (!strncmp(line, "coffer-kv-end ", 14)) {
            char *end = NULL;
            errno = 0;
            long n = strtol(line + 14, &end, 10);
            if (errno || *end || end == line + 14 || n != count) {
                r = CF_E_PARSE;
                break;
            }
            ended = 1;
            continue;
        }
        char *sp = memchr(line, ' ', (size_t)len);
        struct rec *rc = &b->recs[b->n];
        buf_reset(&rc->k);
        buf_reset(&rc->v);
        if (!sp || kv_unescape(&rc->k, line, (size_t)(sp - line)) ||
            kv_unescape(&rc->v, sp + 1, (size_t)(line + len - sp - 1))) {
            r = CF_E_PARSE;
            break;
        }
        count++;
        if (++b->n == KV_WRITE_BATCH && (r = load_flush(b))) break;
    }
    if (!r && ferror(f)) {
        log_err("db_load_failed", "db=%s error=%s", log_quote(db->name), log_quote(strerror(errno)));
        r = CF_E_IO;
    }
    if (!r && !ended) r = CF_E_PARSE;
    if (r == CF_E_PARSE)
        log_err("db_load_failed", "db=%s line=%ld error=%s", log_quote(db->name), lineno,
                ended ? "text after the end line" :
                lineno <= 1 ? "bad or missing header (wrong database or version?)" :
                "bad record line, bad count, or missing end line");
    if (!r) r = load_flush(b);
    for (int i = 0; i < KV_WRITE_BATCH; i++) {
        buf_fini(&b->recs[i].k);
        buf_fini(&b->recs[i].v);
    }
    free(b);
    free(line);
    buf_fini(&want);
    return r;
}
