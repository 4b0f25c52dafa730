/* imap-downconvert.h: the down-conversion of UTF-8 header text for IMAP sessions that did not
 * enable UTF8=ACCEPT or IMAP4rev2 (RFC 6855 section 7, after RFC 6857 section 3): the strings
 * of an ENVELOPE, BODY or BODYSTRUCTURE response that hold UTF-8 become RFC 2047 encoded-words,
 * which every IMAP4rev1 client decodes, instead of raw 8-bit bytes in a literal. */
#ifndef COFFER_IMAP_IMAP_DOWNCONVERT_H
#define COFFER_IMAP_IMAP_DOWNCONVERT_H
#include "core/buf.h"
#include <stddef.h>

/* Raw bytes in one encoded-word: 45 give 60 base64 characters, so "=?UTF-8?B?...?=" is 72
 * characters, under RFC 2047 section 2's 75. */
#define IMAP_DOWNCONVERT_WORD 45

/* imap_downconvert_append: append the response text in[0,len) (IMAP syntax as
 * lib/mime writes it: quoted strings, literals, NIL, numbers, parentheses) to out, with each
 * literal whose content is valid UTF-8 holding a non-ASCII character and no NUL, CR or LF
 * written instead as a quoted string of encoded-words "=?UTF-8?B?...?=" separated by single
 * spaces, each of at most IMAP_DOWNCONVERT_WORD bytes cut at character boundaries. Every
 * other byte is copied as it is: quoted strings (whatever they hold), literals that are not
 * UTF-8 (another charset stays as it came), and from a literal header that does not parse
 * or whose length runs past the end (a damaged cache record), the rest of the text. Returns
 * how many strings were rewritten. Does not block; out grows as needed. */
size_t imap_downconvert_append(const char *in, size_t len, struct buf *out);

/* imap_downconvert_utf8: 1 when s[0,n) is well-formed UTF-8 (no overlong form, surrogate or
 * code point past U+10FFFF) with at least one non-ASCII character, else 0. */
int imap_downconvert_utf8(const unsigned char *s, size_t n);

#endif
