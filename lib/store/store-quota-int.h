/* store-quota-int.h: quota accounting shared inside lib/store (store.c, store-quota.c,
 * store-mail.c); not for services or tools. */
#ifndef COFFER_STORE_STORE_QUOTA_INT_H
#define COFFER_STORE_STORE_QUOTA_INT_H
#include "store/store.h"

/* store_quota_fix_locked: store_quota_fix with root's lock already held by the caller. */
int store_quota_fix_locked(struct store *st, const char *root, struct quota *was_r);

#endif
