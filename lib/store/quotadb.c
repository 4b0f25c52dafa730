/* quotadb.c: quota roots, limits and usage (quota.db). */
#include "store/quotadb.h"
#include "core/error.h"
#include "core/log.h"
#include "core/xmalloc.h"
#include "store/mboxname.h"
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct quotadb {
    struct kv_db *db;
};

int quotadb_open(struct kv_env *env, struct quotadb **q_r)
{
    struct kv_db *db = NULL;
    *q_r = NULL;
    int r = kv_db_open(env, QUOTADB_DB, 0, &db);
    if (r) return r;
    *q_r = xmalloc(sizeof **q_r);
    (*q_r)->db = db;
    return 0;
}

void quotadb_close(struct quotadb **qp)
{
    if (!*qp) return;
    kv_db_close(&(*qp)->db);
    xfree_ptr(qp);
}

struct kv_db *quotadb_kv(struct quotadb *q)
{
    return q->db;
}

static void encode(const struct quota *qt, struct buf *out)
{
    buf_reset(out);
    buf_printf(out, "1 %" PRId64 " %" PRId64 " %" PRId64 " %" PRId64, qt->limit_storage_kib,
               qt->limit_messages, qt->used_bytes, qt->used_messages);
}

/* num: one decimal field (optionally "-1") at *p, advancing past it and one space. */
static int num(const char **p, int64_t *out, int last)
{
    const char *s = *p;
    int neg = 0;
    int64_t v = 0;
    if (*s == '-') {
        neg = 1;
        s++;
    }
    if (*s < '0' || *s > '9') return -1;
    for (; *s >= '0' && *s <= '9'; s++) {
        /* exact overflow test: INT64_MAX itself (a valid RFC 9208 number64) decodes (L6) */
        if (v > (INT64_MAX - (*s - '0')) / 10) return -1;
        v = v * 10 + (*s - '0');
    }
    if (neg && v != 1) return -1;
    if (last ? *s != '\0' : *s != ' ') return -1;
    *out = neg ? -v : v;
    *p = last ? s : s + 1;
    return 0;
}

static int decode(const char *root, const char *s, struct quota *qt)
{
    const char *p = s + 2;
    if (strncmp(s, "1 ", 2) || num(&p, &qt->limit_storage_kib, 0) ||
        num(&p, &qt->limit_messages, 0) || num(&p, &qt->used_bytes, 0) ||
        num(&p, &qt->used_messages, 1) || qt->used_bytes < 0 || qt->used_messages < 0) {
        log_err("quota_corrupt_record", "root=%s value=%s", log_quote(root), log_quote(s));
        return CF_E_CORRUPT;
    }
    return 0;
}

int quotadb_get(struct quotadb *q, struct kv_txn *txn, const char *root, struct quota *qt)
{
    struct buf v = BUF_INIT;
    struct quota tmp;
    int r = kv_get(q->db, txn, root, strlen(root), &v);
    if (r == 1) {
        int d = decode(root, buf_cstr(&v), qt ? qt : &tmp);
        if (d) r = d;
    }
    buf_fini(&v);
    return r;
}

static int put(struct quotadb *q, struct kv_txn *txn, const char *root, const struct quota *qt)
{
    struct buf v = BUF_INIT;
    encode(qt, &v);
    int r = kv_put(q->db, txn, root, strlen(root), v.s, v.len);
    buf_fini(&v);
    return r;
}

struct args {
    struct quotadb *q;
    const char *root;
    int64_t a, b;
    int enforce;
};

static int run(struct quotadb *q, struct kv_txn *txn, int (*fn)(struct kv_txn *, void *),
               struct args *a)
{
    if (txn) return fn(txn, a);
    return kv_txn_run(kv_db_env(q->db), 0, fn, a);
}

/* ---- the ledger (quotadb.h) ---- */

static void ledger_key(struct buf *k, const char *root, const char *uniqueid)
{
    buf_reset(k);
    buf_appends(k, root);
    buf_putc(k, '\0');
    if (uniqueid) buf_appends(k, uniqueid);
}

