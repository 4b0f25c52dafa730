/* acl-check.h: what a session may do with a mailbox: the one place imapd turns a mailbox's ACL
 * text (mboxlist entry, RFC 4314 rights as "ident\trights\t" pairs) into rights for the user.
 *
 * The rules are store/acl.h's (acl_user_rights): administrators have every right, the owner
 * of a personal mailbox always has 'l' and 'a' and the rest from the ACL, everyone else what
 * the ACL grants to them or "anyone" minus the negative entries (RFC 4314 section 2).
 * A mailbox is visible to a user who has the 'l' right (or the right a command needs): commands
 * answer as if any other mailbox did not exist (RFC 4314 section 4), so errors never reveal it. */
#ifndef COFFER_IMAPD_ACL_CHECK_H
#define COFFER_IMAPD_ACL_CHECK_H
#include "store/acl.h"     /* ACL_RIGHTS_ALL */

struct client;
struct mboxlist_entry;

/* Size of a rights buffer: the rights and a NUL. */
#define ACL_RIGHTS_SIZE 16

/* acl_rights: the rights the session's user has on internal mailbox name whose ACL text is
 * acl_text (may be NULL: none), as letters in ACL_RIGHTS_ALL order, written NUL-terminated to
 * rights_out (ACL_RIGHTS_SIZE bytes). c->user NULL (not logged in) gets only "anyone" rights.
 * Returns the number of rights letters. Does not block. */
int acl_rights(const struct client *c, const char *name, const char *acl_text, char *rights_out);

/* acl_has: 1 when the session's user has right (one letter of ACL_RIGHTS_ALL) on name, else 0. */
int acl_has(const struct client *c, const char *name, const char *acl_text, char right);

/* acl_lookup: look up internal name in the mailbox list and check right for the session.
 * Returns 1 when it exists and the user has right (e filled in when not NULL: the caller must
 * mboxlist_entry_fini it, also after other returns); 0 when it does not exist or the user may
 * not see it (neither 'l' nor right); CF_E_PERM when the user sees it but lacks right; or a
 * store error (CF_E_IO, CF_E_CORRUPT, CF_E_AGAIN). rights_out (ACL_RIGHTS_SIZE, may be NULL)
 * receives the user's rights when the mailbox exists. Blocks on the database. */
int acl_lookup(struct client *c, const char *name, struct mboxlist_entry *e, char right,
               char *rights_out);

#endif
