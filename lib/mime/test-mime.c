/* test-mime.c: table-driven unit tests of lib/mime: ENVELOPE, BODY, BODYSTRUCTURE, section
 * lookups, limits, speed, and the decoders of decode.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "core/buf.h"
#include "core/error.h"
#include "core/unit.h"
#include "core/xmalloc.h"
#include "mime/check-imap.h"
#include "mime/decode.h"
#include "mime/mime.h"

/* crlf: s with every LF turned into CRLF (the test tables are written with LF). */
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

/* ---- ENVELOPE ---- */

static const struct { const char *hdr, *env; } env_cases[] = {
    { "From: \"Smith, John\" <john@example.com>\nTo: a@b.c\nSubject: hi\n"
      "Date: Mon, 1 Jan 2024 10:00:00 +0000\nMessage-ID: <x@y>\n",
      "(\"Mon, 1 Jan 2024 10:00:00 +0000\" \"hi\" ((\"Smith, John\" NIL \"john\" \"example.com\"))"
      " ((\"Smith, John\" NIL \"john\" \"example.com\")) ((\"Smith, John\" NIL \"john\" "
      "\"example.com\")) ((NIL NIL \"a\" \"b.c\")) NIL NIL NIL \"<x@y>\")" },
    /* no header at all */
    { "", "(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)" },
    /* Sender given, Reply-To empty (so From), Cc and Bcc, In-Reply-To */
    { "From: a@x\nSender: b@y\nReply-To: \nCc: c@z, d@w\nBcc: e@v\nIn-Reply-To: <p@q>\n",
      "(NIL NIL ((NIL NIL \"a\" \"x\")) ((NIL NIL \"b\" \"y\")) ((NIL NIL \"a\" \"x\")) NIL "
      "((NIL NIL \"c\" \"z\")(NIL NIL \"d\" \"w\")) ((NIL NIL \"e\" \"v\")) \"<p@q>\" NIL)" },
    /* groups, route-addr, missing domain, comment as name, quoted local part, literal */
    { "To: undisclosed-recipients:;\n"
      "Cc: Team: a@b.c, Bob <b@d.e>;, <@r1.x,@r2.y:rt@h.z>, joe, x@y (Xavier Y)\n"
      "Bcc: \"john doe\"@ex.com, u@[10.0.0.1]\n",
      "(NIL NIL NIL NIL NIL ((NIL NIL \"undisclosed-recipients\" NIL)(NIL NIL NIL NIL)) "
      "((NIL NIL \"Team\" NIL)(NIL NIL \"a\" \"b.c\")(\"Bob\" NIL \"b\" \"d.e\")(NIL NIL NIL NIL)"
      "(NIL \"@r1.x,@r2.y\" \"rt\" \"h.z\")(NIL NIL \"joe\" NIL)(\"Xavier Y\" NIL \"x\" \"y\")) "
      "((NIL NIL \"john doe\" \"ex.com\")(NIL NIL \"u\" \"[10.0.0.1]\")) NIL NIL)" },
    /* quote and backslash are escaped in quoted strings */
    { "Subject: say \"hi\" \\ there\n",
      "(NIL \"say \\\"hi\\\" \\\\ there\" NIL NIL NIL NIL NIL NIL NIL NIL)" },
    /* 8-bit goes out as a literal */
    { "Subject: caf\xc3\xa9\n", "(NIL {5}\r\ncaf\xc3\xa9 NIL NIL NIL NIL NIL NIL NIL NIL)" },
    /* duplicates: first wins; names case-insensitive; space before the colon */
    { "SUBJECT : first\nsubject: second\nfrom: A <a@b>\nFROM: C <c@d>\n",
      "(NIL \"first\" ((\"A\" NIL \"a\" \"b\")) ((\"A\" NIL \"a\" \"b\")) ((\"A\" NIL \"a\" \"b\")) "
      "NIL NIL NIL NIL NIL)" },
    /* present but empty subject; folded From; encoded-word name kept as it is */
    { "Subject:\nFrom: =?utf-8?q?J=C3=B6rg?=\n <joerg@example.org>\n",
      "(NIL \"\" ((\"=?utf-8?q?J=C3=B6rg?=\" NIL \"joerg\" \"example.org\")) "
      "((\"=?utf-8?q?J=C3=B6rg?=\" NIL \"joerg\" \"example.org\")) "
      "((\"=?utf-8?q?J=C3=B6rg?=\" NIL \"joerg\" \"example.org\")) NIL NIL NIL NIL NIL)" },
    /* null address; obsolete phrase with dots; comments inside */
    { "From: <>\nTo: John Q. Public <jqp@x.org>, (c) Mary (x) <m@y.org>\n",
      "(NIL NIL NIL NIL NIL ((\"John Q. Public\" NIL \"jqp\" \"x.org\")(\"Mary\" NIL \"m\" "
      "\"y.org\")) NIL NIL NIL NIL)" },
    /* an addr-spec used as the display name; junk after '>' ignored */
    { "From: joe@x.org <joe@x.org>\nTo: <a@b> junk, c@d\n",
      "(NIL NIL ((\"joe@x.org\" NIL \"joe\" \"x.org\")) ((\"joe@x.org\" NIL \"joe\" \"x.org\")) "
      "((\"joe@x.org\" NIL \"joe\" \"x.org\")) ((NIL NIL \"a\" \"b\")(NIL NIL \"c\" \"d\")) NIL"
      " NIL NIL NIL)" },
    /* a no-colon line and 8-bit junk are tolerated */
    { "From bounce@x Mon Jan 1\nX-Junk: \xff\xfe\nSubject: ok\n",
      "(NIL \"ok\" NIL NIL NIL NIL NIL NIL NIL NIL)" },
};

