/* reconstruct-list.c: rebuilding the mailbox list from the partitions' header files, and
 * finishing interrupted deletes (reconstruct_mailboxlist, see reconstruct.h). */
#include "store/store-int.h"
#include "store/reconstruct.h"
#include "store/reconstruct-int.h"
#include "store/store-retained.h"
#include "core/error.h"
#include "core/log.h"
#include "core/xmalloc.h"
#include "store/mbheader.h"
#include "store/mboxname.h"
#include "store/partition.h"
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* the name a delete gives a mailbox directory before removing it (store.c) */
#define TOMBSTONE_SUFFIX ".deleted"

/* What the list says: one entry per mailbox. */
struct listed {
    char *name;
    struct mboxlist_entry e;
    int seen_dir;     /* its directory was found on some partition */
};

struct listing {
    struct listed *v;
    size_t n, alloc;
};

static int collect(const char *name, const struct mboxlist_entry *e, void *rock)
{
    struct listing *l = rock;
    if (l->n == l->alloc) {
        l->alloc = l->alloc ? l->alloc * 2 : 64;
        l->v = xreallocarray(l->v, l->alloc, sizeof *l->v);
    }
    struct listed *x = &l->v[l->n++];
    memset(x, 0, sizeof *x);
    x->name = xstrdup(name);
    mboxlist_entry_init(&x->e);
    x->e.partition = xstrdup(e->partition);
    memcpy(x->e.uniqueid, e->uniqueid, sizeof x->e.uniqueid);
    x->e.acl = xstrdup(e->acl);
    x->e.flags = xstrdup(e->flags);
    x->e.ctime = e->ctime;
    return 0;
}

static struct listed *by_uniqueid(struct listing *l, const char *uniqueid)
{
    for (size_t i = 0; i < l->n; i++)
        if (!strcmp(l->v[i].e.uniqueid, uniqueid)) return &l->v[i];
    return NULL;
}

static struct listed *by_name(struct listing *l, const char *name)
{
    for (size_t i = 0; i < l->n; i++)
        if (!strcmp(l->v[i].name, name)) return &l->v[i];
    return NULL;
}

/* has_messages: whether dir holds a message file. */
static int has_messages(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) return 0;
    struct dirent *de;
    int any = 0;
    while (!any && (de = readdir(d))) any = recon_message_uid(de->d_name) != 0;
    closedir(d);
    return any;
}

/* remove_files_dir: unlink every file in dir, then dir. 0 or CF_E_IO. */
static int remove_files_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) return CF_E_IO;
    struct dirent *de;
    int r = 0;
    while ((de = readdir(d))) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) continue;
        if (unlinkat(dirfd(d), de->d_name, 0) < 0 && errno != ENOENT) r = CF_E_IO;
    }
    closedir(d);
    if (!r && rmdir(dir) < 0) r = CF_E_IO;
    if (r) log_err("reconstruct_io_error", "call=remove path=%s errno=%s", log_quote(dir), strerror(errno));
    return r;
}

static int dir_exists(const char *p)
{
    struct stat sb;
    return stat(p, &sb) == 0 && S_ISDIR(sb.st_mode);
}

/* deleted_side_file: whether dir holds the side file of a delayed delete. */
static int deleted_side_file(const char *dir)
{
    char *p = xasprintf("%s/%s", dir, DELETED_FILE);
    int there = access(p, F_OK) == 0;
    free(p);
    return there;
}

/* one_tombstone: DIR is UNIQUEID.deleted, left by a delete: the mailbox is restored when the
 * list still names it on this partition and it has no live directory, else the tombstone is
 * removed. 0 or CF_E_IO. */
static int one_tombstone(const struct partition *part, const char *dir, const char *fn,
                         struct listing *l, int dry, struct recon_report *rep)
{
    size_t tl = strlen(TOMBSTONE_SUFFIX);
    int r = 0;
    char *uid = xstrndup(fn, UNIQUEID_LEN);
    char *live = xstrndup(dir, strlen(dir) - tl);
    struct listed *x = by_uniqueid(l, uid);
    if (x && !strcmp(x->e.partition, part->name) && !dir_exists(live)) {
        recon_report_add(rep, x->name, "tombstone_restored", "%s: the delete never removed the list entry", dir);
        if (!dry && rename(dir, live) < 0) r = CF_E_IO;
    } else if (deleted_side_file(dir)) {
        /* a delayed delete (store-retained.h) cut short before it hid the directory */
        char *held = xasprintf("%s%s", live, DELETED_SUFFIX);
        recon_report_add(rep, x ? x->name : dir, "tombstone_hidden", "%s: an interrupted delayed delete", dir);
        if (!dry && rename(dir, held) < 0) r = CF_E_IO;
        free(held);
    } else {
        recon_report_add(rep, x ? x->name : dir, "tombstone_removed", "%s: an interrupted delete", dir);
        if (!dry) r = remove_files_dir(dir);
    }
    free(uid);
    free(live);
    return r;
}

