/* store-quota.c: quota accounting of the store (store.h "Quota accounting"): the root lock,
 * settle, recounts, root governance (set, delete), and the operations that remove what they
 * settle (expunge, reconstruct). */
#include "store/store-int.h"
#include "store/store.h"
#include "store/store-quota-int.h"
#include "core/error.h"
#include "core/log.h"
#include "core/xmalloc.h"
#include "store/mboxname.h"
#include "store/quotalock.h"
#include "store/reconstruct.h"
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

int store_quota_lock(struct store *st, const char *name, struct buf *root, int *fd_r)
{
    *fd_r = -1;
    int r = quotadb_find_root(st->quota, NULL, name, root);
    if (r <= 0) return r;
    r = quotalock_acquire(st, buf_cstr(root), fd_r);
    return r < 0 ? r : 1;
}

/* still_listed: whether name is still the mailbox mb was opened as (0 only when certain it
 * is not: deleted, or replaced by another mailbox of the same name). */
static int still_listed(struct store *st, const char *name, const struct mailbox *mb)
{
    struct mboxlist_entry e;
    mboxlist_entry_init(&e);
    int r = mboxlist_lookup(st->mboxlist, NULL, name, &e);
    int listed = r < 0 || (r == 1 && !strcmp(e.uniqueid, mailbox_uniqueid(mb)));
    mboxlist_entry_fini(&e);
    return listed;
}

int store_quota_settle_locked(struct store *st, const char *root, const char *uniqueid,
                              const struct index_header *h, int before)
{
    int64_t db = 0, dm = 0;
    int r = quotadb_settle(st->quota, root, uniqueid, h ? (int64_t)h->quota_used : 0,
                           h ? (int64_t)h->exists : 0, &db, &dm);
    if (r == 1) {
        /* no ledger yet (an existing store, a new or changed root): count it once */
        r = store_quota_fix_locked(st, root, NULL);
    } else if (r == 0 && before && (db || dm)) {
        /* an earlier operation committed its index but died before settling */
        log_notice("quota_rolled_forward", "root=%s uniqueid=%s bytes=%+" PRId64
                   " messages=%+" PRId64, log_quote(root), uniqueid, db, dm);
    }
    if (r == CF_E_NOTFOUND) return 0;   /* no longer a root: nothing to count */
    if (r < 0)
        log_warn("quota_settle_failed", "root=%s uniqueid=%s error=%s hint=\"the next "
                 "operation on the mailbox or coffer quota fix repairs it\"", log_quote(root),
                 uniqueid, log_quote(cf_strerror(r)));
    return r < 0 ? r : 0;
}

int store_quota_settle_mailbox(struct store *st, const char *root, const char *name,
                               struct mailbox *mb, int before)
{
    if (!still_listed(st, name, mb)) return 0;   /* deleted: store_delete settled it */
    /* the header as committed now: nothing changes its usage while we hold root's lock */
    int r = mailbox_lock_shared(mb);
    if (r < 0) return r;
    mailbox_unlock(mb);
    return store_quota_settle_locked(st, root, mailbox_uniqueid(mb), mailbox_header(mb), before);
}

int store_expunge_locked(struct store *st, struct mailbox *mb, const char *name,
                         const char *root, const uint32_t *uids, size_t n, uint32_t *count_r)
{
    uint32_t count = 0;
    uint64_t bytes = 0;
    int r = mailbox_expunge_sized(mb, uids, n, &count, &bytes);
    /* right after the index commit, still under the root's lock: the root counts what the
     * header now holds (exact beside other sessions' expunges of the same messages) */
    if (root) store_quota_settle_mailbox(st, root, name, mb, 0);
    if (count_r) *count_r = r < 0 ? 0 : count;
    return r;
}

int store_expunge(struct store *st, struct mailbox *mb, const char *name, const uint32_t *uids,
                  size_t n, uint32_t *count_r)
{
    struct buf root = BUF_INIT;
    int qlock = -1;
    if (count_r) *count_r = 0;
    int has_root = store_quota_lock(st, name, &root, &qlock);
    int r = has_root < 0 ? has_root
                         : store_expunge_locked(st, mb, name, has_root ? buf_cstr(&root) : NULL,
                                                uids, n, count_r);
    quotalock_release(&qlock);
    buf_fini(&root);
    return r;
}

