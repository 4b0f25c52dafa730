/* seendb.c: per-user \Seen sets of shared mailboxes (seen.db). */
#include "store/seendb.h"
#include "core/error.h"
#include "core/log.h"
#include "core/xmalloc.h"
#include <stdlib.h>
#include <string.h>

struct seendb {
    struct kv_db *db;
};

int seendb_open(struct kv_env *env, struct seendb **s_r)
{
    struct kv_db *db = NULL;
    *s_r = NULL;
    int r = kv_db_open(env, SEENDB_DB, KV_TXN_NOSYNC, &db);
    if (r) return r;
    *s_r = xmalloc(sizeof **s_r);
    (*s_r)->db = db;
    return 0;
}

void seendb_close(struct seendb **sp)
{
    if (!*sp) return;
    kv_db_close(&(*sp)->db);
    xfree_ptr(sp);
}

struct kv_db *seendb_kv(struct seendb *s)
{
    return s->db;
}

/* make_key: "UNIQUEID\0USER"; with user NULL, the prefix "UNIQUEID\0". */
static int make_key(struct buf *k, const char *uniqueid, const char *user)
{
    if (!uniqueid || !*uniqueid) return CF_E_PARSE;
    buf_appends(k, uniqueid);
    buf_putc(k, '\0');
    if (user) {
        if (!*user) return CF_E_PARSE;
        buf_appends(k, user);
    }
    return 0;
}

int seendb_get(struct seendb *s, struct kv_txn *txn, const char *uniqueid, const char *user,
               struct buf *seqset)
{
    struct buf k = BUF_INIT, v = BUF_INIT;
    int r = user ? make_key(&k, uniqueid, user) : CF_E_PARSE;
    buf_reset(seqset);
    buf_cstr(seqset);
    if (!r) r = kv_get(s->db, txn, k.s, k.len, &v);
    if (r == 1) {
        if (v.len < 3 || strncmp(v.s, "1 ", 2) || kv_unescape(seqset, v.s + 2, v.len - 2)) {
            log_err("seen_corrupt_record", "uniqueid=%s user=%s", log_quote(uniqueid),
                    log_quote(user));
            buf_reset(seqset);
            r = CF_E_CORRUPT;
        }
        buf_cstr(seqset);
    }
    buf_fini(&k);
    buf_fini(&v);
    return r;
}

int seendb_set(struct seendb *s, struct kv_txn *txn, const char *uniqueid, const char *user,
               const char *seqset)
{
    struct buf k = BUF_INIT, v = BUF_INIT;
    for (const char *p = seqset; *p; p++)
        if (*p <= 0x20 || *p >= 0x7f) return CF_E_PARSE;
    int r = user ? make_key(&k, uniqueid, user) : CF_E_PARSE;
    if (!r) {
        buf_appends(&v, "1 ");
        kv_escape(&v, seqset, strlen(seqset));
        r = kv_put(s->db, txn, k.s, k.len, v.s, v.len);
    }
    buf_fini(&k);
    buf_fini(&v);
    return r;
}

int seendb_delete_mailbox(struct seendb *s, struct kv_txn *txn, const char *uniqueid)
{
    struct buf k = BUF_INIT;
    int r = make_key(&k, uniqueid, NULL);
    if (!r) r = kv_del_prefix(s->db, txn, k.s, k.len);
    buf_fini(&k);
    return r;
}

static int user_doomed(const char *key, size_t klen, const char *val, size_t vlen, void *rock)
{
    (void)val;
    (void)vlen;
    size_t idlen = strlen(key), ulen = strlen(rock);
    if (idlen + 1 >= klen) return 0;
    const char *u = key + idlen + 1;
    size_t left = klen - idlen - 1;
    /* the user's set, and imapd's "USER\x01..." entries beside it (RFC 7162 per-user \Seen
     * mod-sequences, server/imapd/condstore.c) */
    if (left < ulen || memcmp(u, rock, ulen)) return 0;
    return left == ulen || u[ulen] == '\0' || u[ulen] == '\x01';
}

int seendb_delete_user(struct seendb *s, const char *user)
{
    if (!user || !*user) return CF_E_PARSE;
    return kv_del_if(s->db, NULL, 0, user_doomed, (void *)user);
}
