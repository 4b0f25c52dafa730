/* subs.c: per-user subscriptions (subs.db). */
#include "store/subs.h"
#include "core/buf.h"
#include "core/error.h"
#include "core/xmalloc.h"
#include "store/mboxname.h"
#include <stdlib.h>
#include <string.h>

struct subsdb {
    struct kv_db *db;
};

int subs_open(struct kv_env *env, struct subsdb **s_r)
{
    struct kv_db *db = NULL;
    *s_r = NULL;
    int r = kv_db_open(env, SUBS_DB, 0, &db);
    if (r) return r;
    *s_r = xmalloc(sizeof **s_r);
    (*s_r)->db = db;
    return 0;
}

void subs_close(struct subsdb **sp)
{
    if (!*sp) return;
    kv_db_close(&(*sp)->db);
    xfree_ptr(sp);
}

struct kv_db *subs_kv(struct subsdb *s)
{
    return s->db;
}

/* make_key: "USER\0MAILBOX"; with mailbox NULL, the prefix "USER\0" of all of user's records. */
static int make_key(struct buf *k, const char *user, const char *mailbox)
{
    if (!user || !*user) return CF_E_PARSE;
    buf_appends(k, user);
    buf_putc(k, '\0');
    if (mailbox) {
        if (mboxname_valid(mailbox)) return CF_E_PARSE;
        buf_appends(k, mailbox);
    }
    return 0;
}

int subs_add(struct subsdb *s, struct kv_txn *txn, const char *user, const char *mailbox)
{
    struct buf k = BUF_INIT;
    int r = make_key(&k, user, mailbox);
    if (!r) r = kv_put(s->db, txn, k.s, k.len, "", 0);
    buf_fini(&k);
    return r;
}

int subs_remove(struct subsdb *s, struct kv_txn *txn, const char *user, const char *mailbox)
{
    struct buf k = BUF_INIT;
    int r = make_key(&k, user, mailbox);
    if (!r) r = kv_del(s->db, txn, k.s, k.len);
    buf_fini(&k);
    return r < 0 ? r : 0;
}

int subs_is_subscribed(struct subsdb *s, struct kv_txn *txn, const char *user,
                       const char *mailbox)
{
    struct buf k = BUF_INIT, v = BUF_INIT;
    int r = make_key(&k, user, mailbox);
    if (!r) r = kv_get(s->db, txn, k.s, k.len, &v);
    buf_fini(&k);
    buf_fini(&v);
    return r;
}

static int list_one(const char *key, size_t klen, const char *val, size_t vlen, void *rock)
{
    (void)val;
    (void)vlen;
    size_t ulen = strlen(key);   /* the key's user part ends at its NUL */
    if (ulen + 1 < klen) strarr_add(rock, key + ulen + 1);
    return 0;
}

int subs_list(struct subsdb *s, struct kv_txn *txn, const char *user, struct strarr *out)
{
    struct buf k = BUF_INIT;
    int r = make_key(&k, user, NULL);
    if (!r) r = kv_foreach(s->db, txn, k.s, k.len, list_one, out);
    buf_fini(&k);
    return r;
}

int subs_remove_user(struct subsdb *s, struct kv_txn *txn, const char *user)
{
    struct buf k = BUF_INIT;
    int r = make_key(&k, user, NULL);
    if (!r) r = kv_del_prefix(s->db, txn, k.s, k.len);
    buf_fini(&k);
    return r;
}
