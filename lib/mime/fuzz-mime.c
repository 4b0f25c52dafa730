/* fuzz-mime.c: fuzz target for lib/mime. Built with -fsanitize=fuzzer -DCOFFER_LIBFUZZER it is a
 * libFuzzer target; otherwise its main() replays test/mime-corpus plus thousands of seeded
 * pseudo-random mutations of it (ctest fuzz-mime; args: [corpus-dir [rounds [seed]]]). Every input must give valid RFC 3501 syntax,
 * an in-bounds section table and valid UTF-8 text, without crashing, hanging or leaking. */
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

#ifndef COFFER_LIBFUZZER

/* xorshift64*: a fixed-seed generator, so every run tries the same inputs. */
static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;
static uint64_t rnd(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545f4914f6cdd1dULL;
}
static size_t rndn(size_t n) { return n ? (size_t)(rnd() % n) : 0; }

static const char *const dict[] = {
    "--", "\r\n", "\n", "\r", "\r\n\r\n", "--g\r\n", "--outer\r\n", "--inner--\r\n",
    "Content-Type: multipart/mixed; boundary=g\r\n\r\n--g\r\n",
    "Content-Type: message/rfc822\r\n\r\n", "Content-Type: multipart/digest; boundary=",
    "Content-Transfer-Encoding: base64\r\n", "Content-Transfer-Encoding: quoted-printable\r\n",
    "=?utf-8?b?w6k=?=", "=?iso-8859-1?q?caf=E9?=", "?=", "=?", "\"", "(", ")", "<", ">", "@",
    ",", ";", ":", "\\", "*0*=utf-8''%E2%82", "*1=", "=\r\n", "=XY", " ", "\t", "\0", "\xff",
    "\xc3", "charset=koi8-r", "charset=iso-2022-jp", "\x1b$B", "To: g: a@b, c;\r\n",
    "From: \"x\\\" y\" <@r,@s:a@[1.2]>\r\n", "Content-Language: en, fr\r\n",
    "Content-Disposition: attachment; filename*=x''y\r\n",
};

static void mutate(struct buf *m, const struct buf *other)
{
    int ops = 1 + (int)rndn(6), i;
    for (i = 0; i < ops; i++) {
        size_t pos = rndn(m->len + 1);
        switch (rndn(8)) {
        case 0:                                         /* flip a byte */
            if (m->len) m->s[rndn(m->len)] ^= (char)(1 << rndn(8));
            break;
        case 1: {                                       /* insert a random byte */
            char c = (char)rnd();
            buf_append(m, &c, 1);
            memmove(m->s + pos + 1, m->s + pos, m->len - 1 - pos);
            m->s[pos] = c;
            break;
        }
        case 2: {                                       /* delete a range */
            size_t n = rndn(m->len - pos + 1);
            if (n > 64) n = rndn(64);
            memmove(m->s + pos, m->s + pos + n, m->len - pos - n);
            m->len -= n;
            break;
        }
        case 3: case 4: {                               /* insert a dictionary token */
            const char *t = dict[rndn(sizeof(dict) / sizeof(dict[0]))];
            size_t n = *t ? strlen(t) : 1, old = m->len;
            buf_ensure(m, n);
            m->len += n;
            memmove(m->s + pos + n, m->s + pos, old - pos);
            memcpy(m->s + pos, t, n);
            break;
        }
        case 5:                                         /* truncate */
            m->len = pos;
            break;
        case 6: {                                       /* duplicate a range */
            size_t n = rndn(m->len - pos + 1), old = m->len;
            if (n > 256) n = 256;
            buf_ensure(m, n);
            m->len += n;
            memmove(m->s + pos + n, m->s + pos, old - pos);   /* [pos, pos+n) now twice */
            break;
        }
        default: {                                      /* splice in part of another message */
            size_t from = rndn(other->len), n = rndn(other->len - from + 1), old = m->len;
            if (n > 512) n = 512;
            buf_ensure(m, n);
            m->len += n;
            memmove(m->s + pos + n, m->s + pos, old - pos);
            memcpy(m->s + pos, other->s + from, n);
            break;
        }
        }
    }
}

int main(int argc, char **argv)
{
    const char *dir = argc > 1 ? argv[1] : MIME_CORPUS_DIR;
    long rounds = argc > 2 ? atol(argv[2]) : 20000, i;
    struct buf files[256], m = BUF_INIT;
    int nfiles = 0, k;
    DIR *d = opendir(dir);
    struct dirent *de;

    if (argc > 3) rng_state = strtoull(argv[3], NULL, 0) | 1;
    if (!d) { perror(dir); return 1; }
    while ((de = readdir(d)) != NULL && nfiles < 256) {
        size_t nl = strlen(de->d_name);
        char *path, tmp[4096];
        FILE *f;
        size_t n;
        if (nl < 5 || strcmp(de->d_name + nl - 4, ".eml")) continue;
        path = xasprintf("%s/%s", dir, de->d_name);
        f = fopen(path, "rb");
        free(path);
        if (!f) continue;
        buf_init(&files[nfiles]);
        while ((n = fread(tmp, 1, sizeof(tmp), f)) > 0) buf_append(&files[nfiles], tmp, n);
        fclose(f);
        if (files[nfiles].len == 0) buf_append(&files[nfiles], "\n", 1);
        nfiles++;
    }
    closedir(d);
    if (nfiles == 0) { fprintf(stderr, "fuzz-mime: no .eml files in %s\n", dir); return 1; }

    for (k = 0; k < nfiles; k++)
        LLVMFuzzerTestOneInput((const uint8_t *)files[k].s, files[k].len);
    for (i = 0; i < rounds; i++) {
        const struct buf *src = &files[rndn((size_t)nfiles)];
        int gens = 1 + (int)rndn(4), g;
        buf_reset(&m);
        buf_append(&m, src->s, src->len);
        for (g = 0; g < gens; g++) {
            mutate(&m, &files[rndn((size_t)nfiles)]);
            LLVMFuzzerTestOneInput((const uint8_t *)(m.s ? m.s : ""), m.len);
        }
    }
    /* A few structured extremes: deep nesting and long lines. */
    buf_reset(&m);
    for (i = 0; i < 300; i++)
        buf_printf(&m, "Content-Type: multipart/mixed; boundary=%ld\r\n\r\n--%ld\r\n", i % 7, i % 7);
    LLVMFuzzerTestOneInput((const uint8_t *)m.s, m.len);
    buf_reset(&m);
    buf_appends(&m, "Subject: ");
    for (i = 0; i < 200000; i++) buf_putc(&m, (char)('a' + i % 26));
    buf_appends(&m, "\r\nTo: ");
    for (i = 0; i < 20000; i++) buf_appends(&m, "a@b, ");
    LLVMFuzzerTestOneInput((const uint8_t *)m.s, m.len);

    for (k = 0; k < nfiles; k++) buf_fini(&files[k]);
    buf_fini(&m);
    printf("fuzz-mime: %d corpus files, %ld mutation rounds\n1 passed, 0 failed\n", nfiles, rounds);
    return 0;
}
#endif
