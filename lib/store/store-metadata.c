/* store-metadata.c: the annotations of mailboxes and the server as services and tools use
 * them (store-db.h): full entry names split into scope and path, the configured limits
 * checked in the change's own transaction, and DEPTH for listing (RFC 5464). */
#include "store/store-int.h"
#include "core/error.h"
#include "core/log.h"
#include "core/xmalloc.h"
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define SHARED "/shared"
#define PRIVATE "/private"

/* split_entry: the scope (*private_r) and the path below it ("" for the scope itself) of a
 * full entry name; CF_E_PARSE when it is under neither. ASCII case is ignored. */
static int split_entry(const char *entry, int *private_r, const char **path_r)
{
    size_t n;
    if (!strncasecmp(entry, SHARED, n = strlen(SHARED))) *private_r = 0;
    else if (!strncasecmp(entry, PRIVATE, n = strlen(PRIVATE))) *private_r = 1;
    else return CF_E_PARSE;
    if (entry[n] && entry[n] != '/') return CF_E_PARSE;
    *path_r = entry + n;
    return 0;
}

struct set_rock {
    struct store *st;
    const char *mailbox, *user;
    const struct store_metadata_item *items;
    size_t n;
    int touches[2];     /* a change in the shared [0] / private [1] scope */
    const struct store_metadata_item *specialuse;   /* the last STORE_METADATA_SPECIALUSE */
    struct mboxlist_entry e;   /* the mailbox's list entry, read in the transaction */
    const char *uniqueid;      /* e's, or STORE_METADATA_SERVER */
};

/* is_specialuse: 1 for the entry that stands for the mailbox's special-use flags */
static int is_specialuse(const struct set_rock *s, const char *entry)
{
    return *s->mailbox && !strcasecmp(entry, STORE_METADATA_SPECIALUSE);
}

/* set_specialuse: the mailbox's special-use flags replaced by the item's value, in txn */
static int set_specialuse(struct set_rock *s, struct kv_txn *txn)
{
    const struct store_metadata_item *it = s->specialuse;
    struct buf v = BUF_INIT;
    if (it->value) buf_append(&v, it->value, it->len);
    if (memchr(buf_cstr(&v), '\0', v.len)) {
        buf_fini(&v);
        return CF_E_PARSE;
    }
    free(s->e.flags);
    s->e.flags = buf_release(&v);
    if (!s->e.flags) s->e.flags = xstrdup("");
    return mboxlist_update(s->st->mboxlist, txn, s->mailbox, &s->e);
}

/* over: 1 when a limit (0: none) is passed by after and after grew past before */
static int over(long long limit, long long before, long long after)
{
    return limit > 0 && after > limit && after > before;
}

static int set_fn(struct kv_txn *txn, void *rock)
{
    struct set_rock *s = rock;
    struct metadb *m = s->st->meta;
    const struct config *cfg = s->st->cfg;
    long long count[2][2] = { { 0, 0 }, { 0, 0 } }, bytes[2][2] = { { 0, 0 }, { 0, 0 } };
    long long ucount[2] = { 0, 0 };
    int r = 0;
    /* the mailbox as it is now: a change never lands on one deleted meanwhile */
    s->uniqueid = STORE_METADATA_SERVER;
    if (*s->mailbox) {
        r = mboxlist_lookup(s->st->mboxlist, txn, s->mailbox, &s->e);
        if (r == 0) return CF_E_NOTFOUND;
        if (r < 0) return r;
        s->uniqueid = s->e.uniqueid;
        r = 0;
    }
    if (s->specialuse && (r = set_specialuse(s, txn)) < 0) return r;
    /* usage before [0] and after [1] the change, of each scope it touches */
    for (int when = 0; when < 2 && !r; when++) {
        if (when == 1) {
            for (size_t i = 0; i < s->n && !r; i++) {
                int priv;
                const char *path;
                if (is_specialuse(s, s->items[i].entry)) continue;
                r = split_entry(s->items[i].entry, &priv, &path);
                if (!r && !*path) r = CF_E_PARSE;
                if (!r)
                    r = metadb_put(m, txn, s->uniqueid, priv ? s->user : NULL, path,
                                   s->items[i].value, s->items[i].len);
                if (r > 0) r = 0;
            }
        }
        for (int priv = 0; priv < 2 && !r; priv++) {
            if (!s->touches[priv]) continue;
            r = metadb_usage(m, txn, s->uniqueid, priv ? s->user : NULL, &count[priv][when],
                             &bytes[priv][when]);
        }
        if (!r && s->touches[1]) r = metadb_user_count(m, txn, s->user, &ucount[when]);
    }
    if (r) return r;
    long long max_entries = config_int(cfg, CFG_METADATA_MAX_ENTRIES);
    long long max_size = config_int(cfg, CFG_METADATA_MAX_SIZE);
    for (int priv = 0; priv < 2; priv++)
        if (over(max_entries, count[priv][0], count[priv][1]) ||
            over(max_size, bytes[priv][0], bytes[priv][1]))
            return CF_E_LIMIT;
    if (over(config_int(cfg, CFG_METADATA_MAX_ENTRIES_PER_USER), ucount[0], ucount[1]))
        return CF_E_LIMIT;
    return 0;
}

