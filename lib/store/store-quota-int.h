/* store-quota-int.h: quota accounting shared inside lib/store (store.c, store-quota.c,
 * store-mail.c); not for services or tools. */
#ifndef COFFER_STORE_STORE_QUOTA_INT_H
#define COFFER_STORE_STORE_QUOTA_INT_H
#include "store/store.h"

/* store_quota_fix_locked: store_quota_fix with root's lock already held by the caller. */
int store_quota_fix_locked(struct store *st, const char *root, struct quota *was_r);

/* store_quota_settle_locked: the ledger protocol's settle (store.h "Quota accounting"): with
 * root's lock held, make the usage root counts for mailbox uniqueid what header h holds (h
 * NULL: nothing, the mailbox is gone); a root without a complete ledger is recounted instead.
 * before: called before a change (logs what it rolls forward). 0 (also when root is no root
 * any more) or an error (logged; the next settle or a recount repairs it). */
int store_quota_settle_locked(struct store *st, const char *root, const char *uniqueid,
                              const struct index_header *h, int before);

/* store_quota_settle_mailbox: settle open mailbox mb, listed as name, with its header re-read
 * under a shared lock; nothing when name is no longer mb (deleted). Root's lock held. */
int store_quota_settle_mailbox(struct store *st, const char *root, const char *name,
                               struct mailbox *mb, int before);

/* store_expunge_locked: the expunge of store_expunge with root's lock held (root NULL: the
 * mailbox has none): expunge, then settle. Also the second half of store_move. */
int store_expunge_locked(struct store *st, struct mailbox *mb, const char *name,
                         const char *root, const uint32_t *uids, size_t n, uint32_t *count_r);

#endif
