/* fuzz-base64.c: fuzz target for the strict SASL base64 (lib/core/base64.c). Properties:
 * encoding then decoding gives the bytes back; what decodes re-encodes to a string that
 * decodes to the same bytes; a decoded length is 3/4 of the input less the padding. */
#include "fuzz-util.h"
#include "core/base64.h"
#include "core/buf.h"
#include "core/error.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct buf enc = BUF_INIT, dec = BUF_INIT, again = BUF_INIT;
    /* the input as bytes to send */
    base64_encode(data, size, &enc);
    FUZZ_ASSERT(enc.len == (size + 2) / 3 * 4);
    FUZZ_ASSERT(base64_decode(enc.s ? enc.s : "", enc.len, &dec) == 0);
    FUZZ_ASSERT(dec.len == size && (!size || !memcmp(dec.s, data, size)));
    /* the input as what a client sent */
    buf_reset(&enc);
    int r = base64_decode((const char *)data, size, &dec);
    FUZZ_ASSERT(r == 0 || r == CF_E_PARSE);
    if (r == 0) {
        FUZZ_ASSERT(size % 4 == 0 && dec.len <= size / 4 * 3 && dec.len + 2 >= size / 4 * 3);
        base64_encode(dec.s, dec.len, &enc);
        FUZZ_ASSERT(enc.len == size);
        FUZZ_ASSERT(base64_decode(enc.s ? enc.s : "", enc.len, &again) == 0);
        FUZZ_ASSERT(again.len == dec.len && (!dec.len || !memcmp(again.s, dec.s, dec.len)));
    }
    buf_fini(&enc);
    buf_fini(&dec);
    buf_fini(&again);
    return 0;
}
