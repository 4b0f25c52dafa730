/* store-db.c: the store's databases as services and tools use them (store-db.h): thin calls
 * over mboxlist, subs, seendb, quotadb, dupdb and kv that keep transactions, handles and
 * record formats inside lib/store. */
#include "store/store-int.h"
#include "core/error.h"
#include "core/log.h"
#include "core/xmalloc.h"
#include "store/quotalock.h"
#include <openssl/rand.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

/* ---- mailbox list ---- */

int store_mailbox_foreach(struct store *st, const char *prefix, store_mailbox_fn *cb,
                          void *rock)
{
    return mboxlist_foreach(st->mboxlist, NULL, prefix, cb, rock);
}

int store_mailbox_foreach_tree(struct store *st, const char *name, store_mailbox_fn *cb,
                               void *rock)
{
    return mboxlist_foreach_tree(st->mboxlist, NULL, name, cb, rock);
}

int store_has_children(struct store *st, const char *name)
{
    return mboxlist_has_children(st->mboxlist, NULL, name);
}

int store_list(struct store *st, const char *user, const char *pattern,
               store_visible_fn *visible, store_list_fn *cb, void *rock)
{
    return mboxlist_list_visible(st->mboxlist, NULL, user, pattern, visible, cb, rock);
}

int store_list_granted(struct store *st, const char *user, const char *pattern,
                       store_visible_fn *visible, store_list_fn *cb, void *rock)
{
    return mboxlist_list_granted(st->mboxlist, NULL, user, pattern, visible, cb, rock);
}

int store_lookup_in(struct store *st, struct store_txn *txn, const char *name,
                    struct mboxlist_entry *e)
{
    return mboxlist_lookup(st->mboxlist, txn ? txn->kv : NULL, name, e);
}

struct check_rock {
    struct store *st;
    store_rename_check_fn *check;
    void *rock;
};

/* rename_check: mboxlist's check hook, handing the caller's check the transaction wrapped */
static int rename_check(struct kv_txn *kv, const char *oldname, const char *newname,
                        const struct mboxlist_entry *e, void *rock)
{
    struct check_rock *cr = rock;
    struct store_txn txn = { cr->st, kv };
    return cr->check(&txn, oldname, newname, e, cr->rock);
}

int store_rename_with_check(struct store *st, const char *oldname, const char *newname,
                            store_rename_check_fn *check, void *rock)
{
    struct check_rock cr = { st, check, rock };
    return store_rename_checked(st, oldname, newname, NULL, check ? rename_check : NULL, &cr);
}

int store_raise_uidvalidity(struct store *st, uint32_t seen, uint32_t *last_r)
{
    return mboxlist_raise_uidvalidity(st->mboxlist, NULL, seen, last_r);
}

/* ---- subscriptions ---- */

int store_subscribe(struct store *st, const char *user, const char *mailbox, int limited)
{
    long long max = config_int(st->cfg, CFG_MAX_SUBSCRIPTIONS_PER_USER);
    if (limited && max > 0 && subs_is_subscribed(st->subs, NULL, user, mailbox) == 0) {
        /* L8 of the 2026-12 review: a bounded list. Not in the add's transaction: two
         * sessions racing pass it by one, which is all the bound needs. */
        struct strarr subs = STRARR_INIT;
        int r = subs_list(st->subs, NULL, user, &subs);
        if (!r && (long long)subs.count >= max) r = CF_E_LIMIT;
        strarr_fini(&subs);
        if (r) return r;
    }
    return subs_add(st->subs, NULL, user, mailbox);
}

int store_unsubscribe(struct store *st, const char *user, const char *mailbox)
{
    return subs_remove(st->subs, NULL, user, mailbox);
}

int store_subscriptions(struct store *st, const char *user, struct strarr *out)
{
    return subs_list(st->subs, NULL, user, out);
}

/* ---- per-user \Seen ---- */

int store_seen_get(struct store *st, const char *uniqueid, const char *user, struct buf *seqset)
{
    return seendb_get(st->seen, NULL, uniqueid, user, seqset);
}

int store_seen_set(struct store *st, const char *uniqueid, const char *user, const char *seqset)
{
    return seendb_set(st->seen, NULL, uniqueid, user, seqset);
}

