/* store.c: mailbox-level operations over the mailbox list and the mailbox directories. */
#include "store/store.h"
#include "store/acl.h"
#include "store/store-int.h"
#include "core/error.h"
#include "core/fileutil.h"
#include "core/log.h"
#include "core/xmalloc.h"
#include "store/mboxname.h"
#include "store/partition.h"
#include "store/quotalock.h"
#include "store/reconstruct.h"
#include "store/store-retained.h"
#include "store/store-quota-int.h"
#include <inttypes.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

int store_open(const struct config *cfg, struct store **st_r)
{
    *st_r = NULL;
    struct store *st = xzmalloc(sizeof *st);
    st->cfg = cfg;
    char *dir = xasprintf("%s/db", config_str(cfg, CFG_CONFIGDIR));
    int r = kv_env_open(dir, &st->env);
    if (!r) r = mboxlist_open(st->env, &st->mboxlist);
    if (!r) r = quotadb_open(st->env, &st->quota);
    if (!r) r = subs_open(st->env, &st->subs);
    if (!r) r = seendb_open(st->env, &st->seen);
    if (!r) r = dupdb_open(st->env, &st->dup);
    if (!r) r = metadb_open(st->env, &st->meta);
    if (r) {
        log_err("store_open_failed", "dir=%s error=%s", log_quote(dir), log_quote(cf_strerror(r)));
        free(dir);
        store_close(&st);
        return r;
    }
    free(dir);
    *st_r = st;
    return 0;
}

void store_close(struct store **stp)
{
    struct store *st = *stp;
    if (!st) return;
    metadb_close(&st->meta);
    mailbox_close(&st->parked);
    store_drop_targets(st);
    dupdb_close(&st->dup);
    seendb_close(&st->seen);
    subs_close(&st->subs);
    quotadb_close(&st->quota);
    mboxlist_close(&st->mboxlist);
    kv_env_close(&st->env);
    free(st);
    *stp = NULL;
}

const char *store_partition_path(const struct store *st, const char *partition)
{
    const struct partition *p = config_partition(st->cfg, partition);
    return p ? p->path : NULL;
}

int store_lookup(struct store *st, const char *name, struct mboxlist_entry *e)
{
    return mboxlist_lookup(st->mboxlist, NULL, name, e);
}

/* default_acl: the owner's full rights for a personal mailbox, nothing for a shared one
 * (administrators act by their own power, not through the ACL). Caller frees. */
static char *default_acl(const char *name)
{
    struct buf owner = BUF_INIT;
    char *acl;
    if (mboxname_owner(name, &owner) == 1) acl = xasprintf("%s\t%s\t", buf_cstr(&owner), ACL_RIGHTS_ALL);
    else acl = xstrdup("");
    buf_fini(&owner);
    return acl;
}

/* create_one: one mailbox whose parent question is settled. */
static int create_one(struct store *st, const char *name, const char *partition,
                      const char *acl, const char *flags)
{
    struct mboxlist_entry parent;
    mboxlist_entry_init(&parent);
    char *own_acl = NULL, *own_part = NULL;
    struct buf pname = BUF_INIT;
    int r = 0;
    if (!partition || !acl) {
        /* a child lives on its parent's partition and starts with its parent's ACL */
        if (mboxname_parent(name, &pname) == 1 &&
            mboxlist_lookup(st->mboxlist, NULL, buf_cstr(&pname), &parent) == 1) {
            if (!partition) partition = own_part = xstrdup(parent.partition);
            if (!acl) acl = own_acl = xstrdup(parent.acl);
        }
    }
    if (!acl) acl = own_acl = default_acl(name);
    if (!partition) {
        const struct partition *p;
        r = partition_select(st->cfg, &p);
        if (r) goto out;
        partition = own_part = xstrdup(p->name);
    }
    const char *ppath = store_partition_path(st, partition);
    if (!ppath) { r = CF_E_NOTFOUND; goto out; }
    r = partition_prepare(ppath);
    if (r) goto out;

    struct mboxlist_entry e;
    mboxlist_entry_init(&e);
    r = mboxlist_lookup(st->mboxlist, NULL, name, NULL);
    if (r == 1) r = CF_E_EXISTS;
    if (r) { mboxlist_entry_fini(&e); goto out; }
    mboxlist_new_uniqueid(e.uniqueid);
    e.partition = xstrdup(partition);
    e.acl = xstrdup(acl);
    e.flags = xstrdup(flags ? flags : "");
    /* UIDVALIDITY from the list's counter, committed before the directory is written with it:
     * a create that fails later only skips a value, and none is ever given twice */
    uint32_t uidvalidity = 0;
    r = mboxlist_next_uidvalidity(st->mboxlist, NULL, &uidvalidity);
    if (r) { mboxlist_entry_fini(&e); goto out; }
    /* directory first: a crash before the list entry leaves an orphan that reconstruct adopts */
    r = mailbox_create(ppath, name, e.uniqueid, acl, uidvalidity);
    if (!r) {
        r = mboxlist_create(st->mboxlist, NULL, name, &e);
        if (r) mailbox_delete(ppath, e.uniqueid);
    }
    if (!r) log_info("mailbox_created", "name=%s partition=%s uniqueid=%s", log_quote(name),
                     log_quote(partition), e.uniqueid);
    mboxlist_entry_fini(&e);
out:
    mboxlist_entry_fini(&parent);
    buf_fini(&pname);
    free(own_acl);
    free(own_part);
    return r;
}

