/* mboxlist.c: the mailbox list database (mailboxes.db). */
#include "store/mboxlist.h"
#include "core/error.h"
#include "core/log.h"
#include "core/strarr.h"
#include "core/xmalloc.h"
#include "store/acl.h"
#include "store/mboxname.h"
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

struct mboxlist {
    struct kv_db *db;
};

/* The record holding the last UIDVALIDITY given out (decimal text). Its key starts with a
 * control character, which no mailbox name may hold (mboxname_valid), and every scan below
 * skips it; a dump of the database (coffer db) carries it like any record. */
#define UIDVALIDITY_KEY "\001uidvalidity"

static int internal_key(const char *key)
{
    return key[0] == '\001';
}

/* The grant index (mboxlist.h): "\001g\tIDENT\tNAME" -> "" for every identifier with a
 * positive entry in NAME's ACL, except the owner of a personal mailbox (who finds their own
 * mailboxes under user/OWNER anyway: indexing them would double the list for nothing).
 * Neither an identifier nor a mailbox name holds a tab (acl_ident_valid, mboxname_valid), so
 * IDENT "\t" is a prefix that finds one identifier's grants and nobody else's. The keys start
 * with the control character that marks the list's internal records, so every scan of the
 * list skips them, and a dump carries them. GRANTS_KEY says the index is complete; a list
 * without it (written before the index existed, or loaded from such a dump) is indexed when
 * next opened. */
#define GRANT_PREFIX "\001g\t"
#define GRANTS_KEY "\001grants"
/* mailboxes re-indexed per transaction by mboxlist_rebuild_grants: well inside the
 * environment's lock table (kv.c) */
#define GRANT_BATCH 500

void mboxlist_entry_init(struct mboxlist_entry *e)
{
    memset(e, 0, sizeof *e);
}

void mboxlist_entry_fini(struct mboxlist_entry *e)
{
    free(e->partition);
    free(e->acl);
    free(e->flags);
    mboxlist_entry_init(e);
}

static const char *str_or_empty(const char *s)
{
    return s ? s : "";
}

void mboxlist_entry_encode(const struct mboxlist_entry *e, struct buf *out)
{
    const char *p = str_or_empty(e->partition), *f = str_or_empty(e->flags),
               *a = str_or_empty(e->acl);
    buf_appends(out, "1 ");
    kv_escape(out, p, strlen(p));
    buf_printf(out, " %s %lld ", e->uniqueid, (long long)e->ctime);
    kv_escape(out, f, strlen(f));
    buf_putc(out, ' ');
    kv_escape(out, a, strlen(a));
    buf_cstr(out);
}

/* field_str: unescape one field into a new C string; NULL when malformed or holding a NUL. */
static char *field_str(const char *s, size_t n)
{
    struct buf b = BUF_INIT;
    if (kv_unescape(&b, s, n) || memchr(buf_cstr(&b), '\0', b.len)) {
        buf_fini(&b);
        return NULL;
    }
    buf_cstr(&b);
    return buf_release(&b);
}

int mboxlist_entry_decode(const char *s, size_t len, struct mboxlist_entry *e)
{
    const char *field[6];
    size_t flen[6];
    int n = 0;
    size_t start = 0;
    mboxlist_entry_fini(e);
    for (size_t i = 0; i <= len; i++) {
        if (i == len || s[i] == ' ') {
            if (n == 6) return CF_E_CORRUPT;
            field[n] = s + start;
            flen[n++] = i - start;
            start = i + 1;
        }
    }
    if (n != 6 || flen[0] != 1 || field[0][0] != '1') return CF_E_CORRUPT;
    if (flen[2] != MBOXLIST_UNIQUEID_LEN) return CF_E_CORRUPT;
    for (size_t i = 0; i < MBOXLIST_UNIQUEID_LEN; i++)
        if (!strchr("0123456789abcdef", field[2][i]) || !field[2][i]) return CF_E_CORRUPT;
    memcpy(e->uniqueid, field[2], MBOXLIST_UNIQUEID_LEN);
    e->uniqueid[MBOXLIST_UNIQUEID_LEN] = '\0';
    if (flen[3] == 0 || flen[3] > 19) return CF_E_CORRUPT;
    long long t = 0;
    for (size_t i = 0; i < flen[3]; i++) {
        if (field[3][i] < '0' || field[3][i] > '9') return CF_E_CORRUPT;
        t = t * 10 + (field[3][i] - '0');
        if (t > (long long)1e17) return CF_E_CORRUPT;
    }
    e->ctime = t;
    e->partition = field_str(field[1], flen[1]);
    e->flags = field_str(field[4], flen[4]);
    e->acl = field_str(field[5], flen[5]);
    if (!e->partition || !e->flags || !e->acl) {
        mboxlist_entry_fini(e);
        return CF_E_CORRUPT;
    }
    return 0;
}

