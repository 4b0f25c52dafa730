/* base64.h: base64 (RFC 4648 section 4) as SASL exchanges use it in IMAP AUTHENTICATE, POP3
 * AUTH and SMTP/LMTP AUTH: standard alphabet, padding, no line breaks. (Lenient decoding of
 * message bodies is mime_decode_base64 in lib/mime.) */
#ifndef COFFER_CORE_BASE64_H
#define COFFER_CORE_BASE64_H
#include "core/buf.h"
#include <stddef.h>

/* base64_encode: append the base64 form of p[0,n) to out. */
void base64_encode(const void *p, size_t n, struct buf *out);

/* base64_decode: strict: length a multiple of 4, '=' only as the last one or two characters,
 * nothing outside the alphabet (RFC 3501 section 6.2.2 and RFC 4954 ask for an error then).
 * The bytes replace out's contents. 0 or CF_E_PARSE. */
int base64_decode(const char *s, size_t n, struct buf *out);

#endif