int store_create(struct store *st, const char *name, const char *partition, const char *acl,
                 const char *flags, unsigned opts)
{
    if (mboxname_valid(name)) return CF_E_PARSE;
    if (partition && !store_partition_path(st, partition)) return CF_E_NOTFOUND;
    /* ancestors, outermost first; "user" itself is never a mailbox */
    struct buf anc = BUF_INIT;
    int r = 0;
    for (const char *p = strchr(name, '/'); p && !r; p = strchr(p + 1, '/')) {
        buf_reset(&anc);
        buf_append(&anc, name, (size_t)(p - name));
        const char *a = buf_cstr(&anc);
        if (!strcmp(a, "user")) continue;
        int found = mboxlist_lookup(st->mboxlist, NULL, a, NULL);
        if (found < 0) r = found;
        else if (!found) {
            if (!(opts & STORE_CREATE_PARENTS)) r = CF_E_NOTFOUND;
            else {
                r = create_one(st, a, partition, NULL, NULL);
                if (r == CF_E_EXISTS) r = 0;  /* created meanwhile by someone else */
            }
        }
    }
    buf_fini(&anc);
    if (r) return r;
    return create_one(st, name, partition, acl, flags);
}

/* ---- bulk creation (store_create_many) ---- */

struct many_item {
    const char *name;
    struct mboxlist_entry e;
    const char *ppath;
    uint32_t uidvalidity;
    int dir_made;
};

struct many_args {
    struct store *st;
    struct many_item *it;
    size_t n;
    int *results;
};

/* many_uidv_fn: the UIDVALIDITYs of the batch, taken from the list's counter in one
 * transaction (committed before the directories are written with them, as create_one does) */
static int many_uidv_fn(struct kv_txn *txn, void *rock)
{
    struct many_args *a = rock;
    for (size_t i = 0; i < a->n; i++) {
        if (a->results[i]) continue;
        int r = mboxlist_next_uidvalidity(a->st->mboxlist, txn, &a->it[i].uidvalidity);
        if (r) return r;
    }
    return 0;
}

/* many_list_fn: the list entries. A name created meanwhile by someone else is left to them
 * (CF_E_EXISTS for it); the function may run again after a deadlock, so it starts afresh. */
static int many_list_fn(struct kv_txn *txn, void *rock)
{
    struct many_args *a = rock;
    for (size_t i = 0; i < a->n; i++) {
        if (!a->it[i].dir_made) continue;
        a->results[i] = 0;
        int r = mboxlist_create(a->st->mboxlist, txn, a->it[i].name, &a->it[i].e);
        if (r == CF_E_EXISTS) a->results[i] = r;
        else if (r) return r;
    }
    return 0;
}

/* many_parent: the entry of name's parent from earlier in the batch (before index i), else
 * from the list. 1 found (into *e_r, an item's entry or parent_buf), 0 none, or an error. */
static int many_parent(struct store *st, struct many_item *it, const int *results, size_t i,
                       const char *pname, struct mboxlist_entry *parent_buf,
                       const struct mboxlist_entry **e_r)
{
    for (size_t j = i; j-- > 0;) {
        if (!results[j] && !strcmp(it[j].name, pname)) {
            *e_r = &it[j].e;
            return 1;
        }
    }
    int r = mboxlist_lookup(st->mboxlist, NULL, pname, parent_buf);
    if (r == 1) *e_r = parent_buf;
    return r;
}