void mboxlist_new_uniqueid(char out[MBOXLIST_UNIQUEID_LEN + 1])
{
    unsigned char r[16];
    size_t got = 0;
    while (got < sizeof r) {
        ssize_t n = getrandom(r + got, sizeof r - got, 0);
        if (n < 0) {
            if (errno == EINTR) continue;
            /* getrandom cannot fail on Linux >= 3.17 with these arguments; never reuse ids */
            log_err("getrandom_failed", "error=%s", log_quote(strerror(errno)));
            abort();
        }
        got += (size_t)n;
    }
    for (int i = 0; i < 16; i++) {
        out[2 * i] = "0123456789abcdef"[r[i] >> 4];
        out[2 * i + 1] = "0123456789abcdef"[r[i] & 15];
    }
    out[MBOXLIST_UNIQUEID_LEN] = '\0';
}

int mboxlist_open(struct kv_env *env, struct mboxlist **ml_r)
{
    struct kv_db *db = NULL;
    struct buf v = BUF_INIT;
    *ml_r = NULL;
    int r = kv_db_open(env, MBOXLIST_DB, 0, &db);
    if (r) return r;
    struct mboxlist *ml = xmalloc(sizeof *ml);
    ml->db = db;
    /* a list from before the grant index (or loaded from a dump of one): index it once */
    r = kv_get(db, NULL, GRANTS_KEY, strlen(GRANTS_KEY), &v);
    if (r == 0) r = mboxlist_rebuild_grants(ml);
    buf_fini(&v);
    if (r < 0) {
        mboxlist_close(&ml);
        return r;
    }
    *ml_r = ml;
    return 0;
}

void mboxlist_close(struct mboxlist **mlp)
{
    if (!*mlp) return;
    kv_db_close(&(*mlp)->db);
    xfree_ptr(mlp);
}

struct kv_db *mboxlist_kv(struct mboxlist *ml)
{
    return ml->db;
}

/* decode_logged: decode a stored record, logging a corrupt one. */
static int decode_logged(const char *name, const char *v, size_t len, struct mboxlist_entry *e)
{
    int r = mboxlist_entry_decode(v, len, e);
    if (r) log_err("mboxlist_corrupt_record", "mailbox=%s value=%s", log_quote(name), log_quote(v));
    return r;
}

int mboxlist_lookup(struct mboxlist *ml, struct kv_txn *txn, const char *name,
                    struct mboxlist_entry *e)
{
    struct buf v = BUF_INIT;
    int r = kv_get(ml->db, txn, name, strlen(name), &v);
    if (r == 1 && e) {
        int d = decode_logged(name, buf_cstr(&v), v.len, e);
        if (d) r = d;
    }
    buf_fini(&v);
    return r;
}

/* ---- writes, each runnable inside a caller's txn or in its own ---- */

struct write_args {
    struct mboxlist *ml;
    const char *name, *newname;
    struct mboxlist_entry *e;
    const struct mboxlist_entry *ce;
    mboxlist_rename_check_fn *check;    /* rename: asked about each mailbox that moves */
    void *check_rock;
};

static int run(struct mboxlist *ml, struct kv_txn *txn, int (*fn)(struct kv_txn *, void *),
               struct write_args *a)
{
    if (txn) return fn(txn, a);
    return kv_txn_run(kv_db_env(ml->db), 0, fn, a);
}

static int put_entry(struct mboxlist *ml, struct kv_txn *txn, const char *name,
                     const struct mboxlist_entry *e)
{
    struct buf v = BUF_INIT;
    mboxlist_entry_encode(e, &v);
    int r = kv_put(ml->db, txn, name, strlen(name), v.s, v.len);
    buf_fini(&v);
    return r;
}

/* grant_key: GRANT_PREFIX ident "\t" name into k (reset first). */
static void grant_key(struct buf *k, const char *ident, const char *name)
{
    buf_reset(k);
    buf_appends(k, GRANT_PREFIX);
    buf_appends(k, ident);
    buf_putc(k, '\t');
    buf_appends(k, name);
}

/* grants_write: add (add 1) or remove (add 0) the grant index records of mailbox name with
 * ACL text acl (NULL as ""), in txn. 0 or a kv error. */