/* ---- quota roots and limits ---- */

int store_quota_get(struct store *st, const char *root, struct quota *qt)
{
    return quotadb_get(st->quota, NULL, root, qt);
}

int store_quota_root(struct store *st, const char *mailbox, struct buf *root)
{
    return quotadb_find_root(st->quota, NULL, mailbox, root);
}

int store_quota_of(struct store *st, const char *mailbox, struct buf *root, struct quota *qt)
{
    int r = quotadb_find_root(st->quota, NULL, mailbox, root);
    if (r == 1) r = quotadb_get(st->quota, NULL, buf_cstr(root), qt);
    return r;
}

int store_quota_foreach(struct store *st, const char *prefix, store_quota_fn *cb, void *rock)
{
    return quotadb_foreach(st->quota, NULL, prefix, cb, rock);
}

/* ---- time-stamped records (dup.db "1 TIME", vacation.db "TIME") ---- */

struct older_rock {
    int64_t before;
    int versioned;   /* values start with "1 " */
    long long n;
};

/* older: 1 for a record whose time is before the cut or cannot be read (nothing uses it) */
static int older(const char *key, size_t klen, const char *val, size_t vlen, void *rock)
{
    struct older_rock *o = rock;
    (void)key;
    (void)klen;
    (void)vlen;
    const char *p = val;
    if (o->versioned) {
        if (strncmp(p, "1 ", 2)) return 1;
        p += 2;
    }
    char *end;
    errno = 0;
    long long when = strtoll(p, &end, 10);
    return errno || end == p || when < o->before ? 1 : 0;
}

static int count_older(const char *key, size_t klen, const char *val, size_t vlen, void *rock)
{
    struct older_rock *o = rock;
    if (older(key, klen, val, vlen, rock)) o->n++;
    return 0;
}

/* ---- duplicate delivery ---- */

int store_dup_check(struct store *st, const char *msgid, const char *mailbox, int64_t *when)
{
    return dupdb_check(st->dup, NULL, msgid, mailbox, when);
}

int store_dup_mark(struct store *st, const char *msgid, const char *mailbox, int64_t when)
{
    return dupdb_mark(st->dup, NULL, msgid, mailbox, when);
}

int store_dup_expire(struct store *st, int64_t before, int dry_run)
{
    if (!dry_run) return dupdb_prune(st->dup, before);
    struct older_rock o = { before, 1, 0 };
    int r = kv_foreach(dupdb_kv(st->dup), NULL, "", 0, count_older, &o);
    return r < 0 ? r : (int)o.n;
}

/* ---- vacation answers ---- */

/* vacation_db: the store's handle, opened (creating the database) on first use */
static int vacation_db(struct store *st)
{
    if (st->vacation) return 0;
    return kv_db_open(st->env, STORE_VACATION_DB, KV_TXN_NOSYNC, &st->vacation);
}

static void vacation_key(struct buf *key, const char *user, const char *sender)
{
    buf_appends(key, user);
    buf_putc(key, '\0');
    buf_appends(key, sender);
}

int store_vacation_check(struct store *st, const char *user, const char *sender, int days,
                         int64_t now)
{
    int r = vacation_db(st);
    if (r < 0) return r;
    struct buf key = BUF_INIT, val = BUF_INIT;
    vacation_key(&key, user, sender);
    r = kv_get(st->vacation, NULL, key.s, key.len, &val);
    if (r == 1) r = now - atoll(buf_cstr(&val)) < (int64_t)days * 86400 ? 1 : 0;
    buf_fini(&key);
    buf_fini(&val);
    return r;
}

int store_vacation_mark(struct store *st, const char *user, const char *sender, int64_t now)
{
    int r = vacation_db(st);
    if (r < 0) return r;
    struct buf key = BUF_INIT, val = BUF_INIT;
    vacation_key(&key, user, sender);
    buf_printf(&val, "%lld", (long long)now);
    r = kv_put(st->vacation, NULL, key.s, key.len, val.s, val.len);
    buf_fini(&key);
    buf_fini(&val);
    return r;
}