int store_create_many(struct store *st, const char *const *names, size_t n,
                      const char *partition, int *results)
{
    struct many_item *it = xzmalloc((n ? n : 1) * sizeof *it);
    struct many_args a = { st, it, n, results };
    struct mboxlist_entry parent;
    mboxlist_entry_init(&parent);
    struct buf pname = BUF_INIT, anc = BUF_INIT;
    struct strarr synced = STRARR_INIT;
    int r = 0, created = 0;
    if (partition && !store_partition_path(st, partition)) {
        r = CF_E_NOTFOUND;
        goto done;
    }
    /* what each create would decide: validity, existence, ancestors, partition and ACL */
    for (size_t i = 0; i < n; i++) {
        const char *name = names[i];
        it[i].name = name;
        mboxlist_entry_init(&it[i].e);
        results[i] = 0;
        if (mboxname_valid(name)) { results[i] = CF_E_PARSE; continue; }
        int found = mboxlist_lookup(st->mboxlist, NULL, name, NULL);
        if (found < 0) { r = found; goto done; }
        for (size_t j = 0; j < i && !found; j++)
            found = !results[j] && !strcmp(names[j], name);
        if (found) { results[i] = CF_E_EXISTS; continue; }
        for (const char *p = strchr(name, '/'); p && !results[i]; p = strchr(p + 1, '/')) {
            buf_reset(&anc);
            buf_append(&anc, name, (size_t)(p - name));
            if (!strcmp(buf_cstr(&anc), "user")) continue;
            const struct mboxlist_entry *pe = NULL;
            int pr = many_parent(st, it, results, i, buf_cstr(&anc), &parent, &pe);
            if (pr < 0) { r = pr; goto done; }
            if (!pr) results[i] = CF_E_NOTFOUND;
        }
        if (results[i]) continue;
        const struct mboxlist_entry *pe = NULL;
        if (mboxname_parent(name, &pname) == 1) {
            int pr = many_parent(st, it, results, i, buf_cstr(&pname), &parent, &pe);
            if (pr < 0) { r = pr; goto done; }
        }
        const char *part = partition ? partition : pe ? pe->partition : NULL;
        if (!part) {
            const struct partition *sel;
            if ((r = partition_select(st->cfg, &sel))) goto done;
            part = sel->name;
        }
        it[i].e.partition = xstrdup(part);
        it[i].e.acl = pe ? xstrdup(pe->acl) : default_acl(name);
        it[i].e.flags = xstrdup("");
        it[i].ppath = store_partition_path(st, part);
        if (!it[i].ppath) { results[i] = CF_E_NOTFOUND; continue; }
        mboxlist_new_uniqueid(it[i].e.uniqueid);
    }
    if ((r = kv_txn_run(kv_db_env(mboxlist_kv(st->mboxlist)), 0, many_uidv_fn, &a)) < 0)
        goto done;
    /* directories first, unsynced; then each partition synced once */
    for (size_t i = 0; i < n; i++) {
        if (results[i]) continue;
        if (strarr_find(&synced, it[i].ppath) < 0) {
            if ((r = partition_prepare(it[i].ppath))) goto done;
            strarr_add(&synced, it[i].ppath);
        }
        r = mailbox_create_nosync(it[i].ppath, it[i].name, it[i].e.uniqueid, it[i].e.acl,
                                  it[i].uidvalidity);
        if (r) goto done;
        it[i].dir_made = 1;
    }
    for (size_t i = 0; i < synced.count; i++) {
        int fd = open(synced.v[i], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0 || syncfs(fd) < 0) {
            log_err("mailbox_io_error", "call=syncfs path=%s errno=%s", log_quote(synced.v[i]),
                    strerror(errno));
            if (fd >= 0) close(fd);
            r = CF_E_IO;
            goto done;
        }
        close(fd);
    }
    r = kv_txn_run(kv_db_env(mboxlist_kv(st->mboxlist)), 0, many_list_fn, &a);
done:
    for (size_t i = 0; i < n; i++) {
        if (!it[i].dir_made) continue;
        if (r >= 0 && !results[i]) {
            created++;
            log_info("mailbox_created", "name=%s partition=%s uniqueid=%s",
                     log_quote(it[i].name), log_quote(it[i].e.partition), it[i].e.uniqueid);
        } else {
            /* its list entry was not written: the directory must not stay as an orphan */
            mailbox_delete(it[i].ppath, it[i].e.uniqueid);
        }
    }
    for (size_t i = 0; i < n; i++) mboxlist_entry_fini(&it[i].e);
    free(it);
    mboxlist_entry_fini(&parent);
    buf_fini(&pname);
    buf_fini(&anc);
    strarr_fini(&synced);
    return r < 0 ? r : created;
}

/* remove_tombstone: unlink the files of a deleted mailbox's directory (it holds only files)
 * and the directory. Sessions that still have it open keep their open files until they close. */
static void remove_tombstone(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) continue;
        if (unlinkat(dirfd(d), de->d_name, 0) < 0)
            log_warn("unlink_failed", "dir=%s file=%s error=%s", log_quote(dir),
                     log_quote(de->d_name), log_quote(strerror(errno)));
    }
    closedir(d);
    if (rmdir(dir) < 0)
        log_warn("rmdir_failed", "dir=%s error=%s", log_quote(dir), log_quote(strerror(errno)));
}

int store_delete(struct store *st, const char *name)
{
    return store_delete_opts(st, name, 0);
}

