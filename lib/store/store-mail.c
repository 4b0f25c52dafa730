/* store-mail.c: append, copy, move and flag store as store transactions (store-mail.h): the
 * quota root's lock, settle, check, commit, settle. */
#include "store/store-int.h"
#include "store/store-mail.h"
#include "store/store-quota-int.h"
#include "core/error.h"
#include "core/log.h"
#include "store/quotalock.h"
#include <string.h>

/* The roots governing the mailboxes of one transaction, locked in name order: slot 0 the
 * source of a move, slot 1 the mailbox that receives messages. */
struct txn_roots {
    struct buf root[2];
    int has[2];        /* mailbox i has a root */
    int fd[2];         /* lock descriptors, -1 when not held */
};

static void roots_init(struct txn_roots *t)
{
    for (int i = 0; i < 2; i++) {
        buf_init(&t->root[i]);
        t->has[i] = 0;
        t->fd[i] = -1;
    }
}

static void roots_release(struct txn_roots *t)
{
    /* reverse order of taking; either order is safe for flock, this one reads better */
    for (int i = 1; i >= 0; i--) quotalock_release(&t->fd[i]);
    for (int i = 0; i < 2; i++) buf_fini(&t->root[i]);
}

/* same_root: whether mailboxes 0 and 1 are governed by one root (or both by none). */
static int same_root(const struct txn_roots *t)
{
    if (t->has[0] != t->has[1]) return 0;
    return !t->has[0] || !strcmp(t->root[0].s, t->root[1].s);
}

/* roots_lock: find the roots of src_name (slot 0; NULL: none) and dst_name (slot 1) and take
 * their locks, each root once, in name order (quotalock.h: before any mailbox lock). 0 or an
 * error (CF_E_IO: a lock failed; security review L14: nothing may change unchecked, so the
 * caller stops). */
static int roots_lock(struct store *st, const char *src_name, const char *dst_name,
                      struct txn_roots *t)
{
    const char *names[2] = { src_name, dst_name };
    for (int i = 0; i < 2; i++) {
        if (!names[i]) continue;
        int r = quotadb_find_root(st->quota, NULL, names[i], &t->root[i]);
        if (r < 0) return r;
        t->has[i] = r;
    }
    int first = t->has[0] && t->has[1] && strcmp(t->root[0].s, t->root[1].s) > 0;
    for (int j = 0; j < 2; j++) {
        int i = j ^ first;
        if (!t->has[i]) continue;
        /* never one root twice: a second flock of one file in one process waits forever */
        if (j == 1 && same_root(t)) continue;
        int r = quotalock_acquire(st, t->root[i].s, &t->fd[i]);
        if (r < 0) return r;
    }
    return 0;
}

/* The quota hook of mailbox_append and mailbox_copy_flags: under the mailbox's write lock,
 * with the root's lock held and the root settled, so its usage is exact. */
struct check_rock {
    struct store *st;
    const char *root;
    /* what leaves the root in the same transaction (store_replace: the replaced message, RFC
     * 8508 section 3.4 "only the net quota consumption"); 0 for the others */
    int64_t credit_bytes, credit_msgs;
};

static int quota_check(void *rock, const char *uniqueid, uint64_t add_bytes, uint32_t add_msgs)
{
    struct check_rock *cr = rock;
    struct quota qt;
    (void)uniqueid;
    int r = quotadb_get(cr->st->quota, NULL, cr->root, &qt);
    if (r <= 0) return r;   /* no longer a root: nothing to enforce */
    return quota_would_exceed(&qt, (int64_t)add_bytes - cr->credit_bytes,
                              (int64_t)add_msgs - cr->credit_msgs) ? CF_E_QUOTA : 0;
}

int store_append(struct store *st, struct mailbox *mb, const char *name, struct mailbox_msg *msgs,
                 size_t n)
{
    struct txn_roots t;
    roots_init(&t);
    int r = roots_lock(st, NULL, name, &t);
    if (r < 0) goto out;
    struct check_rock cr = { st, t.root[1].s, 0, 0 };
    struct mailbox_quota q = { quota_check, &cr };
    /* a crash after an earlier commit is rolled forward before the check relies on usage */
    if (t.has[1]) store_quota_settle_mailbox(st, t.root[1].s, name, mb, 1);
    r = mailbox_append(mb, msgs, n, t.has[1] ? &q : NULL);
    if (!r && t.has[1]) store_quota_settle_mailbox(st, t.root[1].s, name, mb, 0);
out:
    roots_release(&t);
    return r;
}

/* copy_locked: the copy with dst's root (t->root[1]) locked; settles dst before and after. */
static int copy_locked(struct store *st, struct mailbox *src, const uint32_t *uids, size_t n,
                       struct mailbox *dst, const char *dst_name, uint32_t keep_flags,
                       int keep_keywords, uint32_t *dst_uids_r, int check, struct txn_roots *t)
{
    struct check_rock cr = { st, t->root[1].s, 0, 0 };
    struct mailbox_quota q = { quota_check, &cr };
    if (t->has[1]) store_quota_settle_mailbox(st, t->root[1].s, dst_name, dst, 1);
    int r = mailbox_copy_flags(src, uids, n, dst, dst_uids_r, t->has[1] && check ? &q : NULL,
                               keep_flags, keep_keywords);
    if (!r && t->has[1]) store_quota_settle_mailbox(st, t->root[1].s, dst_name, dst, 0);
    return r;
}

