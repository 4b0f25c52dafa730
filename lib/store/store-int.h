/* store-int.h: the inside of struct store, for lib/store's own files only. Services and tools
 * see the store as an opaque handle (store.h) and reach its databases through the accessors
 * of store.h and store-db.h, never through these fields. */
#ifndef COFFER_STORE_STORE_INT_H
#define COFFER_STORE_STORE_INT_H
#include "store/dupdb.h"
#include "store/kv.h"
#include "store/metadb.h"
#include "store/mboxlist.h"
#include "store/quotadb.h"
#include "store/seendb.h"
#include "store/store.h"
#include "store/subs.h"

struct store {
    const struct config *cfg;   /* not owned; outlives the store */
    struct kv_env *env;
    struct mboxlist *mboxlist;
    struct quotadb *quota;
    struct subsdb *subs;
    struct seendb *seen;
    struct dupdb *dup;
    struct kv_db *vacation;     /* opened on first use (store-db.c); belongs to env */
    struct kv_db *urlauth;      /* URLAUTH access keys, opened on first use (store-db.c) */
    struct metadb *meta;        /* RFC 5464 annotations (metadb.h) */
    struct mailbox *parked;     /* the last session closed with store_park_mailbox */
    struct mailbox *targets[STORE_KEPT_TARGETS];   /* store_keep_target, oldest first */
    size_t ntargets;
};

/* store_txn: the mailbox list's transaction as store_rename_with_check hands it to its
 * check (store-db.h), so the check's lookups see the rename's own state. */
struct store_txn {
    struct store *st;
    struct kv_txn *kv;
};

/* The lmtpd Sieve vacation database: key USER NUL SENDER, value the decimal time of the last
 * answer to SENDER (man/coffer-store.5). */
#define STORE_VACATION_DB "vacation.db"

/* The URLAUTH mailbox access keys (RFC 4467 section 3): key USER NUL UNIQUEID, value
 * "1 " and the key in hex (man/coffer-store.5). */
#define STORE_URLAUTH_DB "urlauth.db"

/* store_rename_checked: store_rename with mboxlist_rename_checked's check (asked in the list's
 * transaction about every mailbox that moves; a refusal leaves everything as it was). With a
 * check, new_partition must be NULL or the current one (else CF_E_PERM): files would move
 * before the check could run. Services use store_rename_with_check (store-db.h). */
int store_rename_checked(struct store *st, const char *oldname, const char *newname,
                         const char *new_partition, mboxlist_rename_check_fn *check, void *rock);

#endif
