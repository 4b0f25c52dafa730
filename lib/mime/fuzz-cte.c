/* fuzz-cte.c: fuzz target for the Content-Transfer-Encoding decoder behind FETCH BINARY and
 * SEARCH (lib/mime/decode.c mime_cte_*). The input is read three ways: as a field value
 * (mime_cte_parse gives a valid encoding), as encoded text (base64 and quoted-printable decode
 * to at most what the input can hold, with 0 or CF_E_PARSE), and as bytes to encode (base64
 * and quoted-printable encodings of them, with line breaks, decode back to exactly them).
 * Every decode is checked against the size counters (mime_cte_decoded_size and the base64 and
 * quoted-printable ones, header form too), which BINARY.SIZE relies on: they must agree on
 * every input, since the cache keeps the counted size and FETCH BINARY sends the decoded bytes.
 * Seeds in test/fuzz/corpus/cte; the driver is libFuzzer (make fuzz) or test/fuzz/fuzz-main.c. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/base64.h"
#include "core/buf.h"
#include "core/error.h"
#include "mime/decode.h"

#define FUZZ_ASSERT(c) do { \
    if (!(c)) { fprintf(stderr, "fuzz-cte: %s:%d: %s\n", __FILE__, __LINE__, #c); abort(); } \
} while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* qp_encode: every byte as =XY, a soft line break every 24 bytes of input (RFC 2045 section
 * 6.7 rule 5), so decoding must join the lines. */
static void qp_encode(const uint8_t *p, size_t n, struct buf *out)
{
    static const char hex[] = "0123456789ABCDEF";
    for (size_t i = 0; i < n; i++) {
        if (i && i % 24 == 0) buf_appends(out, "=\r\n");
        buf_putc(out, '=');
        buf_putc(out, hex[p[i] >> 4]);
        buf_putc(out, hex[p[i] & 15]);
    }
}

/* b64_lines: base64 with CRLF every 76 characters, as mail carries it. */
static void b64_lines(const uint8_t *p, size_t n, struct buf *out)
{
    struct buf flat = BUF_INIT;
    base64_encode(p, n, &flat);
    for (size_t i = 0; i < flat.len; i += 76) {
        if (i) buf_appends(out, "\r\n");
        buf_append(out, flat.s + i, flat.len - i < 76 ? flat.len - i : 76);
    }
    buf_fini(&flat);
}

/* decode_checked: decode in[0,n) with cte into out (reset first) and check that the counter
 * gives the same length; returns what mime_cte_decode returned. */
static int decode_checked(enum mime_cte cte, const char *in, size_t n, struct buf *out)
{
    buf_reset(out);
    int r = mime_cte_decode(cte, in, n, out);
    long long counted = mime_cte_decoded_size(cte, in, n);
    if (r == CF_E_NOTFOUND) FUZZ_ASSERT(counted == CF_E_NOTFOUND);
    else FUZZ_ASSERT(counted >= 0 && (size_t)counted == out->len);
    return r;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *in = (const char *)data;
    struct buf out = BUF_INIT, enc = BUF_INIT;
    enum mime_cte cte = mime_cte_parse(in, size);
    FUZZ_ASSERT(cte >= MIME_CTE_IDENTITY && cte <= MIME_CTE_UNKNOWN);
    cte = mime_cte_of_header(in, size);
    FUZZ_ASSERT(cte >= MIME_CTE_IDENTITY && cte <= MIME_CTE_UNKNOWN);

    /* the input as encoded text */
    int r = decode_checked(MIME_CTE_BASE64, in, size, &out);
    FUZZ_ASSERT(r == 0 || r == CF_E_PARSE);
    FUZZ_ASSERT(out.len <= size / 4 * 3 + 3);
    FUZZ_ASSERT(mime_decode_base64_size(in, size) == out.len);
    r = decode_checked(MIME_CTE_QP, in, size, &out);
    FUZZ_ASSERT(r == 0 || r == CF_E_PARSE);
    FUZZ_ASSERT(out.len <= size);
    FUZZ_ASSERT(mime_decode_qp_size(in, size, 0) == out.len);
    /* the RFC 2047 "Q" form: no line-end stripping, '_' a space */
    buf_reset(&out);
    r = mime_decode_qp(in, size, 1, &out);
    FUZZ_ASSERT(r == 0 || r == CF_E_PARSE);
    FUZZ_ASSERT(mime_decode_qp_size(in, size, 1) == out.len);
    /* decoding after bytes already in the buffer appends the same length */
    buf_reset(&out);
    buf_appends(&out, "prefix");
    mime_decode_base64(in, size, &out);
    FUZZ_ASSERT(out.len == 6 + mime_decode_base64_size(in, size));
    FUZZ_ASSERT(decode_checked(MIME_CTE_IDENTITY, in, size, &out) == 0);
    FUZZ_ASSERT(out.len == size && (!size || !memcmp(out.s, data, size)));
    FUZZ_ASSERT(decode_checked(MIME_CTE_UNKNOWN, in, size, &out) == CF_E_NOTFOUND);
    FUZZ_ASSERT(out.len == 0);

    /* the input as bytes: encoded and decoded again */
    b64_lines(data, size, &enc);
    FUZZ_ASSERT(decode_checked(MIME_CTE_BASE64, enc.s ? enc.s : "", enc.len, &out) == 0);
    FUZZ_ASSERT(out.len == size && (!size || !memcmp(out.s, data, size)));
    buf_reset(&enc);
    qp_encode(data, size, &enc);
    FUZZ_ASSERT(decode_checked(MIME_CTE_QP, enc.s ? enc.s : "", enc.len, &out) == 0);
    FUZZ_ASSERT(out.len == size && (!size || !memcmp(out.s, data, size)));
    buf_fini(&out);
    buf_fini(&enc);
    return 0;
}