int store_vacation_expire(struct store *st, int64_t before, int dry_run)
{
    if (!st->vacation) {
        /* never create it here: only lmtpd's vacation action makes it */
        char *path = xasprintf("%s/%s", kv_env_dir(st->env), STORE_VACATION_DB);
        struct stat sb;
        int there = stat(path, &sb) == 0;
        free(path);
        if (!there) return CF_E_NOTFOUND;
    }
    int r = vacation_db(st);
    if (r < 0) return r;
    struct older_rock v = { before, 0, 0 };
    if (dry_run) {
        r = kv_foreach(st->vacation, NULL, "", 0, count_older, &v);
        return r < 0 ? r : (int)v.n;
    }
    return kv_del_if(st->vacation, "", 0, older, &v);
}

/* ---- URLAUTH access keys ---- */

/* urlauth_db: the store's handle, opened (creating the database) on first use; keys are
 * committed durably (a lost key only invalidates URLs, but a key seen must stay) */
static int urlauth_db(struct store *st, int create)
{
    if (st->urlauth) return 0;
    if (!create) {
        char *path = xasprintf("%s/%s", kv_env_dir(st->env), STORE_URLAUTH_DB);
        struct stat sb;
        int there = stat(path, &sb) == 0;
        free(path);
        if (!there) return CF_E_NOTFOUND;
    }
    return kv_db_open(st->env, STORE_URLAUTH_DB, 0, &st->urlauth);
}

static void urlauth_dbkey(struct buf *key, const char *user, const char *uniqueid)
{
    buf_appends(key, user);
    buf_putc(key, '\0');
    if (uniqueid) buf_appends(key, uniqueid);
}

/* urlauth_hex: 2 * STORE_URLAUTH_KEY_LEN lower-case hex digits at s into key; 0 or
 * CF_E_CORRUPT */
static int urlauth_hex(const char *s, unsigned char *key)
{
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < STORE_URLAUTH_KEY_LEN; i++) {
        const char *h = strchr(hex, s[2 * i]), *l = strchr(hex, s[2 * i + 1]);
        if (!h || !l || !*h || !*l) return CF_E_CORRUPT;
        key[i] = (unsigned char)((h - hex) * 16 + (l - hex));
    }
    return 0;
}

/* The restored part of a version 2 record (coffer-store(5)): " OLDHEX UIDVALIDITY UIDLIMIT". */
struct urlauth_restored {
    unsigned char key[STORE_URLAUTH_KEY_LEN];
    uint32_t uidvalidity, uidlimit;
};

/* urlauth_decode2: a record, "1 HEX" or "2 HEX OLDHEX UIDVALIDITY UIDLIMIT", its current key
 * into key and (version 2, old not NULL) the restored one into *old. 1 for version 2, 0 for
 * version 1, or CF_E_CORRUPT. */
static int urlauth_decode2(const struct buf *val, unsigned char *key,
                           struct urlauth_restored *old)
{
    const size_t hl = 2 * STORE_URLAUTH_KEY_LEN;
    if (val->len == 2 + hl && !strncmp(val->s, "1 ", 2)) return urlauth_hex(val->s + 2, key);
    if (val->len < 2 + hl + 1 + hl + 4 || val->len > 2 + hl + 1 + hl + 22 ||
        strncmp(val->s, "2 ", 2) || val->s[2 + hl] != ' ' || val->s[3 + 2 * hl] != ' ')
        return CF_E_CORRUPT;
    struct urlauth_restored r;
    char tail[24];
    memcpy(tail, val->s + 4 + 2 * hl, val->len - 4 - 2 * hl);
    tail[val->len - 4 - 2 * hl] = '\0';
    unsigned long uv, lim;
    char *end;
    if (urlauth_hex(val->s + 2, key) < 0 || urlauth_hex(val->s + 3 + hl, r.key) < 0 ||
        tail[0] < '1' || tail[0] > '9')
        return CF_E_CORRUPT;
    uv = strtoul(tail, &end, 10);
    if (*end != ' ' || end[1] < '1' || end[1] > '9' || uv > UINT32_MAX) return CF_E_CORRUPT;
    lim = strtoul(end + 1, &end, 10);
    if (*end || lim > UINT32_MAX) return CF_E_CORRUPT;
    r.uidvalidity = (uint32_t)uv;
    r.uidlimit = (uint32_t)lim;
    if (old) *old = r;
    return 1;
}