int store_delete_opts(struct store *st, const char *name, unsigned opts)
{
    struct mboxlist_entry e;
    mboxlist_entry_init(&e);
    struct buf root = BUF_INIT;
    int qlock = -1;
    /* The root's lock first (before any mailbox lock): no APPEND, COPY or expunge of this
     * mailbox can change its usage between our reading it and its removal, and a session
     * expunging in it later finds the entry gone and credits nothing (store_expunge). */
    int has_root = store_quota_lock(st, name, &root, &qlock);
    int r = has_root < 0 ? has_root : mboxlist_lookup(st->mboxlist, NULL, name, &e);
    if (r == 0) r = CF_E_NOTFOUND;
    if (r < 0) goto out;
    r = 0;
    const char *ppath = store_partition_path(st, e.partition);
    if (!ppath) { r = CF_E_NOTFOUND; goto out; }
    char *mdir = partition_mailbox_dir(ppath, e.uniqueid);
    struct stat msb;
    int hide = !(opts & STORE_DELETE_NOW) &&
               strcmp(config_str(st->cfg, CFG_DELETE_MODE), "immediate") && stat(mdir, &msb) == 0;
    if (!hide) free(mdir);
    if (hide) {
        /* delete_mode delayed: hidden, not removed (store-retained.h); its root stops
         * counting it all the same (its ledger record goes with its usage).
         * (A listed mailbox without a directory has nothing to keep: the path below.) */
        r = store_delete_hidden(st, name, &e, mdir);
        free(mdir);
        if (!r && has_root == 1) store_quota_settle_locked(st, buf_cstr(&root), e.uniqueid, NULL, 0);
        goto out;
    }
    /* Tombstone first: rename the directory so that reconstruct never brings the mailbox
     * back if we crash after the list entry is gone; then the entry, then the files. */
    char *dir = xasprintf("%s/%.2s/%s", ppath, e.uniqueid, e.uniqueid);
    char *tomb = xasprintf("%s.deleted", dir);
    int renamed = rename(dir, tomb) == 0;
    if (!renamed && errno != ENOENT) {
        log_err("mailbox_delete_failed", "name=%s error=%s", log_quote(name), log_quote(strerror(errno)));
        r = CF_E_IO;
    }
    /* The rename must be durable before the list entry goes (M7): else a crash could keep
     * the old name on disk without its entry, and reconstruct would bring it back. */
    if (renamed) r = fsync_dir(dir, 0);
    if (!r) r = mboxlist_delete(st->mboxlist, NULL, name);
    if (!r) {
        /* the root stops counting it: exactly what its ledger record says (quotadb.h) */
        if (has_root == 1) store_quota_settle_locked(st, buf_cstr(&root), e.uniqueid, NULL, 0);
        remove_tombstone(tomb);
        seendb_delete_mailbox(st->seen, NULL, e.uniqueid);
        store_urlauth_forget(st, e.uniqueid);     /* RFC 4467 access keys (store-db.h) */
        store_metadata_forget_mailbox(st, e.uniqueid);   /* RFC 5464 annotations */
        log_info("mailbox_deleted", "name=%s uniqueid=%s", log_quote(name), e.uniqueid);
    } else {
        rename(tomb, dir);  /* the entry is still there: put the directory back */
    }
    free(dir);
    free(tomb);
out:
    quotalock_release(&qlock);
    buf_fini(&root);
    mboxlist_entry_fini(&e);
    return r;
}

/* rewrite the header file of every renamed mailbox so it names itself correctly; when the
 * rename gave the mailboxes another owner (an administrator moving user/a/x to user/b/y), the
 * old owner's ACL entry becomes the new owner's: the new owner has what the old one had, and
 * the old one keeps nothing by ownership */
struct rename_rock {
    struct store *st;
    struct buf oldowner, newowner;   /* both set only when the owner changes */
};

/* owner_handover: e's ACL with rr's old owner's entry given to the new owner, stored (list
 * and header). Nothing when the old owner had no entry. */
static void owner_handover(struct rename_rock *rr, const char *name, const struct mboxlist_entry *e)
{
    struct strarr ids = STRARR_INIT, rights = STRARR_INIT;
    acl_split(e->acl, &ids, &rights);
    int i = strarr_find(&ids, buf_cstr(&rr->oldowner));
    unsigned mask = 0;
    char *without = NULL, *acl = NULL;
    if (i >= 0 && acl_parse_rights(rights.v[i], strlen(rights.v[i]), 0, &mask) == 0 &&
        acl_remove_ident(e->acl, buf_cstr(&rr->oldowner), &without) == 1 &&
        acl_modify(without, buf_cstr(&rr->newowner), ACL_ADD, mask, &acl) == 0) {
        struct mboxlist_entry ne = *e;
        ne.acl = acl;
        int r = acl_mailbox_update(rr->st, name, &ne);
        log_info("mailbox_owner_changed", "name=%s from=%s to=%s%s", log_quote(name),
                 log_quote(buf_cstr(&rr->oldowner)), log_quote(buf_cstr(&rr->newowner)),
                 r ? " error=acl_update" : "");
    }
    free(without);
    free(acl);
    strarr_fini(&ids);
    strarr_fini(&rights);
}