static void test_envelope(void)
{
    size_t i;
    for (i = 0; i < sizeof(env_cases) / sizeof(env_cases[0]); i++) {
        struct mime_summary s;
        char *raw = xasprintf("%s\nbody\n", env_cases[i].hdr);
        size_t len;
        char *msg = crlf(raw, &len);
        mime_summary_init(&s);
        UNIT_EQ_INT(mime_summarize(msg, len, &s), 0);
        UNIT_EQ_STR(buf_cstr(&s.envelope), env_cases[i].env);
        UNIT_CHECK(check_imap_envelope(s.envelope.s, s.envelope.len));
        if (strcmp(buf_cstr(&s.envelope), env_cases[i].env)) fprintf(stderr, "case %zu\n", i);
        mime_summary_fini(&s);
        free(raw);
        free(msg);
    }
}

/* ---- BODYSTRUCTURE and BODY ---- */

static const struct { const char *msg, *bs, *body; } bs_cases[] = {
    /* 0: no Content-Type: the RFC 2045 default, with line count */
    { "Subject: x\n\nhello\n",
      "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 7 1 NIL NIL NIL NIL)",
      "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 7 1)" },
    /* 1: every single-part field */
    { "Content-Type: text/html; charset=\"UTF-8\"\nContent-Transfer-Encoding: quoted-printable\n"
      "Content-ID: <id1@x>\nContent-Description: the page\nContent-Disposition: inline; "
      "filename=a.html\nContent-Language: en\nContent-Location: http://x/a.html\n"
      "Content-MD5: Q2hlY2sgSW50ZWdyaXR5IQ==\n\n<p>hi</p>\n<p>2</p>",
      "(\"TEXT\" \"HTML\" (\"CHARSET\" \"UTF-8\") \"<id1@x>\" \"the page\" \"QUOTED-PRINTABLE\" "
      "19 2 \"Q2hlY2sgSW50ZWdyaXR5IQ==\" (\"INLINE\" (\"FILENAME\" \"a.html\")) \"en\" "
      "\"http://x/a.html\")",
      "(\"TEXT\" \"HTML\" (\"CHARSET\" \"UTF-8\") \"<id1@x>\" \"the page\" \"QUOTED-PRINTABLE\" "
      "19 2)" },
    /* 2: multipart/alternative with preamble and epilogue */
    { "Content-Type: multipart/alternative; boundary=\"XX\"\n\npreamble\n--XX\n"
      "Content-Type: text/plain\n\nplain\n--XX\nContent-Type: text/html\n\n<b>x</b>\n"
      "--XX--\nepilogue\n",
      "((\"TEXT\" \"PLAIN\" NIL NIL NIL \"7BIT\" 5 1 NIL NIL NIL NIL)(\"TEXT\" \"HTML\" NIL NIL "
      "NIL \"7BIT\" 8 1 NIL NIL NIL NIL) \"ALTERNATIVE\" (\"BOUNDARY\" \"XX\") NIL NIL NIL)",
      "((\"TEXT\" \"PLAIN\" NIL NIL NIL \"7BIT\" 5 1)(\"TEXT\" \"HTML\" NIL NIL NIL \"7BIT\" 8 1)"
      " \"ALTERNATIVE\")" },
    /* 3: digest parts default to message/rfc822 (RFC 2046 section 5.1.5) */
    { "Content-Type: multipart/digest; boundary=d\n\n--d\n\nSubject: one\n\nbody1\n--d--\n",
      "((\"MESSAGE\" \"RFC822\" NIL NIL NIL \"7BIT\" 21 (NIL \"one\" NIL NIL NIL NIL NIL NIL "
      "NIL NIL) (\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 5 1 NIL NIL NIL "
      "NIL) 3 NIL NIL NIL NIL) \"DIGEST\" (\"BOUNDARY\" \"d\") NIL NIL NIL)",
      "((\"MESSAGE\" \"RFC822\" NIL NIL NIL \"7BIT\" 21 (NIL \"one\" NIL NIL NIL NIL NIL NIL "
      "NIL NIL) (\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 5 1) 3) "
      "\"DIGEST\")" },
    /* 4: RFC 2231 continuations and charsets joined; names uppercased */
    { "Content-Type: application/x-stuff;\n title*0*=us-ascii'en'This%20is%20even%20more%20;\n"
      " title*1*=%2A%2A%2Afun%2A%2A%2A%20; title*2=\"isn't it!\"; Name*=utf-8''%E2%82%AC.txt\n"
      "\nxyz",
      "(\"APPLICATION\" \"X-STUFF\" (\"TITLE*\" \"us-ascii'en'This%20is%20even%20more%20%2A%2A"
      "%2Afun%2A%2A%2A%20isn%27t%20it!\" \"NAME*\" \"utf-8''%E2%82%AC.txt\") NIL NIL \"7BIT\" 3"
      " NIL NIL NIL NIL)",
      "(\"APPLICATION\" \"X-STUFF\" (\"TITLE*\" \"us-ascii'en'This%20is%20even%20more%20%2A%2A"
      "%2Afun%2A%2A%2A%20isn%27t%20it!\" \"NAME*\" \"utf-8''%E2%82%AC.txt\") NIL NIL \"7BIT\" 3)"
    },
    /* 5: missing close delimiter: the last part runs to the end */
    { "Content-Type: multipart/mixed; boundary=b\n\n--b\n\none\n--b\n\ntwo\nlines\n",
      "((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 3 1 NIL NIL NIL NIL)"
      "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 12 2 NIL NIL NIL NIL) "
      "\"MIXED\" (\"BOUNDARY\" \"b\") NIL NIL NIL)", NULL },
    /* 6: multipart without a boundary parameter: shown as the default text/plain */
    { "Content-Type: multipart/mixed\n\nabc\n",
      "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 5 1 NIL NIL NIL NIL)", NULL },
    /* 7: a boundary that never occurs: one headerless part holding the whole body */
    { "Content-Type: multipart/mixed; boundary=zz\n\nabc\ndef\n",
      "((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 10 2 NIL NIL NIL NIL) "
      "\"MIXED\" (\"BOUNDARY\" \"zz\") NIL NIL NIL)", NULL },
    /* 8: malformed Content-Type: the default */
    { "Content-Type: garbage\n\nx",
      "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 1 1 NIL NIL NIL NIL)", NULL },
    /* 9: base64 application part: no line count; disposition attachment; two languages */
    { "Content-Type: multipart/mixed; boundary=\"=_a b\"\n\n--=_a b\nContent-Type: image/png;"
      " name=\"x.png\"\nContent-Transfer-Encoding: BASE64\nContent-Disposition: attachment\n"
      "Content-Language: en, de (German)\n\niVBORw0KGgo=\n--=_a b--\n",
      "((\"IMAGE\" \"PNG\" (\"NAME\" \"x.png\") NIL NIL \"BASE64\" 12 NIL (\"ATTACHMENT\" NIL) "
      "(\"en\" \"de\") NIL) \"MIXED\" (\"BOUNDARY\" \"=_a b\") NIL NIL NIL)", NULL },
    /* 10: a delimiter inside a part's header ends that part (empty body) */
    { "Content-Type: multipart/mixed; boundary=q\n\n--q\nContent-Type: text/plain\n--q\n\nok\n"
      "--q--\n",
      "((\"TEXT\" \"PLAIN\" NIL NIL NIL \"7BIT\" 0 0 NIL NIL NIL NIL)(\"TEXT\" \"PLAIN\" "
      "(\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 2 1 NIL NIL NIL NIL) \"MIXED\" (\"BOUNDARY\" "
      "\"q\") NIL NIL NIL)", NULL },
    /* 11: inner boundary extends the outer one; the inner close is missing */
    { "Content-Type: multipart/mixed; boundary=ab\n\n--ab\nContent-Type: multipart/alternative;"
      " boundary=abcd\n\n--abcd\n\nin1\n--ab\n\nout2\n--ab--\n",
      "(((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 3 1 NIL NIL NIL NIL) "
      "\"ALTERNATIVE\" (\"BOUNDARY\" \"abcd\") NIL NIL NIL)(\"TEXT\" \"PLAIN\" (\"CHARSET\" "
      "\"US-ASCII\") NIL NIL \"7BIT\" 4 1 NIL NIL NIL NIL) \"MIXED\" (\"BOUNDARY\" \"ab\") NIL "
      "NIL NIL)", NULL },
    /* 12: message/rfc822 whose body is multipart; multipart disposition and language */
    { "Content-Type: multipart/mixed; boundary=o\nContent-Disposition: inline\n"
      "Content-Language: fr\n\n--o\nContent-Type: message/rfc822\n\nSubject: in\n"
      "Content-Type: multipart/alternative; boundary=i\n\n--i\n\nA\n--i--\n--o--\n",
      "((\"MESSAGE\" \"RFC822\" NIL NIL NIL \"7BIT\" 79 (NIL \"in\" NIL NIL NIL NIL NIL NIL NIL"
      " NIL) ((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 1 1 NIL NIL NIL "
      "NIL) \"ALTERNATIVE\" (\"BOUNDARY\" \"i\") NIL NIL NIL) 7 NIL NIL NIL NIL) \"MIXED\" "
      "(\"BOUNDARY\" \"o\") (\"INLINE\" NIL) \"fr\" NIL)", NULL },
    /* 13: headers only, no empty line, no body */
    { "Subject: x", "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 0 0 NIL NIL"
      " NIL NIL)", NULL },
};

