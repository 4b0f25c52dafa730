/* test-binsize.c: unit tests of binsize.h: the decoded-size table of encoded parts (what FETCH
 * BINARY.SIZE answers from the cache) agrees with decoding, and its lookups. */
#include <string.h>
#include "core/buf.h"
#include "core/error.h"
#include "core/unit.h"
#include "mime/binsize.h"
#include "mime/decode.h"
#include "mime/mime.h"

static const char MSG[] =
    "Subject: sizes\r\nMIME-Version: 1.0\r\n"
    "Content-Type: multipart/mixed; boundary=\"XX\"\r\n\r\n"
    "--XX\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
    "caf=C3=A9 =\r\nsoft break\r\n"
    "--XX\r\nContent-Type: text/plain\r\n\r\nplain part\r\n"
    "--XX\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: BASE64\r\n\r\n"
    "AAEC\r\nAwQ=\r\n"
    "--XX\r\nContent-Type: message/rfc822\r\n\r\n"
    "Subject: inner\r\nContent-Transfer-Encoding: base64\r\n\r\naGk=\r\n"
    "--XX\r\nContent-Type: application/x-odd\r\nContent-Transfer-Encoding: x-uuencode\r\n\r\n"
    "begin\r\n"
    "--XX--\r\n";

/* decoded: the length FETCH BINARY would send for part (the same steps as cmd-fetch.c). */
static size_t decoded(const char *msg, size_t len, const struct mime_summary *s, const char *part)
{
    struct mime_section ms;
    struct buf b = BUF_INIT;
    UNIT_EQ_INT(mime_section_find(s->sections.s, s->sections.len, part, &ms), 1);
    enum mime_cte cte = mime_cte_of_header(msg + ms.header_off, (size_t)ms.header_len);
    mime_cte_decode(cte, msg + ms.body_off, (size_t)ms.body_len, &b);
    size_t n = b.len;
    buf_fini(&b);
    (void)len;
    return n;
}

static void test_table(void)
{
    struct mime_summary s;
    struct buf t = BUF_INIT;
    size_t len = sizeof MSG - 1;
    mime_summary_init(&s);
    UNIT_EQ_INT(mime_summarize(MSG, len, &s), 0);
    mime_binary_sizes(MSG, len, s.sections.s, s.sections.len, &t);
    /* 1 quoted-printable, 3 base64 listed; 2 identity, 4 message/rfc822 (sent as it is, its
     * inner base64 body 4.1 is listed), 5 an unknown encoding: not listed */
    UNIT_EQ_STR(buf_cstr(&t), "B1\n1 16\n3 5\n4.1 2\n");   /* "caf\xc3\xa9 soft break" */
    uint64_t v = 0;
    UNIT_EQ_INT(mime_binary_size_find(t.s, t.len, "1", &v), 1);
    UNIT_EQ_INT(v, decoded(MSG, len, &s, "1"));
    UNIT_EQ_INT(mime_binary_size_find(t.s, t.len, "3", &v), 1);
    UNIT_EQ_INT(v, 5);
    UNIT_EQ_INT(v, decoded(MSG, len, &s, "3"));
    UNIT_EQ_INT(mime_binary_size_find(t.s, t.len, "4.1", &v), 1);
    UNIT_EQ_INT(v, decoded(MSG, len, &s, "4.1"));
    UNIT_EQ_INT(mime_binary_size_find(t.s, t.len, "2", &v), 0);
    UNIT_EQ_INT(mime_binary_size_find(t.s, t.len, "4", &v), 0);
    UNIT_EQ_INT(mime_binary_size_find(t.s, t.len, "5", &v), 0);
    UNIT_EQ_INT(mime_binary_size_find(t.s, t.len, "", &v), 0);
    UNIT_EQ_INT(mime_binary_size_find(t.s, t.len, "4.", &v), 0);
    /* a one-part base64 message lists part 1 (same body as the message), never "0" */
    static const char one[] = "Content-Transfer-Encoding: base64\r\n\r\nAAAA\r\n";
    UNIT_EQ_INT(mime_summarize(one, sizeof one - 1, &s), 0);
    mime_binary_sizes(one, sizeof one - 1, s.sections.s, s.sections.len, &t);
    UNIT_EQ_STR(buf_cstr(&t), "B1\n1 3\n");
    mime_summary_fini(&s);
    buf_fini(&t);
}

