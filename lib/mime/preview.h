/* preview.h: the RFC 8970 message preview (a short plain-text abstract of a message's first
 * text part) and the thread root of RFC 8474 THREADID, both computed from message bytes at
 * append time and kept by the store. */
#ifndef COFFER_MIME_PREVIEW_H
#define COFFER_MIME_PREVIEW_H
#include <stddef.h>
#include "core/buf.h"

#define MIME_PREVIEW_MAX_CHARS 256        /* RFC 8970 section 4: at most 256 characters */
#define MIME_PREVIEW_MAX_BYTES (MIME_PREVIEW_MAX_CHARS * 4)
#define MIME_PREVIEW_SCAN_MAX (256u << 10) /* bytes of one part's body that are decoded */

/* mime_preview: append the preview of msg[0,len) to out (out is not reset): the text of the
 * first text/plain part that is not an attachment and not inside an attached message, else the
 * first such text/html part with its markup removed (script, style and comments dropped,
 * character references decoded); transfer encoding removed, charset converted to UTF-8, every
 * run of white space and control characters made one space, trimmed, and cut after
 * MIME_PREVIEW_MAX_CHARS code points (never inside a UTF-8 sequence). Appends nothing when the
 * message has no such part or it holds no text. The output is valid UTF-8 without control
 * characters, at most MIME_PREVIEW_MAX_BYTES bytes. Only the first MIME_PREVIEW_SCAN_MAX bytes
 * of the chosen part are decoded. Returns the number of bytes appended. Never blocks. */
size_t mime_preview(const char *msg, size_t len, struct buf *out);

/* mime_html_to_text: append the text of HTML (UTF-8) in[0,n) to out, markup removed as
 * mime_preview does it (block elements become a space; white space is not collapsed). */
void mime_html_to_text(const char *in, size_t n, struct buf *out);

/* mime_thread_root: the Message-ID that names the thread of the message whose top-level
 * header block is hdr[0,len): the first msg-id of References, else the first of In-Reply-To,
 * else the message's own Message-ID (RFC 5322 section 3.6.4). Appended to out without the
 * angle brackets and without white space or comments; returns 1, or 0 (out unchanged) when the
 * header names no msg-id at all. */
int mime_thread_root(const char *hdr, size_t len, struct buf *out);

#endif
