/* fuzz-router.c: fuzz target for the router's request parsers (server/router/router-parse.c):
 * the input as an HTTP request head (an auth_http request), its header values through
 * url_decode, and as a run of netstrings (socketmap requests). Properties: a parsed head has
 * a method and target without white space and header values without CR, LF or NUL; decoding
 * never grows a value; a netstring's payload lies inside the input, before the ',' it used. */
#include "fuzz-util.h"
#include "core/buf.h"
#include "core/error.h"
#include "router/router-parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *p = (const char *)data;
    struct http_req req;
    int r = http_parse_head(p, size, &req);
    FUZZ_ASSERT(r == 0 || r == CF_E_PARSE || r == CF_E_LIMIT);
    if (r == 0) {
        FUZZ_ASSERT(req.method && *req.method && !strpbrk(req.method, " \t\r\n"));
        FUZZ_ASSERT(req.target && *req.target && !strpbrk(req.target, " \t\r\n"));
        FUZZ_ASSERT(req.headers.count % 2 == 0 && req.headers.count / 2 <= HTTP_MAX_HEADERS);
        for (size_t i = 0; i < req.headers.count; i += 2) {
            const char *name = req.headers.v[i], *val = req.headers.v[i + 1];
            FUZZ_ASSERT(*name && !strpbrk(name, " \t\r\n:"));
            FUZZ_ASSERT(!strpbrk(val, "\r\n"));
            FUZZ_ASSERT(http_header(&req, name) == val);   /* no name twice */
            struct buf out = BUF_INIT;
            if (url_decode(val, &out) == 0) {
                FUZZ_ASSERT(out.len <= strlen(val));
                FUZZ_ASSERT(!memchr(out.s ? out.s : "", '\0', out.len));
            }
            buf_fini(&out);
        }
    }
    http_req_fini(&req);

    size_t off = 0;
    while (off < size) {
        const char *d;
        size_t dlen, used;
        r = netstring_parse(p + off, size - off, 4096, &d, &dlen, &used);
        FUZZ_ASSERT(r == 1 || r == 0 || r == CF_E_PARSE || r == CF_E_LIMIT);
        if (r != 1) break;
        FUZZ_ASSERT(used >= dlen + 3 && used <= size - off && dlen <= 4096);
        FUZZ_ASSERT(d > p + off && d + dlen < p + off + used && d[dlen] == ',');
        off += used;
    }
    return 0;
}
