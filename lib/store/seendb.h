/* seendb.h: per-user \Seen state of shared mailboxes, "seen.db" in the kv environment.
 *
 * A shared mailbox keeps one \Seen set per reader, not one flag for all (RFC 3501 section
 * 2.3.2 leaves this to the server; RFC 4314 "s" right). Key: mailbox unique id (mboxlist.h,
 * so renames keep it), a NUL byte, user. Value, version 1 (text): "1 SEQSET", the UIDs seen as
 * an IMAP sequence set ("1:5,9"), or "1 %" for none; the set is opaque to this file.
 * Written with KV_TXN_NOSYNC: a system crash may lose the last changes, which only makes
 * messages show as unseen again. Functions taking txn accept NULL (kv.h). */
#ifndef COFFER_STORE_SEENDB_H
#define COFFER_STORE_SEENDB_H
#include "core/buf.h"
#include "store/kv.h"

#define SEENDB_DB "seen.db"

struct seendb;

int seendb_open(struct kv_env *env, struct seendb **s_r);
void seendb_close(struct seendb **sp);
struct kv_db *seendb_kv(struct seendb *s);

/* seendb_get: 1 and the sequence set text in seqset (reset first), 0 when none stored (seqset
 * empty), or an error (CF_E_CORRUPT for a bad record, logged). */
int seendb_get(struct seendb *s, struct kv_txn *txn, const char *uniqueid, const char *user,
               struct buf *seqset);

/* seendb_set: store seqset (printable ASCII without spaces, "" for none). 0, CF_E_PARSE, or a
 * kv error. */
int seendb_set(struct seendb *s, struct kv_txn *txn, const char *uniqueid, const char *user,
               const char *seqset);

/* seendb_delete_mailbox: forget every reader's state of a deleted mailbox. Count or error. */
int seendb_delete_mailbox(struct seendb *s, struct kv_txn *txn, const char *uniqueid);

/* seendb_delete_user: forget user's state everywhere (a full scan, in batches). Count or
 * error. */
int seendb_delete_user(struct seendb *s, const char *user);

#endif