static void test_bodystructure(void)
{
    size_t i;
    for (i = 0; i < sizeof(bs_cases) / sizeof(bs_cases[0]); i++) {
        struct mime_summary s;
        size_t len;
        char *msg = crlf(bs_cases[i].msg, &len);
        mime_summary_init(&s);
        UNIT_EQ_INT(mime_summarize(msg, len, &s), 0);
        UNIT_EQ_STR(buf_cstr(&s.bodystructure), bs_cases[i].bs);
        if (strcmp(buf_cstr(&s.bodystructure), bs_cases[i].bs)) fprintf(stderr, "case %zu\n", i);
        if (bs_cases[i].body) UNIT_EQ_STR(buf_cstr(&s.body), bs_cases[i].body);
        UNIT_CHECK(check_imap_body(s.bodystructure.s, s.bodystructure.len, 1));
        UNIT_CHECK(check_imap_body(s.body.s, s.body.len, 0));
        UNIT_CHECK(check_imap_envelope(s.envelope.s, s.envelope.len));
        mime_summary_fini(&s);
        free(msg);
    }
}

/* The same message with bare LF: sizes count the bytes as stored. */
static void test_bare_lf(void)
{
    const char *m = "Subject: x\nContent-Type: text/plain\n\nab\ncd\n";
    struct mime_summary s;
    mime_summary_init(&s);
    UNIT_EQ_INT(mime_summarize(m, strlen(m), &s), 0);
    UNIT_EQ_STR(buf_cstr(&s.bodystructure),
                "(\"TEXT\" \"PLAIN\" NIL NIL NIL \"7BIT\" 6 2 NIL NIL NIL NIL)");
    UNIT_EQ_INT(s.header_size, 37);
    UNIT_EQ_INT(s.body_lines, 2);
    mime_summary_fini(&s);
}