/* ledger_drop: forget root's ledger (its records and its marker); the next settle recounts. */
static int ledger_drop(struct quotadb *q, struct kv_txn *txn, const char *root)
{
    struct buf k = BUF_INIT;
    ledger_key(&k, root, NULL);
    int r = kv_del_prefix(q->db, txn, k.s, k.len);
    buf_fini(&k);
    return r < 0 ? r : 0;
}

/* drop_enclosing: forget the ledger of the root governing root's parent (a root appearing or
 * going below it changes which mailboxes it governs). */
static int drop_enclosing(struct quotadb *q, struct kv_txn *txn, const char *root)
{
    const char *slash = strrchr(root, MBOXNAME_SEP);
    if (!slash) return 0;
    char *parent = xstrndup(root, (size_t)(slash - root));
    struct buf enc = BUF_INIT;
    int r = quotadb_find_root(q, txn, parent, &enc);
    if (r == 1) r = ledger_drop(q, txn, buf_cstr(&enc));
    buf_fini(&enc);
    free(parent);
    return r < 0 ? r : 0;
}

/* ledger_get: the usage applied for uniqueid to root (0, 0 when none). 1 found, 0 none, error. */
static int ledger_get(struct quotadb *q, struct kv_txn *txn, const char *root,
                      const char *uniqueid, int64_t *bytes, int64_t *msgs)
{
    struct buf k = BUF_INIT, v = BUF_INIT;
    *bytes = *msgs = 0;
    ledger_key(&k, root, uniqueid);
    int r = kv_get(q->db, txn, k.s, k.len, &v);
    if (r == 1) {
        const char *p = buf_cstr(&v) + 2;
        if (strncmp(buf_cstr(&v), "1 ", 2) || num(&p, bytes, 0) || num(&p, msgs, 1) ||
            *bytes < 0 || *msgs < 0) {
            log_err("quota_corrupt_ledger", "root=%s uniqueid=%s value=%s", log_quote(root),
                    log_quote(uniqueid), log_quote(buf_cstr(&v)));
            r = CF_E_CORRUPT;
        }
    }
    buf_fini(&k);
    buf_fini(&v);
    return r;
}

static int ledger_put(struct quotadb *q, struct kv_txn *txn, const char *root,
                      const char *uniqueid, int64_t bytes, int64_t msgs)
{
    struct buf k = BUF_INIT, v = BUF_INIT;
    ledger_key(&k, root, uniqueid);
    int r;
    if (!bytes && !msgs) {
        r = kv_del(q->db, txn, k.s, k.len);
    } else {
        buf_printf(&v, "1 %" PRId64 " %" PRId64, bytes, msgs);
        r = kv_put(q->db, txn, k.s, k.len, v.s, v.len);
    }
    buf_fini(&k);
    buf_fini(&v);
    return r < 0 ? r : 0;
}

/* the marker: ROOT NUL -> "1", present when the ledger holds every mailbox of root */
static int ledger_complete(struct quotadb *q, struct kv_txn *txn, const char *root)
{
    struct buf k = BUF_INIT, v = BUF_INIT;
    ledger_key(&k, root, NULL);
    int r = kv_get(q->db, txn, k.s, k.len, &v);
    buf_fini(&k);
    buf_fini(&v);
    return r;
}

struct settle_args {
    struct quotadb *q;
    const char *root, *uniqueid;
    int64_t bytes, msgs;
    int64_t dbytes, dmsgs;    /* out */
};

static int settle_fn(struct kv_txn *txn, void *rock)
{
    struct settle_args *a = rock;
    struct quota qt;
    int64_t ab, am;
    a->dbytes = a->dmsgs = 0;
    int r = quotadb_get(a->q, txn, a->root, &qt);
    if (r == 0) return CF_E_NOTFOUND;
    if (r < 0) return r;
    r = ledger_complete(a->q, txn, a->root);
    if (r <= 0) return r < 0 ? r : 1;
    r = ledger_get(a->q, txn, a->root, a->uniqueid, &ab, &am);
    if (r < 0) return r;
    a->dbytes = a->bytes - ab;
    a->dmsgs = a->msgs - am;
    if (!a->dbytes && !a->dmsgs) return 0;
    if (__builtin_add_overflow(qt.used_bytes, a->dbytes, &qt.used_bytes)) qt.used_bytes = INT64_MAX;
    if (__builtin_add_overflow(qt.used_messages, a->dmsgs, &qt.used_messages))
        qt.used_messages = INT64_MAX;
    if (qt.used_bytes < 0 || qt.used_messages < 0) {
        /* cannot happen while root's usage is the sum of its records: recount */
        log_warn("quota_usage_negative", "root=%s bytes=%" PRId64 " messages=%" PRId64,
                 log_quote(a->root), qt.used_bytes, qt.used_messages);
        return 1;
    }
    r = put(a->q, txn, a->root, &qt);
    if (!r) r = ledger_put(a->q, txn, a->root, a->uniqueid, a->bytes, a->msgs);
    return r;
}

