/* fuzz-utf7.c: fuzz target for IMAP modified UTF-7 (RFC 3501 section 5.1.3) in
 * lib/store/mboxname.c, both directions. Properties: UTF-8 that encodes decodes back to
 * itself; modified UTF-7 that the strict decoder accepts is canonical, so encoding the result
 * gives the input back; decoded text is valid for the encoder. Also runs the name checks and
 * the IMAP name mapping on the same text. */
#include "fuzz-util.h"
#include "core/buf.h"
#include "core/error.h"
#include "store/mboxname.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *in = fuzz_cstr(data, size);
    struct buf a = BUF_INIT, b = BUF_INIT;

    int r = mboxname_utf8_to_utf7(in, &a);
    FUZZ_ASSERT(r == 0 || r == CF_E_PARSE);
    if (r == 0) {
        for (size_t i = 0; i < a.len; i++)
            FUZZ_ASSERT(a.s[i] >= 0x20 && a.s[i] <= 0x7e);
        FUZZ_ASSERT(mboxname_utf7_to_utf8(buf_cstr(&a), &b) == 0);
        FUZZ_ASSERT(!strcmp(buf_cstr(&b), in));
    }
    buf_reset(&a);
    buf_reset(&b);
    r = mboxname_utf7_to_utf8(in, &a);
    FUZZ_ASSERT(r == 0 || r == CF_E_PARSE);
    if (r == 0) {
        FUZZ_ASSERT(mboxname_utf8_to_utf7(buf_cstr(&a), &b) == 0);
        FUZZ_ASSERT(!strcmp(buf_cstr(&b), in));
    }
    buf_reset(&a);
    (void)mboxname_valid(in);
    (void)mboxname_valid_user(in);
    if (mboxname_from_imap("fred", in, &a) == 0) {
        buf_reset(&b);
        (void)mboxname_to_imap("fred", buf_cstr(&a), &b);
    }
    free(in);
    buf_fini(&a);
    buf_fini(&b);
    return 0;
}
