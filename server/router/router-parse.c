/* router-parse.c: HTTP request heads, percent-decoding and netstrings (router-parse.h). */
#include "router/router-parse.h"
#include "core/error.h"
#include "core/xmalloc.h"
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* tchar: a token character of a method or header name (RFC 9110 section 5.6.2) */
static int tchar(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c && strchr("!#$%&'*+-.^_`|~", c));
}

/* parse_request_line: "METHOD SP TARGET SP HTTP/1.N" */
static int parse_request_line(const char *l, size_t n, struct http_req *req)
{
    const char *end = l + n, *p = l;
    while (p < end && tchar((unsigned char)*p)) p++;
    if (p == l || p >= end || *p != ' ') return CF_E_PARSE;
    req->method = xstrndup(l, (size_t)(p - l));
    const char *t = ++p;
    while (p < end && (unsigned char)*p > ' ' && *p != 0x7f) p++;
    if (p == t || p >= end || *p != ' ') return CF_E_PARSE;
    req->target = xstrndup(t, (size_t)(p - t));
    p++;
    if (end - p != 8 || memcmp(p, "HTTP/1.", 7) || p[7] < '0' || p[7] > '9') return CF_E_PARSE;
    req->minor = p[7] - '0';
    return 0;
}

static int parse_header(const char *l, size_t n, struct http_req *req)
{
    const char *end = l + n, *p = l;
    while (p < end && tchar((unsigned char)*p)) p++;
    if (p == l || p >= end || *p != ':') return CF_E_PARSE;   /* also folding, space before ':' */
    char *name = xstrndup(l, (size_t)(p - l));
    if (http_header(req, name)) {
        free(name);
        return CF_E_PARSE;
    }
    p++;
    while (p < end && (*p == ' ' || *p == '\t')) p++;
    while (end > p && (end[-1] == ' ' || end[-1] == '\t')) end--;
    for (const char *q = p; q < end; q++)
        if (((unsigned char)*q < ' ' && *q != '\t') || *q == 0x7f) {
            free(name);
            return CF_E_PARSE;
        }
    strarr_add(&req->headers, name);
    free(name);
    char *val = xstrndup(p, (size_t)(end - p));
    strarr_add(&req->headers, val);
    free(val);
    return 0;
}

int http_parse_head(const char *head, size_t len, struct http_req *req)
{
    memset(req, 0, sizeof *req);
    strarr_init(&req->headers);
    if (len > HTTP_MAX_HEAD) return CF_E_LIMIT;
    const char *p = head, *end = head + len;
    int first = 1;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        if (!nl) return CF_E_PARSE;                /* every line is ended */
        size_t n = (size_t)(nl - p);
        if (n && p[n - 1] == '\r') n--;
        if (memchr(p, '\r', n) || memchr(p, '\0', n)) return CF_E_PARSE;
        int r;
        if (first) {
            r = parse_request_line(p, n, req);
            first = 0;
        } else if (req->headers.count / 2 >= HTTP_MAX_HEADERS) {
            r = CF_E_PARSE;
        } else {
            r = parse_header(p, n, req);
        }
        if (r) return r;
        p = nl + 1;
    }
    return first ? CF_E_PARSE : 0;
}

void http_req_fini(struct http_req *req)
{
    free(req->method);
    free(req->target);
    strarr_fini(&req->headers);
    req->method = req->target = NULL;
}

const char *http_header(const struct http_req *req, const char *name)
{
    for (size_t i = 0; i + 1 < req->headers.count; i += 2)
        if (!strcasecmp(req->headers.v[i], name)) return req->headers.v[i + 1];
    return NULL;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

int url_decode(const char *s, struct buf *out)
{
    for (; *s; s++) {
        if (*s != '%') {
            buf_putc(out, *s);
            continue;
        }
        int hi = hexval(s[1]), lo = hi < 0 ? -1 : hexval(s[2]);
        if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) return CF_E_PARSE;
        buf_putc(out, (char)(hi * 16 + lo));
        s += 2;
    }
    return 0;
}

int netstring_parse(const char *p, size_t len, size_t max, const char **data, size_t *dlen,
                    size_t *used)
{
    size_t i = 0, n = 0;
    while (i < len && p[i] >= '0' && p[i] <= '9') {
        if (i == 1 && p[0] == '0') return CF_E_PARSE;       /* "0" alone, never "012" */
        n = n * 10 + (size_t)(p[i] - '0');
        if (n > max) return CF_E_LIMIT;
        i++;
    }
    if (i == len) return 0;
    if (i == 0 || p[i] != ':') return CF_E_PARSE;
    i++;
    if (len - i < n + 1) return 0;
    if (p[i + n] != ',') return CF_E_PARSE;
    *data = p + i;
    *dlen = n;
    *used = i + n + 1;
    return 1;
}
