/* dupdb.c: duplicate delivery suppression (dup.db). */
#include "store/dupdb.h"
#include "core/buf.h"
#include "core/error.h"
#include "core/log.h"
#include "core/xmalloc.h"
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

struct dupdb {
    struct kv_db *db;
};

int dupdb_open(struct kv_env *env, struct dupdb **d_r)
{
    struct kv_db *db = NULL;
    *d_r = NULL;
    int r = kv_db_open(env, DUPDB_DB, KV_TXN_NOSYNC, &db);
    if (r) return r;
    *d_r = xmalloc(sizeof **d_r);
    (*d_r)->db = db;
    return 0;
}

void dupdb_close(struct dupdb **dp)
{
    if (!*dp) return;
    kv_db_close(&(*dp)->db);
    xfree_ptr(dp);
}

struct kv_db *dupdb_kv(struct dupdb *d)
{
    return d->db;
}

static int make_key(struct buf *k, const char *msgid, const char *mailbox)
{
    if (!msgid || !*msgid || !mailbox || !*mailbox) return CF_E_PARSE;
    buf_appends(k, msgid);
    buf_putc(k, '\0');
    buf_appends(k, mailbox);
    return 0;
}

/* parse_time: the "1 TIME" value; 0 or -1. */
static int parse_time(const char *v, size_t len, int64_t *t)
{
    int64_t n = 0;
    if (len < 3 || strncmp(v, "1 ", 2)) return -1;
    for (size_t i = 2; i < len; i++) {
        if (v[i] < '0' || v[i] > '9' || n > (INT64_MAX - 9) / 10) return -1;
        n = n * 10 + (v[i] - '0');
    }
    *t = n;
    return 0;
}

int dupdb_check(struct dupdb *d, struct kv_txn *txn, const char *msgid, const char *mailbox,
                int64_t *when)
{
    struct buf k = BUF_INIT, v = BUF_INIT;
    int64_t t = 0;
    int r = make_key(&k, msgid, mailbox);
    if (!r) r = kv_get(d->db, txn, k.s, k.len, &v);
    if (r == 1 && parse_time(v.s, v.len, &t)) {
        /* an unreadable mark still says "delivered": suppressing is the safer reading */
        log_warn("dup_corrupt_record", "mailbox=%s", log_quote(mailbox));
        t = 0;
    }
    if (when) *when = r == 1 ? t : 0;
    buf_fini(&k);
    buf_fini(&v);
    return r;
}

int dupdb_mark(struct dupdb *d, struct kv_txn *txn, const char *msgid, const char *mailbox,
               int64_t when)
{
    struct buf k = BUF_INIT, v = BUF_INIT;
    if (when < 0) return CF_E_PARSE;
    int r = make_key(&k, msgid, mailbox);
    if (!r) {
        buf_printf(&v, "1 %" PRId64, when);
        r = kv_put(d->db, txn, k.s, k.len, v.s, v.len);
    }
    buf_fini(&k);
    buf_fini(&v);
    return r;
}

static int expired(const char *key, size_t klen, const char *val, size_t vlen, void *rock)
{
    int64_t t, before = *(const int64_t *)rock;
    (void)key;
    (void)klen;
    if (parse_time(val, vlen, &t)) {
        log_warn("dup_corrupt_record_pruned", "value=%s", log_quote(val));
        return 1;
    }
    return t < before;
}

int dupdb_prune(struct dupdb *d, int64_t before)
{
    int r = kv_del_if(d->db, NULL, 0, expired, &before);
    if (r >= 0) log_info("dup_pruned", "removed=%d", r);
    return r;
}