/* ---- sections ---- */

static const char sect_msg[] =
    "Subject: s\n"
    "Content-Type: multipart/mixed; boundary=B\n"
    "\n"
    "--B\n"
    "Content-Type: text/plain\n"
    "\n"
    "part one\n"
    "--B\n"
    "Content-Type: message/rfc822\n"
    "\n"
    "Subject: inner\n"
    "\n"
    "inner text\n"
    "--B\n"
    "Content-Type: multipart/alternative; boundary=C\n"
    "\n"
    "--C\n"
    "\n"
    "alt one\n"
    "--C\n"
    "Content-Type: message/rfc822\n"
    "\n"
    "Subject: deep\n"
    "Content-Type: multipart/mixed; boundary=D\n"
    "\n"
    "--D\n"
    "\n"
    "deep one\n"
    "--D--\n"
    "--C--\n"
    "--B--\n";

static const struct {
    const char *part;
    int found, multi, rfc822;
    const char *header, *body, *msg_header;
} sect_cases[] = {
    { "", 1, 1, 0, "Subject: s\r\nContent-Type: multipart/mixed; boundary=B\r\n\r\n", NULL, NULL },
    { "1", 1, 0, 0, "Content-Type: text/plain\r\n\r\n", "part one", NULL },
    { "2", 1, 0, 1, "Content-Type: message/rfc822\r\n\r\n", "Subject: inner\r\n\r\ninner text",
      "Subject: inner\r\n\r\n" },
    { "2.1", 1, 0, 0, "Subject: inner\r\n\r\n", "inner text", NULL },
    { "3", 1, 1, 0, "Content-Type: multipart/alternative; boundary=C\r\n\r\n", NULL, NULL },
    { "3.1", 1, 0, 0, "\r\n", "alt one", NULL },
    { "3.2", 1, 0, 1, "Content-Type: message/rfc822\r\n\r\n", NULL,
      "Subject: deep\r\nContent-Type: multipart/mixed; boundary=D\r\n\r\n" },
    { "3.2.1", 1, 0, 0, "\r\n", "deep one", NULL },
    { "3.2.2", 0, 0, 0, NULL, NULL, NULL },
    { "4", 0, 0, 0, NULL, NULL, NULL },
    { "1.1", 0, 0, 0, NULL, NULL, NULL },
    { "0", 0, 0, 0, NULL, NULL, NULL },
    { "x", 0, 0, 0, NULL, NULL, NULL },
};

static void test_sections(void)
{
    struct mime_summary s;
    struct mime_section sec;
    size_t len, i;
    char *msg = crlf(sect_msg, &len);
    mime_summary_init(&s);
    UNIT_EQ_INT(mime_summarize(msg, len, &s), 0);
    for (i = 0; i < sizeof(sect_cases) / sizeof(sect_cases[0]); i++) {
        int r = mime_section_find(s.sections.s, s.sections.len, sect_cases[i].part, &sec);
        UNIT_EQ_INT(r, sect_cases[i].found);
        if (r != sect_cases[i].found) fprintf(stderr, "part \"%s\"\n", sect_cases[i].part);
        if (!r || !sect_cases[i].found) continue;
        UNIT_EQ_INT(sec.is_multipart, sect_cases[i].multi);
        UNIT_EQ_INT(sec.is_message_rfc822, sect_cases[i].rfc822);
        UNIT_CHECK(sec.header_off + sec.header_len <= len && sec.body_off + sec.body_len <= len);
        {
            char *h = xstrndup(msg + sec.header_off, sec.header_len);
            UNIT_EQ_STR(h, sect_cases[i].header);
            free(h);
        }
        if (sect_cases[i].body) {
            char *b = xstrndup(msg + sec.body_off, sec.body_len);
            UNIT_EQ_STR(b, sect_cases[i].body);
            free(b);
        }
        if (sect_cases[i].msg_header) {
            char *mh = xstrndup(msg + sec.body_off, sec.msg_header_len);
            UNIT_EQ_STR(mh, sect_cases[i].msg_header);
            free(mh);
        }
    }
    /* the whole message: header then everything after it */
    UNIT_EQ_INT(mime_section_find(s.sections.s, s.sections.len, "", &sec), 1);
    UNIT_EQ_INT(sec.header_off, 0);
    UNIT_EQ_INT(sec.body_off, s.header_size);
    UNIT_EQ_INT(sec.body_off + sec.body_len, len);
    /* damaged tables are refused, not overrun */
    UNIT_EQ_INT(mime_section_find("S1\n1 2 3", 8, "1", &sec), 0);
    UNIT_EQ_INT(mime_section_find("S2\n0 0 0 0 0 - 0\n", 17, "", &sec), 0);
    UNIT_EQ_INT(mime_section_find("S1\n1 99999999999999999999999 0 0 0 - 0\n", 39, "1", &sec), 0);
    mime_summary_fini(&s);
    free(msg);

    /* a top-level message/rfc822: part 1 is the inner message, 1.1 its body */
    {
        size_t l2;
        char *m2 = crlf("Content-Type: message/rfc822\n\nSubject: in\n\ntext\n", &l2);
        mime_summary_init(&s);
        UNIT_EQ_INT(mime_summarize(m2, l2, &s), 0);
        UNIT_EQ_STR(buf_cstr(&s.sections), "S1\n0 0 32 32 21 R 15\n1 0 32 32 21 R 15\n"
                                           "1.1 32 15 47 6 - 0\n");
        UNIT_CHECK(check_imap_body(s.bodystructure.s, s.bodystructure.len, 1));
        mime_summary_fini(&s);
        free(m2);
    }
    /* a non-multipart message has a part 1: its body */
    {
        const char *m = "Subject: a\r\n\r\nbody\r\n";
        mime_summary_init(&s);
        mime_summarize(m, strlen(m), &s);
        UNIT_EQ_INT(mime_section_find(s.sections.s, s.sections.len, "1", &sec), 1);
        UNIT_EQ_INT(sec.body_off, 14);
        UNIT_EQ_INT(sec.body_len, 6);
        UNIT_EQ_INT(mime_section_find(s.sections.s, s.sections.len, "2", &sec), 0);
        UNIT_EQ_STR(buf_cstr(&s.sections), "S1\n0 0 14 14 6 - 0\n1 0 14 14 6 - 0\n");
        mime_summary_fini(&s);
    }
}

