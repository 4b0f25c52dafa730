/* acl.h: RFC 4314 access control lists as the mailbox list stores them: parsing and editing the
 * ACL text, and the one rule that turns it into a user's rights (used by imapd, pop3d, lmtpd).
 *
 * ACL text (mboxlist.h, mbheader.h): "ident\trights\t" pairs, e.g. "fred\tlrswipkxtea\t
 * anyone\tlr\t-joe\tr\t". An identifier is a user name, "anyone" (every user, logged in or
 * not), "anonymous" (a session that is not logged in), or one of those after '-' for negative
 * rights (RFC 4314 section 2). Rights are letters of ACL_RIGHTS_ALL in that order.
 *
 * The rule (acl_user_rights):
 *   - an administrator (config `admins`) has every right on every mailbox;
 *   - everyone else has what the positive entries that apply to them grant, minus what the
 *     negative entries that apply take away (RFC 4314 section 2);
 *   - the owner of a personal mailbox (user/OWNER and below) also always has 'l' and 'a', so
 *     that nobody locks themselves out of their own mailboxes (RFC 4314 section 2 allows a
 *     server to grant rights implicitly); every other right of the owner comes from the ACL,
 *     which gives the owner every right when a mailbox is created (store.h).
 * Groups are not supported: neither SASL nor the config names any. */
#ifndef COFFER_STORE_ACL_H
#define COFFER_STORE_ACL_H
#include "core/buf.h"
#include "core/strarr.h"

struct store;
struct mboxlist_entry;

/* Every right of RFC 4314 section 2.1, in canonical order. */
#define ACL_RIGHTS_ALL "lrswipkxtea"
/* A rights mask with every right: bit i is ACL_RIGHTS_ALL[i]. */
#define ACL_MASK_ALL ((1u << 11) - 1)
/* Rights the owner of a personal mailbox always has (see above). */
#define ACL_OWNER_IMPLICIT "la"
/* The longest identifier an ACL holds. */
#define ACL_IDENT_MAX 255

/* acl_right_bit: the mask bit of one right letter, 0 for a letter that is none. */
unsigned acl_right_bit(char right);

/* acl_parse_rights: the mask of the rights letters s[0..len); the obsolete RFC 2086 rights
 * count as RFC 4314 section 2.1.1 maps them: 'c' as "k x", 'd' as "x t e". strict: 0, or
 * CF_E_PARSE for any other letter (SETACL answers BAD); not strict: unknown letters are
 * skipped (stored text from an older or newer version). */
int acl_parse_rights(const char *s, size_t len, int strict, unsigned *mask_r);

/* acl_format_rights: mask as letters in canonical order, NUL-terminated, into out (at least
 * 12 bytes). Returns out. */
char *acl_format_rights(unsigned mask, char *out);

/* acl_ident_valid: 1 when id (without a leading '-') can be stored: 1..ACL_IDENT_MAX bytes,
 * no control characters, spaces or tabs, and not starting with '-'. */
int acl_ident_valid(const char *id);

/* acl_text_rights: the mask an ACL text gives user (NULL: a session that is not logged in):
 * the entries for user, "anyone" and (user NULL) "anonymous", positive minus negative. No
 * owner or administrator rule. */
unsigned acl_text_rights(const char *acl, const char *user);

/* acl_user_rights: the whole rule above for user on mailbox name (internal) with ACL text
 * acl (NULL: none). is_admin: user is an administrator. Returns the mask. Does not block. */
unsigned acl_user_rights(const char *acl, const char *name, const char *user, int is_admin);

/* acl_split: the entries of an ACL text, appended in order: identifiers (negative ones with
 * their '-') to idents, their rights text to rights. A malformed tail is dropped. */
void acl_split(const char *acl, struct strarr *idents, struct strarr *rights);

/* Modes of acl_modify (RFC 4314 section 3.1: SETACL rights with a leading '+' or '-'). */
enum acl_mode { ACL_REPLACE, ACL_ADD, ACL_REMOVE };

/* acl_modify: the ACL text acl (NULL as "") with the entry of ident (may start with '-')
 * changed: replaced by, extended with, or reduced by mask; an entry left with no rights is
 * removed (RFC 4314 section 3.1), a new one goes at the end. The result (a fresh string the
 * caller frees) into *out_r. 0, or CF_E_PARSE for an invalid identifier. */
int acl_modify(const char *acl, const char *ident, enum acl_mode mode, unsigned mask,
               char **out_r);

/* acl_remove_ident: acl without ident's entry (a fresh string into *out_r). 1 when it had
 * one, 0 when not (the copy is then unchanged). */
int acl_remove_ident(const char *acl, const char *ident, char **out_r);

/* acl_mailbox_update: store e (with its new ACL) as name's mailbox list entry and copy the ACL
 * into the mailbox's header file under the mailbox's lock, as reconstruct reads it back. 0,
 * CF_E_NOTFOUND, or an I/O / database error (logged). Blocks on the database and disk. */
int acl_mailbox_update(struct store *st, const char *name, const struct mboxlist_entry *e);

#endif