static int fix_header(const char *name, const struct mboxlist_entry *e, void *rock)
{
    struct rename_rock *rr = rock;
    const char *ppath = store_partition_path(rr->st, e->partition);
    if (!ppath) return 0;
    int r = mailbox_rename(ppath, ppath, e->uniqueid, name);
    if (r && r != CF_E_NOTFOUND)
        log_warn("mailbox_header_stale", "name=%s uniqueid=%s error=%s", log_quote(name),
                 e->uniqueid, log_quote(cf_strerror(r)));
    if (rr->newowner.len) owner_handover(rr, name, e);
    return 0;
}

/* quota_move_root: root `from` becomes root `to` (limits and usage), in one transaction. */
struct move_root_rock { struct store *st; const char *from, *to; };

static int move_root_fn(struct kv_txn *txn, void *rock)
{
    struct move_root_rock *m = rock;
    struct quota q;
    int r = quotadb_get(m->st->quota, txn, m->from, &q);
    if (r == 0) return CF_E_NOTFOUND;
    if (r < 0) return r;
    r = quotadb_set_limits(m->st->quota, txn, m->to, q.limit_storage_kib, q.limit_messages);
    if (!r) r = quotadb_set_usage(m->st->quota, txn, m->to, q.used_bytes, q.used_messages);
    if (!r) r = quotadb_delete(m->st->quota, txn, m->from);
    return r;
}

static int quota_move_root(struct store *st, const char *from, const char *to)
{
    struct move_root_rock m = { st, from, to };
    int r = kv_txn_run(st->env, 0, move_root_fn, &m);
    if (!r) log_info("quota_root_renamed", "from=%s to=%s", log_quote(from), log_quote(to));
    return r;
}

/* One mailbox a rename moves from one quota root to another, with the usage it takes along. */
struct rename_move {
    char *oldroot, *newroot;   /* "" for none */
    char *name;                /* its old name */
};

static int collect_name(const char *name, const struct mboxlist_entry *e, void *rock)
{
    (void)e;
    strarr_add(rock, name);
    return 0;
}

/* Roots that are the renamed mailbox or below it: one whose new name is no root yet moves
 * with it (limits and usage), as a user's quota follows the user's renamed INBOX. */
struct root_rock {
    struct store *st;
    const char *oldname, *newname;
    struct strarr *from, *to;
};

static int collect_moving_root(const char *root, const struct quota *qt, void *rock)
{
    struct root_rock *rr = rock;
    (void)qt;
    if (strcmp(root, rr->oldname) && !mboxname_is_descendant(root, rr->oldname)) return 0;
    char *to = xasprintf("%s%s", rr->newname, root + strlen(rr->oldname));
    int r = quotadb_get(rr->st->quota, NULL, to, NULL);
    if (r == 0) {
        strarr_add(rr->from, root);
        strarr_add(rr->to, to);
    }
    free(to);
    return r < 0 ? r : 0;
}

/* rename_plan_quota: the roots that move with the rename (roots_from[i] becomes roots_to[i]),
 * the mailboxes of the subtree oldname whose quota root changes with it (*moves_r, *nmoves_r),
 * and the sorted, distinct roots to lock (locks). */
static int rename_plan_quota(struct store *st, const char *oldname, const char *newname,
                             struct strarr *roots_from, struct strarr *roots_to,
                             struct rename_move **moves_r, size_t *nmoves_r, struct strarr *locks)
{
    struct strarr names = STRARR_INIT;
    struct buf oroot = BUF_INIT, nroot = BUF_INIT, nname = BUF_INIT;
    struct rename_move *moves = NULL;
    size_t nmoves = 0;
    struct root_rock rr = { st, oldname, newname, roots_from, roots_to };
    int r = quotadb_foreach(st->quota, NULL, oldname, collect_moving_root, &rr);
    for (size_t i = 0; !r && i < roots_from->count; i++) {
        /* never one name twice: a second flock of one file in one process waits forever */
        if (strarr_find(locks, roots_from->v[i]) < 0) strarr_add(locks, roots_from->v[i]);
        if (strarr_find(locks, roots_to->v[i]) < 0) strarr_add(locks, roots_to->v[i]);
    }
    strarr_add(&names, oldname);
    char *prefix = xasprintf("%s/", oldname);
    if (!r) r = mboxlist_foreach(st->mboxlist, NULL, prefix, collect_name, &names);
    free(prefix);
    if (r > 0) r = 0;
    for (size_t i = 0; !r && i < names.count; i++) {
        buf_reset(&nname);
        buf_appends(&nname, newname);
        buf_appends(&nname, names.v[i] + strlen(oldname));
        int fo = quotadb_find_root(st->quota, NULL, names.v[i], &oroot);
        if (fo < 0) { r = fo; break; }
        /* governed by a root that moves along: its usage stays there */
        if (fo && strarr_find(roots_from, buf_cstr(&oroot)) >= 0) continue;
        /* otherwise no moving root can govern its new name (it would have governed the old
         * one), so the roots as they are now tell */
        int fn = quotadb_find_root(st->quota, NULL, buf_cstr(&nname), &nroot);
        if (fn < 0) { r = fn; break; }
        if (!strcmp(buf_cstr(&oroot), buf_cstr(&nroot))) continue;
        moves = xreallocarray(moves, nmoves + 1, sizeof *moves);
        struct rename_move *m = &moves[nmoves++];
        memset(m, 0, sizeof *m);
        m->oldroot = xstrdup(buf_cstr(&oroot));
        m->newroot = xstrdup(buf_cstr(&nroot));
        m->name = xstrdup(names.v[i]);
        if (fo && strarr_find(locks, m->oldroot) < 0) strarr_add(locks, m->oldroot);
        if (fn && strarr_find(locks, m->newroot) < 0) strarr_add(locks, m->newroot);
    }
    /* one global order (by name) so that two renames in opposite directions cannot deadlock */
    strarr_sort(locks);
    *moves_r = moves;
    *nmoves_r = nmoves;
    strarr_fini(&names);
    buf_fini(&oroot);
    buf_fini(&nroot);
    buf_fini(&nname);
    return r;
}

