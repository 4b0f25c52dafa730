/* decode.h: turning message bytes into searchable UTF-8: RFC 2047 header words, base64 and
 * quoted-printable bodies (RFC 2045 section 6), charsets, and case-insensitive matching. */
#ifndef COFFER_MIME_DECODE_H
#define COFFER_MIME_DECODE_H
#include <stddef.h>
#include <stdint.h>
#include "core/buf.h"

/* mime_decode_base64: append the bytes that the base64 text in[0,n) encodes to out. Line breaks
 * and other bytes outside the alphabet are skipped; decoding stops at the first '=' pad.
 * Returns 0, or CF_E_PARSE when bytes had to be skipped or a group was cut short (what could be
 * decoded is still appended). Never blocks. */
int mime_decode_base64(const char *in, size_t n, struct buf *out);

/* mime_decode_base64_size: how many bytes mime_decode_base64 would append for in[0,n),
 * without decoding (for the BINARY.SIZE table, binsize.h). Never blocks. */
size_t mime_decode_base64_size(const char *in, size_t n);

/* mime_decode_qp: append the quoted-printable text in[0,n) decoded to out. header != 0 selects
 * the RFC 2047 "Q" form ('_' is a space). Soft line breaks ("=" at a line end) are removed and
 * bad "=XY" sequences are kept as they are. Returns 0, or CF_E_PARSE after bad sequences. */
int mime_decode_qp(const char *in, size_t n, int header, struct buf *out);

/* mime_decode_qp_size: how many bytes mime_decode_qp(in, n, header) would append, without
 * decoding. Never blocks. */
size_t mime_decode_qp_size(const char *in, size_t n, int header);

/* Content-Transfer-Encodings (RFC 2045 section 6.1), as decoding sees them. */
enum mime_cte {
    MIME_CTE_IDENTITY,      /* 7bit, 8bit, binary, or no (or an empty) field: bytes as they are */
    MIME_CTE_BASE64,
    MIME_CTE_QP,            /* quoted-printable */
    MIME_CTE_UNKNOWN,       /* anything else (x-uuencode, garbage): cannot be decoded */
};

/* mime_cte_parse: the encoding a raw Content-Transfer-Encoding field value names (comments
 * and folding allowed around the token, case ignored). Never blocks. */
enum mime_cte mime_cte_parse(const char *value, size_t n);

/* mime_cte_of_header: the encoding the first Content-Transfer-Encoding field of the header
 * block h[0,n) (a message's or a MIME part's header, up to the first empty line) names;
 * MIME_CTE_IDENTITY when there is none. */
enum mime_cte mime_cte_of_header(const char *h, size_t n);

/* mime_cte_decode: append in[0,n) with encoding cte removed to out: mime_decode_base64 or
 * mime_decode_qp (body form), or the bytes as they are. The one decoder behind SEARCH's body
 * text and FETCH BINARY (RFC 3516). Returns 0, CF_E_PARSE when bad input was skipped or kept
 * (the output is complete all the same), CF_E_NOTFOUND for MIME_CTE_UNKNOWN (out unchanged).
 * Never blocks. */
int mime_cte_decode(enum mime_cte cte, const char *in, size_t n, struct buf *out);

/* mime_cte_decoded_size: the number of bytes mime_cte_decode(cte, in, n) would append, found
 * without writing them, or CF_E_NOTFOUND for MIME_CTE_UNKNOWN. Never blocks. */
long long mime_cte_decoded_size(enum mime_cte cte, const char *in, size_t n);

/* mime_charset_to_utf8: append in[0,n), in the named charset (MIME name, case-insensitive,
 * NUL-terminated), to out as valid UTF-8. Invalid sequences become U+FFFD. For an unknown or
 * empty charset, and for us-ascii with 8-bit bytes, the bytes are kept when they are valid UTF-8
 * and else read as Latin-1. Latin-1 (also when named iso-8859-1) takes 0x80-0x9f from
 * windows-1252, as mail in the wild needs. Returns 0, CF_E_NOTFOUND for an unknown charset,
 * or CF_E_PARSE when something was replaced; out is filled in every case. Never blocks (iconv
 * is opened per call: no state is kept between calls, so any thread may call it). */
int mime_charset_to_utf8(const char *charset, const char *in, size_t n, struct buf *out);