struct recount_rock {
    struct store *st;
    const char *root;
    struct buf found;
    int64_t bytes, msgs;
    struct quotadb_applied *v;    /* per mailbox, uniqueids owned */
    size_t n;
};

static int recount_one(const char *name, const struct mboxlist_entry *e, void *rock)
{
    struct recount_rock *rc = rock;
    if (strcmp(name, rc->root) && !mboxname_is_descendant(name, rc->root)) return 0;
    int r = quotadb_find_root(rc->st->quota, NULL, name, &rc->found);
    if (r < 0) return r;
    if (r == 0 || strcmp(buf_cstr(&rc->found), rc->root)) return 0;   /* a nearer root */
    struct index_header h;
    r = store_status(rc->st, name, &h);
    if (r == CF_E_NOTFOUND) return 0;   /* no directory: holds nothing */
    if (r < 0) return r;
    rc->bytes += (int64_t)h.quota_used;
    rc->msgs += h.exists;
    rc->v = xreallocarray(rc->v, rc->n + 1, sizeof *rc->v);
    rc->v[rc->n].uniqueid = xstrdup(e->uniqueid);
    rc->v[rc->n].bytes = (int64_t)h.quota_used;
    rc->v[rc->n++].messages = h.exists;
    return 0;
}

static void recount_fini(struct recount_rock *rc)
{
    for (size_t i = 0; i < rc->n; i++) free((char *)rc->v[i].uniqueid);
    free(rc->v);
    buf_fini(&rc->found);
}

int store_quota_recount(struct store *st, const char *root, int64_t *bytes_r,
                        int64_t *messages_r)
{
    struct recount_rock rc = { st, root, BUF_INIT, 0, 0, NULL, 0 };
    /* the root and below it only: the prefix alone would read user/fredrick's too */
    int r = mboxlist_foreach_tree(st->mboxlist, NULL, root, recount_one, &rc);
    recount_fini(&rc);
    if (r < 0) return r;
    *bytes_r = rc.bytes;
    *messages_r = rc.msgs;
    return 0;
}

int store_quota_fix_locked(struct store *st, const char *root, struct quota *was_r)
{
    struct quota q;
    struct recount_rock rc = { st, root, BUF_INIT, 0, 0, NULL, 0 };
    int r = quotadb_get(st->quota, NULL, root, &q);
    if (r == 0) r = CF_E_NOTFOUND;
    if (r < 0) goto out;
    if (was_r) *was_r = q;
    r = mboxlist_foreach_tree(st->mboxlist, NULL, root, recount_one, &rc);
    if (r < 0) goto out;
    int right = q.used_bytes == rc.bytes && q.used_messages == rc.msgs;
    /* the usage and the ledger it is the sum of (quotadb.h), in one transaction */
    r = right ? quotadb_ledger_matches(st->quota, root, rc.v, rc.n) : 0;
    if (r == 0) r = quotadb_set_ledger(st->quota, root, rc.v, rc.n);
    else if (r == 1) r = 0;
    if (r < 0 || right) goto out;
    log_notice("quota_recounted", "root=%s bytes=%" PRId64 "->%" PRId64 " messages=%" PRId64
               "->%" PRId64, log_quote(root), q.used_bytes, rc.bytes, q.used_messages, rc.msgs);
    r = 1;
out:
    recount_fini(&rc);
    return r;
}

int store_quota_fix(struct store *st, const char *root, struct quota *was_r)
{
    int fd = -1;
    int r = quotalock_acquire(st, root, &fd);
    if (r == 0) r = store_quota_fix_locked(st, root, was_r);
    quotalock_release(&fd);
    return r;
}

int store_reconstruct(struct store *st, const char *name, const struct mboxlist_entry *e,
                      unsigned flags, struct recon_report *rep)
{
    const char *ppath = store_partition_path(st, e->partition);
    if (!ppath) return CF_E_NOTFOUND;
    if (flags & RECON_DRY_RUN) return reconstruct_mailbox(ppath, e->uniqueid, name, e->acl, flags, rep);
    struct buf root = BUF_INIT;
    int qlock = -1;
    int has_root = store_quota_lock(st, name, &root, &qlock);
    if (has_root < 0) {
        buf_fini(&root);
        return has_root;
    }
    struct index_header after;
    int r = reconstruct_mailbox(ppath, e->uniqueid, name, e->acl, flags, rep);
    if (r > 0 && has_root == 1) {
        /* records dropped or adopted change the header's usage: the root follows it */
        if (mailbox_status(ppath, e->uniqueid, &after) == 0)
            store_quota_settle_locked(st, buf_cstr(&root), e->uniqueid, &after, 0);
        else
            store_quota_fix_locked(st, buf_cstr(&root), NULL);
    }
    quotalock_release(&qlock);
    buf_fini(&root);
    return r;
}