int store_metadata_set(struct store *st, const char *mailbox, const char *user,
                       const struct store_metadata_item *items, size_t n, long long *maxsize_r)
{
    struct set_rock s;
    memset(&s, 0, sizeof s);
    s.st = st;
    s.mailbox = mailbox ? mailbox : STORE_METADATA_SERVER;
    s.user = user;
    s.items = items;
    s.n = n;
    mboxlist_entry_init(&s.e);
    long long max_value = config_int(st->cfg, CFG_METADATA_MAX_ENTRY_SIZE);
    *maxsize_r = 0;
    for (size_t i = 0; i < n; i++) {
        int priv;
        const char *path;
        if (is_specialuse(&s, items[i].entry)) {
            s.specialuse = &items[i];
            continue;
        }
        if (split_entry(items[i].entry, &priv, &path) || !*path || (priv && (!user || !*user)))
            return CF_E_PARSE;
        if (items[i].value && max_value > 0 && (long long)items[i].len > max_value) {
            *maxsize_r = max_value;
            return CF_E_LIMIT;
        }
        s.touches[priv] = 1;
    }
    int r = kv_txn_run(st->env, 0, set_fn, &s);
    if (r == CF_E_LIMIT)
        log_info("metadata_limit", "mailbox=%s user=%s", log_quote(s.mailbox),
                 log_quote(user ? user : ""));
    mboxlist_entry_fini(&s.e);
    return r < 0 ? r : 0;
}

int store_metadata_get(struct store *st, const char *uniqueid, const char *user,
                       const char *entry, struct buf *val)
{
    int priv;
    const char *path;
    buf_reset(val);
    if (split_entry(entry, &priv, &path) || !*path) return CF_E_PARSE;
    if (priv && (!user || !*user)) return 0;
    return metadb_get(st->meta, NULL, uniqueid ? uniqueid : STORE_METADATA_SERVER,
                      priv ? user : NULL, path, val);
}

struct each_rock {
    const char *scope;     /* "/shared" or "/private" */
    const char *path;      /* the asked entry's path below it, lower-cased */
    size_t plen;
    int depth;
    store_metadata_fn *cb;
    void *rock;
    struct buf name;
};

static int each_fn(const char *path, const char *val, size_t vlen, void *rock)
{
    struct each_rock *e = rock;
    /* path starts with e->path (the scan's prefix): the entry itself, or below it */
    const char *rest = path + e->plen;
    if (*rest) {
        if (*rest != '/') return 0;            /* "/vendorx" is not below "/vendor" */
        if (e->depth == 0) return 0;
        if (e->depth == 1 && strchr(rest + 1, '/')) return 0;
    }
    buf_reset(&e->name);
    buf_appends(&e->name, e->scope);
    buf_appends(&e->name, path);
    return e->cb(buf_cstr(&e->name), val, vlen, e->rock);
}

int store_metadata_foreach(struct store *st, const char *uniqueid, const char *user,
                           const char *entry, int depth, store_metadata_fn *cb, void *rock)
{
    int priv;
    const char *path;
    if (split_entry(entry, &priv, &path)) return CF_E_PARSE;
    if (priv && (!user || !*user)) return 0;
    struct buf lower = BUF_INIT;
    for (const char *p = path; *p; p++)
        buf_putc(&lower, *p >= 'A' && *p <= 'Z' ? (char)(*p - 'A' + 'a') : *p);
    struct each_rock e = { priv ? PRIVATE : SHARED, buf_cstr(&lower), lower.len, depth, cb,
                           rock, BUF_INIT };
    int r = metadb_foreach(st->meta, NULL, uniqueid ? uniqueid : STORE_METADATA_SERVER,
                           priv ? user : NULL, e.path, each_fn, &e);
    buf_fini(&e.name);
    buf_fini(&lower);
    return r;
}

int store_metadata_forget_mailbox(struct store *st, const char *uniqueid)
{
    int r = metadb_delete_mailbox(st->meta, uniqueid);
    if (r < 0)
        log_err("metadata_forget_failed", "uniqueid=%s error=%s", log_quote(uniqueid),
                log_quote(cf_strerror(r)));
    return r;
}

int store_metadata_forget_user(struct store *st, const char *user)
{
    int r = metadb_delete_user(st->meta, user);
    if (r < 0)
        log_err("metadata_forget_failed", "user=%s error=%s", log_quote(user),
                log_quote(cf_strerror(r)));
    return r;
}
