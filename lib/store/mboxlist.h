/* mboxlist.h: the mailbox list, "mailboxes.db" in the kv environment: internal mailbox name
 * (mboxname.h) -> partition, unique id, ACL, flags and creation time.
 *
 * Record value, version 1 (text, one line; documented in man/coffer-store.5):
 *     1 PARTITION UNIQUEID CTIME FLAGS ACL
 * separated by single spaces; PARTITION, FLAGS and ACL percent-escaped as in kv_escape (so
 * they hold no space; an empty field is "%"), UNIQUEID 32 lower-case hex digits, CTIME
 * decimal seconds since the epoch.
 *
 * Grant index: beside the entries the list keeps, under internal keys that scans skip, one
 * record per (identifier, mailbox) for each identifier with a positive entry in the mailbox's
 * ACL, except the owner of a personal mailbox (keys in man/coffer-store.5). Every write below
 * keeps it in the same transaction as the entry; mboxlist_open builds it for a list that
 * lacks it, and reconstruct rebuilds it. It lets LIST find the other users' and shared
 * mailboxes a user may see without reading every user's mailboxes (mboxlist_list_granted).
 *
 * Every function taking txn accepts NULL: the call is then its own transaction (with deadlock
 * retries); with a caller's txn, CF_E_AGAIN means abort and retry (kv.h). */
#ifndef COFFER_STORE_MBOXLIST_H
#define COFFER_STORE_MBOXLIST_H
#include "core/buf.h"
#include "core/strarr.h"
#include "store/kv.h"
#include <stdint.h>

#define MBOXLIST_DB "mailboxes.db"
#define MBOXLIST_UNIQUEID_LEN 32

struct mboxlist;

struct mboxlist_entry {
    char *partition;    /* partition name (partitions.conf) */
    char uniqueid[MBOXLIST_UNIQUEID_LEN + 1];  /* random 128-bit id in hex; survives renames */
    char *acl;          /* RFC 4314 rights as "ident\trights\t" pairs, possibly "" */
    char *flags;        /* space-separated words, e.g. RFC 6154 "\Sent" or "\Archive", or "" */
    int64_t ctime;      /* creation time, seconds since the epoch */
};

/* mboxlist_entry_init / _fini: an empty entry; _fini frees the strings (entry reusable). */
void mboxlist_entry_init(struct mboxlist_entry *e);
void mboxlist_entry_fini(struct mboxlist_entry *e);

/* mboxlist_entry_encode: e's record value (version 1) appended to out. */
void mboxlist_entry_encode(const struct mboxlist_entry *e, struct buf *out);
/* mboxlist_entry_decode: parse a record value into e (fini'd first). 0 or CF_E_CORRUPT. */
int mboxlist_entry_decode(const char *s, size_t len, struct mboxlist_entry *e);

/* mboxlist_new_uniqueid: 32 hex digits of fresh randomness (getrandom) into out[33]. */
void mboxlist_new_uniqueid(char out[MBOXLIST_UNIQUEID_LEN + 1]);

/* mboxlist_open: open mailboxes.db in env (the handle belongs to the caller and must be closed
 * before env); builds the grant index when the list has none (mboxlist_rebuild_grants). 0,
 * CF_E_IO or another kv error. mboxlist_close sets *mlp to NULL. */
int mboxlist_open(struct kv_env *env, struct mboxlist **ml_r);
void mboxlist_close(struct mboxlist **mlp);
/* mboxlist_kv: the underlying database (for kv_dump / kv_load). */
struct kv_db *mboxlist_kv(struct mboxlist *ml);

/* mboxlist_lookup: 1 and the entry in e (may be NULL) when name exists, 0 when not; CF_E_AGAIN,
 * CF_E_IO, CF_E_CORRUPT (undecodable record, logged). */
int mboxlist_lookup(struct mboxlist *ml, struct kv_txn *txn, const char *name,
                    struct mboxlist_entry *e);