/* one_headerless: DIR (uniqueid fn) has no readable header file (hr says why): a listed
 * mailbox gets it back from its own check; an unlisted directory without messages is an
 * unfinished create and removed; one with messages is left alone. 0 or CF_E_IO; *n counts the
 * findings. */
static int one_headerless(const char *dir, const char *fn, int hr, struct listing *l, int dry,
                          struct recon_report *rep, int *n)
{
    struct listed *x = by_uniqueid(l, fn);
    if (x) {
        x->seen_dir = 1;   /* the mailbox check rewrites its header */
        return 0;
    }
    if (!has_messages(dir)) {
        recon_report_add(rep, dir, "unfinished_create", "a directory without %s header and no messages",
                         hr == CF_E_NOTFOUND ? "a" : "a readable");
        (*n)++;
        return dry ? 0 : remove_files_dir(dir);
    }
    recon_report_add(rep, dir, "orphan_directory", "messages but no readable header: name unknown, left alone");
    (*n)++;
    return 0;
}

/* one_unlisted: DIR's header names h->name, which the list does not have: listed under
 * another name (a rename whose header update was lost) it is left to the list; otherwise the
 * list gets an entry for it. 0 or a CF_E_* error of the list; *n counts the findings. */
static int one_unlisted(struct store *st, const struct partition *part, const char *dir,
                        const char *fn, const struct mbheader *h, struct listing *l, int dry,
                        struct recon_report *rep, int *n)
{
    int r = 0;
    struct listed *y = by_uniqueid(l, fn);
    if (y) {
        y->seen_dir = 1;
    } else if (mboxname_valid(h->name) == 0) {
        recon_report_add(rep, h->name, "mailbox_added", "from %s on partition %s", fn, part->name);
        (*n)++;
        if (!dry) {
            struct mboxlist_entry e;
            mboxlist_entry_init(&e);
            memcpy(e.uniqueid, fn, UNIQUEID_LEN + 1);
            e.partition = xstrdup(part->name);
            e.acl = xstrdup(h->acl);
            e.flags = xstrdup("");
            r = mboxlist_create(st->mboxlist, NULL, h->name, &e);
            if (!r) {
                collect(h->name, &e, l);
                l->v[l->n - 1].seen_dir = 1;
            }
            mboxlist_entry_fini(&e);
        }
    } else {
        recon_report_add(rep, dir, "orphan_directory", "its header names an invalid mailbox name");
        (*n)++;
    }
    return r;
}

/* one_listed_here: the list names x with DIR's uniqueid fn: on another partition, the entry
 * moves here unless that partition has the directory too (a move cut short). 0 or a CF_E_*
 * error of the list; *n counts the findings. */
static int one_listed_here(struct store *st, const struct partition *part, const char *fn,
                           struct listed *x, int dry, struct recon_report *rep, int *n)
{
    int r = 0;
    if (!strcmp(x->e.partition, part->name)) {
        x->seen_dir = 1;
        return 0;
    }
    const char *lp = store_partition_path(st, x->e.partition);
    char *ldir = lp ? partition_mailbox_dir(lp, fn) : NULL;
    if (!ldir || !dir_exists(ldir)) {
        recon_report_add(rep, x->name, "entry_partition_fixed", "%s -> %s", x->e.partition, part->name);
        (*n)++;
        if (!dry) {
            free(x->e.partition);
            x->e.partition = xstrdup(part->name);
            r = mboxlist_update(st->mboxlist, NULL, x->name, &x->e);
        }
        x->seen_dir = 1;
    } else {
        recon_report_add(rep, x->name, "duplicate_directory",
                         "also on partition %s (a move cut short); the list names %s", part->name, x->e.partition);
        (*n)++;
    }
    free(ldir);
    return r;
}

/* one_listed_other: the list names x (DIR's header name) with another uniqueid: the entry
 * takes DIR's unless the directory it names exists. 0 or a CF_E_* error of the list; *n counts
 * the findings. */
static int one_listed_other(struct store *st, const struct partition *part, const char *dir,
                            const char *fn, struct listed *x, int dry, struct recon_report *rep,
                            int *n)
{
    int r = 0;
    const char *lp = store_partition_path(st, x->e.partition);
    char *ldir = lp ? partition_mailbox_dir(lp, x->e.uniqueid) : NULL;
    if (ldir && dir_exists(ldir)) {
        recon_report_add(rep, x->name, "orphan_directory", "%s also claims this name; left alone", dir);
        (*n)++;
    } else {
        recon_report_add(rep, x->name, "entry_uniqueid_fixed", "%s -> %s", x->e.uniqueid, fn);
        (*n)++;
        if (!dry) {
            memcpy(x->e.uniqueid, fn, UNIQUEID_LEN + 1);
            free(x->e.partition);
            x->e.partition = xstrdup(part->name);
            r = mboxlist_update(st->mboxlist, NULL, x->name, &x->e);
        }
        x->seen_dir = 1;
    }
    free(ldir);
    return r;
}

