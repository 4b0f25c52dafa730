/* store-retained.c: bringing back what delayed expunge and delete keep: unexpunge with its
 * quota; hiding a deleted mailbox, listing, undeleting and expiring hidden mailboxes
 * (store-retained.h). */
#include "store/store-int.h"
#include "store/store-retained.h"
#include "store/store-quota-int.h"
#include "store/mbheader.h"
#include "store/mboxname.h"
#include "store/partition.h"
#include "store/quotalock.h"
#include "core/error.h"
#include "core/fileutil.h"
#include "core/log.h"
#include "core/xmalloc.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define DELETED_MAGIC "coffer-deleted 1"
#define TOMB_SUFFIX ".deleted"   /* store_delete's tombstone (reconstruct finishes it) */

void store_deleted_fini(struct store_deleted *d)
{
    free(d->name);
    free(d->dir);
    mboxlist_entry_fini(&d->e);
    memset(d, 0, sizeof *d);
    mboxlist_entry_init(&d->e);
}

/* side_write: the side file of a mailbox about to be hidden, into dir (fsynced). */
static int side_write(const char *dir, const char *name, const struct mboxlist_entry *e,
                      int64_t when)
{
    struct buf b = BUF_INIT;
    char line[64];
    snprintf(line, sizeof line, "%s\n%" PRId64 "\n", DELETED_MAGIC, when);
    buf_appends(&b, line);
    kv_escape(&b, name, strlen(name));
    buf_appends(&b, "\n");
    mboxlist_entry_encode(e, &b);
    buf_appends(&b, "\n");
    char *path = xasprintf("%s/%s", dir, DELETED_FILE);
    int r = file_write_atomic(path, b.s, b.len, 0600);
    free(path);
    buf_fini(&b);
    return r;
}

/* side_read: parse dir's side file into d (name, e, deleted_at). 0, CF_E_NOTFOUND,
 * CF_E_CORRUPT or CF_E_IO. */
static int side_read(const char *dir, struct store_deleted *d)
{
    char *path = xasprintf("%s/%s", dir, DELETED_FILE);
    char *text = NULL;
    size_t len = 0;
    int r = file_read_all(path, 1 << 20, &text, &len);
    free(path);
    if (r) return r;
    char *l[4], *p = text;
    for (int i = 0; i < 4; i++) {
        char *nl = strchr(p, '\n');
        if (!nl) { r = CF_E_CORRUPT; goto out; }
        *nl = 0;
        l[i] = p;
        p = nl + 1;
    }
    if (strcmp(l[0], DELETED_MAGIC)) { r = CF_E_CORRUPT; goto out; }
    char *end;
    errno = 0;
    long long when = strtoll(l[1], &end, 10);
    if (errno || *end || end == l[1]) { r = CF_E_CORRUPT; goto out; }
    struct buf name = BUF_INIT;
    if (kv_unescape(&name, l[2], strlen(l[2])) < 0 || mboxname_valid(buf_cstr(&name)) ||
        mboxlist_entry_decode(l[3], strlen(l[3]), &d->e) < 0) {
        buf_fini(&name);
        r = CF_E_CORRUPT;
        goto out;
    }
    d->name = xstrdup(buf_cstr(&name));
    d->deleted_at = when;
    buf_fini(&name);
out:
    free(text);
    return r;
}

/* index_counts: quota_used and exists of the index in dir, read without the mailbox code
 * (the directory is not where mailbox_open looks). 0 or CF_E_NOTFOUND/CF_E_CORRUPT/CF_E_IO. */
static int index_counts(const char *dir, uint64_t *bytes_r, uint32_t *msgs_r)
{
    char *path = xasprintf("%s/index", dir);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    free(path);
    if (fd < 0) return errno == ENOENT ? CF_E_NOTFOUND : CF_E_IO;
    struct stat sb;
    int r = CF_E_IO;
    if (fstat(fd, &sb) == 0 && sb.st_size > 0) {
        void *map = mmap(NULL, (size_t)sb.st_size, PROT_READ, MAP_SHARED, fd, 0);
        if (map != MAP_FAILED) {
            struct index_header h;
            r = index_choose_header(map, (size_t)sb.st_size, &h, NULL);
            if (r >= 0) {
                *bytes_r = h.quota_used;
                *msgs_r = h.exists;
                r = 0;
            }
            munmap(map, (size_t)sb.st_size);
        }
    } else if (fstat(fd, &sb) == 0) {
        r = CF_E_CORRUPT;
    }
    close(fd);
    return r;
}

