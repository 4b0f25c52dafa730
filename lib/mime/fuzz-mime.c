/* fuzz-mime.c: fuzz target for lib/mime: a message. Every input must give valid RFC 3501
 * syntax, an in-bounds section table and valid UTF-8 text, without crashing, hanging or
 * leaking. Seeds: test/mime-corpus and test/fuzz/corpus/mime; the driver is libFuzzer (make
 * fuzz) or test/fuzz/fuzz-main.c (ctest). */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/buf.h"
#include "core/error.h"
#include "core/xmalloc.h"
#include "mime/check-imap.h"
#include "mime/decode.h"
#include "mime/mime.h"

#define FUZZ_ASSERT(c) do { \
    if (!(c)) { fprintf(stderr, "fuzz-mime: %s:%d: %s\n", __FILE__, __LINE__, #c); abort(); } \
} while (0)

static int utf8_ok(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s, *e = p + n;
    while (p < e) {
        unsigned c = *p;
        size_t len, i;
        uint32_t cp;
        if (c < 0x80) { p++; continue; }
        if (c >= 0xc2 && c <= 0xdf) { len = 2; cp = c & 0x1f; }
        else if (c >= 0xe0 && c <= 0xef) { len = 3; cp = c & 0x0f; }
        else if (c >= 0xf0 && c <= 0xf4) { len = 4; cp = c & 0x07; }
        else return 0;
        if ((size_t)(e - p) < len) return 0;
        for (i = 1; i < len; i++) {
            if ((p[i] & 0xc0) != 0x80) return 0;
            cp = (cp << 6) | (p[i] & 0x3f);
        }
        if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
            (cp >= 0xd800 && cp <= 0xdfff))
            return 0;
        p += len;
    }
    return 1;
}

static int text_cb(void *rock, const char *subtype, const char *text, size_t len)
{
    (void)rock;
    FUZZ_ASSERT(subtype != NULL);
    FUZZ_ASSERT(utf8_ok(text, len));
    FUZZ_ASSERT(text[len] == '\0');
    return 0;
}

/* check_sections: every line of the table parses, its parts lie inside the message, and the
 * lookup finds it. */
static void check_sections(const struct mime_summary *s, size_t len)
{
    const char *p = s->sections.s, *end = p + s->sections.len;
    FUZZ_ASSERT(s->sections.len >= 3 && !memcmp(p, "S1\n", 3));
    for (p += 3; p < end; ) {
        const char *le = memchr(p, '\n', (size_t)(end - p)), *sp;
        struct mime_section sec;
        char spec[2048];
        FUZZ_ASSERT(le != NULL);
        sp = memchr(p, ' ', (size_t)(le - p));
        FUZZ_ASSERT(sp != NULL && (size_t)(sp - p) < sizeof(spec));
        memcpy(spec, p, (size_t)(sp - p));
        spec[sp - p] = '\0';
        FUZZ_ASSERT(mime_section_find(s->sections.s, s->sections.len,
                                      strcmp(spec, "0") ? spec : "", &sec) == 1);
        FUZZ_ASSERT(sec.header_off + sec.header_len <= len);
        FUZZ_ASSERT(sec.header_off + sec.header_len <= sec.body_off);
        FUZZ_ASSERT(sec.body_off + sec.body_len <= len);
        FUZZ_ASSERT(sec.msg_header_len <= sec.body_len);
        p = le + 1;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *msg = (const char *)data;
    struct mime_summary s;
    struct buf b = BUF_INIT;
    int r;

    mime_summary_init(&s);
    r = mime_summarize(msg, size, &s);
    FUZZ_ASSERT(r == 0 || r == CF_E_LIMIT);
    FUZZ_ASSERT(check_imap_envelope(s.envelope.s, s.envelope.len));
    FUZZ_ASSERT(check_imap_body(s.bodystructure.s, s.bodystructure.len, 1));
    FUZZ_ASSERT(check_imap_body(s.body.s, s.body.len, 0));
    FUZZ_ASSERT(s.header_size <= size);
    check_sections(&s, size);
    mime_summary_fini(&s);

    mime_foreach_text(msg, size, text_cb, NULL);
    mime_decode_header(msg, size < 4096 ? size : 4096, &b);
    FUZZ_ASSERT(utf8_ok(b.s ? b.s : "", b.len));
    if (b.len) (void)mime_text_contains_n(b.s, b.len, "\xc3\xa9T\xce\xa3", 6);
    buf_fini(&b);
    return 0;
}
