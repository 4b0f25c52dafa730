/* test-imap-url.c: unit tests of lib/imap/imap-url.c: IMAP message part URLs (RFC 5092) in
 * every reference form, the URLAUTH tail (RFC 4467), section text, and the bounds. */
#include "imap/imap-url.h"
#include "core/buf.h"
#include "core/error.h"
#include "core/unit.h"
#include <stdio.h>
#include <string.h>

static int parse(const char *s, struct imap_url *u)
{
    return imap_url_parse(s, strlen(s), u);
}

static void test_forms(void)
{
    struct imap_url u;
    /* RFC 4469 appendix A (the lower-case "section" is legal: ABNF strings ignore case) */
    UNIT_EQ_INT(parse("/Drafts;UIDVALIDITY=385759045/;UID=20/;section=1.MIME", &u), 0);
    UNIT_EQ_INT(u.form, IMAP_URL_ABSOLUTE_PATH);
    UNIT_EQ_STR(u.mailbox, "Drafts");
    UNIT_EQ_INT(u.uidvalidity, 385759045);
    UNIT_EQ_INT(u.uid, 20);
    UNIT_EQ_STR(u.section, "1.MIME");
    UNIT_CHECK(!u.has_partial && u.access == IMAP_URL_ACCESS_NONE && !u.host);
    imap_url_fini(&u);

    /* RFC 4467 section 9 example, with a port and ;AUTH= */
    const char *full = "imap://joe@example.com/INBOX/;uid=20/;section=1.2;urlauth="
                       "submit+fred:internal:91354a473744909de610943775f92038";
    UNIT_EQ_INT(parse(full, &u), 0);
    UNIT_EQ_INT(u.form, IMAP_URL_ABSOLUTE);
    UNIT_EQ_STR(u.user, "joe");
    UNIT_EQ_STR(u.host, "example.com");
    UNIT_EQ_STR(u.mailbox, "INBOX");
    UNIT_EQ_INT(u.uid, 20);
    UNIT_EQ_STR(u.section, "1.2");
    UNIT_EQ_INT(u.access, IMAP_URL_ACCESS_SUBMIT);
    UNIT_EQ_STR(u.access_user, "fred");
    UNIT_EQ_STR(u.mech, "internal");
    UNIT_EQ_STR(u.token, "91354a473744909de610943775f92038");
    UNIT_EQ_INT((int)u.rump_len, (int)(strstr(full, ":internal") - full));
    imap_url_fini(&u);

    UNIT_EQ_INT(parse("imap://a%40b;AUTH=*@[::1]:1143/Sub%20Box/x;UIDVALIDITY=7/;UID=3"
                      "/;PARTIAL=10.20;EXPIRE=2030-01-02T03:04:05.5+01:00;URLAUTH=user+a%40b",
                      &u), 0);
    UNIT_EQ_STR(u.user, "a@b");
    UNIT_EQ_STR(u.auth, "*");
    UNIT_EQ_STR(u.host, "[::1]");
    UNIT_EQ_INT(u.port, 1143);
    UNIT_EQ_STR(u.mailbox, "Sub Box/x");
    UNIT_CHECK(u.has_partial && u.partial_offset == 10 && u.partial_length == 20);
    UNIT_CHECK(u.has_expire && u.expire == 1893553445 - 3600);
    UNIT_EQ_INT(u.access, IMAP_URL_ACCESS_USER);
    UNIT_EQ_STR(u.access_user, "a@b");
    UNIT_CHECK(!u.mech && !u.token);
    imap_url_fini(&u);

    UNIT_EQ_INT(parse(";UID=5/;SECTION=HEADER.FIELDS%20(From%20To)/;PARTIAL=0", &u), 0);
    UNIT_EQ_INT(u.form, IMAP_URL_RELATIVE);
    UNIT_CHECK(!u.mailbox);
    UNIT_EQ_STR(u.section, "HEADER.FIELDS (From To)");
    UNIT_CHECK(u.has_partial && u.partial_offset == 0 && u.partial_length == 0);
    imap_url_fini(&u);

    UNIT_EQ_INT(parse("//host/INBOX/;UID=1;URLAUTH=anonymous", &u), 0);
    UNIT_EQ_INT(u.form, IMAP_URL_NETWORK_PATH);
    UNIT_EQ_INT(u.access, IMAP_URL_ACCESS_ANONYMOUS);
    imap_url_fini(&u);
    UNIT_EQ_INT(parse("/INBOX/;UID=1;urlauth=AUTHUSER", &u), 0);
    UNIT_EQ_INT(u.access, IMAP_URL_ACCESS_AUTHUSER);
    UNIT_EQ_INT((int)u.rump_len, 30);
    imap_url_fini(&u);
}