/* remove_dir: unlink every file of dir (it holds only files), then dir. */
static int remove_dir(const char *dir)
{
    DIR *dp = opendir(dir);
    if (!dp) return errno == ENOENT ? 0 : CF_E_IO;
    struct dirent *de;
    int r = 0;
    while ((de = readdir(dp))) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) continue;
        if (unlinkat(dirfd(dp), de->d_name, 0) < 0 && errno != ENOENT) {
            log_warn("unlink_failed", "dir=%s file=%s error=%s", log_quote(dir),
                     log_quote(de->d_name), log_quote(strerror(errno)));
            r = CF_E_IO;
        }
    }
    closedir(dp);
    if (!r && rmdir(dir) < 0) {
        log_warn("rmdir_failed", "dir=%s error=%s", log_quote(dir), log_quote(strerror(errno)));
        r = CF_E_IO;
    }
    return r;
}

int store_delete_hidden(struct store *st, const char *name, const struct mboxlist_entry *e,
                        const char *dir)
{
    int64_t now = (int64_t)time(NULL);
    int r = side_write(dir, name, e, now);
    if (r) return r;
    char *tomb = xasprintf("%s%s", dir, TOMB_SUFFIX);
    char *held = xasprintf("%s%s", dir, DELETED_SUFFIX);
    /* the tombstone first, as an immediate delete does: a crash before the list entry goes
     * leaves a tombstone that reconstruct puts back (the entry is there) */
    if (rename(dir, tomb) < 0) {
        r = errno == ENOENT ? CF_E_NOTFOUND : CF_E_IO;
        log_err("mailbox_delete_failed", "name=%s error=%s", log_quote(name), log_quote(strerror(errno)));
        char *side = xasprintf("%s/%s", dir, DELETED_FILE);
        unlink(side);
        free(side);
        goto out;
    }
    if ((r = fsync_dir(dir, 0)) < 0 || (r = mboxlist_delete(st->mboxlist, NULL, name)) < 0) {
        rename(tomb, dir);   /* the entry is still there: put the directory back */
        goto out;
    }
    /* from here the delete is done; a crash before this rename leaves a tombstone with a side
     * file, which reconstruct hides as this would */
    if (rename(tomb, held) < 0 || fsync_dir(held, 0) < 0)
        log_warn("mailbox_hide_failed", "name=%s dir=%s error=%s hint=\"coffer reconstruct finishes it\"",
                 log_quote(name), log_quote(tomb), log_quote(strerror(errno)));
    log_info("mailbox_deleted", "name=%s uniqueid=%s mode=delayed", log_quote(name), e->uniqueid);
out:
    free(tomb);
    free(held);
    return r;
}

static int deleted_cmp(const void *a, const void *b)
{
    const struct store_deleted *x = a, *y = b;
    if (x->deleted_at != y->deleted_at) return x->deleted_at < y->deleted_at ? -1 : 1;
    return strcmp(x->e.uniqueid, y->e.uniqueid);
}

/* list_xx: the hidden mailboxes in one PARTITION/xx directory, appended to *v. */
static void list_xx(const char *xx, struct store_deleted **v, size_t *n, size_t *alloc)
{
    DIR *dp = opendir(xx);
    if (!dp) return;
    struct dirent *de;
    size_t sl = strlen(DELETED_SUFFIX);
    while ((de = readdir(dp))) {
        size_t fl = strlen(de->d_name);
        if (fl != UNIQUEID_LEN + sl || strcmp(de->d_name + UNIQUEID_LEN, DELETED_SUFFIX)) continue;
        struct store_deleted d;
        memset(&d, 0, sizeof d);
        mboxlist_entry_init(&d.e);
        d.dir = xasprintf("%s/%s", xx, de->d_name);
        int r = side_read(d.dir, &d);
        if (r) {
            log_warn("deleted_mailbox_unreadable", "dir=%s error=%s", log_quote(d.dir), log_quote(cf_strerror(r)));
            store_deleted_fini(&d);
            continue;
        }
        d.counted = index_counts(d.dir, &d.bytes, &d.messages) == 0;
        if (*n == *alloc) {
            *alloc = *alloc ? *alloc * 2 : 8;
            *v = xreallocarray(*v, *alloc, sizeof **v);
        }
        (*v)[(*n)++] = d;
    }
    closedir(dp);
}