static int grants_write(struct mboxlist *ml, struct kv_txn *txn, const char *name,
                        const char *acl, int add)
{
    struct strarr idents = STRARR_INIT, rights = STRARR_INIT;
    struct buf owner = BUF_INIT, k = BUF_INIT;
    int r = 0;
    acl_split(acl ? acl : "", &idents, &rights);
    int personal = mboxname_owner(name, &owner) == 1;
    for (size_t i = 0; i < idents.count && r >= 0; i++) {
        const char *id = idents.v[i];
        if (id[0] == '-' || !id[0] || strchr(id, '\t')) continue;
        if (personal && !strcmp(id, buf_cstr(&owner))) continue;
        grant_key(&k, id, name);
        r = add ? kv_put(ml->db, txn, k.s, k.len, "", 0) : kv_del(ml->db, txn, k.s, k.len);
    }
    strarr_fini(&idents);
    strarr_fini(&rights);
    buf_fini(&owner);
    buf_fini(&k);
    return r < 0 ? r : 0;
}

/* grants_drop_stored: remove the grant records of the stored value v (a record of name). An
 * undecodable record has none to remove. */
static int grants_drop_stored(struct mboxlist *ml, struct kv_txn *txn, const char *name,
                              const char *v, size_t vlen)
{
    struct mboxlist_entry old;
    mboxlist_entry_init(&old);
    int r = 0;
    if (!mboxlist_entry_decode(v, vlen, &old)) r = grants_write(ml, txn, name, old.acl, 0);
    mboxlist_entry_fini(&old);
    return r;
}

static int create_fn(struct kv_txn *txn, void *rock)
{
    struct write_args *a = rock;
    int r = mboxlist_lookup(a->ml, txn, a->name, NULL);
    if (r < 0) return r;
    if (r == 1) return CF_E_EXISTS;
    r = put_entry(a->ml, txn, a->name, a->e);
    if (!r) r = grants_write(a->ml, txn, a->name, a->e->acl, 1);
    return r;
}

static int partition_ok(const char *p)
{
    if (!p || !*p) return 0;
    for (; *p; p++)
        if ((unsigned char)*p <= 0x20 || *p == 0x7f) return 0;
    return 1;
}

int mboxlist_create(struct mboxlist *ml, struct kv_txn *txn, const char *name,
                    struct mboxlist_entry *e)
{
    if (mboxname_valid(name) || !partition_ok(e->partition)) return CF_E_PARSE;
    if (!e->uniqueid[0]) mboxlist_new_uniqueid(e->uniqueid);
    if (!e->ctime) e->ctime = (int64_t)time(NULL);
    struct write_args a = { ml, name, NULL, e, NULL, NULL, NULL };
    return run(ml, txn, create_fn, &a);
}

static int update_fn(struct kv_txn *txn, void *rock)
{
    struct write_args *a = rock;
    struct buf v = BUF_INIT;
    int r = kv_get(a->ml->db, txn, a->name, strlen(a->name), &v);
    if (r == 0) r = CF_E_NOTFOUND;
    if (r < 0) goto done;
    r = grants_drop_stored(a->ml, txn, a->name, buf_cstr(&v), v.len);
    if (!r) r = put_entry(a->ml, txn, a->name, a->ce);
    if (!r) r = grants_write(a->ml, txn, a->name, a->ce->acl, 1);
done:
    buf_fini(&v);
    return r;
}

int mboxlist_update(struct mboxlist *ml, struct kv_txn *txn, const char *name,
                    const struct mboxlist_entry *e)
{
    if (!partition_ok(e->partition) || strlen(e->uniqueid) != MBOXLIST_UNIQUEID_LEN)
        return CF_E_PARSE;
    struct write_args a = { ml, name, NULL, NULL, e, NULL, NULL };
    return run(ml, txn, update_fn, &a);
}

static int delete_fn(struct kv_txn *txn, void *rock)
{
    struct write_args *a = rock;
    struct buf v = BUF_INIT;
    int r = kv_get(a->ml->db, txn, a->name, strlen(a->name), &v);
    if (r == 0) r = CF_E_NOTFOUND;
    if (r < 0) goto done;
    r = grants_drop_stored(a->ml, txn, a->name, buf_cstr(&v), v.len);
    if (!r) r = kv_del(a->ml->db, txn, a->name, strlen(a->name));
    if (r == 1) r = 0;
    else if (r == 0) r = CF_E_NOTFOUND;
done:
    buf_fini(&v);
    return r;
}