/* urlauth_decode: a record's current key into key; 0 or CF_E_CORRUPT */
static int urlauth_decode(const struct buf *val, unsigned char *key)
{
    int r = urlauth_decode2(val, key, NULL);
    return r < 0 ? r : 0;
}

static int urlauth_new(struct buf *val, unsigned char *key)
{
    if (RAND_bytes(key, STORE_URLAUTH_KEY_LEN) != 1) {
        log_err("urlauth_rand_failed", "error=%s", log_quote("RAND_bytes"));
        return CF_E_IO;
    }
    buf_reset(val);
    buf_appends(val, "1 ");
    for (size_t i = 0; i < STORE_URLAUTH_KEY_LEN; i++) buf_printf(val, "%02x", key[i]);
    return 0;
}

struct urlauth_rock {
    struct store *st;
    struct buf key, val;
    int create, replace, found;
    unsigned char *out;
};

static int urlauth_txn(struct kv_txn *txn, void *rock)
{
    struct urlauth_rock *u = rock;
    int r = u->replace ? 0 : kv_get(u->st->urlauth, txn, u->key.s, u->key.len, &u->val);
    if (r < 0) return r;
    if (r == 1) {
        u->found = 1;
        if (urlauth_decode(&u->val, u->out) == 0) return 0;
        log_err("urlauth_record_corrupt", "user=%s", log_quote(u->key.s));
        if (!u->create) return CF_E_CORRUPT;
    }
    if (!u->create && !u->replace) {
        u->found = 0;
        return 0;
    }
    if ((r = urlauth_new(&u->val, u->out)) < 0) return r;
    u->found = 1;
    return kv_put(u->st->urlauth, txn, u->key.s, u->key.len, u->val.s, u->val.len);
}

static int urlauth_run(struct store *st, const char *user, const char *uniqueid, int create,
                       int replace, unsigned char *key)
{
    int r = urlauth_db(st, create || replace);
    if (r == CF_E_NOTFOUND) return 0;
    if (r < 0) return r;
    unsigned char scratch[STORE_URLAUTH_KEY_LEN];
    struct urlauth_rock u = { st, BUF_INIT, BUF_INIT, create, replace, 0, key ? key : scratch };
    urlauth_dbkey(&u.key, user, uniqueid);
    r = kv_txn_run(st->env, 0, urlauth_txn, &u);
    buf_fini(&u.key);
    buf_fini(&u.val);
    return r < 0 ? r : u.found;
}

int store_urlauth_key(struct store *st, const char *user, const char *uniqueid, int create,
                      unsigned char *key)
{
    return urlauth_run(st, user, uniqueid, create, 0, key);
}

int store_urlauth_reset(struct store *st, const char *user, const char *uniqueid)
{
    if (uniqueid) {
        int r = urlauth_run(st, user, uniqueid, 0, 1, NULL);
        return r < 0 ? r : 0;
    }
    int r = urlauth_db(st, 0);
    if (r == CF_E_NOTFOUND) return 0;
    if (r < 0) return r;
    struct buf prefix = BUF_INIT;
    urlauth_dbkey(&prefix, user, NULL);
    r = kv_del_prefix(st->urlauth, NULL, prefix.s, prefix.len);
    buf_fini(&prefix);
    return r < 0 ? r : 0;
}

/* urlauth_of: 1 for a record of the mailbox (key ends in NUL UNIQUEID) */
static int urlauth_of(const char *key, size_t klen, const char *val, size_t vlen, void *rock)
{
    (void)val;
    (void)vlen;
    const char *uid = rock;
    size_t n = strlen(uid);
    return klen > n && key[klen - n - 1] == '\0' && !memcmp(key + klen - n, uid, n);
}

/* The restore transaction: the record's current key kept (a fresh one when there is none),
 * the restored one set beside it. */
struct urlauth_restore_rock {
    struct store *st;
    struct buf key, val;
    const unsigned char *old;
    uint32_t uidvalidity, uidlimit;
};

