/* test-preview.c: unit tests of the RFC 8970 preview extractor and the RFC 8474 thread root
 * (lib/mime/preview.c): part choice, transfer encodings, charsets, HTML, white space, the
 * 256-character cut on a UTF-8 boundary. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <dirent.h>
#include "core/buf.h"
#include "core/unit.h"
#include "core/xmalloc.h"
#include "mime/mime.h"
#include "mime/mime-int.h"
#include "mime/preview.h"

#ifndef MIME_CORPUS_DIR
#error "MIME_CORPUS_DIR must be defined"
#endif

/* crlf: s with every LF turned into CRLF (the tables are written with LF). */
static char *crlf(const char *s, size_t *len)
{
    struct buf b = BUF_INIT;
    for (; *s; s++) {
        if (*s == '\n') buf_putc(&b, '\r');
        buf_putc(&b, *s);
    }
    *len = b.len;
    return buf_release(&b);
}

static const struct { const char *name, *msg, *want; } cases[] = {
    { "plain", "Subject: x\n\nHello   world,\n\n  this is\ta test.\n", "Hello world, this is a test." },
    { "no content-type", "Subject: x\n\nJust text\n", "Just text" },
    { "empty body", "Subject: x\n\n", "" },
    { "header only", "Subject: x\n", "" },
    { "base64", "Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: base64\n\n"
      "SGVsbG8gYmFzZTY0IHfDtnJsZA==\n", "Hello base64 w\xc3\xb6rld" },
    { "quoted-printable", "Content-Type: text/plain; charset=iso-8859-1\n"
      "Content-Transfer-Encoding: quoted-printable\n\nCaf=E9 au l=\nait =3D ok\n",
      "Caf\xc3\xa9 au lait = ok" },
    { "latin1 8bit", "Content-Type: text/plain; charset=ISO-8859-1\n\nna\xefve\n", "na\xc3\xafve" },
    { "windows-1252", "Content-Type: text/plain; charset=windows-1252\n\n\x93quoted\x94 \x80\n",
      "\xe2\x80\x9cquoted\xe2\x80\x9d \xe2\x82\xac" },
    { "iso-2022-jp", "Content-Type: text/plain; charset=ISO-2022-JP\n\n\x1b$B$3$s$K$A$O\x1b(B\n",
      "\xe3\x81\x93\xe3\x82\x93\xe3\x81\xab\xe3\x81\xa1\xe3\x81\xaf" },
    { "html only", "Content-Type: text/html\n\n<html><head><title>T</title><style>p{}</style>"
      "</head><body><p>Hi&nbsp;<b>there</b> &amp; &lt;you&gt;</p><!-- hidden --><div>Bye"
      "&#33;&#x263A;</div><script>alert(1)</script></body></html>\n",
      "Hi there & <you> Bye!\xe2\x98\xba" },
    { "alternative", "Content-Type: multipart/alternative; boundary=b\n\n--b\n"
      "Content-Type: text/html\n\n<p>html version</p>\n--b\n"
      "Content-Type: text/plain\n\nplain version\n--b--\n", "plain version" },
    { "attachment only", "Content-Type: multipart/mixed; boundary=b\n\n--b\n"
      "Content-Type: application/pdf\nContent-Transfer-Encoding: base64\n\nJVBERi0=\n--b--\n", "" },
    { "text attachment skipped", "Content-Type: multipart/mixed; boundary=b\n\n--b\n"
      "Content-Type: text/plain\nContent-Disposition: attachment; filename=a.txt\n\nfile\n"
      "--b\nContent-Type: text/html\n\n<p>body</p>\n--b--\n", "body" },
    { "forwarded message skipped", "Content-Type: multipart/mixed; boundary=b\n\n--b\n"
      "Content-Type: message/rfc822\n\nSubject: inner\n\ninner text\n--b--\n", "" },
    { "controls", "Subject: x\n\na\x01\x02" "b\x7f" "c\xc2\x85" "d\n", "a b c d" },
    { "unknown cte", "Content-Transfer-Encoding: x-uuencode\n\nbegin 644 x\n", "" },
};

static void test_cases(void)
{
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t len;
        char *m = crlf(cases[i].msg, &len);
        struct buf out = BUF_INIT;
        size_t n = mime_preview(m, len, &out);
        UNIT_EQ_INT(n, out.len);
        UNIT_EQ_STR(buf_cstr(&out), cases[i].want);
        if (strcmp(buf_cstr(&out), cases[i].want)) fprintf(stderr, "case %s\n", cases[i].name);
        buf_fini(&out);
        free(m);
    }
}