int store_rename(struct store *st, const char *oldname, const char *newname,
                 const char *new_partition)
{
    return store_rename_checked(st, oldname, newname, new_partition, NULL, NULL);
}

int store_rename_checked(struct store *st, const char *oldname, const char *newname,
                         const char *new_partition, mboxlist_rename_check_fn *check, void *rock)
{
    struct mboxlist_entry e;
    mboxlist_entry_init(&e);
    struct strarr locks = STRARR_INIT, roots_from = STRARR_INIT, roots_to = STRARR_INIT;
    struct rename_move *moves = NULL;
    size_t nmoves = 0, nlocked = 0;
    int *lockfds = NULL;
    int r = rename_plan_quota(st, oldname, newname, &roots_from, &roots_to, &moves, &nmoves,
                              &locks);
    if (r < 0) goto out;
    lockfds = xreallocarray(NULL, locks.count ? locks.count : 1, sizeof *lockfds);
    for (; nlocked < locks.count; nlocked++) {
        r = quotalock_acquire(st, locks.v[nlocked], &lockfds[nlocked]);
        if (r < 0) goto out;
    }
    r = mboxlist_lookup(st->mboxlist, NULL, oldname, &e);
    if (r == 0) r = CF_E_NOTFOUND;
    if (r < 0) goto out;
    if (new_partition && !store_partition_path(st, new_partition)) { r = CF_E_NOTFOUND; goto out; }
    /* a partition move changes files before the list: it is for tools, which need no check */
    if (check && new_partition && strcmp(new_partition, e.partition)) { r = CF_E_PERM; goto out; }
    if (new_partition && strcmp(new_partition, e.partition)) {
        /* move the files first; the entry follows (store_open_mailbox repairs the entry if we
         * crash between the two) */
        const char *newpath = store_partition_path(st, new_partition);
        r = partition_prepare(newpath);
        if (!r) r = mailbox_rename(store_partition_path(st, e.partition), newpath, e.uniqueid, newname);
        if (r) goto out;
        free(e.partition);
        e.partition = xstrdup(new_partition);
        r = mboxlist_update(st->mboxlist, NULL, oldname, &e);
        if (r) goto out;
    }
    r = mboxlist_rename_checked(st->mboxlist, NULL, oldname, newname, check, rock);
    if (r < 0) goto out;
    int n = r;
    /* the roots that move along, then the usage of the mailboxes that change roots, right
     * after the list commit */
    for (size_t i = 0; i < roots_from.count; i++) {
        int m = quota_move_root(st, roots_from.v[i], roots_to.v[i]);
        if (m < 0)
            log_warn("quota_root_move_failed", "from=%s to=%s error=%s",
                     log_quote(roots_from.v[i]), log_quote(roots_to.v[i]),
                     log_quote(cf_strerror(m)));
    }
    /* each mailbox that changes roots leaves the old root's ledger and is settled on the new
     * one with what its header holds (read under the locks: nothing changes it meanwhile) */
    struct buf nname = BUF_INIT;
    for (size_t i = 0; i < nmoves; i++) {
        struct mboxlist_entry me;
        struct index_header h;
        mboxlist_entry_init(&me);
        buf_reset(&nname);
        buf_appends(&nname, newname);
        buf_appends(&nname, moves[i].name + strlen(oldname));
        if (store_lookup(st, buf_cstr(&nname), &me) == 1) {
            if (*moves[i].oldroot)
                store_quota_settle_locked(st, moves[i].oldroot, me.uniqueid, NULL, 0);
            if (*moves[i].newroot && store_status(st, buf_cstr(&nname), &h) == 0)
                store_quota_settle_locked(st, moves[i].newroot, me.uniqueid, &h, 0);
            else if (*moves[i].newroot)
                store_quota_fix_locked(st, moves[i].newroot, NULL);   /* unreadable index */
        }
        mboxlist_entry_fini(&me);
    }
    buf_fini(&nname);
    struct rename_rock rr = { st, BUF_INIT, BUF_INIT };
    if (mboxname_owner(oldname, &rr.oldowner) != 1 || mboxname_owner(newname, &rr.newowner) != 1 ||
        !strcmp(buf_cstr(&rr.oldowner), buf_cstr(&rr.newowner)))
        buf_reset(&rr.newowner);
    fix_header(newname, &e, &rr);
    char *prefix = xasprintf("%s/", newname);
    mboxlist_foreach(st->mboxlist, NULL, prefix, fix_header, &rr);
    free(prefix);
    buf_fini(&rr.oldowner);
    buf_fini(&rr.newowner);
    log_info("mailbox_renamed", "old=%s new=%s count=%d%s%s", log_quote(oldname),
             log_quote(newname), n, new_partition ? " partition=" : "",
             new_partition ? log_quote(new_partition) : "");
    r = n;
out:
    while (nlocked > 0) quotalock_release(&lockfds[--nlocked]);
    free(lockfds);
    for (size_t i = 0; i < nmoves; i++) {
        free(moves[i].oldroot);
        free(moves[i].newroot);
        free(moves[i].name);
    }
    free(moves);
    strarr_fini(&locks);
    strarr_fini(&roots_from);
    strarr_fini(&roots_to);
    mboxlist_entry_fini(&e);
    return r;
}