static int urlauth_restore_txn(struct kv_txn *txn, void *rock)
{
    struct urlauth_restore_rock *u = rock;
    unsigned char cur[STORE_URLAUTH_KEY_LEN];
    int r = kv_get(u->st->urlauth, txn, u->key.s, u->key.len, &u->val);
    if (r < 0) return r;
    if (r == 0 || urlauth_decode(&u->val, cur) < 0) {
        if ((r = urlauth_new(&u->val, cur)) < 0) return r;
    }
    buf_reset(&u->val);
    buf_appends(&u->val, "2 ");
    for (size_t i = 0; i < STORE_URLAUTH_KEY_LEN; i++) buf_printf(&u->val, "%02x", cur[i]);
    buf_putc(&u->val, ' ');
    for (size_t i = 0; i < STORE_URLAUTH_KEY_LEN; i++) buf_printf(&u->val, "%02x", u->old[i]);
    buf_printf(&u->val, " %u %u", (unsigned)u->uidvalidity, (unsigned)u->uidlimit);
    return kv_put(u->st->urlauth, txn, u->key.s, u->key.len, u->val.s, u->val.len);
}

int store_urlauth_restore(struct store *st, const char *user, const char *uniqueid,
                          const unsigned char *old, uint32_t uidvalidity, uint32_t uidlimit)
{
    if (!uidvalidity || !uidlimit) return CF_E_PARSE;
    int r = urlauth_db(st, 1);
    if (r < 0) return r;
    struct urlauth_restore_rock u = { st, BUF_INIT, BUF_INIT, old, uidvalidity, uidlimit };
    urlauth_dbkey(&u.key, user, uniqueid);
    r = kv_txn_run(st->env, 0, urlauth_restore_txn, &u);
    buf_fini(&u.key);
    buf_fini(&u.val);
    return r < 0 ? r : 0;
}

int store_urlauth_restored(struct store *st, const char *user, const char *uniqueid,
                           unsigned char *old, uint32_t *uidvalidity, uint32_t *uidlimit)
{
    int r = urlauth_db(st, 0);
    if (r == CF_E_NOTFOUND) return 0;
    if (r < 0) return r;
    struct buf key = BUF_INIT, val = BUF_INIT;
    urlauth_dbkey(&key, user, uniqueid);
    r = kv_get(st->urlauth, NULL, key.s, key.len, &val);
    if (r == 1) {
        unsigned char cur[STORE_URLAUTH_KEY_LEN];
        struct urlauth_restored o;
        r = urlauth_decode2(&val, cur, &o);
        if (r == 1) {
            memcpy(old, o.key, sizeof o.key);
            *uidvalidity = o.uidvalidity;
            *uidlimit = o.uidlimit;
        }
    }
    buf_fini(&key);
    buf_fini(&val);
    return r;
}

int store_urlauth_forget(struct store *st, const char *uniqueid)
{
    int r = urlauth_db(st, 0);
    if (r == CF_E_NOTFOUND) return 0;
    if (r < 0) return r;
    return kv_del_if(st->urlauth, "", 0, urlauth_of, (void *)uniqueid);
}

/* ---- whole databases ---- */

/* db_handle: the store's own handle for name, else a new one (*own set: close it) */
static int db_handle(struct store *st, const char *name, struct kv_db **db, int *own)
{
    *own = 0;
    if (!strcmp(name, MBOXLIST_DB)) *db = mboxlist_kv(st->mboxlist);
    else if (!strcmp(name, QUOTADB_DB)) *db = quotadb_kv(st->quota);
    else if (!strcmp(name, SUBS_DB)) *db = subs_kv(st->subs);
    else if (!strcmp(name, SEENDB_DB)) *db = seendb_kv(st->seen);
    else if (!strcmp(name, DUPDB_DB)) *db = dupdb_kv(st->dup);
    else if (!strcmp(name, METADB_DB)) *db = metadb_kv(st->meta);
    else if (st->vacation && !strcmp(name, STORE_VACATION_DB)) *db = st->vacation;
    else if (st->urlauth && !strcmp(name, STORE_URLAUTH_DB)) *db = st->urlauth;
    else {
        *own = 1;
        return kv_db_open(st->env, name, 0, db);
    }
    return 0;
}

static int count_one(const char *k, size_t kl, const char *v, size_t vl, void *rock)
{
    (void)k;
    (void)kl;
    (void)v;
    (void)vl;
    (*(long long *)rock)++;
    return 0;
}

