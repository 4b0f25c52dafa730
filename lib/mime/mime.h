/* mime.h: Coffer's MIME parser: one pass over a raw message yields its IMAP ENVELOPE, BODY and
 * BODYSTRUCTURE (RFC 3501 section 7.4.2) and a section table for BODY[section] fetches. */
#ifndef COFFER_MIME_MIME_H
#define COFFER_MIME_MIME_H
#include <stddef.h>
#include <stdint.h>
#include "core/buf.h"

/* Limits: deeper nesting or more parts than these stop the descent (the rest of the message is
 * summarized as an opaque leaf) and mime_summarize returns CF_E_LIMIT. */
#define MIME_MAX_DEPTH 100
#define MIME_MAX_PARTS 10000

/* What the mailbox layer stores in its cache file for each message. Every buf holds text with no
 * NUL bytes, ready to be sent on the wire as it is (no trailing CRLF). */
struct mime_summary {
    struct buf envelope;       /* IMAP ENVELOPE, RFC 3501 section 7.4.2, exact wire syntax */
    struct buf bodystructure;  /* BODYSTRUCTURE, extensible form (with extension data) */
    struct buf body;           /* BODY, non-extensible form */
    struct buf sections;       /* serialized section table (format below) */
    uint32_t header_size;      /* bytes of the top-level header incl. the empty line */
    uint32_t body_lines;       /* lines in the top-level body */
};

/* mime_summary_init/fini: set up an empty summary / free its buffers (it can be reused after
 * init again). mime_summarize resets the buffers itself, so one summary can serve many calls. */
void mime_summary_init(struct mime_summary *s);
void mime_summary_fini(struct mime_summary *s);

/* mime_summarize: parse msg (raw RFC 5322 bytes, CRLF or LF) into s. Never fails on malformed
 * input (it does its best, as IMAP servers must); returns 0, or CF_E_LIMIT past nesting limits
 * after filling what it could. Does not block; msg is only read, never kept. */
int mime_summarize(const char *msg, size_t len, struct mime_summary *s);

/* mime_summarize_preview: mime_summarize, and the RFC 8970 preview of the same message
 * appended to preview (exactly what mime_preview in preview.h appends) from the same parse:
 * delivery needs both, and parsing twice was a tenth of what they cost. */
int mime_summarize_preview(const char *msg, size_t len, struct mime_summary *s,
                           struct buf *preview);

/* The section table (struct mime_summary.sections) is text, so a cache dump stays readable:
 *
 *   "S1\n" then one line per addressable part, in depth-first order:
 *   PART SP HOFF SP HLEN SP BOFF SP BLEN SP FLAGS SP MHLEN LF
 *
 * PART is the IMAP part spec ("1", "1.2", ...), or "0" for the whole message (looked up as "").
 * HOFF/HLEN and BOFF/BLEN are decimal byte offsets and lengths, from the start of the message, of
 * the part's MIME header (including its empty line) and of its body. FLAGS is "-" or any of "M"
 * (multipart) and "R" (message/rfc822). MHLEN, for an R part, is the length
 * of the encapsulated message's header (which starts at BOFF), else 0.
 *
 * Every spec a client may name is listed: a non-multipart message has part "1" (same header and
 * body as part "0"); so has the message inside a non-multipart message/rfc822 part "N" ("N.1").
 * For part "0" the header is the message header and the body is everything after it. */

/* One located part. For an R part, BODY[N] is body_off/body_len (the whole encapsulated
 * message), BODY[N.HEADER] is body_off/msg_header_len, BODY[N.TEXT] is the rest of the body;
 * BODY[N.MIME] is header_off/header_len for every part. */
struct mime_section { uint64_t header_off, header_len, body_off, body_len; int is_message_rfc822;
                      int is_multipart; uint64_t msg_header_len; };

/* mime_section_find: look up an IMAP section part spec ("" = whole message, "1", "1.2",
 * "2.1.3": digits and dots only, the caller strips HEADER, TEXT, MIME and HEADER.FIELDS) in a
 * serialized section table; returns 1 found with offsets (from the start of the message) of
 * that part's MIME header and body, 0 not found (also for a malformed table, which it reads
 * with bounds checks: the cache file may be damaged). Linear in the table; never blocks. */
int mime_section_find(const char *table, size_t table_len, const char *part,
                      struct mime_section *out);

/* One address of an address header field (From, To, Cc, ...), as ENVELOPE shows it: comments
 * and folding removed, quoted-pairs resolved, white space between tokens dropped. The strings
 * are not NUL-terminated and live until the callback returns. */
struct mime_address {
    const char *name;       /* display name (or the comment after a bare addr-spec); NULL if none */
    size_t name_len;
    const char *route, *mailbox, *domain;   /* obs-route ("" if none), local part, domain */
    size_t route_len, mailbox_len, domain_len;
};

enum { MIME_ADDRESS, MIME_ADDRESS_GROUP_START, MIME_ADDRESS_GROUP_END };

/* mime_address_fn: kind is MIME_ADDRESS, or a group's start (its display name in name) or
 * end (all empty). Return non-zero to stop the walk. */
typedef int mime_address_fn(void *rock, int kind, const struct mime_address *a);

/* mime_address_foreach: parse the raw (possibly folded) value of an address field (RFC 5322
 * section 3.4 with the obsolete forms of section 4.4, as tolerant as ENVELOPE) and call cb for
 * each address and group marker in order. Returns the first non-zero value of cb, else 0.
 * Encoded words (RFC 2047) in names are left encoded. Never blocks. */
int mime_address_foreach(const char *value, size_t len, mime_address_fn *cb, void *rock);

#endif
