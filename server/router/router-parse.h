/* router-parse.h: the two small request formats of the router service (man/router.8): the
 * head of an HTTP/1.0 request as nginx's auth_http sends it (RFC 9112 sections 2-5, GET only,
 * no body), percent-decoding of its header values, and netstrings (Postfix socketmap_table(5),
 * D. J. Bernstein's netstring format). No I/O and no session state: also built into
 * test/fuzz/fuzz-router. */
#ifndef COFFER_ROUTER_PARSE_H
#define COFFER_ROUTER_PARSE_H
#include "core/buf.h"
#include "core/strarr.h"
#include <stddef.h>

#define HTTP_MAX_HEAD 8192          /* request line and headers together, line ends included */
#define HTTP_MAX_HEADERS 64

struct http_req {
    char *method;
    char *target;                   /* the request target as sent ("/auth") */
    int minor;                      /* HTTP/1.minor */
    struct strarr headers;          /* name, value, name, value, ...; values trimmed */
};

/* http_parse_head: parse the request line and header lines in head[0..len) (each line ended
 * by CRLF or LF, without the final empty line) into req (fresh; free with http_req_fini even
 * on error). 0, or CF_E_PARSE (a malformed request line, a version other than HTTP/1.x, a
 * header line without a name or colon, white space before the colon, folding, a control
 * character, a header given twice, more than HTTP_MAX_HEADERS) or CF_E_LIMIT (len over
 * HTTP_MAX_HEAD). */
int http_parse_head(const char *head, size_t len, struct http_req *req);
void http_req_fini(struct http_req *req);

/* http_header: the value of header name (case-insensitive), or NULL. */
const char *http_header(const struct http_req *req, const char *name);

/* url_decode: append s with %XX sequences decoded to out. 0, or CF_E_PARSE for a '%' not
 * followed by two hex digits or a decoded NUL. '+' stays '+' (nginx escapes a space as %20). */
int url_decode(const char *s, struct buf *out);

/* netstring_parse: one netstring "LEN:DATA," at the start of p[0..len). Returns 1 with
 * *data and *dlen the payload and *used the bytes taken; 0 when more input is needed; CF_E_PARSE
 * when it cannot be a netstring (no digits, a leading zero in a longer length, a missing ':'
 * or ','); CF_E_LIMIT when LEN is over max. */
int netstring_parse(const char *p, size_t len, size_t max, const char **data, size_t *dlen,
                    size_t *used);

#endif