/* ---- limits ---- */

static void test_limits(void)
{
    struct buf m = BUF_INIT;
    struct mime_summary s;
    int i;

    /* 150 nested multiparts: cut at MIME_MAX_DEPTH, still valid syntax */
    for (i = 0; i < 150; i++)
        buf_printf(&m, "Content-Type: multipart/mixed; boundary=b%d\r\n\r\n--b%d\r\n", i, i);
    buf_appends(&m, "\r\nleaf\r\n");
    mime_summary_init(&s);
    UNIT_EQ_INT(mime_summarize(m.s, m.len, &s), CF_E_LIMIT);
    UNIT_CHECK(check_imap_body(s.bodystructure.s, s.bodystructure.len, 1));
    UNIT_CHECK(check_imap_body(s.body.s, s.body.len, 0));

    /* 150 nested message/rfc822 */
    buf_reset(&m);
    for (i = 0; i < 150; i++) buf_appends(&m, "Subject: n\r\nContent-Type: message/rfc822\r\n\r\n");
    buf_appends(&m, "Subject: last\r\n\r\nend\r\n");
    UNIT_EQ_INT(mime_summarize(m.s, m.len, &s), CF_E_LIMIT);
    UNIT_CHECK(check_imap_body(s.bodystructure.s, s.bodystructure.len, 1));
    UNIT_CHECK(check_imap_envelope(s.envelope.s, s.envelope.len));

    /* 99 levels are fine */
    buf_reset(&m);
    for (i = 0; i < 99; i++) buf_appends(&m, "Content-Type: message/rfc822\r\n\r\n");
    buf_appends(&m, "Subject: last\r\n\r\nend\r\n");
    UNIT_EQ_INT(mime_summarize(m.s, m.len, &s), 0);

    /* 12,000 parts: the first ones kept, the count bounded */
    buf_reset(&m);
    buf_appends(&m, "Content-Type: multipart/mixed; boundary=p\r\n\r\n");
    for (i = 0; i < 12000; i++) buf_appends(&m, "--p\r\n\r\nx\r\n");
    buf_appends(&m, "--p--\r\n");
    UNIT_EQ_INT(mime_summarize(m.s, m.len, &s), CF_E_LIMIT);
    UNIT_CHECK(check_imap_body(s.bodystructure.s, s.bodystructure.len, 1));
    {
        struct mime_section sec;
        UNIT_EQ_INT(mime_section_find(s.sections.s, s.sections.len, "9000", &sec), 1);
        UNIT_EQ_INT(mime_section_find(s.sections.s, s.sections.len, "11000", &sec), 0);
    }
    mime_summary_fini(&s);
    buf_fini(&m);
}

/* ---- speed: a 300 KB message with a base64 attachment ---- */

static void test_speed(void)
{
    struct buf m = BUF_INIT;
    struct mime_summary s;
    struct timespec t0, t1;
    int i, rounds = 200;
    double us;
    buf_appends(&m, "From: a@b.c\r\nTo: d@e.f\r\nSubject: big\r\nMIME-Version: 1.0\r\n"
                    "Content-Type: multipart/mixed; boundary=\"----=_Part_1\"\r\n\r\n"
                    "------=_Part_1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nSee the file.\r\n"
                    "------=_Part_1\r\nContent-Type: application/pdf; name=\"a.pdf\"\r\n"
                    "Content-Transfer-Encoding: base64\r\n\r\n");
    while (m.len < 300 * 1024)
        buf_appends(&m, "JVBERi0xLjQKJcOkw7zDtsOfCjIgMCBvYmoKPDwvTGVuZ3RoIDMgMCBSL0ZpbHRlci9GbGF0ZURl\r\n");
    buf_appends(&m, "------=_Part_1--\r\n");
    mime_summary_init(&s);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (i = 0; i < rounds; i++) mime_summarize(m.s, m.len, &s);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    us = ((double)(t1.tv_sec - t0.tv_sec) * 1e6 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e3) / rounds;
    printf("mime_summarize: %zu bytes in %.1f us\n", m.len, us);
    /* Generous: this build may carry sanitizers; an optimized build is far faster. */
    UNIT_CHECK(us < 20000.0);
    UNIT_CHECK(strstr(buf_cstr(&s.bodystructure), "\"APPLICATION\" \"PDF\"") != NULL);
    mime_summary_fini(&s);
    buf_fini(&m);
}

