/* test-imap-metadata.c: the RFC 5464 parsers (imap-metadata.h): entry names, GETMETADATA
 * options and entries, SETMETADATA pairs with NIL and literal8 values, on commands read by
 * the real parser, and the value form of the METADATA response. */
#include "core/error.h"
#include "core/unit.h"
#include "imap/imap-memsource.h"
#include "imap/imap-metadata.h"
#include "imap/imap-parser.h"
#include <string.h>

struct cmdbox {
    struct imap_memsource ms;
    struct imap_source src;
    struct imap_parser *p;
    struct imap_command cmd;
};

/* parse: one whole command (with its literals); 0 or the parser's error */
static int parse(struct cmdbox *b, const char *text, size_t len)
{
    imap_memsource_init(&b->ms, text, len, 0, &b->src);
    b->p = imap_parser_new(&b->src, NULL);
    return imap_parser_read(b->p, &b->cmd);
}

static void done(struct cmdbox *b) { imap_parser_free(&b->p); }

static void test_entries(void)
{
    static const struct { const char *s; int get, set; } t[] = {
        { "/shared/comment", 1, 1 },
        { "/private/comment", 1, 1 },
        { "/SHARED/Comment", 1, 1 },
        { "/shared", 1, 0 },
        { "/private", 1, 0 },
        { "/shared/", 0, 0 },
        { "/shared//x", 0, 0 },
        { "/shared/x/", 0, 0 },
        { "/sharedx", 0, 0 },
        { "/public/x", 0, 0 },
        { "shared/x", 0, 0 },
        { "", 0, 0 },
        { "/shared/a*", 0, 0 },
        { "/shared/a%b", 0, 0 },
        { "/shared/a b", 0, 0 },
        { "/shared/a\tb", 0, 0 },
        { "/private/vendor/vendor.coffer/x", 1, 1 },
        { "/private/\xc3\xa9t\xc3\xa9", 1, 1 },
        { "/private/\xc3\x28", 0, 0 },         /* bad UTF-8 */
        { "/private/\xc0\xaf", 0, 0 },         /* overlong */
        { "/private/\xed\xa0\x80", 0, 0 },     /* surrogate */
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        UNIT_EQ_INT(imap_metadata_entry_valid(t[i].s, strlen(t[i].s), 0), t[i].get);
        UNIT_EQ_INT(imap_metadata_entry_valid(t[i].s, strlen(t[i].s), 1), t[i].set);
    }
    char longname[IMAP_METADATA_ENTRY_MAX + 2];
    memset(longname, 'a', sizeof longname);
    memcpy(longname, "/shared/", 8);
    UNIT_EQ_INT(imap_metadata_entry_valid(longname, IMAP_METADATA_ENTRY_MAX, 1), 1);
    UNIT_EQ_INT(imap_metadata_entry_valid(longname, IMAP_METADATA_ENTRY_MAX + 1, 1), 0);
}

/* get: parse a GETMETADATA line; its result, with g filled in (the caller finis it) */
static int get(const char *line, struct imap_metadata_get *g)
{
    struct cmdbox b;
    const char *why = NULL;
    int r = parse(&b, line, strlen(line));
    if (r == 0) {
        r = imap_metadata_parse_get(b.cmd.args, b.cmd.nargs, g, &why);
        if (r) UNIT_CHECK(why && *why);
        /* the mailbox and entries must outlive the parser for the checks: copy the mailbox */
        if (!r) g->mailbox = strcmp(g->mailbox, "") ? "(mailbox)" : "";
    } else {
        memset(g, 0, sizeof *g);
    }
    done(&b);
    return r;
}

static void test_get(void)
{
    struct imap_metadata_get g;
    /* RFC 5464 section 4.2 examples */
    UNIT_EQ_INT(get("a GETMETADATA \"\" /shared/comment\r\n", &g), 0);
    UNIT_EQ_STR(g.mailbox, "");
    UNIT_EQ_INT(g.depth, 0);
    UNIT_CHECK(g.maxsize == -1);
    UNIT_EQ_INT((int)g.entries.count, 1);
    UNIT_EQ_STR(g.entries.v[0], "/shared/comment");
    imap_metadata_get_fini(&g);
    UNIT_EQ_INT(get("a GETMETADATA INBOX (/shared/comment /private/comment)\r\n", &g), 0);
    UNIT_EQ_INT((int)g.entries.count, 2);
    imap_metadata_get_fini(&g);
    UNIT_EQ_INT(get("a GETMETADATA (MAXSIZE 1024) INBOX /shared/comment\r\n", &g), 0);
    UNIT_CHECK(g.maxsize == 1024);
    imap_metadata_get_fini(&g);
    UNIT_EQ_INT(get("a GETMETADATA (DEPTH 1) INBOX (/private/filters/values)\r\n", &g), 0);
    UNIT_EQ_INT(g.depth, 1);
    imap_metadata_get_fini(&g);
    UNIT_EQ_INT(get("a GETMETADATA (DEPTH infinity MAXSIZE 0) INBOX /shared\r\n", &g), 0);
    UNIT_EQ_INT(g.depth, -1);
    UNIT_CHECK(g.maxsize == 0);
    imap_metadata_get_fini(&g);
    /* options after the mailbox, as older clients send them */
    UNIT_EQ_INT(get("a GETMETADATA INBOX (DEPTH INFINITY) /private\r\n", &g), 0);
    UNIT_EQ_INT(g.depth, -1);
    imap_metadata_get_fini(&g);
    /* repeated entries are asked once (ASCII case ignored) */
    UNIT_EQ_INT(get("a GETMETADATA INBOX (/shared/a /SHARED/A /shared/b)\r\n", &g), 0);
    UNIT_EQ_INT((int)g.entries.count, 2);
    imap_metadata_get_fini(&g);
    /* errors */
    static const char *bad[] = {
        "a GETMETADATA INBOX\r\n",
        "a GETMETADATA\r\n",
        "a GETMETADATA INBOX ()\r\n",
        "a GETMETADATA INBOX /shared/\r\n",
        "a GETMETADATA INBOX (/shared/a NIL)\r\n",
        "a GETMETADATA (DEPTH 2) INBOX /shared/a\r\n",
        "a GETMETADATA (DEPTH) INBOX /shared/a\r\n",
        "a GETMETADATA (MAXSIZE x) INBOX /shared/a\r\n",
        "a GETMETADATA (MAXSIZE 99999999999) INBOX /shared/a\r\n",
        "a GETMETADATA (DEPTH 1 DEPTH 0) INBOX /shared/a\r\n",
        "a GETMETADATA (FOO 1) INBOX /shared/a\r\n",
        "a GETMETADATA (DEPTH 1) INBOX /shared/a extra\r\n",
        "a GETMETADATA (a b) (c d) /shared/a\r\n",
        "a GETMETADATA INBOX /other/a\r\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        UNIT_EQ_INT(get(bad[i], &g), CF_E_PARSE);
        imap_metadata_get_fini(&g);
    }
}

