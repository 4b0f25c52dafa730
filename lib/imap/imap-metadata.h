/* imap-metadata.h: the arguments of GETMETADATA and SETMETADATA (RFC 5464 sections 4.2, 4.3
 * and 5), entry names (section 3.2), and values as the METADATA response writes them. Pure
 * parsing over the parser's typed arguments (imap-arg.h); the session checks rights and the
 * store keeps the entries. */
#ifndef COFFER_IMAP_IMAP_METADATA_H
#define COFFER_IMAP_IMAP_METADATA_H
#include "core/buf.h"
#include "core/strarr.h"
#include "imap/imap-arg.h"
#include <stddef.h>
#include <stdint.h>

/* Longest entry name accepted, in bytes. RFC 5464 sets none; real ones are far shorter. */
#define IMAP_METADATA_ENTRY_MAX 1024

/* imap_metadata_entry_valid: 1 when s[0,len) is an entry name a client may use (RFC 5464
 * section 3.2 and the "entry" rule of section 5): "/shared" or "/private", optionally followed
 * by "/"-separated non-empty parts of printable ASCII other than space, '*' and '%' or UTF-8
 * (RFC 5464 forbids wildcards and controls; spaces are refused too, as no client uses them),
 * with no trailing "/", at most IMAP_METADATA_ENTRY_MAX bytes. With for_set the bare scope is
 * refused (only entries below it hold values). 0 otherwise. Scope names ignore ASCII case. */
int imap_metadata_entry_valid(const char *s, size_t len, int for_set);

/* GETMETADATA [options] mailbox entries (section 4.2). */
struct imap_metadata_get {
    const char *mailbox;         /* points into the arguments; "" is the server */
    int depth;                   /* DEPTH: 0 (default), 1, or -1 for infinity (4.2.2) */
    int64_t maxsize;             /* MAXSIZE (4.2.1), or -1 when not given */
    struct strarr entries;       /* the entry names as sent, in order, no duplicates */
};

/* imap_metadata_parse_get: args of GETMETADATA into g (initialised here; free with
 * imap_metadata_get_fini, also after an error). The options may stand before the mailbox
 * (RFC 5464) or after it (as drafts had it, and some clients still send). 0, or CF_E_PARSE
 * with a short reason for a BAD reply in *why. */
int imap_metadata_parse_get(const struct imap_arg *args, size_t nargs, struct imap_metadata_get *g,
                            const char **why);
void imap_metadata_get_fini(struct imap_metadata_get *g);

/* One entry-value pair of SETMETADATA: value NULL for NIL (remove the entry). */
struct imap_metadata_item {
    const char *entry;
    const char *value;           /* may hold NUL bytes when sent as literal8 */
    size_t len;
};

/* SETMETADATA mailbox (entry value ...) (section 4.3). */
struct imap_metadata_set {
    const char *mailbox;         /* points into the arguments; "" is the server */
    struct imap_metadata_item *items;   /* owned; strings point into the arguments */
    size_t n;
};

/* imap_metadata_parse_set: args of SETMETADATA into s (free with imap_metadata_set_fini, also
 * after an error). Values are nstrings or literal8 (section 5: value = nstring / literal8).
 * 0 or CF_E_PARSE with *why. */
int imap_metadata_parse_set(const struct imap_arg *args, size_t nargs, struct imap_metadata_set *s,
                            const char **why);
void imap_metadata_set_fini(struct imap_metadata_set *s);

/* imap_metadata_value_append: a value for a METADATA response: NIL for v NULL, a literal8
 * ~{N} when it holds NUL bytes, else a quoted string or a literal (imap_string_append). */
void imap_metadata_value_append(struct buf *out, const char *v, size_t len);

#endif