static void test_damaged(void)
{
    struct buf t = BUF_INIT;
    uint64_t v = 7;
    /* not a section table, offsets past the message, malformed lines: nothing listed */
    mime_binary_sizes("x", 1, "S0\n1 0 1 1 1 - 0\n", 17, &t);
    UNIT_EQ_STR(buf_cstr(&t), "B1\n");
    static const char tab[] = "S1\n1 0 99 0 1 - 0\n2 0 x\n3\n";
    mime_binary_sizes("Content-Transfer-Encoding: base64\r\n\r\nAA", 39, tab, sizeof tab - 1, &t);
    UNIT_EQ_STR(buf_cstr(&t), "B1\n");
    mime_binary_sizes("abc", 3, NULL, 0, &t);
    UNIT_EQ_STR(buf_cstr(&t), "B1\n");
    /* lookups in bad tables */
    UNIT_EQ_INT(mime_binary_size_find("S1\n1 3\n", 7, "1", &v), 0);
    UNIT_EQ_INT(mime_binary_size_find("B1\n1 3", 6, "1", &v), 0);
    UNIT_EQ_INT(mime_binary_size_find("B1\n1 x\n", 7, "1", &v), 0);
    UNIT_EQ_INT(mime_binary_size_find("B1\n1 99999999999999999999999\n", 27, "1", &v), 0);
    UNIT_EQ_INT(mime_binary_size_find(NULL, 0, "1", &v), 0);
    UNIT_EQ_INT(v, 7);
    buf_fini(&t);
}

/* The size counters (decode.h) against the decoders, on the inputs where their rules bite:
 * blanks stripped at line ends (also decoded ones, and before a CR), soft line breaks, bad
 * "=" sequences, base64 line breaks, bad bytes, pads and cut groups. */