/* mboxlist_create: add name with e's partition, acl and flags (NULL ones mean ""); when
 * e->uniqueid is empty a new one is made, when e->ctime is 0 the time is now; both are written
 * back to e. Does not require the parent to exist. 0, CF_E_PARSE (invalid name, or a
 * partition with a space/control character), CF_E_EXISTS, or a kv error. */
int mboxlist_create(struct mboxlist *ml, struct kv_txn *txn, const char *name,
                    struct mboxlist_entry *e);

/* mboxlist_update: replace the record of an existing name (ACL or flag changes). 0,
 * CF_E_NOTFOUND, or a kv error. */
int mboxlist_update(struct mboxlist *ml, struct kv_txn *txn, const char *name,
                    const struct mboxlist_entry *e);

/* mboxlist_delete: remove name only (not its children). 0, CF_E_NOTFOUND or a kv error. */
int mboxlist_delete(struct mboxlist *ml, struct kv_txn *txn, const char *name);

/* mboxlist_rename: rename oldname and every mailbox below it (oldname/...) to newname and
 * newname/..., in one transaction, keeping their entries (unique ids included). The IMAP
 * layer handles RENAME of INBOX (which moves messages, RFC 3501 section 6.3.5) itself. Returns
 * the number of mailboxes renamed (>= 1), CF_E_NOTFOUND (no oldname), CF_E_EXISTS (newname
 * or a renamed child's new name exists), CF_E_PARSE (invalid newname, or one of the new
 * names too long), CF_E_PERM (newname inside oldname), or a kv error. */
int mboxlist_rename(struct mboxlist *ml, struct kv_txn *txn, const char *oldname,
                    const char *newname);

/* mboxlist_rename_check_fn: asked, inside the rename's transaction and before anything is
 * written, about each mailbox that would move (oldname, its entry e, and the name it would
 * get); txn is that transaction, for lookups that must see the same state (never use another
 * transaction from here: it would wait on this one). Return 0 to allow, a negative code (or
 * > 0, taken as CF_E_PERM) to refuse the whole rename. May run more than once (deadlock
 * retries), so it must have no other effects. */
typedef int mboxlist_rename_check_fn(struct kv_txn *txn, const char *oldname, const char *newname,
                                     const struct mboxlist_entry *e, void *rock);

/* mboxlist_rename_checked: mboxlist_rename, refused as a whole (nothing written) when check
 * (may be NULL) refuses one of the mailboxes that move: the caller's permission check (RFC
 * 4314 section 4, RENAME) sees exactly the set of mailboxes moved. Returns as mboxlist_rename,
 * or check's error. */
int mboxlist_rename_checked(struct mboxlist *ml, struct kv_txn *txn, const char *oldname,
                            const char *newname, mboxlist_rename_check_fn *check, void *rock);

/* mboxlist_next_uidvalidity: a new UIDVALIDITY for a mailbox about to be created:
 * max(now, last + 1), where last is the value given out before (kept in the list database,
 * so it survives restarts; dumps carry it), and store it as the new last. So a name deleted
 * and created again, even within one second, never gets an old value back (RFC 3501 section
 * 2.3.1.1: UIDVALIDITY must rise whenever UIDs are not kept). 0 and *out, CF_E_LIMIT (the
 * 32-bit range is used up), or a kv error. */
int mboxlist_next_uidvalidity(struct mboxlist *ml, struct kv_txn *txn, uint32_t *out);

/* mboxlist_raise_uidvalidity: make the stored last UIDVALIDITY at least seen (a value found on
 * disk by reconstruct, or restored from a dump), so that later values are above it; it is
 * never lowered. The stored value after the call into *last_r (may be NULL). 0 or an error. */
int mboxlist_raise_uidvalidity(struct mboxlist *ml, struct kv_txn *txn, uint32_t seen,
                               uint32_t *last_r);

/* mboxlist_rebuild_grants: build the grant index anew from the entries (in batches of
 * transactions, while others may use the list: concurrent writers keep their own changes
 * indexed). Returns the number of mailboxes indexed (>= 0) or a kv error (logged). Blocks
 * for a full scan of the list. */
long long mboxlist_rebuild_grants(struct mboxlist *ml);

