/* imap-arg.h: the typed arguments of a parsed IMAP command (RFC 3501 section 9), and the
 * FETCH body section token BODY[section]<partial>. */
#ifndef COFFER_IMAP_IMAP_ARG_H
#define COFFER_IMAP_IMAP_ARG_H
#include "core/buf.h"
#include <stddef.h>
#include <stdint.h>

enum imap_arg_type {
    IMAP_ARG_ATOM,      /* an atom; also flags (\Seen), numbers, sequence sets, list wildcards
                         * and astring characters such as ']' */
    IMAP_ARG_QUOTED,    /* "..." with its \" and \\ escapes removed */
    IMAP_ARG_LITERAL,   /* {N} or {N+} and its N bytes (RFC 3501 section 4.3, RFC 7888);
                         * also ~{N} / ~{N+}, literal8 (RFC 3516 section 4.4): literal8 set */
    IMAP_ARG_NIL,       /* the atom NIL, any case; s still holds the text as sent */
    IMAP_ARG_LIST,      /* ( ... ) */
    IMAP_ARG_SECTION,   /* BODY[..]<..>, BODY.PEEK[..], BINARY[..], BINARY.PEEK[..], BINARY.SIZE[..] */
};

/* What follows the part numbers in a section (RFC 3501 section 6.4.5). */
enum imap_section_text {
    IMAP_SECTION_NONE,              /* BODY[] or BODY[1.2] */
    IMAP_SECTION_HEADER,
    IMAP_SECTION_HEADER_FIELDS,
    IMAP_SECTION_HEADER_FIELDS_NOT,
    IMAP_SECTION_TEXT,
    IMAP_SECTION_MIME,              /* only after part numbers */
};

struct imap_section {
    const char *name;               /* upper case: "BODY", "BODY.PEEK", "BINARY", ... */
    const uint32_t *parts;          /* part numbers, each >= 1 */
    size_t nparts;
    enum imap_section_text text;
    const char *const *fields;      /* HEADER.FIELDS[.NOT] names as sent */
    size_t nfields;
    int has_partial;                /* <offset.count> was given */
    uint32_t partial_offset, partial_count;
};

struct imap_arg {
    enum imap_arg_type type;
    const char *s;                  /* ATOM, QUOTED, LITERAL, NIL: the bytes, NUL-terminated;
                                     * SECTION: the section name; LIST: NULL */
    size_t len;                     /* length of s */
    const struct imap_arg *list;    /* LIST: the elements */
    size_t count;                   /* LIST: number of elements */
    const struct imap_section *section;  /* SECTION only */
    int nonsync;                    /* LITERAL: sent as {N+} */
    int literal8;                   /* LITERAL: sent as ~{N}; may hold NUL bytes. Only the
                                     * parser's APPEND arguments can be literal8, and the
                                     * string accessors below refuse it (NULL / 0): only
                                     * message data may be binary */
};

/* imap_arg_astring: the text of an astring (atom, quoted, literal, or the atom NIL, which is
 * a valid mailbox name), or NULL for a list, section or literal8. Points into the argument. */
const char *imap_arg_astring(const struct imap_arg *a);

/* imap_arg_string: the text of a string (quoted or literal, not literal8), else NULL. */
const char *imap_arg_string(const struct imap_arg *a);

/* imap_arg_nstring: 1 and *out = text for a string, 1 and *out = NULL for NIL, 0 otherwise
 * (literal8 included). */
int imap_arg_nstring(const struct imap_arg *a, const char **out);

/* imap_arg_atom: the text of an atom (including NIL), else NULL. */
const char *imap_arg_atom(const struct imap_arg *a);

/* imap_arg_atom_eq: 1 when a is an atom equal to word ignoring ASCII case. */
int imap_arg_atom_eq(const struct imap_arg *a, const char *word);

/* imap_arg_number: 0 and *out for an atom of digits that fits RFC 3501's 32-bit number,
 * else CF_E_PARSE. */
int imap_arg_number(const struct imap_arg *a, uint32_t *out);

/* imap_section_format: append the section token to out in canonical form, e.g.
 * BODY.PEEK[1.2.HEADER.FIELDS (From To)]<0.100>. With for_response set, the form a FETCH
 * response names it by (RFC 3501 section 7.4.2): ".PEEK" dropped, partial as <offset>. */
void imap_section_format(const struct imap_section *sec, int for_response, struct buf *out);

/* imap_arg_format: append a (and list elements) to out as IMAP would send it back: atoms
 * bare, strings quoted when possible else as literals, lists in parentheses. For tests,
 * debugging and echoing. */
void imap_arg_format(const struct imap_arg *a, struct buf *out);

/* imap_string_append: s as a quoted string, or as a literal when it holds CR, LF, NUL or
 * 8-bit bytes, which quoting cannot carry (RFC 3501 section 4.3). */
void imap_string_append(struct buf *out, const char *s, size_t len);

/* imap_astring_append: append s as an astring: bare atom when safe, else quoted, else a
 * literal (when it holds CR, LF, NUL or 8-bit bytes). */
void imap_astring_append(struct buf *out, const char *s, size_t len);

#endif