/* ---- decoders ---- */

static const struct { const char *in, *out; int header; } qp_cases[] = {
    { "a=3Db", "a=b", 0 },
    { "soft=\r\nbreak", "softbreak", 0 },
    { "soft= \nbreak", "softbreak", 0 },
    { "trail  \r\nx", "trail\r\nx", 0 },
    { "bad=ZZ=", "bad=ZZ", 0 },
    { "caf=E9", "caf\xe9", 0 },
    { "a_b=5Fc", "a b_c", 1 },
};

static const struct { const char *in, *out; } b64_cases[] = {
    { "aGVsbG8=", "hello" },
    { "aGVs\r\nbG8gd29y\r\nbGQ=", "hello world" },
    { "YQ", "a" },
    { "", "" },
};

static const struct { const char *in, *out; } hdr_cases[] = {
    { "plain text", "plain text" },
    { "=?UTF-8?B?w6k=?= =?UTF-8?Q?t=C3=A9?=", "\xc3\xa9t\xc3\xa9" },
    { "=?utf-8?q?=C3?=  =?utf-8?q?=A9?=", "\xc3\xa9" },          /* a split character */
    { "=?iso-8859-1?q?caf=E9?= ok", "caf\xc3\xa9 ok" },
    { "Hello =?utf-8?q?W=C3=B6rld?= !", "Hello W\xc3\xb6rld !" },
    { "=?utf-8?x?abc?= =?bad", "=?utf-8?x?abc?= =?bad" },
    { "=?utf-8*en?q?hi?=", "hi" },
    { "folded\r\n =?us-ascii?q?word?=", "folded word" },
    { "=?koi8-r?b?8NLJ18XU?=", "\xd0\x9f\xd1\x80\xd0\xb8\xd0\xb2\xd0\xb5\xd1\x82" },
    { "raw caf\xe9", "raw caf\xc3\xa9" },
    { "a =?utf-8?q?x?= b", "a x b" },
};

static int text_cb(void *rock, const char *subtype, const char *text, size_t len)
{
    struct buf *b = rock;
    buf_printf(b, "[%s:", subtype);
    buf_append(b, text, len);
    buf_putc(b, ']');
    return 0;
}

static void test_decode(void)
{
    struct buf b = BUF_INIT;
    size_t i;
    for (i = 0; i < sizeof(qp_cases) / sizeof(qp_cases[0]); i++) {
        buf_reset(&b);
        mime_decode_qp(qp_cases[i].in, strlen(qp_cases[i].in), qp_cases[i].header, &b);
        UNIT_EQ_STR(buf_cstr(&b), qp_cases[i].out);
    }
    for (i = 0; i < sizeof(b64_cases) / sizeof(b64_cases[0]); i++) {
        buf_reset(&b);
        mime_decode_base64(b64_cases[i].in, strlen(b64_cases[i].in), &b);
        UNIT_EQ_STR(buf_cstr(&b), b64_cases[i].out);
    }
    buf_reset(&b);
    UNIT_EQ_INT(mime_decode_base64("a$b", 3, &b), CF_E_PARSE);
    for (i = 0; i < sizeof(hdr_cases) / sizeof(hdr_cases[0]); i++) {
        buf_reset(&b);
        mime_decode_header(hdr_cases[i].in, strlen(hdr_cases[i].in), &b);
        UNIT_EQ_STR(buf_cstr(&b), hdr_cases[i].out);
    }
    buf_reset(&b);
    UNIT_EQ_INT(mime_charset_to_utf8("x-no-such", "caf\xe9", 4, &b), CF_E_NOTFOUND);
    UNIT_EQ_STR(buf_cstr(&b), "caf\xc3\xa9");
    buf_reset(&b);
    UNIT_EQ_INT(mime_charset_to_utf8("UTF-8", "a\xffz", 3, &b), CF_E_PARSE);
    UNIT_EQ_STR(buf_cstr(&b), "a\xef\xbf\xbdz");
    buf_reset(&b);
    UNIT_EQ_INT(mime_charset_to_utf8("ISO-8859-1", "\x93hi\x94 \xe9", 6, &b), 0);
    UNIT_EQ_STR(buf_cstr(&b), "\xe2\x80\x9chi\xe2\x80\x9d \xc3\xa9");
    buf_reset(&b);
    UNIT_EQ_INT(mime_charset_to_utf8("windows-1252", "\x80 5", 3, &b), 0);
    UNIT_EQ_STR(buf_cstr(&b), "\xe2\x82\xac 5");
    buf_reset(&b);
    mime_charset_to_utf8("iso-2022-jp", "\x1b$B$3$s\x1b(B", 10, &b);
    UNIT_EQ_STR(buf_cstr(&b), "\xe3\x81\x93\xe3\x82\x93");

    /* foreach_text: qp plain and base64 html decoded; the image skipped */
    {
        size_t len;
        char *m = crlf("Content-Type: multipart/mixed; boundary=t\n\n--t\n"
                       "Content-Type: text/plain; charset=iso-8859-1\n"
                       "Content-Transfer-Encoding: quoted-printable\n\ncaf=E9\n--t\n"
                       "Content-Type: image/gif\nContent-Transfer-Encoding: base64\n\nR0lG\n--t\n"
                       "Content-Type: text/html; charset=utf-8\nContent-Transfer-Encoding: base64\n"
                       "\nPGI+w6k8L2I+\n--t--\n", &len);
        buf_reset(&b);
        UNIT_EQ_INT(mime_foreach_text(m, len, text_cb, &b), 0);
        UNIT_EQ_STR(buf_cstr(&b), "[PLAIN:caf\xc3\xa9][HTML:<b>\xc3\xa9</b>]");
        free(m);
    }
    buf_fini(&b);
}