int mboxlist_delete(struct mboxlist *ml, struct kv_txn *txn, const char *name)
{
    if (internal_key(name)) return CF_E_NOTFOUND;
    struct write_args a = { ml, name, NULL, NULL, NULL, NULL, NULL };
    return run(ml, txn, delete_fn, &a);
}

struct collect {
    struct strarr names, values;
};

static int collect_cb(const char *key, size_t klen, const char *val, size_t vlen, void *rock)
{
    struct collect *c = rock;
    (void)klen;
    (void)vlen;
    strarr_add(&c->names, key);
    strarr_add(&c->values, val);
    return 0;
}

static int rename_fn(struct kv_txn *txn, void *rock)
{
    struct write_args *a = rock;
    struct collect c = { STRARR_INIT, STRARR_INIT };
    struct buf v = BUF_INIT, prefix = BUF_INIT, nn = BUF_INIT;
    size_t oldlen = strlen(a->name);
    int r = kv_get(a->ml->db, txn, a->name, oldlen, &v);
    if (r == 0) r = CF_E_NOTFOUND;
    if (r < 0) goto done;
    strarr_add(&c.names, a->name);
    strarr_add(&c.values, buf_cstr(&v));
    buf_printf(&prefix, "%s/", a->name);
    r = kv_foreach(a->ml->db, txn, prefix.s, prefix.len, collect_cb, &c);
    if (r) goto done;
    /* the caller's permission check sees exactly the set that moves, in this transaction, so
     * a child created or an ACL changed meanwhile cannot slip past it */
    if (a->check) {
        struct mboxlist_entry ce;
        mboxlist_entry_init(&ce);
        for (size_t i = 0; i < c.names.count && !r; i++) {
            buf_reset(&nn);
            buf_appends(&nn, a->newname);
            buf_appends(&nn, c.names.v[i] + oldlen);
            r = decode_logged(c.names.v[i], c.values.v[i], strlen(c.values.v[i]), &ce);
            if (!r) r = a->check(txn, c.names.v[i], buf_cstr(&nn), &ce, a->check_rock);
            if (r > 0) r = CF_E_PERM;
        }
        mboxlist_entry_fini(&ce);
        if (r) goto done;
    }
    /* Delete first, then add: a new name may be one of the old ones ("a/b" -> "a" makes
     * "a/b/b" -> "a/b"). */
    for (size_t i = 0; i < c.names.count; i++) {
        r = grants_drop_stored(a->ml, txn, c.names.v[i], c.values.v[i], strlen(c.values.v[i]));
        if (r < 0) goto done;
        r = kv_del(a->ml->db, txn, c.names.v[i], strlen(c.names.v[i]));
        if (r < 0) goto done;
    }
    for (size_t i = 0; i < c.names.count; i++) {
        buf_reset(&nn);
        buf_appends(&nn, a->newname);
        buf_appends(&nn, c.names.v[i] + oldlen);
        if (mboxname_valid(buf_cstr(&nn))) {
            r = CF_E_PARSE;
            goto done;
        }
        r = kv_get(a->ml->db, txn, nn.s, nn.len, &v);
        if (r == 1) r = CF_E_EXISTS;
        if (r < 0) goto done;
        r = kv_put(a->ml->db, txn, nn.s, nn.len, c.values.v[i], strlen(c.values.v[i]));
        if (r < 0) goto done;
        /* the owner may change (user/a/x -> user/b/x), and with it who is indexed */
        struct mboxlist_entry ne;
        mboxlist_entry_init(&ne);
        if (!mboxlist_entry_decode(c.values.v[i], strlen(c.values.v[i]), &ne))
            r = grants_write(a->ml, txn, buf_cstr(&nn), ne.acl, 1);
        mboxlist_entry_fini(&ne);
        if (r < 0) goto done;
    }
    r = (int)c.names.count;
done:
    strarr_fini(&c.names);
    strarr_fini(&c.values);
    buf_fini(&v);
    buf_fini(&prefix);
    buf_fini(&nn);
    return r;
}

int mboxlist_rename(struct mboxlist *ml, struct kv_txn *txn, const char *oldname,
                    const char *newname)
{
    return mboxlist_rename_checked(ml, txn, oldname, newname, NULL, NULL);
}