static void test_counters(void)
{
    static const char *const qp[] = {
        "", "plain", "caf=C3=A9 =\r\nsoft break\r\n", "trail  \r\nx\t\n", "=20\r\n",
        "a=20\n", "a =09 \r\n", " \r \r\n", "\r\r\n", "x \r=20\r\n", "=0D=0A \n",
        "=\r\n", "=  \t\r\nnext", "=", "= ", "=Z", "=4", "=4g", "a=\rb", "_x_=5F\n",
        "==41=\n\n  ", "end  ",
    };
    static const char *const b64[] = {
        "", "AAEC\r\nAwQ=\r\n", "aGk=", "aGk", "aG", "a", "QUJDRA==", "QUJD RA=\n=", "QU*JD",
        "QUJD\r\nRE\r\n", "====", "QQ==QUJD", "\tQ U J D\r\n", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    };
    struct buf b = BUF_INIT;
    for (size_t i = 0; i < sizeof qp / sizeof qp[0]; i++)
        for (int header = 0; header <= 1; header++) {
            buf_reset(&b);
            mime_decode_qp(qp[i], strlen(qp[i]), header, &b);
            UNIT_EQ_INT(mime_decode_qp_size(qp[i], strlen(qp[i]), header), b.len);
        }
    for (size_t i = 0; i < sizeof b64 / sizeof b64[0]; i++) {
        buf_reset(&b);
        mime_decode_base64(b64[i], strlen(b64[i]), &b);
        UNIT_EQ_INT(mime_decode_base64_size(b64[i], strlen(b64[i])), b.len);
        UNIT_EQ_INT(mime_cte_decoded_size(MIME_CTE_BASE64, b64[i], strlen(b64[i])), b.len);
    }
    /* long inputs (the 16-byte SSE2 path of the base64 counter and its 255-round flush):
     * every byte value but '=' mixed in, then 76-character lines, then a pad after them */
    struct buf in = BUF_INIT;
    for (int r = 0; r < 40; r++)
        for (int c = 0; c < 256; c++)
            if ((unsigned char)(c * 7 + r) != '=') buf_putc(&in, (char)(c * 7 + r));
    for (int l = 0; l < 200; l++) buf_appends(&in, "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWZnaGlqa2xtbm9wcXJzdHV2d3h5ejAxMjM0\r\n");
    for (int with_pad = 0; with_pad <= 1; with_pad++) {
        if (with_pad) buf_appends(&in, "QQ==AAAA");
        buf_reset(&b);
        mime_decode_base64(in.s, in.len, &b);
        UNIT_EQ_INT(mime_decode_base64_size(in.s, in.len), b.len);
        for (size_t cut = 1; cut < 40; cut += 3) {        /* every alignment of the tail */
            buf_reset(&b);
            mime_decode_base64(in.s + cut, in.len - cut * 2, &b);
            UNIT_EQ_INT(mime_decode_base64_size(in.s + cut, in.len - cut * 2), b.len);
        }
    }
    buf_fini(&in);
    /* a few exact values: blanks at a line end go, decoded ones too (the decoder's rule) */
    UNIT_EQ_INT(mime_decode_qp_size("a \t\r\n", 5, 0), 3);
    UNIT_EQ_INT(mime_decode_qp_size("a=20\r\n", 6, 0), 3);
    UNIT_EQ_INT(mime_decode_qp_size("a=\r\nb", 5, 0), 2);
    UNIT_EQ_INT(mime_decode_qp_size("a=\r\nb", 5, 1), 2);
    UNIT_EQ_INT(mime_decode_base64_size("QUJD\r\nRA==", 10), 4);
    UNIT_EQ_INT(mime_decode_base64_size("QUJDR", 5), 3);
    UNIT_EQ_INT(mime_cte_decoded_size(MIME_CTE_IDENTITY, "abc", 3), 3);
    UNIT_EQ_INT(mime_cte_decoded_size(MIME_CTE_UNKNOWN, "abc", 3), CF_E_NOTFOUND);
    buf_fini(&b);
}

/* A message whose quoted-printable and base64 parts need the counters' edge rules: the table
 * lists what decoding gives. */
static void test_table_edges(void)
{
    static const char msg[] =
        "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"
        "--b\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
        "tail =20\r\nsoft =\r\nbad =ZZ end\t\r\n"
        "--b\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        "QUJD\r\n RA\r\n*==\r\n"
        "--b--\r\n";
    struct mime_summary s;
    struct buf t = BUF_INIT;
    mime_summary_init(&s);
    UNIT_EQ_INT(mime_summarize(msg, sizeof msg - 1, &s), 0);
    mime_binary_sizes(msg, sizeof msg - 1, s.sections.s, s.sections.len, &t);
    uint64_t v = 0;
    UNIT_EQ_INT(mime_binary_size_find(t.s, t.len, "1", &v), 1);
    UNIT_EQ_INT(v, decoded(msg, sizeof msg - 1, &s, "1"));
    /* "tail\r\n" (both blanks stripped, the decoded one too), "soft " (a soft break), and
     * "bad =ZZ end\t" (kept: no line end follows it inside the part) */
    UNIT_EQ_INT(v, 23);
    UNIT_EQ_INT(mime_binary_size_find(t.s, t.len, "2", &v), 1);
    UNIT_EQ_INT(v, decoded(msg, sizeof msg - 1, &s, "2"));
    UNIT_EQ_INT(v, 4);
    mime_summary_fini(&s);
    buf_fini(&t);
}

int main(void)
{
    test_counters();
    test_table_edges();
    test_table();
    test_damaged();
    UNIT_DONE();
}