int store_db_count(struct store *st, const char *name, long long *n_r)
{
    struct kv_db *db = NULL;
    int own;
    *n_r = 0;
    int r = db_handle(st, name, &db, &own);
    if (r < 0) return r;
    r = kv_foreach(db, NULL, "", 0, count_one, n_r);
    if (own) kv_db_close(&db);
    return r < 0 ? r : 0;
}

int store_db_dump(struct store *st, const char *name, FILE *f)
{
    struct kv_db *db = NULL;
    int own;
    int r = db_handle(st, name, &db, &own);
    if (r < 0) return r;
    r = kv_dump(db, f);
    if (own) kv_db_close(&db);
    return r;
}

int store_db_load(struct store *st, const char *name, FILE *f, int replace)
{
    struct kv_db *db = NULL;
    int own;
    int r = db_handle(st, name, &db, &own);
    if (r < 0) return r;
    if (replace && (r = kv_del_prefix(db, NULL, "", 0)) >= 0) r = 0;
    if (!r) r = kv_load(db, f);
    /* the loaded entries may come without their grant index (a dump from before it), or
     * beside records of another list: index what is there now */
    if (!r && !strcmp(name, MBOXLIST_DB) && (r = (int)mboxlist_rebuild_grants(st->mboxlist)) > 0)
        r = 0;
    if (own) kv_db_close(&db);
    return r;
}

int store_db_recover(const struct config *cfg)
{
    char *dir = xasprintf("%s/db", config_str(cfg, CFG_CONFIGDIR));
    int r = kv_env_recover(dir);
    free(dir);
    return r;
}

int store_db_failchk(const struct config *cfg)
{
    char *dir = xasprintf("%s/db", config_str(cfg, CFG_CONFIGDIR));
    int r = kv_failchk(dir);
    free(dir);
    return r;
}

int store_db_guard(struct store *st, int exit_code)
{
    return kv_env_guard(st->env, exit_code);
}

int store_db_maintain(const struct config *cfg)
{
    char *dir = xasprintf("%s/db", config_str(cfg, CFG_CONFIGDIR));
    struct kv_env *env = NULL;
    struct dupdb *dup = NULL;
    int r = kv_env_open(dir, &env);
    if (r == 0) {
        if (kv_checkpoint(env)) log_warn("checkpoint_failed", "dir=%s", log_quote(dir));
        r = dupdb_open(env, &dup);
        if (r == 0) {
            int64_t before = (int64_t)time(NULL) - config_int(cfg, CFG_DUPLICATE_LIFETIME);
            r = dupdb_prune(dup, before);
            dupdb_close(&dup);
        }
        kv_env_close(&env);
    }
    free(dir);
    return r;
}

/* ---- statistics (cofferd's metrics) ---- */

struct ratio_rock {
    const double *bounds;
    size_t n;
    struct store_db_stats *out;
};

static int ratio_one(const char *root, const struct quota *qt, void *rock)
{
    (void)root;
    struct ratio_rock *rr = rock;
    double ratio = -1;
    if (qt->limit_storage_kib != QUOTA_UNLIMITED) {
        double lim = (double)qt->limit_storage_kib * 1024.0;
        double r = lim > 0 ? (double)qt->used_bytes / lim : (qt->used_bytes > 0 ? 2.0 : 1.0);
        if (r > ratio) ratio = r;
    }
    if (qt->limit_messages != QUOTA_UNLIMITED) {
        double lim = (double)qt->limit_messages;
        double r = lim > 0 ? (double)qt->used_messages / lim : (qt->used_messages > 0 ? 2.0 : 1.0);
        if (r > ratio) ratio = r;
    }
    if (ratio < 0) return 0;   /* no limit: not counted */
    size_t b = 0;
    while (b < rr->n && ratio > rr->bounds[b]) b++;
    rr->out->quota_ratio_le[b]++;
    rr->out->quota_roots++;
    return 0;
}

int store_db_stats(struct store *st, const double *bounds, size_t nbounds,
                   struct store_db_stats *out)
{
    memset(out, 0, sizeof *out);
    if (nbounds > 7) nbounds = 7;
    int r = kv_env_stats(st->env, &out->kv);
    if (r) return r;
    struct ratio_rock rr = { bounds, nbounds, out };
    r = store_quota_foreach(st, "", ratio_one, &rr);
    return r < 0 ? r : 0;
}
