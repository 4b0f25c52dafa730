/* fuzz-mbheader.c: fuzz target for the mailbox `header` file parser (lib/store/mbheader.c).
 * Property: what parses and encodes parses again to the same values. */
#include "fuzz-util.h"
#include "core/buf.h"
#include "core/error.h"
#include "store/mbheader.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct mbheader h, h2;
    mbheader_init(&h);
    mbheader_init(&h2);
    int r = mbheader_parse((const char *)data, size, &h);
    FUZZ_ASSERT(r == 0 || r == CF_E_CORRUPT);
    if (r == 0) {
        FUZZ_ASSERT(h.name && h.uniqueid && h.acl && h.uidvalidity > 0);
        struct buf b = BUF_INIT;
        if (mbheader_encode(&h, &b) == 0) {
            FUZZ_ASSERT(mbheader_parse(b.s, b.len, &h2) == 0);
            FUZZ_ASSERT(!strcmp(h.name, h2.name) && !strcmp(h.uniqueid, h2.uniqueid) &&
                        !strcmp(h.acl, h2.acl) && h.uidvalidity == h2.uidvalidity);
        }
        buf_fini(&b);
    }
    mbheader_fini(&h);
    mbheader_fini(&h2);
    return 0;
}