/* one_dir: a directory PPATH/xx/FN found while scanning partition part. */
static int one_dir(struct store *st, const struct partition *part, const char *xxdir,
                   const char *fn, struct listing *l, unsigned flags, struct recon_report *rep)
{
    int dry = flags & RECON_DRY_RUN;
    int n = 0, r = 0;
    char *dir = xasprintf("%s/%s", xxdir, fn);
    size_t fl = strlen(fn), tl = strlen(TOMBSTONE_SUFFIX);
    if (fl == UNIQUEID_LEN + tl && !strcmp(fn + UNIQUEID_LEN, TOMBSTONE_SUFFIX)) {
        r = one_tombstone(part, dir, fn, l, dry, rep);
        n++;
        goto out;
    }
    if (!partition_uniqueid_valid(fn)) goto out;
    struct mbheader h;
    mbheader_init(&h);
    int hr = mbheader_read(dir, &h);
    if (hr == CF_E_NOTFOUND || hr == CF_E_CORRUPT) {
        r = one_headerless(dir, fn, hr, l, dry, rep, &n);
    } else if (hr < 0) {
        r = hr;
    } else {
        if (h.uidvalidity > rep->uidvalidity_max) rep->uidvalidity_max = h.uidvalidity;
        struct listed *x = by_name(l, h.name);
        if (!x) r = one_unlisted(st, part, dir, fn, &h, l, dry, rep, &n);
        else if (!strcmp(x->e.uniqueid, fn)) r = one_listed_here(st, part, fn, x, dry, rep, &n);
        else r = one_listed_other(st, part, dir, fn, x, dry, rep, &n);
    }
    mbheader_fini(&h);
out:
    free(dir);
    return r < 0 ? r : n;
}

int reconstruct_mailboxlist(struct store *st, unsigned flags, struct recon_report *rep)
{
    struct listing l = { NULL, 0, 0 };
    int r = mboxlist_foreach(st->mboxlist, NULL, "", collect, &l);
    int n = 0;
    if (r < 0) goto out;
    r = 0;
    for (size_t p = 0; p < st->cfg->npartitions && r >= 0; p++) {
        const struct partition *part = &st->cfg->partitions[p];
        DIR *pd = opendir(part->path);
        if (!pd) {
            if (errno != ENOENT) {
                recon_report_add(rep, "", "partition_unreadable", "%s: %s", part->path, strerror(errno));
                n++;
            }
            continue;
        }
        struct dirent *de;
        while (r >= 0 && (de = readdir(pd))) {
            if (strlen(de->d_name) != 2 || de->d_name[0] == '.') continue;
            char *xx = xasprintf("%s/%s", part->path, de->d_name);
            DIR *xd = opendir(xx);
            if (xd) {
                /* names first: one_dir may remove entries of the directory */
                struct strarr names = STRARR_INIT;
                struct dirent *e2;
                while ((e2 = readdir(xd)))
                    if (e2->d_name[0] != '.') strarr_add(&names, e2->d_name);
                closedir(xd);
                strarr_sort(&names);
                for (size_t i = 0; i < names.count && r >= 0; i++) {
                    r = one_dir(st, part, xx, names.v[i], &l, flags, rep);
                    if (r > 0) n += r;
                }
                strarr_fini(&names);
                if (!(flags & RECON_DRY_RUN)) rmdir(xx);   /* only when it became empty */
            }
            free(xx);
        }
        closedir(pd);
    }
    if (r < 0) goto out;
    r = 0;
    for (size_t i = 0; i < l.n; i++) {
        struct listed *x = &l.v[i];
        if (x->seen_dir) continue;
        const char *pp = store_partition_path(st, x->e.partition);
        char *dir = pp ? partition_mailbox_dir(pp, x->e.uniqueid) : NULL;
        if (!dir) {
            recon_report_add(rep, x->name, "entry_unknown_partition", "partition %s is not configured", x->e.partition);
            n++;
        } else if (!dir_exists(dir)) {
            recon_report_add(rep, x->name, "entry_without_directory", "%s does not exist", dir);
            n++;
        }
        free(dir);
    }
    /* the counter of new UIDVALIDITYs must stay above every one on disk (mboxlist.h) */
    if (!(flags & RECON_DRY_RUN) && rep->uidvalidity_max) {
        int ur = mboxlist_raise_uidvalidity(st->mboxlist, NULL, rep->uidvalidity_max, NULL);
        if (ur < 0) r = ur;
    }
    /* the grant index LIST reads (mboxlist.h) follows the entries as they are now; a
     * damaged one would hide shared mailboxes or cost lookups */
    if (!(flags & RECON_DRY_RUN)) {
        long long gr = mboxlist_rebuild_grants(st->mboxlist);
        if (gr < 0) r = (int)gr;
    }
out:
    for (size_t i = 0; i < l.n; i++) {
        free(l.v[i].name);
        mboxlist_entry_fini(&l.v[i].e);
    }
    free(l.v);
    return r < 0 ? r : n;
}
