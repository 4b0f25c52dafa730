/* store.c: mailbox-level operations over the mailbox list and the mailbox directories. */
#include "store/store.h"
#include "core/error.h"
#include "core/fileutil.h"
#include "core/log.h"
#include "core/xmalloc.h"
#include "store/mboxname.h"
#include "store/partition.h"
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
    if (mboxname_owner(name, &owner) == 1) acl = xasprintf("%s\t%s\t", buf_cstr(&owner), STORE_OWNER_RIGHTS);
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
    /* directory first: a crash before the list entry leaves an orphan that reconstruct adopts */
    r = mailbox_create(ppath, name, e.uniqueid, acl, 0);
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
    struct mboxlist_entry e;
    mboxlist_entry_init(&e);
    int r = mboxlist_lookup(st->mboxlist, NULL, name, &e);
    if (r == 0) r = CF_E_NOTFOUND;
    if (r < 0) goto out;
    r = 0;
    const char *ppath = store_partition_path(st, e.partition);
    if (!ppath) { r = CF_E_NOTFOUND; goto out; }
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
        remove_tombstone(tomb);
        seendb_delete_mailbox(st->seen, NULL, e.uniqueid);
        log_info("mailbox_deleted", "name=%s uniqueid=%s", log_quote(name), e.uniqueid);
    } else {
        rename(tomb, dir);  /* the entry is still there: put the directory back */
    }
    free(dir);
    free(tomb);
out:
    mboxlist_entry_fini(&e);
    return r;
}

/* rewrite the header file of every renamed mailbox so it names itself correctly */
struct rename_rock { struct store *st; };
static int fix_header(const char *name, const struct mboxlist_entry *e, void *rock)
{
    struct rename_rock *rr = rock;
    const char *ppath = store_partition_path(rr->st, e->partition);
    if (!ppath) return 0;
    int r = mailbox_rename(ppath, ppath, e->uniqueid, name);
    if (r && r != CF_E_NOTFOUND)
        log_warn("mailbox_header_stale", "name=%s uniqueid=%s error=%s", log_quote(name),
                 e->uniqueid, log_quote(cf_strerror(r)));
    return 0;
}

int store_rename(struct store *st, const char *oldname, const char *newname,
                 const char *new_partition)
{
    struct mboxlist_entry e;
    mboxlist_entry_init(&e);
    int r = mboxlist_lookup(st->mboxlist, NULL, oldname, &e);
    if (r == 0) r = CF_E_NOTFOUND;
    if (r < 0) goto out;
    if (new_partition && !store_partition_path(st, new_partition)) { r = CF_E_NOTFOUND; goto out; }
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
    r = mboxlist_rename(st->mboxlist, NULL, oldname, newname);
    if (r < 0) goto out;
    int n = r;
    struct rename_rock rr = { st };
    fix_header(newname, &e, &rr);
    char *prefix = xasprintf("%s/", newname);
    mboxlist_foreach(st->mboxlist, NULL, prefix, fix_header, &rr);
    free(prefix);
    log_info("mailbox_renamed", "old=%s new=%s count=%d%s%s", log_quote(oldname),
             log_quote(newname), n, new_partition ? " partition=" : "",
             new_partition ? log_quote(new_partition) : "");
    r = n;
out:
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

int store_open_mailbox(struct store *st, const char *name, struct mboxlist_entry *e_out,
                       struct mailbox **mb_r)
{
    *mb_r = NULL;
    struct mboxlist_entry e;
    mboxlist_entry_init(&e);
    int r = mboxlist_lookup(st->mboxlist, NULL, name, &e);
    if (r == 0) r = CF_E_NOTFOUND;
    if (r < 0) goto out;
    const char *ppath = store_partition_path(st, e.partition);
    r = ppath ? mailbox_open(ppath, e.uniqueid, name, mb_r) : CF_E_NOTFOUND;
    if (r == CF_E_NOTFOUND && relocate(st, name, &e) == 1)
        r = mailbox_open(store_partition_path(st, e.partition), e.uniqueid, name, mb_r);
    if (r == CF_E_NOTFOUND)
        log_err("mailbox_missing", "name=%s uniqueid=%s partition=%s", log_quote(name),
                e.uniqueid, log_quote(e.partition));
out:
    if (e_out && r == 0) {
        mboxlist_entry_fini(e_out);
        *e_out = e;
    } else {
        mboxlist_entry_fini(&e);
    }
    return r;
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