int mboxlist_rename_checked(struct mboxlist *ml, struct kv_txn *txn, const char *oldname,
                            const char *newname, mboxlist_rename_check_fn *check, void *rock)
{
    if (mboxname_valid(newname)) return CF_E_PARSE;
    if (!strcmp(oldname, newname)) return CF_E_EXISTS;
    if (mboxname_is_descendant(newname, oldname)) return CF_E_PERM;
    struct write_args a = { ml, oldname, newname, NULL, NULL, check, rock };
    int r = run(ml, txn, rename_fn, &a);
    if (r > 0) log_info("mailbox_renamed", "old=%s new=%s count=%d", log_quote(oldname),
                        log_quote(newname), r);
    return r;
}

/* ---- the grant index ---- */

struct rebuild_ctx {
    struct mboxlist *ml;
    struct strarr names;
    long long count;
};

/* rebuild_batch_fn: index the mailboxes collected, each as it stands in this transaction
 * (one renamed or deleted since the scan saw it is skipped: its writer indexed it). */
static int rebuild_batch_fn(struct kv_txn *txn, void *rock)
{
    struct rebuild_ctx *rc = rock;
    struct buf v = BUF_INIT;
    struct mboxlist_entry e;
    mboxlist_entry_init(&e);
    int r = 0;
    for (size_t i = 0; i < rc->names.count && r >= 0; i++) {
        const char *name = rc->names.v[i];
        r = kv_get(rc->ml->db, txn, name, strlen(name), &v);
        if (r == 1 && !mboxlist_entry_decode(v.s, v.len, &e))
            r = grants_write(rc->ml, txn, name, e.acl, 1);
    }
    mboxlist_entry_fini(&e);
    buf_fini(&v);
    return r < 0 ? r : 0;
}

static int rebuild_flush(struct rebuild_ctx *rc)
{
    if (!rc->names.count) return 0;
    int r = kv_txn_run(kv_db_env(rc->ml->db), KV_TXN_NOSYNC, rebuild_batch_fn, rc);
    rc->count += (long long)rc->names.count;
    strarr_fini(&rc->names);
    return r;
}

static int rebuild_one(const char *key, size_t klen, const char *val, size_t vlen, void *rock)
{
    struct rebuild_ctx *rc = rock;
    (void)klen;
    (void)val;
    (void)vlen;
    if (internal_key(key)) return 0;
    strarr_add(&rc->names, key);
    return rc->names.count >= GRANT_BATCH ? rebuild_flush(rc) : 0;
}

long long mboxlist_rebuild_grants(struct mboxlist *ml)
{
    struct rebuild_ctx rc = { ml, STRARR_INIT, 0 };
    /* the mark goes first and comes back last: a rebuild cut short is done again at the next
     * open. Writers keep the index as they go meanwhile; the batches below only add, and the
     * removal comes before them, so no grant a writer adds is lost; one it removes may come
     * back from a batch that read the entry before it, which only costs a lookup in LIST. */
    int r = kv_del(ml->db, NULL, GRANTS_KEY, strlen(GRANTS_KEY));
    if (r >= 0) r = kv_del_prefix(ml->db, NULL, GRANT_PREFIX, strlen(GRANT_PREFIX));
    if (r >= 0) r = kv_foreach(ml->db, NULL, "", 0, rebuild_one, &rc);
    if (r >= 0) r = rebuild_flush(&rc);
    if (r >= 0) r = kv_put(ml->db, NULL, GRANTS_KEY, strlen(GRANTS_KEY), "1", 1);
    strarr_fini(&rc.names);
    if (r < 0) {
        log_err("mboxlist_grants_rebuild_failed", "error=%s", log_quote(cf_strerror(r)));
        return r;
    }
    log_info("mboxlist_grants_rebuilt", "mailboxes=%lld", rc.count);
    return rc.count;
}

struct grant_collect {
    size_t skip;            /* bytes of GRANT_PREFIX ident "\t" */
    struct strarr *out;
};

static int grant_collect_one(const char *key, size_t klen, const char *val, size_t vlen,
                             void *rock)
{
    struct grant_collect *g = rock;
    (void)val;
    (void)vlen;
    if (klen > g->skip) strarr_add(g->out, key + g->skip);
    return 0;
}

int mboxlist_grants(struct mboxlist *ml, struct kv_txn *txn, const char *ident,
                    struct strarr *names)
{
    struct buf p = BUF_INIT;
    grant_key(&p, ident, "");
    struct grant_collect g = { p.len, names };
    int r = kv_foreach(ml->db, txn, p.s, p.len, grant_collect_one, &g);
    buf_fini(&p);
    return r < 0 ? r : 0;
}

/* ---- UIDVALIDITY ---- */

