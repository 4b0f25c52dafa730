/* store.h: the mail store as the services and tools see it: one handle on the database
 * environment and its databases, and mailbox-level operations (create with parents, delete,
 * rename, open, status) that keep the mailbox list and the mailbox directories in step.
 *
 * Crash ordering (coffer-store(5)): create makes the directory first, then the list entry;
 * delete renames the directory to a tombstone first, then removes the entry, then the files;
 * a cross-partition rename copies first and updates the entry after. A crash in between leaves
 * an orphan directory or tombstone that reconstruct adopts or finishes, never a list entry
 * that points at half a mailbox. */
#ifndef COFFER_STORE_STORE_H
#define COFFER_STORE_STORE_H
#include "core/config.h"
#include "store/dupdb.h"
#include "store/kv.h"
#include "store/mailbox.h"
#include "store/mboxlist.h"
#include "store/quotadb.h"
#include "store/seendb.h"
#include "store/subs.h"

struct store {
    const struct config *cfg;   /* not owned; outlives the store */
    struct kv_env *env;
    struct mboxlist *mboxlist;
    struct quotadb *quota;
    struct subsdb *subs;
    struct seendb *seen;
    struct dupdb *dup;
};

/* The rights of an owner on a new personal mailbox (RFC 4314 section 2.1: every right). */
#define STORE_OWNER_RIGHTS "lrswipkxtea"

/* store_open: open configdir/db and every database. 0 or CF_E_IO (logged). */
int store_open(const struct config *cfg, struct store **st_r);
void store_close(struct store **stp);

/* store_partition_path: the directory of a partition by name, or NULL when the config has
 * no such partition. */
const char *store_partition_path(const struct store *st, const char *partition);

#define STORE_CREATE_PARENTS 0x1   /* create missing ancestors too (RFC 3501 section 6.3.3) */

/* store_create: create the mailbox with internal name `name`. partition NULL: the parent's
 * partition when the parent exists, else partition_select(). acl NULL: the default (the owner
 * of a personal mailbox gets STORE_OWNER_RIGHTS; a new child inherits its parent's ACL).
 * flags: RFC 6154 special-use words or NULL. 0, CF_E_EXISTS, CF_E_PARSE (invalid name),
 * CF_E_NOTFOUND (unknown partition, or a missing parent without STORE_CREATE_PARENTS), or
 * an I/O / database error. */
int store_create(struct store *st, const char *name, const char *partition, const char *acl,
                 const char *flags, unsigned opts);

/* store_delete: delete one mailbox (not its children) and its messages, subscriptions stay
 * (RFC 3501 section 6.3.4), seen state goes. 0, CF_E_NOTFOUND, or an error. */
int store_delete(struct store *st, const char *name);

/* store_rename: rename oldname and every mailbox below it; when new_partition is given (and
 * differs) the mailbox oldname itself moves there (its children stay where they are). Returns
 * the number renamed (>= 1) or mboxlist_rename's errors. */
int store_rename(struct store *st, const char *oldname, const char *newname,
                 const char *new_partition);

/* store_rename_checked: store_rename with mboxlist_rename_checked's check (asked in the list's
 * transaction about every mailbox that moves; a refusal leaves everything as it was). With a
 * check, new_partition must be NULL or the current one (else CF_E_PERM): files would move
 * before the check could run. */
int store_rename_checked(struct store *st, const char *oldname, const char *newname,
                         const char *new_partition, mboxlist_rename_check_fn *check, void *rock);

/* store_lookup: mboxlist_lookup without a transaction. */
int store_lookup(struct store *st, const char *name, struct mboxlist_entry *e);

/* store_open_mailbox: look up name and open a session on it. When the directory is not on the
 * recorded partition but on another one (a cross-partition move cut short by a crash), the
 * list entry is corrected and logged. e (may be NULL) receives the list entry.
 * 0, CF_E_NOTFOUND, CF_E_CORRUPT, CF_E_IO. */
int store_open_mailbox(struct store *st, const char *name, struct mboxlist_entry *e,
                       struct mailbox **mb_r);

/* store_status: the index header of a mailbox without a session. */
int store_status(struct store *st, const char *name, struct index_header *h);

/* store_ensure_inbox: create user's INBOX (user/NAME) when missing. 1 created, 0 existed,
 * or an error. */
int store_ensure_inbox(struct store *st, const char *user);

#endif