/* mboxlist_grants: append to names the internal names of the mailboxes whose ACL has a
 * positive entry for ident (the owner's own personal mailboxes excepted), in byte order. 0 or
 * a kv error. */
int mboxlist_grants(struct mboxlist *ml, struct kv_txn *txn, const char *ident,
                    struct strarr *names);

/* mboxlist_foreach_fn: one mailbox; return 0 to go on, > 0 to stop, < 0 for an error. */
typedef int mboxlist_foreach_fn(const char *name, const struct mboxlist_entry *e, void *rock);

/* mboxlist_foreach: call cb for every mailbox whose name starts with prefix ("" all; give
 * "a/b/" for the children of a/b), in byte order. Returns 0, cb's value, or an error. With
 * txn NULL, cb may use other transactions (kv_foreach). */
int mboxlist_foreach(struct mboxlist *ml, struct kv_txn *txn, const char *prefix,
                     mboxlist_foreach_fn *cb, void *rock);

/* mboxlist_foreach_tree: call cb for name itself (when it exists) and every mailbox below it
 * (name/...), in byte order: a user's hierarchy is "user/fred" and "user/fred/", never the
 * prefix "user/fred" (which holds user/fredrick's too). name "" is the whole list. Returns
 * as mboxlist_foreach. */
int mboxlist_foreach_tree(struct mboxlist *ml, struct kv_txn *txn, const char *name,
                          mboxlist_foreach_fn *cb, void *rock);

/* mboxlist_has_children: 1 when some mailbox lies below name, 0 when none, or an error. */
int mboxlist_has_children(struct mboxlist *ml, struct kv_txn *txn, const char *name);

/* mboxlist_list_fn: for LIST. extname is user's view of name (UTF-8). When matchlen equals
 * strlen(extname) the mailbox matches the pattern; otherwise only its ancestor
 * extname[0..matchlen) matches, and LIST should show that ancestor (if it exists it is
 * reported on its own too) as a parent. Permission checks (ACL "l" right) are the caller's. */
typedef int mboxlist_list_fn(const char *extname, size_t matchlen, const char *name,
                             const struct mboxlist_entry *e, void *rock);

/* mboxlist_list: every mailbox whose external name for user (NULL: internal names) matches
 * pattern (UTF-8, '*' and '%' wildcards, mboxname_match) or has a matching ancestor, scanning
 * only the parts of the list the pattern's literal prefix allows. Names are visited personal
 * first, then other users', then shared, each in byte order. Returns 0, cb's value or an
 * error; CF_E_LIMIT for a pattern over MBOXNAME_PATTERN_MAX. */
int mboxlist_list(struct mboxlist *ml, struct kv_txn *txn, const char *user, const char *pattern,
                  mboxlist_list_fn *cb, void *rock);

/* mboxlist_visible_fn: 1 when the caller may see mailbox name (entry e), else 0. */
typedef int mboxlist_visible_fn(const char *name, const struct mboxlist_entry *e, void *rock);

/* mboxlist_list_visible: mboxlist_list that skips every mailbox visible() refuses (NULL:
 * none): neither it nor its matching ancestors reach cb. With a long pattern (64 bytes or
 * more) visible() is asked before matching, so the pattern costs time only for mailboxes
 * the caller can see; a short one is matched first. */
int mboxlist_list_visible(struct mboxlist *ml, struct kv_txn *txn, const char *user,
                          const char *pattern, mboxlist_visible_fn *visible,
                          mboxlist_list_fn *cb, void *rock);

/* mboxlist_list_granted: mboxlist_list_visible for a user who is no administrator (user not
 * NULL): in the other users' and shared namespaces only the mailboxes the grant index names
 * for user or "anyone" are considered, the only ones whose ACL can give such a user the 'l'
 * right (acl.h); visible() still decides. The cost follows what the user may see, not the
 * size of the list. With user NULL it is mboxlist_list_visible. */
int mboxlist_list_granted(struct mboxlist *ml, struct kv_txn *txn, const char *user,
                          const char *pattern, mboxlist_visible_fn *visible,
                          mboxlist_list_fn *cb, void *rock);

#endif