struct uidv_args {
    struct mboxlist *ml;
    int take;           /* 1: give out a new value; 0: raise to floor (at least) */
    uint32_t floor;
    uint32_t *out;
};

static int uidv_fn(struct kv_txn *txn, void *rock)
{
    struct uidv_args *a = rock;
    struct buf v = BUF_INIT;
    uint32_t last = 0, next;
    int r = kv_get(a->ml->db, txn, UIDVALIDITY_KEY, strlen(UIDVALIDITY_KEY), &v);
    if (r < 0) goto done;
    if (r == 1) {
        char *end = NULL;
        unsigned long long n = strtoull(buf_cstr(&v), &end, 10);
        if (!v.len || *end || n > UINT32_MAX) {
            /* a damaged counter: the clock below still keeps values rising across seconds */
            log_err("uidvalidity_counter_corrupt", "value=%s", log_quote(buf_cstr(&v)));
            n = 0;
        }
        last = (uint32_t)n;
    }
    if (a->take) {
        uint32_t now = (uint32_t)time(NULL);
        if (last == UINT32_MAX) { r = CF_E_LIMIT; goto done; }
        next = now > last ? now : last + 1;
    } else {
        next = a->floor > last ? a->floor : last;
    }
    r = 0;
    if (next != last) {
        buf_reset(&v);
        buf_printf(&v, "%u", (unsigned)next);
        r = kv_put(a->ml->db, txn, UIDVALIDITY_KEY, strlen(UIDVALIDITY_KEY), v.s, v.len);
    }
    if (r == 0 && a->out) *a->out = next;
done:
    buf_fini(&v);
    return r;
}

int mboxlist_next_uidvalidity(struct mboxlist *ml, struct kv_txn *txn, uint32_t *out)
{
    struct uidv_args a = { ml, 1, 0, out };
    if (txn) return uidv_fn(txn, &a);
    return kv_txn_run(kv_db_env(ml->db), 0, uidv_fn, &a);
}

int mboxlist_raise_uidvalidity(struct mboxlist *ml, struct kv_txn *txn, uint32_t seen,
                               uint32_t *last_r)
{
    struct uidv_args a = { ml, 0, seen, last_r };
    if (txn) return uidv_fn(txn, &a);
    return kv_txn_run(kv_db_env(ml->db), 0, uidv_fn, &a);
}

/* ---- scans ---- */

struct foreach_ctx {
    mboxlist_foreach_fn *cb;
    void *rock;
    struct mboxlist_entry e;
};

static int foreach_one(const char *key, size_t klen, const char *val, size_t vlen, void *rock)
{
    struct foreach_ctx *f = rock;
    (void)klen;
    if (internal_key(key)) return 0;
    if (decode_logged(key, val, vlen, &f->e)) return 0;  /* skip it; reconstruct repairs */
    return f->cb(key, &f->e, f->rock);
}

int mboxlist_foreach(struct mboxlist *ml, struct kv_txn *txn, const char *prefix,
                     mboxlist_foreach_fn *cb, void *rock)
{
    struct foreach_ctx f = { cb, rock, { 0 } };
    int r = kv_foreach(ml->db, txn, prefix, strlen(prefix), foreach_one, &f);
    mboxlist_entry_fini(&f.e);
    return r;
}

int mboxlist_foreach_tree(struct mboxlist *ml, struct kv_txn *txn, const char *name,
                          mboxlist_foreach_fn *cb, void *rock)
{
    if (!*name) return mboxlist_foreach(ml, txn, "", cb, rock);
    struct foreach_ctx f = { cb, rock, { 0 } };
    struct buf v = BUF_INIT, p = BUF_INIT;
    int r = internal_key(name) ? 0 : kv_get(ml->db, txn, name, strlen(name), &v);
    if (r == 1) r = foreach_one(name, strlen(name), buf_cstr(&v), v.len, &f);
    if (r == 0) {
        buf_printf(&p, "%s/", name);
        r = kv_foreach(ml->db, txn, p.s, p.len, foreach_one, &f);
    }
    mboxlist_entry_fini(&f.e);
    buf_fini(&v);
    buf_fini(&p);
    return r;
}

static int stop_cb(const char *key, size_t klen, const char *val, size_t vlen, void *rock)
{
    (void)key;
    (void)klen;
    (void)val;
    (void)vlen;
    (void)rock;
    return 1;
}

