/* test-imap-downconvert.c: unit tests of lib/imap/imap-downconvert.c: UTF-8 literals of an
 * ENVELOPE become encoded-words, everything else is copied byte for byte, long strings split
 * at character boundaries, damaged text copied unchanged. */
#include "imap/imap-downconvert.h"
#include "core/base64.h"
#include "core/buf.h"
#include "core/unit.h"
#include <stdio.h>
#include <string.h>

static void check(const char *in, const char *want, size_t nwant)
{
    struct buf b = BUF_INIT;
    size_t n = imap_downconvert_append(in, strlen(in), &b);
    if (strcmp(buf_cstr(&b), want)) fprintf(stderr, "in %s\n got %s\nwant %s\n", in,
                                            buf_cstr(&b), want);
    UNIT_EQ_STR(buf_cstr(&b), want);
    UNIT_EQ_INT(n, nwant);
    buf_fini(&b);
}

static void test_cases(void)
{
    /* Grüße = 47 72 c3 bc c3 9f 65 */
    check("(NIL {7}\r\nGr\xc3\xbc\xc3\x9f" "e NIL)", "(NIL \"=?UTF-8?B?R3LDvMOfZQ==?=\" NIL)", 1);
    /* quoted strings, NIL, numbers, ASCII literals: unchanged */
    check("(\"a {3}\" NIL 12 {3}\r\nabc)", "(\"a {3}\" NIL 12 {3}\r\nabc)", 0);
    check("(\"a\\\"{\" {2}\r\n\xc3\xa9)", "(\"a\\\"{\" \"=?UTF-8?B?w6k=?=\")", 1);
    /* not UTF-8 (Latin-1), an overlong form, a surrogate: the literal stays */
    check("({3}\r\nK\xf6l)", "({3}\r\nK\xf6l)", 0);
    check("({2}\r\n\xc0\xaf)", "({2}\r\n\xc0\xaf)", 0);
    check("({3}\r\n\xed\xa0\x80)", "({3}\r\n\xed\xa0\x80)", 0);
    /* UTF-8 with a CR or LF: stays a literal */
    check("({4}\r\n\xc3\xa9\r\n)", "({4}\r\n\xc3\xa9\r\n)", 0);
    /* damaged: a length past the end, no CRLF, no digits: copied from there as it is */
    check("({9}\r\n\xc3\xa9)", "({9}\r\n\xc3\xa9)", 0);
    check("({2}x\xc3\xa9)", "({2}x\xc3\xa9)", 0);
    check("({}\r\n)", "({}\r\n)", 0);
    check("({99999999999999999999999}\r\n)", "({99999999999999999999999}\r\n)", 0);
    check("(\"unterminated", "(\"unterminated", 0);
    /* two of them, and text after */
    check("({2}\r\n\xc3\xa9 {2}\r\n\xc3\xa8 \"x\")",
          "(\"=?UTF-8?B?w6k=?=\" \"=?UTF-8?B?w6g=?=\" \"x\")", 2);
}

static void test_split(void)
{
    /* 30 x "é" (60 bytes): words of at most 45 bytes, cut between characters (44 + 16) */
    struct buf in = BUF_INIT, out = BUF_INIT, want = BUF_INIT, e1 = BUF_INIT, e2 = BUF_INIT;
    struct buf raw = BUF_INIT;
    for (int i = 0; i < 30; i++) buf_appends(&raw, "\xc3\xa9");
    buf_printf(&in, "{%zu}\r\n", raw.len);
    buf_append(&in, raw.s, raw.len);
    UNIT_EQ_INT(imap_downconvert_append(in.s, in.len, &out), 1);
    base64_encode(raw.s, 44, &e1);
    base64_encode(raw.s + 44, 16, &e2);
    buf_printf(&want, "\"=?UTF-8?B?%s?= =?UTF-8?B?%s?=\"", buf_cstr(&e1), buf_cstr(&e2));
    UNIT_EQ_STR(buf_cstr(&out), buf_cstr(&want));
    /* every word within RFC 2047's 75 characters */
    const char *p = buf_cstr(&out) + 1;
    for (const char *sp; (sp = strchr(p, ' ')) != NULL; p = sp + 1) UNIT_CHECK(sp - p <= 75);
    buf_fini(&in);
    buf_fini(&out);
    buf_fini(&want);
    buf_fini(&e1);
    buf_fini(&e2);
    buf_fini(&raw);
}

static void test_utf8(void)
{
    UNIT_EQ_INT(imap_downconvert_utf8((const unsigned char *)"abc", 3), 0);   /* ASCII only */
    UNIT_EQ_INT(imap_downconvert_utf8((const unsigned char *)"\xf0\x9f\x98\x80", 4), 1);
    UNIT_EQ_INT(imap_downconvert_utf8((const unsigned char *)"\xf4\x90\x80\x80", 4), 0);
    UNIT_EQ_INT(imap_downconvert_utf8((const unsigned char *)"\xe2\x82", 2), 0);
    UNIT_EQ_INT(imap_downconvert_utf8((const unsigned char *)"\xe0\x80\x80", 3), 0);
}

int main(void)
{
    test_cases();
    test_split();
    test_utf8();
    UNIT_DONE();
}
