/* imap-sort.h: the string keys of SORT and THREAD (RFC 5256): base-subject extraction
 * (section 2.1), the i;unicode-casemap canonical form (RFC 5051) under which the keys are
 * compared octet by octet, and the msg-id lists of Message-ID, References and In-Reply-To
 * (section 3, REFERENCES step 1). Pure functions over bytes: no store, no I/O. */
#ifndef COFFER_IMAP_IMAP_SORT_H
#define COFFER_IMAP_IMAP_SORT_H
#include "core/buf.h"
#include <stddef.h>

/* imap_base_subject: append the base subject (RFC 5256 section 2.1) of the raw (possibly
 * folded, possibly RFC 2047 encoded) Subject field value s[0,n) to out, as UTF-8 before any
 * case mapping. *reply_r (may be NULL) is set to 1 when the extraction removed a reply or
 * forward marker ("Re:", "Fw:", "Fwd:", a "(fwd)" trailer, a "[fwd: ...]" wrapper: the
 * "Re:" test of the REFERENCES algorithm, step 6), else 0. Never blocks. */
void imap_base_subject(const char *s, size_t n, struct buf *out, int *reply_r);

/* imap_base_subject_decoded: the same, for a value already decoded to UTF-8 (step 1's
 * white space folding is still done). */
void imap_base_subject_decoded(const char *s, size_t n, struct buf *out, int *reply_r);

/* imap_casemap: append the i;unicode-casemap canonical form (RFC 5051 section 2) of the UTF-8
 * string s[0,n) to out: each character's simple titlecase mapping, then its full
 * decomposition. On ASCII it is i;ascii-casemap (letters uppercased). Bytes that are not
 * valid UTF-8 are copied as they are. Two strings collate by memcmp of their forms. */
void imap_casemap(const char *s, size_t n, struct buf *out);

/* imap_msgid_next: the next msg-id ("<left@right>") in the field value [*p, end): 1 with
 * the text between the angle brackets in *id_r and *len_r and *p moved past it, or 0 when there
 * is none. Comments and stray text between ids are skipped; an id holding white space, '<'
 * or no '@' is not valid and skipped (RFC 5256 section 3: ids that are not valid are
 * ignored). */
int imap_msgid_next(const char **p, const char *end, const char **id_r, size_t *len_r);

#endif