int mboxlist_has_children(struct mboxlist *ml, struct kv_txn *txn, const char *name)
{
    struct buf p = BUF_INIT;
    buf_printf(&p, "%s/", name);
    int r = kv_foreach(ml->db, txn, p.s, p.len, stop_cb, NULL);
    buf_fini(&p);
    return r;
}

enum list_part { LIST_ALL, LIST_PERSONAL, LIST_OTHER, LIST_SHARED };

struct list_ctx {
    const char *user;
    struct mboxname_pattern *pattern;
    mboxlist_visible_fn *visible;
    mboxlist_list_fn *cb;
    void *rock;
    enum list_part part;
    struct buf inbox, ext;
    struct mboxlist_entry e;
};

static int list_one(const char *key, size_t klen, const char *val, size_t vlen, void *rock)
{
    struct list_ctx *l = rock;
    int personal = l->inbox.len && !strncmp(key, l->inbox.s, l->inbox.len) &&
                   (key[l->inbox.len] == '\0' || key[l->inbox.len] == MBOXNAME_SEP);
    int user = !strncmp(key, MBOXNAME_USER_PREFIX, strlen(MBOXNAME_USER_PREFIX));
    (void)klen;
    if (internal_key(key)) return 0;
    switch (l->part) {
    case LIST_ALL: break;
    case LIST_PERSONAL: if (!personal) return 0; break;
    case LIST_OTHER: if (personal || !user) return 0; break;
    case LIST_SHARED: if (user) return 0; break;
    }
    /* A long pattern costs more to match than decoding the entry and asking the caller
     * whether the user may see it, and most names on a large server are not the user's to
     * see (review M6): then visibility comes first. A short pattern (one word of states)
     * is matched first, so entries it rules out are never decoded. */
    int visible_first = l->visible && mboxname_pattern_length(l->pattern) >= 64;
    if (visible_first) {
        if (decode_logged(key, val, vlen, &l->e)) return 0;
        if (!l->visible(key, &l->e, l->rock)) return 0;
    }
    if (mboxname_to_external(l->user, key, &l->ext)) return 0;  /* not a valid name: skip */
    size_t anc = 0;
    size_t m = mboxname_pattern_run(l->pattern, l->ext.s, &anc) ? l->ext.len : anc;
    if (!m) return 0;
    if (!visible_first) {
        if (decode_logged(key, val, vlen, &l->e)) return 0;
        if (l->visible && !l->visible(key, &l->e, l->rock)) return 0;
    }
    return l->cb(l->ext.s, m, key, &l->e, l->rock);
}

/* ns_compatible: whether a name starting with literal could lie in namespace ns, and if so
 * the part of literal past ns (into rest). */
static int ns_compatible(const char *literal, size_t llen, const char *ns, const char **rest)
{
    size_t nlen = strlen(ns);
    size_t n = llen < nlen ? llen : nlen;
    if (strncmp(literal, ns, n)) return 0;
    *rest = llen > nlen ? literal + nlen : "";
    return 1;
}

int mboxlist_list(struct mboxlist *ml, struct kv_txn *txn, const char *user, const char *pattern,
                  mboxlist_list_fn *cb, void *rock)
{
    return mboxlist_list_visible(ml, txn, user, pattern, NULL, cb, rock);
}

/* sorted_uniq: a sorted in strcmp (byte) order, each string once. */
static void sorted_uniq(struct strarr *a)
{
    strarr_sort(a);
    size_t out = 0;
    for (size_t i = 0; i < a->count; i++) {
        if (out && !strcmp(a->v[out - 1], a->v[i])) {
            free(a->v[i]);
            continue;
        }
        a->v[out++] = a->v[i];
    }
    a->count = out;
    if (a->v) a->v[out] = NULL;
}

/* list_part_scan: one namespace part of a LIST: every mailbox whose name starts with prefix,
 * from the list itself (granted NULL), or only those among granted (sorted, unique; names a
 * grant index gave), each looked up in the list. */
static int list_part_scan(struct mboxlist *ml, struct kv_txn *txn, const char *prefix,
                          size_t plen, const struct strarr *granted, struct list_ctx *l)
{
    if (!granted) return kv_foreach(ml->db, txn, prefix, plen, list_one, l);
    struct buf v = BUF_INIT;
    int r = 0;
    for (size_t i = 0; i < granted->count && !r; i++) {
        const char *name = granted->v[i];
        if (strncmp(name, prefix, plen)) continue;
        r = kv_get(ml->db, txn, name, strlen(name), &v);
        if (r == 1) r = list_one(name, strlen(name), buf_cstr(&v), v.len, l);
    }
    buf_fini(&v);
    return r;
}

