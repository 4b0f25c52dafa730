/* metadb.c: mailbox and server annotations (metadata.db, RFC 5464). */
#include "store/metadb.h"
#include "core/error.h"
#include "core/log.h"
#include "core/xmalloc.h"
#include <stdlib.h>
#include <string.h>

struct metadb {
    struct kv_db *db;
};

int metadb_open(struct kv_env *env, struct metadb **m_r)
{
    struct kv_db *db = NULL;
    *m_r = NULL;
    int r = kv_db_open(env, METADB_DB, 0, &db);
    if (r) return r;
    *m_r = xmalloc(sizeof **m_r);
    (*m_r)->db = db;
    return 0;
}

void metadb_close(struct metadb **mp)
{
    if (!*mp) return;
    kv_db_close(&(*mp)->db);
    xfree_ptr(mp);
}

struct kv_db *metadb_kv(struct metadb *m)
{
    return m->db;
}

/* scope_key: the key prefix of uniqueid's entries in one scope: "S\0UNIQUEID\0" or
 * "P\0USER\0UNIQUEID\0". CF_E_PARSE for an empty user. */
static int scope_key(struct buf *k, const char *uniqueid, const char *user)
{
    if (user) {
        if (!*user) return CF_E_PARSE;
        buf_appends(k, "P");
        buf_putc(k, '\0');
        buf_appends(k, user);
    } else {
        buf_appends(k, "S");
    }
    buf_putc(k, '\0');
    buf_appends(k, uniqueid ? uniqueid : "");
    buf_putc(k, '\0');
    return 0;
}

/* add_path: path lower-cased (ASCII; RFC 5464 section 3.2), appended to the key */
static void add_path(struct buf *k, const char *path)
{
    for (const char *p = path; *p; p++) {
        char ch = *p;
        buf_putc(k, ch >= 'A' && ch <= 'Z' ? (char)(ch - 'A' + 'a') : ch);
    }
}

int metadb_get(struct metadb *m, struct kv_txn *txn, const char *uniqueid, const char *user,
               const char *path, struct buf *val)
{
    struct buf k = BUF_INIT, v = BUF_INIT;
    buf_reset(val);
    int r = path && *path ? scope_key(&k, uniqueid, user) : CF_E_PARSE;
    if (!r) {
        add_path(&k, path);
        r = kv_get(m->db, txn, k.s, k.len, &v);
    }
    if (r == 1) {
        if (v.len < 2 || strncmp(v.s, "1 ", 2)) {
            log_err("metadata_corrupt_record", "uniqueid=%s path=%s", log_quote(uniqueid),
                    log_quote(path));
            r = CF_E_CORRUPT;
        } else {
            buf_append(val, v.s + 2, v.len - 2);
        }
    }
    buf_cstr(val);
    buf_fini(&k);
    buf_fini(&v);
    return r;
}

int metadb_put(struct metadb *m, struct kv_txn *txn, const char *uniqueid, const char *user,
               const char *path, const void *val, size_t vlen)
{
    struct buf k = BUF_INIT, v = BUF_INIT;
    int r = path && *path ? scope_key(&k, uniqueid, user) : CF_E_PARSE;
    if (!r) {
        add_path(&k, path);
        r = kv_get(m->db, txn, k.s, k.len, &v);
    }
    int existed = r == 1;
    if (r >= 0 && val) {
        buf_reset(&v);
        buf_appends(&v, "1 ");
        buf_append(&v, val, vlen);
        r = kv_put(m->db, txn, k.s, k.len, v.s, v.len);
    } else if (r == 1) {
        r = kv_del(m->db, txn, k.s, k.len);
    }
    buf_fini(&k);
    buf_fini(&v);
    return r < 0 ? r : existed;
}

struct each_rock {
    size_t skip;       /* bytes of the scope prefix before the path */
    metadb_fn *cb;
    void *rock;
    long long count, bytes;
};