int quotadb_settle(struct quotadb *q, const char *root, const char *uniqueid, int64_t bytes,
                   int64_t messages, int64_t *dbytes_r, int64_t *dmessages_r)
{
    if (bytes < 0 || messages < 0) return CF_E_PARSE;
    struct settle_args a = { q, root, uniqueid, bytes, messages, 0, 0 };
    /* not fsynced, like every usage change: the index headers are the truth and the next
     * settle (or a recount) rolls the ledger forward from them */
    int r = kv_txn_run(kv_db_env(q->db), KV_TXN_NOSYNC, settle_fn, &a);
    if (r == 1) a.dbytes = a.dmsgs = 0;
    if (dbytes_r) *dbytes_r = a.dbytes;
    if (dmessages_r) *dmessages_r = a.dmsgs;
    return r;
}

struct ledger_args {
    struct quotadb *q;
    const char *root;
    const struct quotadb_applied *v;
    size_t n;
};

static int set_ledger_fn(struct kv_txn *txn, void *rock)
{
    struct ledger_args *a = rock;
    struct quota qt;
    int r = quotadb_get(a->q, txn, a->root, &qt);
    if (r == 0) return CF_E_NOTFOUND;
    if (r < 0) return r;
    if ((r = ledger_drop(a->q, txn, a->root)) < 0) return r;
    qt.used_bytes = qt.used_messages = 0;
    for (size_t i = 0; i < a->n; i++) {
        qt.used_bytes += a->v[i].bytes;
        qt.used_messages += a->v[i].messages;
        r = ledger_put(a->q, txn, a->root, a->v[i].uniqueid, a->v[i].bytes, a->v[i].messages);
        if (r < 0) return r;
    }
    struct buf k = BUF_INIT;
    ledger_key(&k, a->root, NULL);
    r = kv_put(a->q->db, txn, k.s, k.len, "1", 1);
    buf_fini(&k);
    return r < 0 ? r : put(a->q, txn, a->root, &qt);
}

int quotadb_set_ledger(struct quotadb *q, const char *root, const struct quotadb_applied *v,
                       size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (v[i].bytes < 0 || v[i].messages < 0) return CF_E_PARSE;
    struct ledger_args a = { q, root, v, n };
    return kv_txn_run(kv_db_env(q->db), 0, set_ledger_fn, &a);
}

static int count_record(const char *key, size_t klen, const char *val, size_t vlen, void *rock)
{
    (void)val;
    (void)vlen;
    if (klen && key[klen - 1] != '\0') (*(size_t *)rock)++;   /* not the marker */
    return 0;
}

int quotadb_ledger_matches(struct quotadb *q, const char *root,
                           const struct quotadb_applied *v, size_t n)
{
    int r = ledger_complete(q, NULL, root);
    size_t want = 0, have = 0;
    for (size_t i = 0; r == 1 && i < n; i++) {
        if (!v[i].bytes && !v[i].messages) continue;
        want++;
        int64_t b, m;
        r = ledger_get(q, NULL, root, v[i].uniqueid, &b, &m);
        if (r == 1 && (b != v[i].bytes || m != v[i].messages)) r = 0;
    }
    if (r == 1) {
        struct buf k = BUF_INIT;
        ledger_key(&k, root, NULL);
        int f = kv_foreach(q->db, NULL, k.s, k.len, count_record, &have);
        buf_fini(&k);
        if (f < 0) return f;
        r = have == want;
    }
    return r;
}

