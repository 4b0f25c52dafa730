/* fuzz-imap-downconvert.c: fuzz target for the ENVELOPE/BODYSTRUCTURE down-conversion
 * (imap-downconvert.h): the input stands for a cached response text, which a damaged cache
 * record can make anything. The output must keep every byte outside the rewritten literals
 * (with none rewritten the output is the input), and converting the output again must
 * rewrite nothing and change nothing (what it writes is ASCII in quoted strings). Seeds in
 * test/fuzz/corpus/imap-downconvert. */
#include "core/buf.h"
#include "imap/imap-downconvert.h"
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct buf a = BUF_INIT, b = BUF_INIT;
    size_t n = imap_downconvert_append((const char *)data, size, &a);
    if (!n && (a.len != size || (size && memcmp(a.s, data, size)))) abort();
    size_t m = imap_downconvert_append(a.s ? a.s : "", a.len, &b);
    if (m || b.len != a.len || (a.len && memcmp(a.s, b.s, a.len))) abort();
    buf_fini(&a);
    buf_fini(&b);
    return 0;
}
