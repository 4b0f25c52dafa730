/* http-req.h: the request head of cofferd's metrics endpoint (metrics.c): where it ends and
 * what its request line asks for. Pure functions over bytes, built into test/fuzz/fuzz-http. */
#ifndef COFFER_COFFERD_HTTP_REQ_H
#define COFFER_COFFERD_HTTP_REQ_H
#include <stddef.h>

enum http_target {
    HTTP_BAD = 0,           /* not an HTTP/1.x request line: 400 */
    HTTP_BAD_METHOD,        /* a method other than GET and HEAD: 405 */
    HTTP_NOT_FOUND,         /* another path: 404 */
    HTTP_METRICS,           /* /metrics (a query string is ignored) */
    HTTP_HEALTH,            /* /health */
};

struct http_req {
    enum http_target target;
    int head;               /* HEAD: the answer has no body */
};

/* http_req_head_end: the length of the head in buf[0..len) through the blank line that ends
 * it (CRLF CRLF, or bare LFs), or 0 when it is not complete yet. */
size_t http_req_head_end(const char *buf, size_t len);

/* http_req_parse: what the request line of head[0..len) (a complete head) asks for. Only the
 * first line is read: "METHOD SP PATH SP HTTP/1.x", single spaces, at most 255 bytes. */
void http_req_parse(const char *head, size_t len, struct http_req *out);

#endif