int store_deleted_list(struct store *st, struct store_deleted **v_r, size_t *n_r)
{
    struct store_deleted *v = NULL;
    size_t n = 0, alloc = 0;
    for (size_t p = 0; p < st->cfg->npartitions; p++) {
        const struct partition *part = &st->cfg->partitions[p];
        DIR *pd = opendir(part->path);
        if (!pd) continue;
        struct dirent *de;
        while ((de = readdir(pd))) {
            if (strlen(de->d_name) != 2 || de->d_name[0] == '.') continue;
            char *xx = xasprintf("%s/%s", part->path, de->d_name);
            list_xx(xx, &v, &n, &alloc);
            free(xx);
        }
        closedir(pd);
    }
    if (n) qsort(v, n, sizeof *v, deleted_cmp);
    *v_r = v;
    *n_r = n;
    return 0;
}

/* quota_admit: with root's lock held, whether bytes and messages may be charged to root
 * (force: always) -- the one place undelete decides about quota. 0 or CF_E_QUOTA. */
static int quota_admit(struct store *st, const char *root, uint64_t bytes, uint32_t msgs,
                       int force)
{
    struct quota qt;
    int r = quotadb_get(st->quota, NULL, root, &qt);
    if (r <= 0) return r;
    if (!force && quota_would_exceed(&qt, (int64_t)bytes, (int64_t)msgs)) return CF_E_QUOTA;
    return 0;
}

int store_undelete(struct store *st, const struct store_deleted *d, const char *newname,
                   int force)
{
    const char *name = newname ? newname : d->name;
    if (mboxname_valid(name)) return CF_E_PARSE;
    const char *ppath = store_partition_path(st, d->e.partition);
    if (!ppath) return CF_E_NOTFOUND;
    struct buf root = BUF_INIT;
    int qlock = -1;
    char *live = partition_mailbox_dir(ppath, d->e.uniqueid);
    struct mbheader h;
    mbheader_init(&h);
    int has_root = store_quota_lock(st, name, &root, &qlock);
    int r = has_root < 0 ? has_root : mboxlist_lookup(st->mboxlist, NULL, name, NULL);
    if (r == 1) r = CF_E_EXISTS;
    if (r < 0) goto out;
    uint64_t bytes = 0;
    uint32_t msgs = 0;
    int counted = index_counts(d->dir, &bytes, &msgs) == 0;
    if (has_root == 1 && counted && (r = quota_admit(st, buf_cstr(&root), bytes, msgs, force)) < 0)
        goto out;
    /* the header names the mailbox as it will be listed: if we crash after the directory is
     * back, reconstruct adopts it under that name */
    if ((r = mbheader_read(d->dir, &h)) < 0) goto out;
    if (strcmp(h.name, name)) {
        free(h.name);
        h.name = xstrdup(name);
        if ((r = mbheader_write(d->dir, &h)) < 0) goto out;
    }
    if (rename(d->dir, live) < 0) {
        r = errno == ENOENT ? CF_E_NOTFOUND : CF_E_IO;
        goto out;
    }
    if ((r = fsync_dir(live, 0)) < 0) goto back;
    struct mboxlist_entry e;
    mboxlist_entry_init(&e);
    memcpy(e.uniqueid, d->e.uniqueid, sizeof e.uniqueid);
    e.partition = xstrdup(d->e.partition);
    e.acl = xstrdup(d->e.acl ? d->e.acl : "");
    e.flags = xstrdup(d->e.flags ? d->e.flags : "");
    e.ctime = d->e.ctime;
    r = mboxlist_create(st->mboxlist, NULL, name, &e);
    mboxlist_entry_fini(&e);
    if (r < 0) goto back;
    if (has_root == 1) {
        /* the root counts it again: its ledger record from the index header (a recount of
         * the root when the header cannot be read) */
        struct index_header ih;
        if (mailbox_status(ppath, d->e.uniqueid, &ih) == 0)
            store_quota_settle_locked(st, buf_cstr(&root), d->e.uniqueid, &ih, 0);
        else
            store_quota_fix_locked(st, buf_cstr(&root), NULL);
    }
    char *side = xasprintf("%s/%s", live, DELETED_FILE);
    unlink(side);
    free(side);
    log_info("mailbox_undeleted", "name=%s was=%s uniqueid=%s messages=%u bytes=%" PRIu64,
             log_quote(name), log_quote(d->name), d->e.uniqueid, (unsigned)msgs, bytes);
    goto out;
back:
    if (rename(live, d->dir) < 0)
        log_err("mailbox_undelete_failed", "dir=%s error=%s hint=\"coffer reconstruct adopts it\"",
                log_quote(live), log_quote(strerror(errno)));
out:
    quotalock_release(&qlock);
    buf_fini(&root);
    mbheader_fini(&h);
    free(live);
    return r;
}