/* relocate: the directory of e is not on its partition; look for it on the others. */
static int relocate(struct store *st, const char *name, struct mboxlist_entry *e)
{
    for (size_t i = 0; i < st->cfg->npartitions; i++) {
        const struct partition *p = &st->cfg->partitions[i];
        if (!strcmp(p->name, e->partition)) continue;
        char *dir = xasprintf("%s/%.2s/%s/index", p->path, e->uniqueid, e->uniqueid);
        struct stat sb;
        int there = stat(dir, &sb) == 0;
        free(dir);
        if (!there) continue;
        log_warn("mailbox_relocated", "name=%s uniqueid=%s from=%s to=%s", log_quote(name),
                 e->uniqueid, log_quote(e->partition), log_quote(p->name));
        free(e->partition);
        e->partition = xstrdup(p->name);
        return mboxlist_update(st->mboxlist, NULL, name, e) ? CF_E_IO : 1;
    }
    return 0;
}

void store_park_mailbox(struct store *st, struct mailbox **mbp)
{
    mailbox_close(&st->parked);
    if (!mbp) return;
    st->parked = *mbp;
    *mbp = NULL;
}

/* open_found: open_entry for the list entry e of name, already looked up (it may be
 * corrected: relocate). */
/* open_found: view 0 a target, 1 a session, 2 a session for SELECT (mailbox_open_select) */
static int open_found(struct store *st, const char *name, struct mboxlist_entry *e, int view,
                      struct mailbox **mb_r)
{
    const char *ppath = store_partition_path(st, e->partition);
    int (*openfn)(const char *, const char *, const char *, struct mailbox **) =
        view == 2 ? mailbox_open_select : view ? mailbox_open : mailbox_open_target;
    struct mailbox *parked = view ? st->parked : NULL;
    if (view) st->parked = NULL;
    int r = CF_E_NOTFOUND;
    if (parked && ppath && mailbox_reuse(parked, ppath, e->uniqueid, name, view == 2) == 0) {
        *mb_r = parked;
        r = 0;
    } else {
        mailbox_close(&parked);
        if (ppath) r = openfn(ppath, e->uniqueid, name, mb_r);
    }
    if (r == CF_E_NOTFOUND && relocate(st, name, e) == 1)
        r = openfn(store_partition_path(st, e->partition), e->uniqueid, name, mb_r);
    if (r == CF_E_NOTFOUND)
        log_err("mailbox_missing", "name=%s uniqueid=%s partition=%s", log_quote(name),
                e->uniqueid, log_quote(e->partition));
    if (r == 0)   /* expunge_mode (coffer.conf(5)): expunged files wait for coffer expire */
        mailbox_set_expunge_delayed(*mb_r, strcmp(config_str(st->cfg, CFG_EXPUNGE_MODE), "immediate") != 0);
    return r;
}

/* ---- kept targets ---- */

struct store_target_stats store_target_stats;

/* open_kept: a handle lmtpd kept (store_keep_target) for the mailbox entry e names, if its
 * directory is still the one it has open; else a fresh open_found. */