static int collect_root(const char *root, const struct quota *qt, void *rock)
{
    (void)qt;
    strarr_add(rock, root);
    return 0;
}

/* enclosing_lock: the root governing root's parent (root's mailboxes belong to it when root is
 * no root) into enc and its lock into *fd (-1 none). Sorts before root: locking it first keeps
 * the one global name order (store-mail.c, store_rename). 1 found and locked, 0 none, error. */
static int enclosing_lock(struct store *st, const char *root, struct buf *enc, int *fd)
{
    *fd = -1;
    const char *slash = strrchr(root, '/');
    if (!slash) return 0;
    char *parent = xstrndup(root, (size_t)(slash - root));
    int r = store_quota_lock(st, parent, enc, fd);
    free(parent);
    return r;
}

int store_quota_set(struct store *st, const char *root, int64_t storage_kib, int64_t messages,
                    struct quota *q_r)
{
    struct buf enc = BUF_INIT;
    int efd = -1, fd = -1;
    int has_enc = enclosing_lock(st, root, &enc, &efd);
    int r = has_enc < 0 ? has_enc : quotalock_acquire(st, root, &fd);
    if (r < 0) goto out;
    int fresh = quotadb_get(st->quota, NULL, root, NULL);
    r = fresh < 0 ? fresh : quotadb_set_limits(st->quota, NULL, root, storage_kib, messages);
    if (r == 0 && fresh == 0) {
        /* a new root counts what its mailboxes hold, and the root that had them lets go */
        r = store_quota_fix_locked(st, root, NULL);
        if (r >= 0 && has_enc == 1) r = store_quota_fix_locked(st, buf_cstr(&enc), NULL);
        if (r > 0) r = 0;
    }
    if (r == 0 && q_r && quotadb_get(st->quota, NULL, root, q_r) != 1) r = CF_E_NOTFOUND;
out:
    quotalock_release(&fd);
    quotalock_release(&efd);
    buf_fini(&enc);
    return r;
}

int store_quota_delete(struct store *st, const char *root)
{
    struct buf enc = BUF_INIT;
    int efd = -1, fd = -1;
    int has_enc = enclosing_lock(st, root, &enc, &efd);
    int r = has_enc < 0 ? has_enc : quotalock_acquire(st, root, &fd);
    if (r == 0) r = quotadb_delete(st->quota, NULL, root);
    /* its mailboxes go back to the enclosing root: count them there at once */
    if (r == 0 && has_enc == 1) {
        r = store_quota_fix_locked(st, buf_cstr(&enc), NULL);
        if (r > 0) r = 0;
    }
    quotalock_release(&fd);
    quotalock_release(&efd);
    buf_fini(&enc);
    return r;
}

int store_quota_fix_all(struct store *st, int *fixed_r)
{
    struct strarr roots = STRARR_INIT;
    int fixed = 0, failed = 0;
    int r = quotadb_foreach(st->quota, NULL, "", collect_root, &roots);
    for (size_t i = 0; r >= 0 && i < roots.count; i++) {
        int f = store_quota_fix(st, roots.v[i], NULL);
        if (f == 1) fixed++;
        if (f < 0 && f != CF_E_NOTFOUND) {
            failed = f;
            log_warn("quota_recount_failed", "root=%s error=%s", log_quote(roots.v[i]),
                     log_quote(cf_strerror(f)));
        }
    }
    strarr_fini(&roots);
    if (fixed_r) *fixed_r = fixed;
    return r < 0 ? r : failed;
}

int store_reconstruct_mailboxlist(struct store *st, unsigned flags, struct recon_report *rep)
{
    int r = reconstruct_mailboxlist(st, flags, rep);
    if (r <= 0 || (flags & RECON_DRY_RUN)) return r;
    store_quota_fix_all(st, NULL);
    return r;
}
