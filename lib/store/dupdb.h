/* dupdb.h: duplicate delivery suppression, "dup.db" in the kv environment: (Message-ID,
 * recipient mailbox) -> delivery time, so that LMTP does not file the same message twice in
 * one mailbox (a retried transaction, a list sending a copy twice) and Sieve can honour
 * "duplicate" (RFC 7352).
 *
 * Key: MESSAGE-ID, a NUL byte, internal mailbox name. Value, version 1 (text): "1 TIME", the
 * delivery time in decimal seconds since the epoch. Written with KV_TXN_NOSYNC: a crash may
 * lose the last marks, which at worst lets a duplicate through. Functions taking txn accept
 * NULL (kv.h). */
#ifndef COFFER_STORE_DUPDB_H
#define COFFER_STORE_DUPDB_H
#include "store/kv.h"
#include <stdint.h>

#define DUPDB_DB "dup.db"

struct dupdb;

int dupdb_open(struct kv_env *env, struct dupdb **d_r);
void dupdb_close(struct dupdb **dp);
struct kv_db *dupdb_kv(struct dupdb *d);

/* dupdb_check: 1 and the time of the earlier delivery in *when (may be NULL) when msgid was
 * already delivered to mailbox, 0 when not, CF_E_PARSE for an empty msgid or mailbox, or a kv
 * error. msgid is compared byte for byte: normalise it (angle brackets, case) before. */
int dupdb_check(struct dupdb *d, struct kv_txn *txn, const char *msgid, const char *mailbox,
                int64_t *when);

/* dupdb_mark: record the delivery of msgid to mailbox at time when. 0, CF_E_PARSE (empty
 * msgid or mailbox), or a kv error. */
int dupdb_mark(struct dupdb *d, struct kv_txn *txn, const char *msgid, const char *mailbox,
               int64_t when);

/* dupdb_prune: remove the records older than before (time < before), in small batches so
 * deliveries are not held up. Returns how many were removed (>= 0) or an error. Records that
 * cannot be decoded are removed too (and logged). */
int dupdb_prune(struct dupdb *d, int64_t before);

#endif
