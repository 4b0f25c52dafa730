/* store-retained.h: what delayed expunge and delayed delete keep (expunge_mode, delete_mode,
 * expunge_retention in coffer.conf(5)), and bringing it back: unexpunge with its quota, and
 * hidden mailboxes -- a deleted mailbox kept with its messages, flags and ACL until coffer
 * expire removes it -- with undelete.
 *
 * A hidden mailbox is its directory renamed to PARTITION/xx/UNIQUEID.held, out of the mailbox
 * list (so no client can list, select or reach it, and its name is free at once), holding a
 * side file `deleted` (DELETED_FILE) that says what it was:
 *     line 1: "coffer-deleted 1"
 *     line 2: the deletion time, decimal seconds since the epoch
 *     line 3: its internal name, percent-escaped (kv_escape)
 *     line 4: its mailbox list record (mboxlist.h, version 1: partition, uniqueid, ctime,
 *             flags, ACL)
 * Its quota root was credited at the delete. Layout and crash order: coffer-store(5). */
#ifndef COFFER_STORE_STORE_RETAINED_H
#define COFFER_STORE_STORE_RETAINED_H
#include "store/store.h"
#include <stdint.h>

#define DELETED_SUFFIX ".held"       /* of a hidden mailbox's directory */
#define DELETED_FILE "deleted"       /* the side file inside it */

/* One hidden mailbox. */
struct store_deleted {
    char *name;                      /* its internal name when it was deleted */
    struct mboxlist_entry e;         /* its list entry then (uniqueid, partition, ACL, flags) */
    int64_t deleted_at;              /* seconds since the epoch */
    char *dir;                       /* PARTITION/xx/UNIQUEID.held */
    uint64_t bytes;                  /* quota_used and exists of its index header */
    uint32_t messages;
    int counted;                     /* 0: its index could not be read (bytes, messages 0) */
};
void store_deleted_fini(struct store_deleted *d);

/* store_delete_hidden: the delete of store_delete in delayed mode: the mailbox name (entry e,
 * directory dir on partition path ppath) is hidden rather than removed. The caller holds the
 * quota root's lock and credits it. Order: side file (fsynced), directory renamed to the
 * tombstone UNIQUEID.deleted (fsynced), list entry removed, tombstone renamed to
 * UNIQUEID.held. 0 or an error (nothing changed when the list entry is still there). */
int store_delete_hidden(struct store *st, const char *name, const struct mboxlist_entry *e,
                        const char *dir);

/* store_deleted_list: every hidden mailbox on every partition, oldest deletion first, into
 * *v_r (caller frees each with store_deleted_fini, then the array), *n_r of them. A directory
 * whose side file cannot be read is skipped and logged. 0 or CF_E_IO. */
int store_deleted_list(struct store *st, struct store_deleted **v_r, size_t *n_r);

/* store_undelete: bring hidden mailbox d back as newname (NULL: its old name): the quota root
 * of the new name is checked (CF_E_QUOTA when its usage would pass a limit, unless force)
 * and charged, under its lock. Order: header file renamed, directory renamed back to
 * UNIQUEID (fsynced), list entry created, quota charged, side file removed; a crash leaves
 * either the hidden mailbox or a directory that reconstruct adopts under the new name, never
 * both. 0, CF_E_EXISTS (the name is taken), CF_E_QUOTA, CF_E_PARSE (invalid name), or an I/O
 * or database error. */
int store_undelete(struct store *st, const struct store_deleted *d, const char *newname,
                   int force);

/* store_deleted_expire: remove hidden mailbox d for good (directory renamed to its tombstone,
 * then its files and the directory; its seen state goes). 0 or CF_E_IO. */
int store_deleted_expire(struct store *st, const struct store_deleted *d);

/* store_unexpunge: mailbox_unexpunge of recs (from mailbox_retained) in mb, the open mailbox
 * called name, under its quota root's lock: refused with CF_E_QUOTA (nothing changed) when
 * the root's usage plus their sizes would pass a limit, unless force; the root is charged
 * with what came back. new_uids_r as for mailbox_unexpunge. Returns how many came back, or
 * an error. Blocks on both locks. */
int store_unexpunge(struct store *st, struct mailbox *mb, const char *name,
                    const struct index_record *recs, size_t n, int force, uint32_t *new_uids_r);

/* store_expunge_retention: expunge_retention of the store's config, in seconds. */
int64_t store_expunge_retention(const struct store *st);

#endif
