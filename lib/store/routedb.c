/* routedb.c: the scale-out route table (route.db, routedb.h). */
#include "store/routedb.h"
#include "core/buf.h"
#include "core/error.h"
#include "core/log.h"
#include "core/xmalloc.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct routedb {
    struct kv_db *db;
};

int routedb_open(struct kv_env *env, struct routedb **rd_r)
{
    struct kv_db *db = NULL;
    *rd_r = NULL;
    int r = kv_db_open(env, ROUTEDB_DB, 0, &db);
    if (r) return r;
    *rd_r = xmalloc(sizeof **rd_r);
    (*rd_r)->db = db;
    return 0;
}

void routedb_close(struct routedb **rdp)
{
    if (!*rdp) return;
    kv_db_close(&(*rdp)->db);
    xfree_ptr(rdp);
}

struct kv_db *routedb_kv(struct routedb *rd) { return rd->db; }

int routedb_valid_name(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > ROUTEDB_MAX_NAME) return 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p <= ' ' || *p >= 0x7f || *p == '@' || *p == '%') return 0;
    return 1;
}

/* parse: "1 BACKEND STATE" -> rt; 0 or -1 */
static int parse(const char *v, size_t len, struct route *rt)
{
    if (len < 4 || strncmp(v, "1 ", 2) || memchr(v, '\0', len)) return -1;
    const char *b = v + 2, *sp = memchr(b, ' ', len - 2);
    if (!sp || sp == b || (size_t)(sp - b) > ROUTEDB_MAX_NAME) return -1;
    const char *st = sp + 1, *end = v + len;
    int moving;
    if ((size_t)(end - st) == 5 && !memcmp(st, "ready", 5)) moving = 0;
    else if ((size_t)(end - st) == 6 && !memcmp(st, "moving", 6)) moving = 1;
    else return -1;
    memcpy(rt->backend, b, (size_t)(sp - b));
    rt->backend[sp - b] = '\0';
    if (!routedb_valid_name(rt->backend)) return -1;
    rt->moving = moving;
    return 0;
}

int routedb_get(struct routedb *rd, struct kv_txn *txn, const char *user, struct route *rt)
{
    struct buf v = BUF_INIT;
    memset(rt, 0, sizeof *rt);
    int r = kv_get(rd->db, txn, user, strlen(user), &v);
    if (r == 1 && parse(v.s, v.len, rt)) {
        log_err("route_corrupt_record", "user=%s", log_quote(user));
        r = CF_E_CORRUPT;
    }
    buf_fini(&v);
    return r;
}

int routedb_set(struct routedb *rd, struct kv_txn *txn, const char *user, const struct route *rt)
{
    if (!routedb_valid_name(user) || !routedb_valid_name(rt->backend)) return CF_E_PARSE;
    struct buf v = BUF_INIT;
    buf_printf(&v, "1 %s %s", rt->backend, rt->moving ? "moving" : "ready");
    int r = kv_put(rd->db, txn, user, strlen(user), v.s, v.len);
    buf_fini(&v);
    return r;
}

int routedb_del(struct routedb *rd, struct kv_txn *txn, const char *user)
{
    return kv_del(rd->db, txn, user, strlen(user));
}

struct each {
    routedb_foreach_fn *cb;
    void *rock;
};

static int each_one(const char *key, size_t klen, const char *val, size_t vlen, void *rock)
{
    struct each *e = rock;
    struct route rt;
    if (strlen(key) != klen || parse(val, vlen, &rt)) {
        log_err("route_corrupt_record", "user=%s", log_quote(key));
        return 0;
    }
    return e->cb(key, &rt, e->rock);
}

int routedb_foreach(struct routedb *rd, routedb_foreach_fn *cb, void *rock)
{
    struct each e = { cb, rock };
    return kv_foreach(rd->db, NULL, "", 0, each_one, &e);
}