/* count_cp: code points of valid UTF-8 s[0,n), -1 when it is not valid UTF-8. */
static long count_cp(const char *s, size_t n)
{
    long c = 0;
    for (size_t i = 0; i < n; c++) {
        unsigned char b = (unsigned char)s[i];
        size_t l = b < 0x80 ? 1 : (b & 0xe0) == 0xc0 ? 2 : (b & 0xf0) == 0xe0 ? 3 :
                   (b & 0xf8) == 0xf0 ? 4 : 0;
        if (!l || i + l > n) return -1;
        for (size_t k = 1; k < l; k++)
            if (((unsigned char)s[i + k] & 0xc0) != 0x80) return -1;
        i += l;
    }
    return c;
}

static void test_cut(void)
{
    /* 300 three-byte characters: cut at 256 characters, 768 bytes, on a boundary */
    struct buf m = BUF_INIT, out = BUF_INIT;
    buf_appends(&m, "Content-Type: text/plain; charset=utf-8\r\n\r\n");
    for (int i = 0; i < 300; i++) buf_appends(&m, "\xe2\x82\xac");
    mime_preview(m.s, m.len, &out);
    UNIT_EQ_INT(out.len, 768);
    UNIT_EQ_INT(count_cp(out.s, out.len), 256);
    /* spaces count as characters; no trailing space after the cut */
    buf_reset(&m);
    buf_reset(&out);
    buf_appends(&m, "Subject: x\r\n\r\n");
    for (int i = 0; i < 200; i++) buf_appends(&m, "ab   \r\n");
    mime_preview(m.s, m.len, &out);
    UNIT_CHECK(count_cp(out.s, out.len) <= 256);
    UNIT_CHECK(out.len > 0 && out.s[out.len - 1] != ' ' && out.s[0] == 'a');
    UNIT_EQ_INT(out.len, 256);
    /* a long 2-byte run mixed with ASCII */
    buf_reset(&m);
    buf_reset(&out);
    buf_appends(&m, "Content-Type: text/plain; charset=utf-8\r\n\r\nx");
    for (int i = 0; i < 400; i++) buf_appends(&m, "\xc3\xa9");
    mime_preview(m.s, m.len, &out);
    UNIT_EQ_INT(count_cp(out.s, out.len), 256);
    UNIT_EQ_INT(out.len, 1 + 255 * 2);
    /* invalid UTF-8 declared as UTF-8 comes out valid */
    buf_reset(&m);
    buf_reset(&out);
    buf_appends(&m, "Content-Type: text/plain; charset=utf-8\r\n\r\nbad \xff\xfe\xc3 end");
    mime_preview(m.s, m.len, &out);
    UNIT_CHECK(count_cp(out.s, out.len) > 0);
    buf_fini(&m);
    buf_fini(&out);
}

static void test_html(void)
{
    struct buf out = BUF_INIT;
    const char *h = "a<br>b<span>c</span>&bogus; &#0; <x y='>'>z < 3";
    mime_html_to_text(h, strlen(h), &out);
    UNIT_EQ_STR(buf_cstr(&out), "a bc&bogus; \xef\xbf\xbd z < 3");
    buf_fini(&out);
}

/* test_linear: HTML that alternates text and '&' (or '<') many times is converted in linear
 * time: the search for the next markup is not repeated for every run of text. */
static void test_linear(void)
{
    struct buf m = BUF_INIT, out = BUF_INIT;
    buf_appends(&m, "Content-Type: text/html\r\n\r\n");
    for (int i = 0; i < 100000; i++) buf_appends(&m, "a&b");
    buf_appends(&m, "<p>");
    for (int i = 0; i < 50000; i++) buf_appends(&m, "x< ");
    clock_t t0 = clock();
    mime_preview(m.s, m.len, &out);
    double secs = (double)(clock() - t0) / CLOCKS_PER_SEC;
    UNIT_CHECK(secs < 2.0);
    UNIT_CHECK(out.len > 0 && !strncmp(out.s, "a&ba&b", 6));
    buf_fini(&m);
    buf_fini(&out);
}


/* ---- the preview from the start of the part against the preview from all of it ---- */

/* same_preview: mime_preview (which tries the start of the part first), the preview
 * mime_summarize_preview makes from its own parse, and the reference that converts all of the
 * part at once (what mime_preview did before) give the same bytes for msg. */
static int same_preview(const char *msg, size_t len, const char *what)
{
    struct buf fast = BUF_INIT, whole = BUF_INIT, sum = BUF_INIT;
    struct mime_tree t;
    struct mime_summary s;
    memset(&t, 0, sizeof t);
    mime_tree_parse(msg, len, &t);
    size_t nw = mime_preview_tree(msg, &t, 1, &whole);
    mime_tree_fini(&t);
    size_t nf = mime_preview(msg, len, &fast);
    mime_summary_init(&s);
    mime_summarize_preview(msg, len, &s, &sum);
    mime_summary_fini(&s);
    int ok = nw == whole.len && nf == fast.len && fast.len == whole.len &&
             sum.len == whole.len && !memcmp(buf_cstr(&fast), buf_cstr(&whole), whole.len) &&
             !memcmp(buf_cstr(&sum), buf_cstr(&whole), whole.len);
    if (ok) {
        unit_passed++;
    } else {
        unit_failed++;
        fprintf(stderr, "preview differs (%s):\n  whole: %s\n  fast:  %s\n  sum:   %s\n", what,
                buf_cstr(&whole), buf_cstr(&fast), buf_cstr(&sum));
    }
    buf_fini(&fast);
    buf_fini(&whole);
    buf_fini(&sum);
    return ok;
}