static void test_bad(void)
{
    static const char *const bad[] = {
        "", "INBOX", "/INBOX", "/INBOX/", "/INBOX/;UID=0", "/INBOX/;UID=4294967296",
        "/INBOX/;UID=", "/;UID=1", "imap://", "imap://host", "imap://host/INBOX",
        "imap:///INBOX/;UID=1", "imap://@host/INBOX/;UID=1", "imap://host:x/INBOX/;UID=1",
        "imap://host:99999/INBOX/;UID=1", "/IN%2/;UID=1", "/IN%00X/;UID=1", "/IN BOX/;UID=1",
        "/INBOX/;UID=1/;SECTION=", "/INBOX/;UID=1/;PARTIAL=x", "/INBOX/;UID=1/;PARTIAL=1.0",
        "/INBOX/;UID=1junk", "/INBOX/;UID=1;URLAUTH=", "/INBOX/;UID=1;URLAUTH=user+",
        "/INBOX/;UID=1;URLAUTH=nobody", "/INBOX/;UID=1;URLAUTH=anonymous:INTERNAL:abc",
        "/INBOX/;UID=1;URLAUTH=anonymous:INTERNAL",
        "/INBOX/;UID=1;URLAUTH=anonymous::0123456789abcdef0123456789abcdef",
        "/INBOX/;UID=1;EXPIRE=2030-13-01T00:00:00Z;URLAUTH=anonymous",
        "/INBOX/;UID=1;EXPIRE=2030-01-01T00:00:00;URLAUTH=anonymous",
        "/INBOX/;UID=1;EXPIRE=2030-01-01T00:00:00Z", "/INBOX/;UID=1\xff", "/INBOX/;UID=1 ",
        "imap://h\x01/INBOX/;UID=1",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct imap_url u;
        int r = parse(bad[i], &u);
        if (r != CF_E_PARSE) fprintf(stderr, "accepted: %s\n", bad[i]);
        UNIT_EQ_INT(r, CF_E_PARSE);
        imap_url_fini(&u);
    }
    struct imap_url u;
    UNIT_EQ_INT(imap_url_parse("/INBOX/;UID=1\0", 14, &u), CF_E_PARSE);
    imap_url_fini(&u);
    char big[IMAP_URL_MAX + 2];
    memset(big, 'a', sizeof big);
    UNIT_EQ_INT(imap_url_parse(big, sizeof big, &u), CF_E_LIMIT);
    imap_url_fini(&u);
}

static void test_section(void)
{
    struct imap_url_section s;
    UNIT_EQ_INT(imap_url_section_parse("", &s), 0);
    UNIT_CHECK(s.nparts == 0 && s.text == IMAP_SECTION_NONE);
    imap_url_section_fini(&s);
    UNIT_EQ_INT(imap_url_section_parse("1.2.3", &s), 0);
    UNIT_CHECK(s.nparts == 3 && s.parts[2] == 3 && s.text == IMAP_SECTION_NONE);
    imap_url_section_fini(&s);
    UNIT_EQ_INT(imap_url_section_parse("2.mime", &s), 0);
    UNIT_CHECK(s.nparts == 1 && s.text == IMAP_SECTION_MIME);
    imap_url_section_fini(&s);
    UNIT_EQ_INT(imap_url_section_parse("HEADER.FIELDS.NOT (A B)", &s), 0);
    UNIT_CHECK(s.text == IMAP_SECTION_HEADER_FIELDS_NOT && s.fields.count == 2);
    UNIT_EQ_STR(s.fields.v[1], "B");
    imap_url_section_fini(&s);
    UNIT_EQ_INT(imap_url_section_parse("1.TEXT", &s), 0);
    UNIT_CHECK(s.text == IMAP_SECTION_TEXT);
    imap_url_section_fini(&s);
    static const char *const bad[] = { "MIME", "0", "1.", "1..2", "HEADER.FIELDS", "TEXTX",
                                       "HEADER.FIELDS ()", "HEADER.FIELDS (A", "X" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        UNIT_EQ_INT(imap_url_section_parse(bad[i], &s), CF_E_PARSE);
        imap_url_section_fini(&s);
    }
    char many[200] = "";
    for (int i = 0; i < 33; i++) strcat(many, "1.");
    many[strlen(many) - 1] = '\0';
    UNIT_EQ_INT(imap_url_section_parse(many, &s), CF_E_PARSE);
    imap_url_section_fini(&s);
}

static void test_printable(void)
{
    struct buf b = BUF_INIT;
    imap_url_printable("/a]b\r\n", 6, &b);
    UNIT_EQ_STR(buf_cstr(&b), "/a?b??");
    buf_fini(&b);
}

int main(void)
{
    test_forms();
    test_bad();
    test_section();
    test_printable();
    UNIT_DONE();
}
