/* fuzz-preview.c: fuzz target for the RFC 8970 preview extractor and the thread root
 * (lib/mime/preview.c), which read untrusted MIME at every append: the preview must be valid
 * UTF-8 without control characters, at most 256 code points and MIME_PREVIEW_MAX_BYTES bytes,
 * with no leading or trailing space, and the same bytes whether it was made from the start of
 * the part (mime_preview), from all of it at once (the reference) or from mime_summarize's
 * parse; the HTML converter and the thread root must not crash.
 * Seeds in test/fuzz/corpus/preview and the MIME corpus; the driver is libFuzzer (make fuzz) or
 * test/fuzz/fuzz-main.c. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/buf.h"
#include "mime/mime.h"
#include "mime/mime-int.h"
#include "mime/preview.h"

#define FUZZ_ASSERT(c) do { \
    if (!(c)) { fprintf(stderr, "fuzz-preview: %s:%d: %s\n", __FILE__, __LINE__, #c); abort(); } \
} while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *in = (const char *)data;
    struct buf out = BUF_INIT;
    size_t n = mime_preview(in, size, &out);
    FUZZ_ASSERT(n == out.len && n <= MIME_PREVIEW_MAX_BYTES);
    size_t chars = 0;
    for (size_t i = 0; i < n; chars++) {
        unsigned char b = (unsigned char)out.s[i];
        size_t l = b < 0x80 ? 1 : (b & 0xe0) == 0xc0 ? 2 : (b & 0xf0) == 0xe0 ? 3 :
                   (b & 0xf8) == 0xf0 ? 4 : 0;
        FUZZ_ASSERT(l && i + l <= n);
        for (size_t k = 1; k < l; k++) FUZZ_ASSERT(((unsigned char)out.s[i + k] & 0xc0) == 0x80);
        FUZZ_ASSERT(!(l == 1 && (b < 0x20 || b == 0x7f)));
        i += l;
    }
    FUZZ_ASSERT(chars <= MIME_PREVIEW_MAX_CHARS);
    FUZZ_ASSERT(!n || (out.s[0] != ' ' && out.s[n - 1] != ' '));
    struct buf ref = BUF_INIT;
    struct mime_tree t;
    memset(&t, 0, sizeof t);
    mime_tree_parse(in, size, &t);
    mime_preview_tree(in, &t, 1, &ref);
    mime_tree_fini(&t);
    FUZZ_ASSERT(ref.len == n && (!n || !memcmp(ref.s, out.s, n)));
    struct mime_summary s;
    mime_summary_init(&s);
    buf_reset(&ref);
    mime_summarize_preview(in, size, &s, &ref);
    mime_summary_fini(&s);
    FUZZ_ASSERT(ref.len == n && (!n || !memcmp(ref.s, out.s, n)));
    buf_fini(&ref);
    buf_reset(&out);
    mime_html_to_text(in, size, &out);
    buf_reset(&out);
    if (mime_thread_root(in, size, &out)) FUZZ_ASSERT(out.len > 0 && !memchr(out.s, '>', out.len));
    buf_fini(&out);
    return 0;
}