/* test_corpus: every message of test/mime-corpus. */
static void test_corpus(void)
{
    DIR *d = opendir(MIME_CORPUS_DIR);
    struct dirent *de;
    int n = 0;
    UNIT_CHECK(d != NULL);
    if (!d) return;
    while ((de = readdir(d))) {
        size_t l = strlen(de->d_name);
        if (l < 5 || strcmp(de->d_name + l - 4, ".eml")) continue;
        char *path = xasprintf("%s/%s", MIME_CORPUS_DIR, de->d_name);
        FILE *f = fopen(path, "rb");
        struct buf m = BUF_INIT;
        char tmp[65536];
        size_t k;
        if (f) {
            while ((k = fread(tmp, 1, sizeof tmp, f)) > 0) buf_append(&m, tmp, k);
            fclose(f);
            same_preview(m.s ? m.s : "", m.len, de->d_name);
            n++;
        }
        buf_fini(&m);
        free(path);
    }
    closedir(d);
    UNIT_CHECK(n > 10);
}

static unsigned long long rng_state = 0x9e3779b97f4a7c15ull;

static unsigned rnd(unsigned n)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (unsigned)(rng_state % n);
}

/* gen_text: about want bytes of raw part text (before any transfer encoding) that mixes what
 * the cuts must survive: multi-byte characters, invalid bytes, Latin-1 bytes, ISO-2022-JP
 * escapes, blanks before line ends, markup, character references, long runs of white space. */
static void gen_text(struct buf *t, size_t want, int html)
{
    static const char *const pieces[] = {
        "word", "Text", " ", "  ", "\t", "\r\n", "\n", "   \r\n", " \t\n", "\xc3\xa9",
        "\xe2\x82\xac", "\xf0\x9f\x98\x80", "\xff", "\xc3", "\xe2\x82", "\xe9", "\x93q\x94",
        "\x1b$B$3$s\x1b(B", "\x01", "\x7f", "\xc2\xa0", "=", "=3D", "_", ".",
        "<p>", "<br>", "</p>", "<b>x</b>", "<script>var a='<p>';</script>", "<!-- c -->",
        "&amp;", "&#x263A;", "&#33;", "&nbsp;", "&bogus;", "&", "<", "< ", "<a href='>'>",
        "<style>p{color:red}</style>", "<pre>", "<param>", "&#1234", "&lt",
    };
    size_t np = sizeof pieces / sizeof pieces[0];
    while (t->len < want) {
        if (!rnd(300)) {
            /* a long stretch without text: white space, or (HTML) a style sheet */
            size_t k = 500 + rnd(9000);
            if (html && rnd(2)) {
                buf_appends(t, "<style>");
                for (size_t i = 0; i < k; i++) buf_putc(t, "abc{};: \n"[rnd(9)]);
                buf_appends(t, "</style>");
            } else {
                for (size_t i = 0; i < k; i++) buf_putc(t, " \t\r\n"[rnd(4)]);
            }
        } else {
            size_t lim = html ? np : 25;         /* markup only in HTML */
            buf_appends(t, pieces[rnd((unsigned)lim)]);
        }
    }
}

/* qp_encode: quoted-printable of t with soft breaks, =XX for 8-bit and random bytes, and now
 * and then a bad '=' sequence or blanks before a line end. */
static void qp_encode(const struct buf *t, struct buf *out)
{
    size_t col = 0;
    for (size_t i = 0; i < t->len; i++) {
        unsigned char c = (unsigned char)t->s[i];
        if (c == '\n') { buf_putc(out, '\n'); col = 0; continue; }
        if (col > 70 || !rnd(60)) { buf_appends(out, rnd(3) ? "=\r\n" : "= \n"); col = 0; }
        if (!rnd(300)) buf_appends(out, rnd(2) ? "=G" : "=4");
        if (c >= 0x80 || c == '=' || !rnd(20)) {
            buf_printf(out, "=%02X", c);
            col += 3;
        } else {
            buf_putc(out, (char)c);
            col++;
        }
    }
}