static int list_run(struct mboxlist *ml, struct kv_txn *txn, const char *user,
                    const char *pattern, int use_grants, mboxlist_visible_fn *visible,
                    mboxlist_list_fn *cb, void *rock);

int mboxlist_list_visible(struct mboxlist *ml, struct kv_txn *txn, const char *user,
                          const char *pattern, mboxlist_visible_fn *visible,
                          mboxlist_list_fn *cb, void *rock)
{
    return list_run(ml, txn, user, pattern, 0, visible, cb, rock);
}

int mboxlist_list_granted(struct mboxlist *ml, struct kv_txn *txn, const char *user,
                          const char *pattern, mboxlist_visible_fn *visible,
                          mboxlist_list_fn *cb, void *rock)
{
    return list_run(ml, txn, user, pattern, user != NULL, visible, cb, rock);
}

static int list_run(struct mboxlist *ml, struct kv_txn *txn, const char *user,
                    const char *pattern, int use_grants, mboxlist_visible_fn *visible,
                    mboxlist_list_fn *cb, void *rock)
{
    struct list_ctx l = { user, NULL, visible, cb, rock, LIST_ALL, BUF_INIT, BUF_INIT, { 0 } };
    struct buf prefix = BUF_INIT;
    struct strarr granted = STRARR_INIT;
    const struct strarr *g = NULL;
    size_t llen = mboxname_pattern_literal(pattern);
    const char *rest;
    int r = mboxname_pattern_new(pattern, &l.pattern);
    if (r) return r;
    if (!user) {
        r = kv_foreach(ml->db, txn, pattern, llen, list_one, &l);
        goto done;
    }
    mboxname_user_inbox(user, &l.inbox);
    if (strncmp(pattern, MBOXNAME_NS_OTHER, strlen(MBOXNAME_NS_OTHER)) &&
        strncmp(pattern, MBOXNAME_NS_SHARED, strlen(MBOXNAME_NS_SHARED))) {
        /* the INBOX, then what lies below it: the prefix "user/fred" alone would also read
         * user/fred2, user/fred20... (with users user0..user99999, 11,111 users' mailboxes
         * for user1), which list_one would only throw away */
        struct buf v = BUF_INIT;
        l.part = LIST_PERSONAL;
        r = kv_get(ml->db, txn, l.inbox.s, l.inbox.len, &v);
        if (r == 1) r = list_one(buf_cstr(&l.inbox), l.inbox.len, buf_cstr(&v), v.len, &l);
        buf_fini(&v);
        if (r) goto done;
        buf_printf(&prefix, "%s%c", buf_cstr(&l.inbox), MBOXNAME_SEP);
        r = kv_foreach(ml->db, txn, prefix.s, prefix.len, list_one, &l);
        buf_reset(&prefix);
        if (r) goto done;
    }
    if (use_grants && (ns_compatible(pattern, llen, MBOXNAME_NS_OTHER, &rest) ||
                       ns_compatible(pattern, llen, MBOXNAME_NS_SHARED, &rest))) {
        /* Outside their own hierarchy a user sees only what an ACL entry for them or for
         * "anyone" grants (acl.h): the grant index names those mailboxes, so LIST costs what
         * the user may see, not the size of the whole list (which holds every user's
         * mailboxes) */
        r = mboxlist_grants(ml, txn, user, &granted);
        if (!r) r = mboxlist_grants(ml, txn, "anyone", &granted);
        if (r) goto done;
        sorted_uniq(&granted);
        g = &granted;
    }
    if (ns_compatible(pattern, llen, MBOXNAME_NS_OTHER, &rest)) {
        l.part = LIST_OTHER;
        buf_appends(&prefix, MBOXNAME_USER_PREFIX);
        if (*rest) buf_append(&prefix, rest, llen - (size_t)(rest - pattern));
        r = list_part_scan(ml, txn, prefix.s, prefix.len, g, &l);
        if (r) goto done;
    }
    if (ns_compatible(pattern, llen, MBOXNAME_NS_SHARED, &rest)) {
        l.part = LIST_SHARED;
        size_t rlen = *rest ? llen - (size_t)(rest - pattern) : 0;
        r = list_part_scan(ml, txn, rest, rlen, g, &l);
    }
done:
    strarr_fini(&granted);
    mboxname_pattern_free(&l.pattern);
    buf_fini(&prefix);
    buf_fini(&l.inbox);
    buf_fini(&l.ext);
    mboxlist_entry_fini(&l.e);
    return r;
}