static int set_limits_fn(struct kv_txn *txn, void *rock)
{
    struct args *a = rock;
    struct quota qt = { 0, 0, 0, 0 };
    int r = quotadb_get(a->q, txn, a->root, &qt);
    if (r < 0) return r;
    /* a new root takes mailboxes from the root that governed them until now */
    if (r == 0 && (r = drop_enclosing(a->q, txn, a->root)) < 0) return r;
    qt.limit_storage_kib = a->a;
    qt.limit_messages = a->b;
    return put(a->q, txn, a->root, &qt);
}

int quotadb_set_limits(struct quotadb *q, struct kv_txn *txn, const char *root,
                       int64_t storage_kib, int64_t messages)
{
    if (mboxname_valid(root) || storage_kib < QUOTA_UNLIMITED || messages < QUOTA_UNLIMITED)
        return CF_E_PARSE;
    if (storage_kib > QUOTA_STORAGE_KIB_MAX) return CF_E_LIMIT;   /* L6: bytes would overflow */
    struct args a = { q, root, storage_kib, messages, 0 };
    return run(q, txn, set_limits_fn, &a);
}

static int set_usage_fn(struct kv_txn *txn, void *rock)
{
    struct args *a = rock;
    struct quota qt;
    int r = quotadb_get(a->q, txn, a->root, &qt);
    if (r < 0) return r;
    if (r == 0) return CF_E_NOTFOUND;
    qt.used_bytes = a->a;
    qt.used_messages = a->b;
    /* a usage set from outside the ledger: the next settle recounts and rebuilds it */
    r = ledger_drop(a->q, txn, a->root);
    return r < 0 ? r : put(a->q, txn, a->root, &qt);
}

int quotadb_set_usage(struct quotadb *q, struct kv_txn *txn, const char *root, int64_t bytes,
                      int64_t messages)
{
    if (bytes < 0 || messages < 0) return CF_E_PARSE;
    struct args a = { q, root, bytes, messages, 0 };
    return run(q, txn, set_usage_fn, &a);
}

static int delete_fn(struct kv_txn *txn, void *rock)
{
    struct args *a = rock;
    int r = kv_del(a->q->db, txn, a->root, strlen(a->root));
    if (r < 0) return r;
    if (r == 0) return CF_E_NOTFOUND;
    /* its mailboxes go back to the enclosing root, if any */
    r = ledger_drop(a->q, txn, a->root);
    if (r >= 0) r = drop_enclosing(a->q, txn, a->root);
    return r < 0 ? r : 0;
}

int quotadb_delete(struct quotadb *q, struct kv_txn *txn, const char *root)
{
    struct args a = { q, root, 0, 0, 0 };
    return run(q, txn, delete_fn, &a);
}

int quotadb_find_root(struct quotadb *q, struct kv_txn *txn, const char *mailbox,
                      struct buf *root)
{
    /* Walk up from the mailbox itself: at most MBOXNAME_MAX_DEPTH point lookups, cheaper than
     * scanning every root that sorts before the name. */
    size_t len = strlen(mailbox);
    buf_reset(root);
    while (len) {
        int r = kv_get(q->db, txn, mailbox, len, root);
        if (r < 0) return r;
        if (r == 1) {
            buf_reset(root);
            buf_append(root, mailbox, len);
            buf_cstr(root);
            return 1;
        }
        while (len && mailbox[len - 1] != MBOXNAME_SEP) len--;
        if (len) len--;   /* drop the '/' */
    }
    buf_reset(root);
    buf_cstr(root);
    return 0;
}

/* limit_bytes: the storage limit in bytes, at most INT64_MAX (L6: KiB * 1024 overflowed). */
static int64_t limit_bytes(int64_t kib)
{
    return kib > QUOTA_STORAGE_KIB_MAX ? INT64_MAX : kib * 1024;
}

/* passes: whether used + add > limit, without computing an overflowing sum */
static int passes(int64_t used, int64_t add, int64_t limit)
{
    if (used > limit) return 1;
    return add > limit - used;
}

