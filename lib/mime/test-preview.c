/* test-preview.c: unit tests of the RFC 8970 preview extractor and the RFC 8474 thread root
 * (lib/mime/preview.c): part choice, transfer encodings, charsets, HTML, white space, the
 * 256-character cut on a UTF-8 boundary. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "core/buf.h"
#include "core/unit.h"
#include "mime/preview.h"

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
    test_thread_root();
    UNIT_DONE();
}
