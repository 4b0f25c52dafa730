/* mboxlist.c: the mailbox list database (mailboxes.db). */
#include "store/mboxlist.h"
#include "core/error.h"
#include "core/log.h"
#include "core/strarr.h"
#include "core/xmalloc.h"
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
    *ml_r = NULL;
    int r = kv_db_open(env, MBOXLIST_DB, 0, &db);
    if (r) return r;
    struct mboxlist *ml = xmalloc(sizeof *ml);
    ml->db = db;
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

static int create_fn(struct kv_txn *txn, void *rock)
{
    struct write_args *a = rock;
    int r = mboxlist_lookup(a->ml, txn, a->name, NULL);
    if (r < 0) return r;
    if (r == 1) return CF_E_EXISTS;
    return put_entry(a->ml, txn, a->name, a->e);
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
    int r = mboxlist_lookup(a->ml, txn, a->name, NULL);
    if (r < 0) return r;
    if (r == 0) return CF_E_NOTFOUND;
    return put_entry(a->ml, txn, a->name, a->ce);
}

int mboxlist_update(struct mboxlist *ml, struct kv_txn *txn, const char *name,
                    const struct mboxlist_entry *e)
{
    if (!partition_ok(e->partition) || strlen(e->uniqueid) != MBOXLIST_UNIQUEID_LEN)
        return CF_E_PARSE;
    struct write_args a = { ml, name, NULL, NULL, e, NULL, NULL };
    return run(ml, txn, update_fn, &a);
}

int mboxlist_delete(struct mboxlist *ml, struct kv_txn *txn, const char *name)
{
    int r = kv_del(ml->db, txn, name, strlen(name));
    if (r < 0) return r;
    return r == 1 ? 0 : CF_E_NOTFOUND;
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

int mboxlist_list_visible(struct mboxlist *ml, struct kv_txn *txn, const char *user,
                          const char *pattern, mboxlist_visible_fn *visible,
                          mboxlist_list_fn *cb, void *rock)
{
    struct list_ctx l = { user, NULL, visible, cb, rock, LIST_ALL, BUF_INIT, BUF_INIT, { 0 } };
    struct buf prefix = BUF_INIT;
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
        l.part = LIST_PERSONAL;
        r = kv_foreach(ml->db, txn, l.inbox.s, l.inbox.len, list_one, &l);
        if (r) goto done;
    }
    if (ns_compatible(pattern, llen, MBOXNAME_NS_OTHER, &rest)) {
        l.part = LIST_OTHER;
        buf_appends(&prefix, MBOXNAME_USER_PREFIX);
        if (*rest) buf_append(&prefix, rest, llen - (size_t)(rest - pattern));
        r = kv_foreach(ml->db, txn, prefix.s, prefix.len, list_one, &l);
        if (r) goto done;
    }
    if (ns_compatible(pattern, llen, MBOXNAME_NS_SHARED, &rest)) {
        l.part = LIST_SHARED;
        size_t rlen = *rest ? llen - (size_t)(rest - pattern) : 0;
        r = kv_foreach(ml->db, txn, rest, rlen, list_one, &l);
    }
done:
    mboxname_pattern_free(&l.pattern);
    buf_fini(&prefix);
    buf_fini(&l.inbox);
    buf_fini(&l.ext);
    mboxlist_entry_fini(&l.e);
    return r;
}