int store_copy(struct store *st, struct mailbox *src, const uint32_t *uids, size_t n,
               struct mailbox *dst, const char *dst_name, uint32_t keep_flags, int keep_keywords,
               uint32_t *dst_uids_r, unsigned opts)
{
    struct txn_roots t;
    roots_init(&t);
    int r = roots_lock(st, NULL, dst_name, &t);
    if (r < 0) goto out;
    r = copy_locked(st, src, uids, n, dst, dst_name, keep_flags, keep_keywords, dst_uids_r,
                    !(opts & STORE_NO_QUOTA_CHECK), &t);
out:
    roots_release(&t);
    return r;
}

int store_move(struct store *st, struct mailbox *src, const char *src_name, const uint32_t *uids,
               size_t n, struct mailbox *dst, const char *dst_name, uint32_t keep_flags,
               int keep_keywords, uint32_t *dst_uids_r, unsigned opts, uint32_t *expunged_r)
{
    struct txn_roots t;
    roots_init(&t);
    if (expunged_r) *expunged_r = 0;
    int r = roots_lock(st, src_name, dst_name, &t);
    if (r < 0) goto out;
    if (t.has[0]) store_quota_settle_mailbox(st, t.root[0].s, src_name, src, 1);
    /* within one root the move adds nothing overall: no check, or a full root could not
     * reorganise its own mail */
    int check = !(opts & STORE_NO_QUOTA_CHECK) && !same_root(&t);
    r = copy_locked(st, src, uids, n, dst, dst_name, keep_flags, keep_keywords, dst_uids_r,
                    check, &t);
    if (r < 0) goto out;
    /* the copies are committed; now the originals go (RFC 6851 section 3.3: as STORE
     * +FLAGS.SILENT \Deleted and EXPUNGE of just these) */
    struct mailbox_store del = { STORE_ADD, FLAG_DELETED, NULL, 0 };
    r = mailbox_store(src, uids, n, &del, NULL, NULL);
    if (!r) r = store_expunge_locked(st, src, src_name, t.has[0] ? t.root[0].s : NULL, uids, n,
                                     expunged_r);
out:
    roots_release(&t);
    return r;
}

int store_set_flags(struct store *st, struct mailbox *mb, const uint32_t *uids, size_t n,
                    const struct mailbox_store *op, uint32_t **failed_r, size_t *nfailed_r)
{
    return store_set_flags_records(st, mb, uids, n, op, failed_r, nfailed_r, NULL, NULL);
}

int store_set_flags_records(struct store *st, struct mailbox *mb, const uint32_t *uids, size_t n,
                            const struct mailbox_store *op, uint32_t **failed_r,
                            size_t *nfailed_r, struct index_record *recs_r,
                            const struct mailbox_store_hook *hook)
{
    (void)st;   /* flags hold no quota; the store is the caller's handle for what comes */
    return mailbox_store_hooked(mb, uids, n, op, failed_r, nfailed_r, recs_r, hook);
}

int store_replace(struct store *st, struct mailbox *src, const char *src_name, uint32_t uid,
                  struct mailbox *dst, const char *dst_name, struct mailbox_msg *msg,
                  uint32_t *expunged_r)
{
    struct txn_roots t;
    roots_init(&t);
    if (expunged_r) *expunged_r = 0;
    int r = roots_lock(st, src_name, dst_name, &t);
    if (r < 0) goto out;
    if (t.has[0]) store_quota_settle_mailbox(st, t.root[0].s, src_name, src, 1);
    if (t.has[1]) store_quota_settle_mailbox(st, t.root[1].s, dst_name, dst, 1);
    struct index_record old;
    r = mailbox_record(src, uid, &old);
    if (r == 0 || (r == 1 && (old.flags & FLAG_EXPUNGED))) r = CF_E_NOTFOUND;
    if (r < 0) goto out;
    msg->uid = 0;
    /* RFC 8508 section 3.4: the quota sees the net change; within one root the old message's
     * bytes and count are credited (it leaves in the second commit, under the same lock) */
    struct check_rock cr = { st, t.root[1].s, 0, 0 };
    if (same_root(&t)) {
        cr.credit_bytes = (int64_t)old.size;
        cr.credit_msgs = 1;
    }
    struct mailbox_quota q = { quota_check, &cr };
    r = mailbox_append(dst, msg, 1, t.has[1] ? &q : NULL);
    if (r < 0) {
        msg->uid = 0;                           /* nothing changed */
        goto out;
    }
    if (t.has[1]) store_quota_settle_mailbox(st, t.root[1].s, dst_name, dst, 0);
    /* the new message is committed (fsynced); now the old one goes, \Deleted never shown.
     * Killed in between: both stay, the old one unchanged (never neither) */
    r = mailbox_expunge_replaced(src, &uid, 1, expunged_r, NULL);
    if (t.has[0]) store_quota_settle_mailbox(st, t.root[0].s, src_name, src, 0);
out:
    roots_release(&t);
    return r;
}
