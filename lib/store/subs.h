/* subs.h: per-user subscriptions (RFC 3501 section 6.3.6), "subs.db" in the kv environment.
 *
 * Key: USER, a NUL byte, internal mailbox name; value: empty. A subscription may name a
 * mailbox that does not (or no longer) exist, as RFC 3501 allows; RENAME does not move it.
 * Functions taking txn accept NULL (own transaction; kv.h). */
#ifndef COFFER_STORE_SUBS_H
#define COFFER_STORE_SUBS_H
#include "core/strarr.h"
#include "store/kv.h"

#define SUBS_DB "subs.db"

struct subsdb;

int subs_open(struct kv_env *env, struct subsdb **s_r);
void subs_close(struct subsdb **sp);
struct kv_db *subs_kv(struct subsdb *s);

/* subs_add / subs_remove: 0 (also when already subscribed / not subscribed), CF_E_PARSE
 * (invalid user or name), or a kv error. */
int subs_add(struct subsdb *s, struct kv_txn *txn, const char *user, const char *mailbox);
int subs_remove(struct subsdb *s, struct kv_txn *txn, const char *user, const char *mailbox);

/* subs_is_subscribed: 1 yes, 0 no, or an error. */
int subs_is_subscribed(struct subsdb *s, struct kv_txn *txn, const char *user,
                       const char *mailbox);

/* subs_list: append user's subscribed internal names to out, in byte order. 0 or an error. */
int subs_list(struct subsdb *s, struct kv_txn *txn, const char *user, struct strarr *out);

/* subs_remove_user: drop all of user's subscriptions (user deleted). Count or an error. */
int subs_remove_user(struct subsdb *s, struct kv_txn *txn, const char *user);

#endif