/* mime_charset_safe_prefix: the length k <= n of the longest prefix of in[0,n) known to
 * convert (mime_charset_to_utf8, same charset) to the start of what every longer text that
 * begins with in[0,n) converts to, byte for byte: n for Latin-1; up to the last ASCII byte for
 * UTF-8; up to the first non-ASCII byte for the guessed charsets (the guess looks at the whole
 * text); 0 for charsets converted by iconv (multi-byte and stateful ones). For converting only
 * the start of a long text (the preview). Never blocks. */
size_t mime_charset_safe_prefix(const char *charset, const char *in, size_t n);

/* mime_decode_header: append a header field value (raw, possibly folded) to out as UTF-8:
 * unfolded, RFC 2047 encoded-words decoded (white space between adjacent ones dropped, words
 * of one charset joined before conversion so split characters survive; malformed words are
 * left as they are), other 8-bit text read as UTF-8 or else Latin-1. Returns 0. */
int mime_decode_header(const char *value, size_t n, struct buf *out);

/* mime_header_foreach: call cb for every header field of the top-level header of msg (up to the
 * first empty line): name (not NUL-terminated) and its raw value (after the colon, folding
 * kept). A non-zero return from cb stops the walk and is returned; else returns 0. */
typedef int mime_header_cb(void *rock, const char *name, size_t name_len,
                           const char *value, size_t value_len);
int mime_header_foreach(const char *msg, size_t len, mime_header_cb *cb, void *rock);

/* mime_header_foreach_raw: the same walk, for callers that copy fields as they stand (FETCH
 * BODY[HEADER.FIELDS]): cb gets each field's name (trimmed before the colon; possibly empty or
 * starting with white space in a malformed header; NULL when its first line has no colon) and,
 * in place of the value, the whole field: its first line, continuation lines and the line
 * break that ends it (absent only at the end of msg). Malformed fields are passed too. */
int mime_header_foreach_raw(const char *msg, size_t len, mime_header_cb *cb, void *rock);

/* mime_header_find: the first field of the top-level header of msg called name (ASCII case
 * ignored): 1 with its raw value (as mime_header_foreach gives it, pointing into msg), or 0. */
int mime_header_find(const char *msg, size_t len, const char *name, const char **value_r,
                     size_t *value_len_r);

/* mime_header_unfold: append a raw field value to out unfolded (RFC 5322 section 2.2.3: the
 * CR and LF of folding removed) with its leading white space dropped. */
void mime_header_unfold(const char *value, size_t n, struct buf *out);

/* mime_foreach_text: call cb with the decoded UTF-8 body of every text/<any> leaf part of msg,
 * including those inside attached messages, in message order. subtype is uppercase ("PLAIN",
 * "HTML"); text is only valid during the call. A non-zero return from cb stops the walk and is
 * returned; else returns 0. Allocates one buffer per call, never blocks. */
typedef int mime_text_cb(void *rock, const char *subtype, const char *text, size_t len);
int mime_foreach_text(const char *msg, size_t len, mime_text_cb *cb, void *rock);

/* mime_casefold: the simple case folding of a code point (Unicode CaseFolding.txt, C and S
 * entries) for ASCII, Latin-1, Latin Extended-A/B and Additional, Greek, Cyrillic, Armenian
 * and fullwidth Latin; other code points are returned as they are. */
uint32_t mime_casefold(uint32_t cp);

/* mime_text_contains: 1 if needle occurs in haystack ignoring case (mime_casefold), else 0;
 * both UTF-8 (invalid bytes only match themselves). An empty needle matches. */
int mime_text_contains(const char *haystack, const char *needle);
int mime_text_contains_n(const char *haystack, size_t hlen, const char *needle, size_t nlen);

/* mime_text_fold: append the folded form mime_text_contains compares (each code point
 * mime_casefold-ed, as UTF-8; an invalid byte becomes a private-use code point of its own)
 * of s[0,n) to out. The result is valid UTF-8 (so it never holds the byte 0xFF), and
 * mime_text_contains_n(h, needle) is exactly "fold(needle) occurs in fold(h)": folding is
 * done code point by code point, without context. */
void mime_text_fold(const char *s, size_t n, struct buf *out);

#endif