/* b64_encode: base64 of t in lines of 76 (or a random length), a stray byte now and then. */
static void b64_encode(const struct buf *t, struct buf *out)
{
    static const char al[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t line = rnd(4) ? 76 : 1 + rnd(100), col = 0;
    int junk = !rnd(4);
    for (size_t i = 0; i < t->len; i += 3) {
        unsigned v = (unsigned)(unsigned char)t->s[i] << 16;
        size_t k = t->len - i < 3 ? t->len - i : 3;
        if (k > 1) v |= (unsigned)(unsigned char)t->s[i + 1] << 8;
        if (k > 2) v |= (unsigned char)t->s[i + 2];
        char q[4] = { al[v >> 18 & 63], al[v >> 12 & 63], k > 1 ? al[v >> 6 & 63] : '=',
                      k > 2 ? al[v & 63] : '=' };
        for (int j = 0; j < 4; j++) {
            buf_putc(out, q[j]);
            if (++col >= line) { buf_appends(out, "\r\n"); col = 0; }
            if (junk && !rnd(500)) buf_putc(out, "!* \t"[rnd(4)]);
        }
    }
    buf_appends(out, "\r\n");
}

/* test_random: generated messages of every charset kind and transfer encoding, text and HTML,
 * short and long (past the first tries of 4 KiB and 32 KiB and past the 256 KiB scan). */
static void test_random(void)
{
    static const char *const charsets[] = {
        NULL, "utf-8", "UTF-8", "us-ascii", "iso-8859-1", "windows-1252", "ISO-2022-JP",
        "\"utf-8\"", "utf-8*en", "x-unknown", "koi8-r",
    };
    static const char *const ctes[] = { NULL, "7bit", "8bit", "quoted-printable", "base64",
                                        "Base64", "x-uuencode" };
    static const size_t sizes[] = { 50, 300, 3000, 4090, 4200, 6000, 20000, 33000, 70000 };
    int failed = 0;
    for (int iter = 0; iter < 3000 && failed < 5; iter++) {
        struct buf text = BUF_INIT, body = BUF_INIT, m = BUF_INIT;
        int html = rnd(3) == 0;
        const char *cs = charsets[rnd(sizeof charsets / sizeof charsets[0])];
        const char *cte = ctes[rnd(sizeof ctes / sizeof ctes[0])];
        size_t want = iter % 100 == 99 ? 300000 : sizes[rnd(sizeof sizes / sizeof sizes[0])];
        gen_text(&text, want, html);
        if (cte && !strcmp(cte, "quoted-printable")) qp_encode(&text, &body);
        else if (cte && (cte[0] == 'b' || cte[0] == 'B')) b64_encode(&text, &body);
        else buf_append(&body, text.s, text.len);
        int multi = rnd(4) == 0;
        if (multi) buf_appends(&m, "Content-Type: multipart/mixed; boundary=zz\r\n\r\n--zz\r\n");
        buf_printf(&m, "Content-Type: text/%s", html ? "html" : "plain");
        if (cs) buf_printf(&m, "; charset=%s", cs);
        buf_appends(&m, "\r\n");
        if (cte) buf_printf(&m, "Content-Transfer-Encoding: %s\r\n", cte);
        buf_appends(&m, "\r\n");
        buf_append(&m, body.s, body.len);
        if (multi) buf_appends(&m, "\r\n--zz--\r\n");
        char what[128];
        snprintf(what, sizeof what, "iter %d html %d charset %s cte %s size %zu", iter, html,
                 cs ? cs : "-", cte ? cte : "-", text.len);
        if (!same_preview(m.s, m.len, what)) failed++;
        buf_fini(&text);
        buf_fini(&body);
        buf_fini(&m);
    }
}

static void test_thread_root(void)
{
    static const struct { const char *hdr, *want; } t[] = {
        { "Message-ID: <a@x>\r\n\r\n", "a@x" },
        { "Message-ID: <c@x>\r\nIn-Reply-To: <b@x>\r\n\r\n", "b@x" },
        { "Message-ID: <c@x>\r\nIn-Reply-To: <b@x>\r\nReferences: (c) <a@x>\r\n <b@x>\r\n\r\n", "a@x" },
        { "References: <fold\r\n ed@x>\r\n\r\n", "folded@x" },
        { "References: garbage\r\nMessage-ID: <m@x>\r\n\r\n", "m@x" },
        { "Subject: none\r\n\r\n", NULL },
        { "Message-ID: <>\r\n\r\n", NULL },
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        struct buf out = BUF_INIT;
        int r = mime_thread_root(t[i].hdr, strlen(t[i].hdr), &out);
        UNIT_EQ_INT(r, t[i].want != NULL);
        if (t[i].want) UNIT_EQ_STR(buf_cstr(&out), t[i].want);
        else UNIT_EQ_INT(out.len, 0);
        buf_fini(&out);
    }
}

int main(void)
{
    test_cases();
    test_cut();
    test_html();
    test_linear();
    test_corpus();
    test_random();
    test_thread_root();
    UNIT_DONE();
}