int quota_would_exceed(const struct quota *qt, int64_t add_bytes, int64_t add_messages)
{
    if (add_bytes > 0 && qt->limit_storage_kib != QUOTA_UNLIMITED &&
        passes(qt->used_bytes, add_bytes, limit_bytes(qt->limit_storage_kib)))
        return 1;
    if (add_messages > 0 && qt->limit_messages != QUOTA_UNLIMITED &&
        passes(qt->used_messages, add_messages, qt->limit_messages))
        return 1;
    return 0;
}

/* percent_of: used in percent of limit (limit >= 0, used >= 0); 100 when limit is 0 and
 * something is used. Through long double: no product can overflow, and a warning threshold
 * needs no more precision than that. */
static int64_t percent_of(int64_t used, int64_t limit)
{
    if (limit == 0) return used > 0 ? 100 : 0;
    long double p = (long double)used * 100.0L / (long double)limit;
    return p >= 1e15L ? (int64_t)1e15 : (int64_t)p;
}

int64_t quota_percent(const struct quota *qt)
{
    int64_t pct = 0;
    if (qt->limit_storage_kib >= 0)
        pct = percent_of(qt->used_bytes, limit_bytes(qt->limit_storage_kib));
    if (qt->limit_messages >= 0) {
        int64_t m = percent_of(qt->used_messages, qt->limit_messages);
        if (m > pct) pct = m;
    }
    return pct;
}

static int delta_fn(struct kv_txn *txn, void *rock)
{
    struct args *a = rock;
    struct quota qt;
    int r = quotadb_get(a->q, txn, a->root, &qt);
    if (r < 0) return r;
    if (r == 0) return CF_E_NOTFOUND;
    if (a->enforce && quota_would_exceed(&qt, a->a, a->b)) return CF_E_QUOTA;
    /* a change from outside the ledger: the next settle recounts and rebuilds it */
    if ((a->a || a->b) && (r = ledger_drop(a->q, txn, a->root)) < 0) return r;
    /* a sum past INT64_MAX can only come of a corrupt record: keep the maximum (L6) */
    if (__builtin_add_overflow(qt.used_bytes, a->a, &qt.used_bytes)) qt.used_bytes = INT64_MAX;
    if (__builtin_add_overflow(qt.used_messages, a->b, &qt.used_messages))
        qt.used_messages = INT64_MAX;
    if (qt.used_bytes < 0 || qt.used_messages < 0) {
        log_warn("quota_usage_negative", "root=%s bytes=%" PRId64 " messages=%" PRId64
                 " hint=\"run the quota tool to recount\"", log_quote(a->root), qt.used_bytes,
                 qt.used_messages);
        if (qt.used_bytes < 0) qt.used_bytes = 0;
        if (qt.used_messages < 0) qt.used_messages = 0;
    }
    return put(a->q, txn, a->root, &qt);
}

int quotadb_apply_delta(struct quotadb *q, struct kv_txn *txn, const char *root,
                        int64_t delta_bytes, int64_t delta_messages, int enforce)
{
    struct args a = { q, root, delta_bytes, delta_messages, enforce };
    if (txn) return delta_fn(txn, &a);
    /* Usage is derived data: the index headers are the truth and `coffer quota fix` recounts
     * from them. So its commit writes the log without an fsync of its own, which keeps a
     * delivery at two fsyncs (message file and index) even under a quota; a system crash can
     * only lose the last few deltas, never a message. */
    return kv_txn_run(kv_db_env(q->db), KV_TXN_NOSYNC, delta_fn, &a);
}

struct foreach_ctx {
    quotadb_foreach_fn *cb;
    void *rock;
};

static int foreach_one(const char *key, size_t klen, const char *val, size_t vlen, void *rock)
{
    struct foreach_ctx *f = rock;
    struct quota qt;
    (void)vlen;
    if (memchr(key, '\0', klen)) return 0;   /* a ledger record (ROOT NUL UNIQUEID) */
    if (decode(key, val, &qt)) return 0;
    return f->cb(key, &qt, f->rock);
}

int quotadb_foreach(struct quotadb *q, struct kv_txn *txn, const char *prefix,
                    quotadb_foreach_fn *cb, void *rock)
{
    struct foreach_ctx f = { cb, rock };
    return kv_foreach(q->db, txn, prefix, strlen(prefix), foreach_one, &f);
}
