/* fuzz-http.c: fuzz target for the metrics endpoint's request head (server/cofferd/http-req.c),
 * fed as metrics.c feeds it: the bytes read so far, at most 4095. Properties: the head's end
 * lies inside the input and right after a LF; a request the parser accepts has a first line of
 * "GET " or "HEAD ", one more space, and "HTTP/1." followed by a digit at its end. */
#include "fuzz-util.h"
#include "cofferd/http-req.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 4095) size = 4095;
    const char *in = (const char *)data;
    size_t end = http_req_head_end(in, size);
    FUZZ_ASSERT(end <= size);
    if (end) FUZZ_ASSERT(in[end - 1] == '\n' && end >= 2);
    struct http_req r;
    http_req_parse(in, end ? end : size, &r);
    FUZZ_ASSERT(r.target >= HTTP_BAD && r.target <= HTTP_HEALTH);
    if (r.target != HTTP_BAD) {
        size_t eol = 0;
        while (eol < size && in[eol] != '\r' && in[eol] != '\n') eol++;
        FUZZ_ASSERT(eol >= 12 && eol < 256);   /* "M / HTTP/1.1" */
        FUZZ_ASSERT(!memcmp(in + eol - 9, " HTTP/1.", 8));
        FUZZ_ASSERT(in[eol - 1] >= '0' && in[eol - 1] <= '9');
        if (r.target != HTTP_BAD_METHOD)
            FUZZ_ASSERT(!memcmp(in, r.head ? "HEAD " : "GET ", r.head ? 5 : 4));
    }
    if (r.head) FUZZ_ASSERT(!memcmp(in, "HEAD ", 5));
    return 0;
}