int store_deleted_expire(struct store *st, const struct store_deleted *d)
{
    size_t sl = strlen(DELETED_SUFFIX);
    char *base = xstrndup(d->dir, strlen(d->dir) - sl);
    char *tomb = xasprintf("%s%s", base, TOMB_SUFFIX);
    int r = 0;
    /* a tombstone first: an expire cut short leaves one that reconstruct (or the next run,
     * while the side file is there) finishes */
    if (rename(d->dir, tomb) < 0) r = errno == ENOENT ? CF_E_NOTFOUND : CF_E_IO;
    if (!r) r = remove_dir(tomb);
    if (!r) {
        fsync_dir(tomb, 0);
        seendb_delete_mailbox(st->seen, NULL, d->e.uniqueid);
        store_urlauth_forget(st, d->e.uniqueid);  /* RFC 4467 access keys (store-db.h) */
        store_metadata_forget_mailbox(st, d->e.uniqueid);   /* RFC 5464 annotations */
        log_info("deleted_mailbox_expired", "name=%s uniqueid=%s deleted_at=%" PRId64,
                 log_quote(d->name), d->e.uniqueid, d->deleted_at);
    }
    free(base);
    free(tomb);
    return r;
}

int64_t store_expunge_retention(const struct store *st)
{
    return config_int(st->cfg, CFG_EXPUNGE_RETENTION);
}

int store_unexpunge(struct store *st, struct mailbox *mb, const char *name,
                    const struct index_record *recs, size_t n, int force, uint32_t *new_uids_r)
{
    struct buf root = BUF_INIT;
    int qlock = -1;
    uint64_t want = 0;
    for (size_t i = 0; i < n; i++) want += recs[i].size;
    int has_root = store_quota_lock(st, name, &root, &qlock);
    int r = has_root < 0 ? has_root : 0;
    if (has_root == 1) {
        store_quota_settle_mailbox(st, buf_cstr(&root), name, mb, 1);   /* roll a crash forward */
        r = quota_admit(st, buf_cstr(&root), want, (uint32_t)n, force);
    }
    if (r < 0) goto out;
    uint32_t *nu = xreallocarray(NULL, n ? n : 1, sizeof *nu);
    r = mailbox_unexpunge(mb, recs, n, NULL, nu);
    if (r > 0 && has_root == 1) store_quota_settle_mailbox(st, buf_cstr(&root), name, mb, 0);
    if (r >= 0 && new_uids_r) memcpy(new_uids_r, nu, n * sizeof *nu);
    free(nu);
    if (r >= 0)
        log_info("mailbox_unexpunged", "name=%s messages=%d", log_quote(name), r);
out:
    quotalock_release(&qlock);
    buf_fini(&root);
    return r;
}
