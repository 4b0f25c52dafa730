/* test-binsize.c: unit tests of binsize.h: the decoded-size table of encoded parts (what FETCH
 * BINARY.SIZE answers from the cache) agrees with decoding, and its lookups. */
#include <string.h>
#include "core/buf.h"
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

int main(void)
{
    test_table();
    test_damaged();
    UNIT_DONE();
}