static int each_one(const char *key, size_t klen, const char *val, size_t vlen, void *rock)
{
    struct each_rock *e = rock;
    if (vlen < 2 || strncmp(val, "1 ", 2)) {
        log_err("metadata_corrupt_record", "key=%s", log_quote(key));
        return CF_E_CORRUPT;
    }
    e->count++;
    e->bytes += (long long)(vlen - 2);
    if (!e->cb) return 0;
    (void)klen;
    return e->cb(key + e->skip, val + 2, vlen - 2, e->rock);
}

int metadb_foreach(struct metadb *m, struct kv_txn *txn, const char *uniqueid,
                   const char *user, const char *prefix, metadb_fn *cb, void *rock)
{
    struct buf k = BUF_INIT;
    int r = scope_key(&k, uniqueid, user);
    struct each_rock e = { k.len, cb, rock, 0, 0 };
    if (!r) {
        add_path(&k, prefix ? prefix : "");
        r = kv_foreach(m->db, txn, k.s, k.len, each_one, &e);
    }
    buf_fini(&k);
    return r;
}

int metadb_usage(struct metadb *m, struct kv_txn *txn, const char *uniqueid, const char *user,
                 long long *count_r, long long *bytes_r)
{
    struct buf k = BUF_INIT;
    int r = scope_key(&k, uniqueid, user);
    struct each_rock e = { k.len, NULL, NULL, 0, 0 };
    if (!r) r = kv_foreach(m->db, txn, k.s, k.len, each_one, &e);
    buf_fini(&k);
    *count_r = e.count;
    *bytes_r = e.bytes;
    return r < 0 ? r : 0;
}

int metadb_user_count(struct metadb *m, struct kv_txn *txn, const char *user,
                      long long *count_r)
{
    struct buf k = BUF_INIT;
    int r = user && *user ? 0 : CF_E_PARSE;
    struct each_rock e = { 0, NULL, NULL, 0, 0 };
    if (!r) {
        buf_appends(&k, "P");
        buf_putc(&k, '\0');
        buf_appends(&k, user);
        buf_putc(&k, '\0');
        r = kv_foreach(m->db, txn, k.s, k.len, each_one, &e);
    }
    buf_fini(&k);
    *count_r = e.count;
    return r < 0 ? r : 0;
}

/* private_of: 1 for a private record ("P\0USER\0UNIQUEID\0PATH") of the mailbox in rock */
static int private_of(const char *key, size_t klen, const char *val, size_t vlen, void *rock)
{
    (void)val;
    (void)vlen;
    const char *uid = rock;
    size_t ulen = strlen(uid);
    if (klen < 2) return 0;
    const char *user = key + 2, *end = key + klen;
    const char *u = memchr(user, '\0', (size_t)(end - user));
    if (!u || (size_t)(end - u - 1) < ulen + 1) return 0;
    return !memcmp(u + 1, uid, ulen) && u[1 + ulen] == '\0';
}

int metadb_delete_mailbox(struct metadb *m, const char *uniqueid)
{
    if (!uniqueid || !*uniqueid) return CF_E_PARSE;
    struct buf k = BUF_INIT;
    scope_key(&k, uniqueid, NULL);
    int r = kv_del_prefix(m->db, NULL, k.s, k.len);
    buf_fini(&k);
    if (r < 0) return r;
    static const char pfx[2] = { 'P', '\0' };
    int p = kv_del_if(m->db, pfx, sizeof pfx, private_of, (void *)uniqueid);
    return p < 0 ? p : r + p;
}

int metadb_delete_user(struct metadb *m, const char *user)
{
    if (!user || !*user) return CF_E_PARSE;
    struct buf k = BUF_INIT;
    buf_appends(&k, "P");
    buf_putc(&k, '\0');
    buf_appends(&k, user);
    buf_putc(&k, '\0');
    int r = kv_del_prefix(m->db, NULL, k.s, k.len);
    buf_fini(&k);
    return r;
}