static int open_kept(struct store *st, const char *name, struct mboxlist_entry *e,
                     struct mailbox **mb_r)
{
    for (size_t i = 0; i < st->ntargets; i++) {
        if (!store_is_mailbox(st, e, st->targets[i])) continue;
        struct mailbox *mb = st->targets[i];
        memmove(&st->targets[i], &st->targets[i + 1],
                (st->ntargets - i - 1) * sizeof st->targets[0]);
        st->ntargets--;
        if (mailbox_target_check(mb, name) == 0) {
            store_target_stats.hits++;
            *mb_r = mb;
            return 0;
        }
        mailbox_close(&mb);   /* its directory was made again: open it afresh */
        break;
    }
    store_target_stats.opens++;
    return open_found(st, name, e, 0, mb_r);
}

enum open_how { OPEN_TARGET, OPEN_VIEW, OPEN_KEPT, OPEN_SELECT };

/* open_entry: store_open_mailbox (view), store_open_target (no view; the parked session,
 * which a later SELECT may want, is left alone) and store_take_target (a kept handle). */
static int open_entry(struct store *st, const char *name, struct mboxlist_entry *e_out,
                      enum open_how how, struct mailbox **mb_r)
{
    *mb_r = NULL;
    struct mboxlist_entry e;
    mboxlist_entry_init(&e);
    int r = mboxlist_lookup(st->mboxlist, NULL, name, &e);
    if (r == 0) r = CF_E_NOTFOUND;
    if (r < 0) goto out;
    r = how == OPEN_KEPT ? open_kept(st, name, &e, mb_r)
                         : open_found(st, name, &e, how == OPEN_SELECT ? 2 : how == OPEN_VIEW, mb_r);
out:
    if (e_out && r == 0) {
        mboxlist_entry_fini(e_out);
        *e_out = e;
    } else {
        mboxlist_entry_fini(&e);
    }
    return r;
}

int store_take_target(struct store *st, const char *name, struct mboxlist_entry *e_out,
                      struct mailbox **mb_r)
{
    return open_entry(st, name, e_out, OPEN_KEPT, mb_r);
}

void store_keep_target(struct store *st, struct mailbox **mbp)
{
    if (!*mbp) return;
    if (st->ntargets == STORE_KEPT_TARGETS) {   /* the least recently used goes */
        mailbox_close(&st->targets[0]);
        memmove(&st->targets[0], &st->targets[1], (st->ntargets - 1) * sizeof st->targets[0]);
        st->ntargets--;
    }
    st->targets[st->ntargets++] = *mbp;
    *mbp = NULL;
}

void store_drop_targets(struct store *st)
{
    for (size_t i = 0; i < st->ntargets; i++) mailbox_close(&st->targets[i]);
    st->ntargets = 0;
}

int store_open_mailbox(struct store *st, const char *name, struct mboxlist_entry *e_out,
                       struct mailbox **mb_r)
{
    return open_entry(st, name, e_out, OPEN_VIEW, mb_r);
}

int store_open_select(struct store *st, const char *name, struct mboxlist_entry *e_out,
                      struct mailbox **mb_r)
{
    return open_entry(st, name, e_out, OPEN_SELECT, mb_r);
}

int store_open_target(struct store *st, const char *name, struct mboxlist_entry *e_out,
                      struct mailbox **mb_r)
{
    return open_entry(st, name, e_out, OPEN_TARGET, mb_r);
}

int store_is_mailbox(struct store *st, const struct mboxlist_entry *e, const struct mailbox *mb)
{
    if (!mb || !e->uniqueid[0] || !e->partition) return 0;
    const char *ppath = store_partition_path(st, e->partition);
    return ppath && !strcmp(mailbox_uniqueid(mb), e->uniqueid) &&
           !strcmp(mailbox_partition(mb), ppath);
}

int store_status(struct store *st, const char *name, struct index_header *h)
{
    struct mboxlist_entry e;
    mboxlist_entry_init(&e);
    int r = mboxlist_lookup(st->mboxlist, NULL, name, &e);
    if (r == 0) r = CF_E_NOTFOUND;
    if (r > 0) {
        const char *ppath = store_partition_path(st, e.partition);
        r = ppath ? mailbox_status(ppath, e.uniqueid, h) : CF_E_NOTFOUND;
        if (r == CF_E_NOTFOUND && relocate(st, name, &e) == 1)
            r = mailbox_status(store_partition_path(st, e.partition), e.uniqueid, h);
    }
    mboxlist_entry_fini(&e);
    return r;
}

int store_ensure_inbox(struct store *st, const char *user)
{
    struct buf inbox = BUF_INIT;
    mboxname_user_inbox(user, &inbox);
    int r = mboxlist_lookup(st->mboxlist, NULL, buf_cstr(&inbox), NULL);
    if (r == 1) {
        r = 0;
    } else if (r == 0) {
        r = store_create(st, buf_cstr(&inbox), NULL, NULL, NULL, 0);
        if (r == 0) r = 1;
        else if (r == CF_E_EXISTS) r = 0;
    }
    buf_fini(&inbox);
    return r;
}

