/* fuzz-imap-partial.c: fuzz target for the PARTIAL range parser (imap-partial.h): the input is
 * the atom a client sends after PARTIAL in SEARCH RETURN. A parsed range must echo as text
 * that parses back to itself, and its window must lie inside the result. Seeds in
 * test/fuzz/corpus/imap-partial. */
#include "core/buf.h"
#include "imap/imap-partial.h"
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct imap_partial p, q;
    const char *err = NULL;
    if (imap_partial_parse((const char *)data, size, &p, &err) < 0) return 0;
    if (p.lo < 1 || p.lo > p.hi) abort();
    struct buf b = BUF_INIT;
    imap_partial_format(&p, &b);
    if (imap_partial_parse(b.s, b.len, &q, &err) < 0 || memcmp(&p, &q, sizeof p)) abort();
    buf_fini(&b);
    static const uint64_t counts[] = { 0, 1, 2, 99, 100, 101, 4294967295u, 4294967296u };
    for (size_t i = 0; i < sizeof counts / sizeof counts[0]; i++) {
        uint64_t first, end;
        int r = imap_partial_window(&p, counts[i], &first, &end);
        if (first > end || end > counts[i] || (r == 1) != (end > first)) abort();
    }
    return 0;
}
