/* store-mail.h: the message-level transactions of the store, as the services mean them:
 * append (one message or many), copy, move and flag store. Each takes the quota root's lock,
 * settles the root from the index header before its check (quota.db's ledger, store.h "Quota
 * accounting"), checks the quota under the mailbox's write lock, commits the index, and
 * settles again after the commit; the caller maps the CF_E_* result to its protocol's reply.
 * Expunge is store_expunge (store.h). Services and tools call these, never mailbox_append,
 * mailbox_copy or mailbox_store themselves, and never take quota locks.
 *
 * name is always the internal name the open mailbox was looked up by (store_open_mailbox):
 * the quota root is found from it, and a mailbox deleted or replaced since it was opened is
 * not counted (store_delete settled it). */
#ifndef COFFER_STORE_STORE_MAIL_H
#define COFFER_STORE_STORE_MAIL_H
#include "store/store.h"

#define STORE_NO_QUOTA_CHECK 0x1   /* count the change but never refuse it (RENAME of INBOX:
                                        nothing is added overall) */

/* store_append: append msgs[0..n) to mb (listed as name) in one commit, all or nothing
 * (RFC 3502 MULTIAPPEND: one commit, consecutive uids; each msgs[i].uid is set). 0,
 * CF_E_QUOTA (the root's limit would be passed; nothing stored), CF_E_IO (quota lock, a write
 * or flush; nothing committed), or mailbox_append's other errors. Blocks on the root's lock,
 * the mailbox's lock and two fsyncs. */
int store_append(struct store *st, struct mailbox *mb, const char *name, struct mailbox_msg *msgs,
                 size_t n);

/* store_copy: copy the messages with the n given uids of src into dst (listed as dst_name),
 * keeping only the system flags in keep_flags and, unless keep_keywords is 0, the keywords
 * (mailbox_copy_flags). dst_uids_r (n slots, may be NULL): each copy's new uid, 0 for a uid
 * that no longer exists (RFC 4315 COPYUID pairs). opts: STORE_NO_QUOTA_CHECK or 0. 0,
 * CF_E_QUOTA, CF_E_IO, or mailbox_copy_flags' errors; on failure nothing was copied. */
int store_copy(struct store *st, struct mailbox *src, const uint32_t *uids, size_t n,
               struct mailbox *dst, const char *dst_name, uint32_t keep_flags, int keep_keywords,
               uint32_t *dst_uids_r, unsigned opts);

/* store_move: store_copy from src (listed as src_name) to dst, then the source messages are
 * flagged \Deleted and expunged (RFC 6851): the destination's root is charged and the source's
 * credited, both settled under both roots' locks, taken in name order (as store_rename does,
 * so two moves in opposite directions cannot deadlock). Within one root nothing is checked
 * (nothing is added overall). *expunged_r (may be NULL): how many left src. Same errors as
 * store_copy; when the expunge fails after the copy committed, its error is returned and the
 * copies stay (never a lost message). */
int store_move(struct store *st, struct mailbox *src, const char *src_name, const uint32_t *uids,
               size_t n, struct mailbox *dst, const char *dst_name, uint32_t keep_flags,
               int keep_keywords, uint32_t *dst_uids_r, unsigned opts, uint32_t *expunged_r);

/* store_replace: RFC 8508 REPLACE: append msg (one message; msg->uid is set once it is
 * committed, else 0) to dst (listed as
 * dst_name), then expunge message uid of src (listed as src_name; may be the same mailbox as
 * dst, through another handle), whether \Deleted or not, as store_move does its two halves:
 * both roots locked in name order; within one root the quota check counts only the net
 * change (the old message's bytes and count are credited). Two commits, append first: a crash
 * between them leaves both messages (the old one unchanged), never neither, and the client
 * got no OK. *expunged_r (may be NULL): 1 when the old message went (0: another session
 * expunged it meanwhile). 0; CF_E_NOTFOUND (uid is not, or no longer, in src: nothing
 * appended); CF_E_QUOTA, CF_E_IO or mailbox_append's errors (nothing appended); or the
 * expunge's error after the append committed (the new message stays). */
int store_replace(struct store *st, struct mailbox *src, const char *src_name, uint32_t uid,
                  struct mailbox *dst, const char *dst_name, struct mailbox_msg *msg,
                  uint32_t *expunged_r);

/* store_set_flags: mailbox_store (mailbox.h): change flags of the given uids in one commit with
 * one new modseq. Flags hold no quota: no root lock is taken. *failed_r (caller frees, may be
 * NULL) and *nfailed_r: uids refused by UNCHANGEDSINCE. 0, CF_E_LIMIT, CF_E_CORRUPT, CF_E_IO. */
int store_set_flags(struct store *st, struct mailbox *mb, const uint32_t *uids, size_t n,
                    const struct mailbox_store *op, uint32_t **failed_r, size_t *nfailed_r);

/* store_set_flags_records: store_set_flags handing back the records as the commit left them
 * (mailbox_store_records), with hook's step before the flush when hook is not NULL
 * (mailbox_store_hooked). */
int store_set_flags_records(struct store *st, struct mailbox *mb, const uint32_t *uids, size_t n,
                            const struct mailbox_store *op, uint32_t **failed_r,
                            size_t *nfailed_r, struct index_record *recs_r,
                            const struct mailbox_store_hook *hook);

#endif