static int hdr_cb(void *rock, const char *name, size_t nl, const char *v, size_t vl)
{
    struct buf *b = rock;
    buf_append(b, name, nl);
    buf_putc(b, '=');
    buf_append(b, v, vl);
    buf_putc(b, '|');
    return 0;
}

static void test_header_foreach(void)
{
    struct buf b = BUF_INIT;
    const char *m = "A: 1\r\nB : two\r\n  more\r\njunk\r\nA: 3\r\n\r\nC: body\r\n";
    UNIT_EQ_INT(mime_header_foreach(m, strlen(m), hdr_cb, &b), 0);
    UNIT_EQ_STR(buf_cstr(&b), "A= 1|B= two\r\n  more|A= 3|");
    buf_fini(&b);
}

static int raw_cb(void *rock, const char *name, size_t nl, const char *f, size_t fl)
{
    struct buf *b = rock;
    if (name) buf_append(b, name, nl);
    else buf_appends(b, "(none)");
    buf_putc(b, '=');
    buf_append(b, f, fl);
    buf_putc(b, '|');
    return 0;
}

/* Table: a header, what mime_header_foreach and mime_header_foreach_raw see ("name=value|"). */
static const struct { const char *m, *fields, *raw; } header_cases[] = {
    { "A: 1\r\nB : two\r\n  more\r\njunk\r\nA: 3\r\n\r\nC: body\r\n",
      "A= 1|B= two\r\n  more|A= 3|",
      "A=A: 1\r\n|B=B : two\r\n  more\r\n|(none)=junk\r\n|A=A: 3\r\n|" },
    { "A: 1\nB: 2", "A= 1|B= 2|", "A=A: 1\n|B=B: 2|" },                 /* bare LF, no end */
    { " x: 1\r\n\tmore\r\n: 2\r\nA: 3\r\n", "A= 3|",              /* malformed fields */
      " x= x: 1\r\n\tmore\r\n|=: 2\r\n|A=A: 3\r\n|" },
    { "\r\nA: 1\r\n", "", "" },
    { "", "", "" },
};

static void test_header_walks(void)
{
    struct buf b = BUF_INIT;
    for (size_t i = 0; i < sizeof header_cases / sizeof header_cases[0]; i++) {
        const char *m = header_cases[i].m;
        buf_reset(&b);
        UNIT_EQ_INT(mime_header_foreach(m, strlen(m), hdr_cb, &b), 0);
        UNIT_EQ_STR(buf_cstr(&b), header_cases[i].fields);
        buf_reset(&b);
        UNIT_EQ_INT(mime_header_foreach_raw(m, strlen(m), raw_cb, &b), 0);
        UNIT_EQ_STR(buf_cstr(&b), header_cases[i].raw);
    }
    const char *m = "Subject: a\r\nmessage-id :\r\n <x@y>\r\nMessage-ID: <2>\r\n\r\nDate: no\r\n";
    const char *v = NULL;
    size_t vl = 0;
    UNIT_EQ_INT(mime_header_find(m, strlen(m), "Message-ID", &v, &vl), 1);
    buf_reset(&b);
    mime_header_unfold(v, vl, &b);
    UNIT_EQ_STR(buf_cstr(&b), "<x@y>");
    UNIT_EQ_INT(mime_header_find(m, strlen(m), "Date", &v, &vl), 0);
    UNIT_EQ_INT(mime_header_find(m, strlen(m), "Subjec", &v, &vl), 0);
    buf_reset(&b);
    mime_header_unfold(" a\r\n b\r\n\tc ", 11, &b);
    UNIT_EQ_INT(b.len, 6);
    UNIT_EQ_STR(buf_cstr(&b), "a b\tc ");
    buf_fini(&b);
}

static const struct { const char *h, *n; int found; } contains_cases[] = {
    { "Hello World", "WORLD", 1 },
    { "Hello World", "worlds", 0 },
    { "\xc3\x89" "COLE", "\xc3\xa9" "cole", 1 },                        /* ÉCOLE / école */
    { "\xce\xa3\xce\x9f\xce\xa6\xce\x99\xce\x91", "\xcf\x83\xce\xbf\xcf\x86\xce\xb9\xce\xb1", 1 },
    { "\xcf\x82", "\xce\xa3", 1 },                                        /* final sigma */
    { "\xd0\x9f\xd0\xa0\xd0\x98\xd0\x92\xd0\x95\xd0\xa2",                 /* ПРИВЕТ */
      "\xd0\xbf\xd1\x80\xd0\xb8\xd0\xb2\xd0\xb5\xd1\x82", 1 },            /* привет */
    { "\xd0\x81", "\xd1\x91", 1 },                                        /* Ё / ё */
    { "\xc5\x81\xc3\xb3" "d\xc5\xba", "\xc5\x82\xc3\x93" "D" "\xc5\xb9", 1 },   /* Łódź */
    { "abc", "", 1 },
    { "", "a", 0 },
    { "ab\xff" "cd", "\xff" "C", 1 },
    { "aaab", "aab", 1 },
};