static void test_set(void)
{
    struct cmdbox b;
    struct imap_metadata_set s;
    const char *why = NULL;
    /* RFC 5464 section 4.3 examples: strings, NIL, a literal */
    const char *l1 = "a SETMETADATA INBOX (/private/comment {14+}\r\nMy new comment"
                     " /shared/comment NIL)\r\n";
    UNIT_EQ_INT(parse(&b, l1, strlen(l1)), 0);
    UNIT_EQ_INT(imap_metadata_parse_set(b.cmd.args, b.cmd.nargs, &s, &why), 0);
    UNIT_EQ_STR(s.mailbox, "INBOX");
    UNIT_EQ_INT((int)s.n, 2);
    UNIT_EQ_STR(s.items[0].entry, "/private/comment");
    UNIT_EQ_INT((int)s.items[0].len, 14);
    UNIT_CHECK(!memcmp(s.items[0].value, "My new comment", 14));
    UNIT_CHECK(s.items[1].value == NULL);
    imap_metadata_set_fini(&s);
    done(&b);
    /* a binary value as literal8 */
    const char l2[] = "a SETMETADATA \"\" (/shared/vendor/x ~{3+}\r\na\0b)\r\n";
    UNIT_EQ_INT(parse(&b, l2, sizeof l2 - 1), 0);
    UNIT_EQ_INT(imap_metadata_parse_set(b.cmd.args, b.cmd.nargs, &s, &why), 0);
    UNIT_EQ_STR(s.mailbox, "");
    UNIT_EQ_INT((int)s.items[0].len, 3);
    UNIT_CHECK(!memcmp(s.items[0].value, "a\0b", 3));
    struct buf out = BUF_INIT;
    imap_metadata_value_append(&out, s.items[0].value, s.items[0].len);
    UNIT_EQ_INT((int)out.len, 9);
    UNIT_CHECK(!memcmp(out.s, "~{3}\r\na\0b", 9));
    imap_metadata_set_fini(&s);
    done(&b);
    /* literal8 stays refused outside APPEND and SETMETADATA */
    const char l3[] = "a GETMETADATA INBOX ~{3+}\r\nabc\r\n";
    UNIT_EQ_INT(parse(&b, l3, sizeof l3 - 1), CF_E_PARSE);
    done(&b);
    static const char *bad[] = {
        "a SETMETADATA INBOX\r\n",
        "a SETMETADATA INBOX ()\r\n",
        "a SETMETADATA INBOX (/shared/comment)\r\n",
        "a SETMETADATA INBOX /shared/comment \"x\"\r\n",
        "a SETMETADATA INBOX (/shared \"x\")\r\n",
        "a SETMETADATA INBOX (/shared/a (x))\r\n",
        "a SETMETADATA INBOX (/shared/a atom)\r\n",
        "a SETMETADATA INBOX (\"/shared/a b\" \"x\")\r\n",
        "a SETMETADATA (x) (/shared/a \"x\")\r\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        UNIT_EQ_INT(parse(&b, bad[i], strlen(bad[i])), 0);
        UNIT_EQ_INT(imap_metadata_parse_set(b.cmd.args, b.cmd.nargs, &s, &why), CF_E_PARSE);
        UNIT_CHECK(why && *why);
        imap_metadata_set_fini(&s);
        done(&b);
    }
    buf_reset(&out);
    imap_metadata_value_append(&out, NULL, 0);
    buf_putc(&out, ' ');
    imap_metadata_value_append(&out, "plain", 5);
    buf_putc(&out, ' ');
    imap_metadata_value_append(&out, "two\r\nlines", 10);
    UNIT_EQ_STR(buf_cstr(&out), "NIL \"plain\" {10}\r\ntwo\r\nlines");
    buf_fini(&out);
}

int main(void)
{
    test_entries();
    test_get();
    test_set();
    UNIT_DONE();
}
