/* mboxname.h: mailbox name rules, IMAP modified UTF-7, the user's view of names (namespaces),
 * and IMAP LIST wildcard matching.
 *
 * Internal names are UTF-8 with '/' as the hierarchy separator. User "fred"'s INBOX is
 * "user/fred" and his folders are "user/fred/Sent", ...; every name not starting with "user/"
 * is a shared mailbox. What a user sees (RFC 2342 namespaces, as NAMESPACE reports them):
 *     personal   ""                  INBOX = user/fred, "Sent" = user/fred/Sent
 *     other      "Other Users/"      "Other Users/joe/x" = user/joe/x
 *     shared     "Shared Folders/"   "Shared Folders/x" = x
 * The prefixes are defined here only. */
#ifndef COFFER_STORE_MBOXNAME_H
#define COFFER_STORE_MBOXNAME_H
#include "core/buf.h"
#include <stddef.h>

#define MBOXNAME_SEP '/'
#define MBOXNAME_SEP_STR "/"
#define MBOXNAME_USER_PREFIX "user/"           /* internal names of personal mailboxes */
#define MBOXNAME_NS_OTHER "Other Users/"       /* RFC 2342 other users' namespace prefix */
#define MBOXNAME_NS_SHARED "Shared Folders/"   /* RFC 2342 shared namespace prefix */

#define MBOXNAME_MAX_LEN 500        /* bytes of an internal name */
#define MBOXNAME_MAX_COMPONENT 255  /* bytes of one component (a directory name on disk) */
#define MBOXNAME_MAX_DEPTH 64       /* components */

/* mboxname_valid: whether name is a valid internal name: 1..MBOXNAME_MAX_LEN bytes of valid
 * UTF-8, components separated by single '/', no leading or trailing '/', no empty, "." or
 * ".." component, no component over MBOXNAME_MAX_COMPONENT bytes, at most MBOXNAME_MAX_DEPTH
 * components, no control characters (C0, DEL, C1), no '%' or '*', not "user" itself, and a
 * personal name has a user part ("user/fred"). 0 or CF_E_PARSE. */
int mboxname_valid(const char *name);

/* mboxname_valid_user: whether user can own mailboxes: a valid single component (no '/'). */
int mboxname_valid_user(const char *user);

/* mboxname_utf7_to_utf8: decode IMAP modified UTF-7 (RFC 3501 section 5.1.3) in, appending
 * UTF-8 to out. Strict: only printable ASCII outside shifts, "&-" for '&', a shift must end
 * with '-', use the modified base64 alphabet with no padding and zero leftover bits, hold
 * well-formed UTF-16 with no printable ASCII, U+0000 or lone surrogates, and not follow
 * another shift directly. 0 or CF_E_PARSE (out then holds a partial result). */
int mboxname_utf7_to_utf8(const char *in, struct buf *out);

/* mboxname_utf8_to_utf7: encode UTF-8 in as modified UTF-7 appended to out. 0 or CF_E_PARSE
 * (invalid UTF-8, or a NUL). */
int mboxname_utf8_to_utf7(const char *in, struct buf *out);

/* mboxname_from_external: the internal name (into out, reset first) for extname (UTF-8, as
 * the user sees it) in user's view. "INBOX" (any case) is user/USER; a name in the other
 * users' or shared namespace maps as in the table above; any other name is a personal folder.
 * user NULL: the administrator's view, where names are internal. Returns 0; CF_E_NOTFOUND for
 * a name that is only a namespace root ("Other Users", "Shared Folders"); CF_E_PERM for
 * "INBOX/..." (INBOX has no children in this layout) and for a shared name that would land in
 * "user/"; CF_E_PARSE when the result is not a valid name. */
int mboxname_from_external(const char *user, const char *extname, struct buf *out);

/* mboxname_to_external: user's view (UTF-8, into out, reset first) of internal name. user
 * NULL: the name itself. 0 or CF_E_PARSE (not a valid internal name). */
int mboxname_to_external(const char *user, const char *name, struct buf *out);

/* mboxname_from_imap / mboxname_to_imap: the same with the modified UTF-7 of the wire. */
int mboxname_from_imap(const char *user, const char *imapname, struct buf *out);
int mboxname_to_imap(const char *user, const char *name, struct buf *out);

/* mboxname_user_inbox: "user/USER" into out (reset first). */
void mboxname_user_inbox(const char *user, struct buf *out);

/* mboxname_owner: 1 and the owning user into owner (reset first) for a personal name, 0 for a
 * shared one (owner empty). */
int mboxname_owner(const char *name, struct buf *owner);

/* mboxname_is_inbox: 1 when name is some user's INBOX ("user/X"), else 0. */
int mboxname_is_inbox(const char *name);

/* mboxname_parent: 1 and the parent name into parent (reset first) when name has one, 0 when
 * it is top level. A user's INBOX ("user/fred") is top level: "user" is no mailbox. */
int mboxname_parent(const char *name, struct buf *parent);

/* mboxname_is_descendant: 1 when name is below ancestor ("a/b/c" below "a/b"), else 0. */
int mboxname_is_descendant(const char *name, const char *ancestor);

/* mboxname_match: IMAP LIST matching (RFC 3501 section 6.3.8) of name against pattern, both
 * UTF-8 in the same view: '*' matches any run of characters, '%' any run without '/'; other
 * characters match themselves (byte for byte) except that a leading "INBOX" in the pattern
 * matches INBOX in any case. 1 match, 0 not (also for a pattern over MBOXNAME_PATTERN_MAX).
 * Compiles the pattern at each call: for many names use mboxname_pattern_new. */
int mboxname_match(const char *pattern, const char *name);

/* mboxname_match_ancestor: the length of the longest proper ancestor of name (a prefix ending
 * just before a '/') that pattern matches, or 0 when none does. LIST uses it to show a parent
 * (\Noselect or \NonExistent) whose children match only below the pattern's level. */
size_t mboxname_match_ancestor(const char *pattern, const char *name);

/* Longest LIST pattern (reference and mailbox joined) accepted: names are at most 500 bytes,
 * and matching costs time in proportion to the pattern (review M6). */
#define MBOXNAME_PATTERN_MAX 1024

/* A LIST pattern compiled once and run over many names (mboxlist_list does). */
struct mboxname_pattern;

/* mboxname_pattern_new: compile pattern (as for mboxname_match) into *r; 0, or CF_E_LIMIT
 * when it is longer than MBOXNAME_PATTERN_MAX. Free with mboxname_pattern_free. */
int mboxname_pattern_new(const char *pattern, struct mboxname_pattern **r);
void mboxname_pattern_free(struct mboxname_pattern **p);

/* mboxname_pattern_run: 1 when the pattern matches all of name, else 0; with anc_r, also the
 * length of the longest proper ancestor it matches (as mboxname_match_ancestor) into *anc_r.
 * Time linear in name (times pattern length / 64); no allocation. Uses scratch space in p,
 * so one compiled pattern serves one thread at a time. */
int mboxname_pattern_run(struct mboxname_pattern *p, const char *name, size_t *anc_r);

/* mboxname_pattern_length: the compiled pattern's length once runs of wildcards are merged;
 * matching costs about length / 64 word steps per name byte. */
size_t mboxname_pattern_length(const struct mboxname_pattern *p);

/* mboxname_pattern_literal: the length of pattern's prefix before the first wildcard. */
size_t mboxname_pattern_literal(const char *pattern);

#endif