static void test_contains(void)
{
    size_t i;
    for (i = 0; i < sizeof(contains_cases) / sizeof(contains_cases[0]); i++) {
        int r = mime_text_contains(contains_cases[i].h, contains_cases[i].n);
        UNIT_EQ_INT(r, contains_cases[i].found);
        if (r != contains_cases[i].found) fprintf(stderr, "contains case %zu\n", i);
    }
    /* long inputs: a match across the internal chunk boundary, and no quadratic blow-up */
    {
        size_t n = 300000, k;
        char *h = xmalloc(n + 1), *nd = xmalloc(2001);
        for (k = 0; k < n; k++) h[k] = 'a';
        h[n] = '\0';
        for (k = 0; k < 2000; k++) nd[k] = 'A';
        nd[2000] = '\0';
        UNIT_EQ_INT(mime_text_contains(h, nd), 1);
        nd[1999] = 'B';
        UNIT_EQ_INT(mime_text_contains(h, nd), 0);
        memcpy(h + 65530, "N\xc3\x89" "EDLE", 7);
        UNIT_EQ_INT(mime_text_contains(h, "n\xc3\xa9" "edle"), 1);
        free(h);
        free(nd);
    }
    UNIT_EQ_INT(mime_casefold(0x178), 0xff);
    UNIT_EQ_INT(mime_casefold(0x1e9e), 0xdf);
    UNIT_EQ_INT(mime_casefold(0x4c1), 0x4c2);
}

/* The shared Content-Transfer-Encoding decoder (FETCH BINARY, SEARCH body text). */
static void test_cte(void)
{
    static const struct { const char *value; enum mime_cte want; } names[] = {
        { "base64", MIME_CTE_BASE64 }, { " BASE64\r\n", MIME_CTE_BASE64 },
        { "(c) base64 (trailing)", MIME_CTE_BASE64 }, { "Quoted-Printable", MIME_CTE_QP },
        { "7bit", MIME_CTE_IDENTITY }, { "8BIT", MIME_CTE_IDENTITY },
        { "binary", MIME_CTE_IDENTITY }, { "", MIME_CTE_IDENTITY }, { "  ", MIME_CTE_IDENTITY },
        { "x-uuencode", MIME_CTE_UNKNOWN }, { "base65", MIME_CTE_UNKNOWN },
        { "\"base64\"", MIME_CTE_UNKNOWN }, { "quoted", MIME_CTE_UNKNOWN },
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (mime_cte_parse(names[i].value, strlen(names[i].value)) != names[i].want)
            fprintf(stderr, "cte case %zu: %s\n", i, names[i].value);
        UNIT_EQ_INT(mime_cte_parse(names[i].value, strlen(names[i].value)), names[i].want);
    }
    static const char h1[] = "Content-Type: text/plain\r\nContent-Transfer-Encoding:\r\n"
                             " base64\r\nContent-Transfer-Encoding: 7bit\r\n\r\nbody";
    UNIT_EQ_INT(mime_cte_of_header(h1, sizeof h1 - 1), MIME_CTE_BASE64);   /* the first */
    static const char h2[] = "Content-Type: text/plain\r\n\r\nContent-Transfer-Encoding: base64\r\n";
    UNIT_EQ_INT(mime_cte_of_header(h2, sizeof h2 - 1), MIME_CTE_IDENTITY); /* in the body */
    UNIT_EQ_INT(mime_cte_of_header("", 0), MIME_CTE_IDENTITY);

    struct buf b = BUF_INIT;
    /* base64 with line breaks, a stray character, NULs in the output */
    UNIT_EQ_INT(mime_cte_decode(MIME_CTE_BASE64, "AAEC\r\n/w*A=", 12, &b), CF_E_PARSE);
    UNIT_EQ_INT(b.len, 5);
    UNIT_CHECK(b.len == 5 && !memcmp(b.s, "\0\1\2\377\0", 5));
    buf_reset(&b);
    UNIT_EQ_INT(mime_cte_decode(MIME_CTE_BASE64, "AAEC\r\n/wA=\r\n", 14, &b), 0);
    UNIT_EQ_INT(b.len, 5);
    /* quoted-printable: soft break, =00, trailing white space, a bad "=" kept */
    buf_reset(&b);
    static const char qp[] = "a=\r\nb=00c  \r\nd=ZZ";
    UNIT_EQ_INT(mime_cte_decode(MIME_CTE_QP, qp, sizeof qp - 1, &b), CF_E_PARSE);
    UNIT_CHECK(b.len == 10 && !memcmp(b.s, "ab\0c\r\nd=ZZ", 10));
    buf_reset(&b);
    UNIT_EQ_INT(mime_cte_decode(MIME_CTE_IDENTITY, "x\0y", 3, &b), 0);
    UNIT_CHECK(b.len == 3 && !memcmp(b.s, "x\0y", 3));
    buf_reset(&b);
    UNIT_EQ_INT(mime_cte_decode(MIME_CTE_UNKNOWN, "abc", 3, &b), CF_E_NOTFOUND);
    UNIT_EQ_INT(b.len, 0);
    buf_fini(&b);
}

int main(void)
{
    test_envelope();
    test_bodystructure();
    test_bare_lf();
    test_sections();
    test_limits();
    test_speed();
    test_decode();
    test_cte();
    test_header_foreach();
    test_header_walks();
    test_contains();
    UNIT_DONE();
}
