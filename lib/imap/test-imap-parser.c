/* test-imap-parser.c: table-driven tests of the IMAP command parser and of sequence sets. */
#include "core/error.h"
#include "core/unit.h"
#include "core/xmalloc.h"
#include "imap/imap-memsource.h"
#include "imap/imap-parser.h"
#include "imap/imap-seqset.h"
#include <stdlib.h>
#include <string.h>

/* describe_cmd: "TAG|NAME|arg arg ..." with every argument as imap_arg_format writes it. */
static char *describe_cmd(const struct imap_command *cmd)
{
    struct buf b = BUF_INIT;
    buf_printf(&b, "%s|%s|", cmd->tag ? cmd->tag : "(null)", cmd->name ? cmd->name : "(null)");
    for (size_t i = 0; i < cmd->nargs; i++) {
        if (i) buf_putc(&b, ' ');
        imap_arg_format(&cmd->args[i], &b);
    }
    return buf_release(&b);
}

static struct imap_parser_limits small_limits(void)
{
    struct imap_parser_limits lim;
    imap_parser_limits_default(&lim);
    lim.max_line = 200;
    lim.max_literal = 100;
    lim.max_command = 400;
    lim.max_depth = 4;
    return lim;
}

/* Well-formed commands: each input holds one command, then "z NOOP" to show the parser
 * stopped exactly at its end. */
static void test_good(void)
{
    static const struct { const char *in; size_t inlen; const char *want; unsigned go; } cases[] = {
        { "a1 NOOP\r\n", 0, "a1|NOOP|", 0 },
        { "a1 noop\n", 0, "a1|NOOP|", 0 },
        { "\r\n\r\nx.1 Capability\r\n", 0, "x.1|CAPABILITY|", 0 },
        { "a2 LOGIN fred \"sec\\\"r\\\\et\"\r\n", 0, "a2|LOGIN|fred \"sec\\\"r\\\\et\"", 0 },
        { "a3 LOGIN {4}\r\nfred {6+}\r\nsecret\r\n", 0, "a3|LOGIN|\"fred\" \"secret\"", 1 },
        { "a4 LOGIN {0}\r\n {0}\r\n\r\n", 0, "a4|LOGIN|\"\" \"\"", 2 },
        { "a5 SELECT nil\r\n", 0, "a5|SELECT|nil", 0 },
        { "a6 SELECT foo[bar]\r\n", 0, "a6|SELECT|foo[bar]", 0 },
        { "a7 SELECT \"caf\xc3\xa9\"\r\n", 0, "a7|SELECT|{5}\r\ncaf\xc3\xa9", 0 },
        { "a8 LIST \"\" %/*\r\n", 0, "a8|LIST|\"\" %/*", 0 },
        { "a9 STORE 1:3,5 +FLAGS.SILENT (\\Seen \\Deleted $Junk)\r\n", 0,
          "a9|STORE|1:3,5 +FLAGS.SILENT (\\Seen \\Deleted $Junk)", 0 },
        { "b1 STORE 1 FLAGS ()\r\n", 0, "b1|STORE|1 FLAGS ()", 0 },
        { "b2 X (a (b (c)) ()) d\r\n", 0, "b2|X|(a (b (c)) ()) d", 0 },
        { "b3 FETCH 1 (FLAGS BODY.PEEK[HEADER.FIELDS (From To)]<0.100>)\r\n", 0,
          "b3|FETCH|1 (FLAGS BODY.PEEK[HEADER.FIELDS (From To)]<0.100>)", 0 },
        { "b4 fetch 1:* body[1.2.mime]\r\n", 0, "b4|FETCH|1:* BODY[1.2.MIME]", 0 },
        { "b5 FETCH 2 (BODY[] BODY[TEXT] BODY[3] BODY[HEADER] BODY)\r\n", 0,
          "b5|FETCH|2 (BODY[] BODY[TEXT] BODY[3] BODY[HEADER] BODY)", 0 },
        { "b6 FETCH 2 BODY[4.1.HEADER.FIELDS.NOT (\"X-A\" Subject)]\r\n", 0,
          "b6|FETCH|2 BODY[4.1.HEADER.FIELDS.NOT (X-A Subject)]", 0 },
        { "b7 FETCH 1 BODY[HEADER.FIELDS ({4}\r\nFrom {2+}\r\nTo)]\r\n", 0,
          "b7|FETCH|1 BODY[HEADER.FIELDS (From To)]", 1 },
        { "b8 FETCH 1 (BINARY.PEEK[1.2]<5.10> BINARY.SIZE[1] BINARY[])\r\n", 0,
          "b8|FETCH|1 (BINARY.PEEK[1.2]<5.10> BINARY.SIZE[1] BINARY[])", 0 },
        { "b9 SEARCH CHARSET UTF-8 TEXT {3+}\r\nabc SEEN\r\n", 0,
          "b9|SEARCH|CHARSET UTF-8 TEXT \"abc\" SEEN", 0 },
        { "c1 APPEND INBOX (\\Seen) \"1-Jan-2024 10:00:00 +0000\" {5}\r\nhello\r\n", 0,
          "c1|APPEND|INBOX (\\Seen) \"1-Jan-2024 10:00:00 +0000\" \"hello\"", 1 },
        { "c2 X ({1}\r\n))\r\n", 0, "c2|X|(\")\")", 1 },
        /* literal8 (RFC 3516 section 4.4): APPEND only, NUL allowed, ~{N+} with LITERAL+ */
        { "c6 APPEND INBOX ~{5}\r\na\0b\0c\r\n", 29, "c6|APPEND|INBOX ~{5}\r\na\0b\0c", 1 },
        { "c7 append INBOX (\\Seen) ~{3+}\r\nx\0y ~{0}\r\n\r\n", 43,
          "c7|APPEND|INBOX (\\Seen) ~{3}\r\nx\0y ~{0}\r\n", 1 },
        { "c8 APPEND INBOX ~x\r\n", 0, "c8|APPEND|INBOX ~x", 0 },
        { "c4 X {2}\r\n\r\n\r\n", 0, "c4|X|{2}\r\n\r\n", 1 },
        { "c5 X a]b *\r\n", 0, "c5|X|a]b *", 0 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct buf in = BUF_INIT;
        buf_append(&in, cases[i].in, cases[i].inlen ? cases[i].inlen : strlen(cases[i].in));
        buf_appends(&in, "z NOOP\r\n");
        struct imap_memsource ms;
        struct imap_source src;
        imap_memsource_init(&ms, in.s, in.len, 200, &src);
        struct imap_parser_limits lim = small_limits();
        struct imap_parser *p = imap_parser_new(&src, &lim);
        struct imap_command cmd;
        int r = imap_parser_read(p, &cmd);
        if (r) fprintf(stderr, "case %zu: %s\n", i, imap_parser_error(p));
        UNIT_EQ_INT(r, 0);
        char *got = describe_cmd(&cmd);
        if (strcmp(got, cases[i].want)) fprintf(stderr, "case %zu\n", i);
        UNIT_EQ_STR(got, cases[i].want);
        free(got);
        UNIT_EQ_INT(ms.go_aheads, cases[i].go);
        UNIT_EQ_INT(imap_parser_read(p, &cmd), 0);
        UNIT_EQ_STR(cmd.tag, "z");
        UNIT_EQ_INT(imap_parser_read(p, &cmd), CF_E_EOF);
        imap_parser_free(&p);
        UNIT_CHECK(p == NULL);
        buf_fini(&in);
    }
}

/* Argument types and the section structure. */
static void test_types(void)
{
    const char *in = "t FETCH 7 (BODY.PEEK[1.2.HEADER.FIELDS (A \"B\")]<10.20> NIL {3+}\r\nxyz 42)\r\n";
    struct imap_memsource ms;
    struct imap_source src;
    imap_memsource_init(&ms, in, strlen(in), 0, &src);
    struct imap_parser *p = imap_parser_new(&src, NULL);
    struct imap_command cmd;
    UNIT_EQ_INT(imap_parser_read(p, &cmd), 0);
    UNIT_EQ_INT(cmd.nargs, 2);
    UNIT_EQ_INT(cmd.literals, 1);
    UNIT_EQ_INT(cmd.size, strlen(in));         /* every line with its CRLF, and the literal */
    uint32_t n = 0;
    UNIT_EQ_INT(imap_arg_number(&cmd.args[0], &n), 0);
    UNIT_EQ_INT(n, 7);
    const struct imap_arg *l = &cmd.args[1];
    UNIT_EQ_INT(l->type, IMAP_ARG_LIST);
    UNIT_EQ_INT(l->count, 4);
    if (l->count == 4) {
        const struct imap_section *s = l->list[0].section;
        UNIT_EQ_INT(l->list[0].type, IMAP_ARG_SECTION);
        UNIT_CHECK(s != NULL);
        if (s) {
            UNIT_EQ_STR(s->name, "BODY.PEEK");
            UNIT_EQ_INT(s->nparts, 2);
            UNIT_EQ_INT(s->parts[0], 1);
            UNIT_EQ_INT(s->parts[1], 2);
            UNIT_EQ_INT(s->text, IMAP_SECTION_HEADER_FIELDS);
            UNIT_EQ_INT(s->nfields, 2);
            UNIT_EQ_STR(s->fields[1], "B");
            UNIT_EQ_INT(s->has_partial, 1);
            UNIT_EQ_INT(s->partial_offset, 10);
            UNIT_EQ_INT(s->partial_count, 20);
            struct buf b = BUF_INIT;
            imap_section_format(s, 1, &b);
            UNIT_EQ_STR(buf_cstr(&b), "BODY[1.2.HEADER.FIELDS (A B)]<10>");
            buf_fini(&b);
        }
        const char *ns = "x";
        UNIT_EQ_INT(l->list[1].type, IMAP_ARG_NIL);
        UNIT_EQ_INT(imap_arg_nstring(&l->list[1], &ns), 1);
        UNIT_CHECK(ns == NULL);
        UNIT_EQ_STR(imap_arg_astring(&l->list[1]), "NIL");
        UNIT_EQ_INT(l->list[2].type, IMAP_ARG_LITERAL);
        UNIT_EQ_INT(l->list[2].nonsync, 1);
        UNIT_EQ_STR(imap_arg_string(&l->list[2]), "xyz");
        UNIT_CHECK(imap_arg_string(&l->list[3]) == NULL);
        UNIT_CHECK(imap_arg_atom_eq(&l->list[3], "42"));
        UNIT_CHECK(imap_arg_astring(l) == NULL);
    }
    UNIT_EQ_INT(ms.go_aheads, 0);
    imap_parser_free(&p);

    struct imap_arg big = { IMAP_ARG_ATOM, "4294967296", 10, NULL, 0, NULL, 0, 0 };
    UNIT_EQ_INT(imap_arg_number(&big, &n), CF_E_PARSE);
    struct imap_arg max = { IMAP_ARG_ATOM, "4294967295", 10, NULL, 0, NULL, 0, 0 };
    UNIT_EQ_INT(imap_arg_number(&max, &n), 0);
    UNIT_EQ_INT(n, 4294967295u);
    struct buf b = BUF_INIT;
    imap_astring_append(&b, "INBOX", 5);
    buf_putc(&b, ' ');
    imap_astring_append(&b, "nil", 3);
    buf_putc(&b, ' ');
    imap_astring_append(&b, "a b", 3);
    buf_putc(&b, ' ');
    imap_astring_append(&b, "", 0);
    buf_putc(&b, ' ');
    imap_astring_append(&b, "a\nb", 3);
    UNIT_EQ_STR(buf_cstr(&b), "INBOX \"nil\" \"a b\" \"\" {3}\r\na\nb");
    buf_fini(&b);
}

/* Rejected commands: the return code, the tag the BAD goes to, the reason, the response
 * code, how many "+" were sent, and that "z NOOP" after the bad command is read next. */
static void test_bad(void)
{
    static const char big100[] =
        "0123456789012345678901234567890123456789012345678901234567890123456789"
        "012345678901234567890123456789";
    struct {
        const char *in;
        size_t inlen;
        int ret;
        const char *tag, *err, *code;
        unsigned go;
        int literal_minus;
    } cases[] = {
        { "* NOOP\r\n", 0, CF_E_PARSE, NULL, "Missing or invalid tag", NULL, 0, 0 },
        { "+a NOOP\r\n", 0, CF_E_PARSE, NULL, "Missing or invalid tag", NULL, 0, 0 },
        { "a+b NOOP\r\n", 0, CF_E_PARSE, NULL, "Invalid character '+' in tag", NULL, 0, 0 },
        { "a{1} NOOP\r\n", 0, CF_E_PARSE, NULL, "Invalid character '{' in tag", NULL, 0, 0 },
        { "a\r\n", 0, CF_E_PARSE, "a", "Missing command", NULL, 0, 0 },
        { "a  NOOP\r\n", 0, CF_E_PARSE, "a", "Missing or invalid command name", NULL, 0, 0 },
        { "a NO\"OP\r\n", 0, CF_E_PARSE, "a", "Invalid character '\"' in command name", NULL, 0, 0 },
        { "a NOOP \r\n", 0, CF_E_PARSE, "a", "Unexpected space at end of line", NULL, 0, 0 },
        { "a X a  b\r\n", 0, CF_E_PARSE, "a", "Unexpected extra space", NULL, 0, 0 },
        { "a X \"abc\r\n", 0, CF_E_PARSE, "a", "Unterminated quoted string", NULL, 0, 0 },
        { "a X \"abc\\\r\n", 0, CF_E_PARSE, "a", "Unterminated quoted string", NULL, 0, 0 },
        { "a X \"a\\bc\"\r\n", 0, CF_E_PARSE, "a", "Invalid escape in quoted string", NULL, 0, 0 },
        { "a X \"a\"b\r\n", 0, CF_E_PARSE, "a", "Expected space, not 'b'", NULL, 0, 0 },
        { "a X (a b\r\n", 0, CF_E_PARSE, "a", "Missing ')'", NULL, 0, 0 },
        { "a X (a \r\n", 0, CF_E_PARSE, "a", "Missing ')'", NULL, 0, 0 },
        { "a X ( a)\r\n", 0, CF_E_PARSE, "a", "Unexpected extra space", NULL, 0, 0 },
        { "a X a)\r\n", 0, CF_E_PARSE, "a", "Unexpected ')'", NULL, 0, 0 },
        { "a X )\r\n", 0, CF_E_PARSE, "a", "Unexpected ')'", NULL, 0, 0 },
        { "a X (a)(b)\r\n", 0, CF_E_PARSE, "a", "Expected space, not '('", NULL, 0, 0 },
        { "a X ((((a))))\r\n", 0, 0, NULL, NULL, NULL, 0, 0 },      /* depth 4: fine */
        { "a X (((((a)))))\r\n", 0, CF_E_PARSE, "a", "Lists nested too deeply", NULL, 0, 0 },
        { "a X a\"b\r\n", 0, CF_E_PARSE, "a", "Invalid character '\"' in atom", NULL, 0, 0 },
        { "a X a\\b\r\n", 0, CF_E_PARSE, "a", "Invalid character '\\' in atom", NULL, 0, 0 },
        { "a X a\tb\r\n", 0, CF_E_PARSE, "a", "Invalid character 0x09 in atom", NULL, 0, 0 },
        { "a X caf\xc3\xa9\r\n", 0, CF_E_PARSE, "a", "Invalid character 0xc3 in atom", NULL, 0, 0 },
        { "a X \\\r\n", 0, CF_E_PARSE, "a", "Invalid flag", NULL, 0, 0 },
        { "a X a\0b\r\n", 9, CF_E_PARSE, "a", "NUL character in command line", NULL, 0, 0 },
        { "a X {3}\r\na\0b\r\n", 14, CF_E_PARSE, "a", "NUL character in literal", NULL, 1, 0 },
        { "a X {3}\r\nabc\0\r\n", 15, CF_E_PARSE, "a", "NUL character in command line", NULL, 1, 0 },
        { "a X {5}abc\r\n", 0, CF_E_PARSE, "a", "Literal size must end the line", NULL, 0, 0 },
        { "a X {abc}\r\n", 0, CF_E_PARSE, "a", "Invalid literal size", NULL, 0, 0 },
        { "a X {5\r\n", 0, CF_E_PARSE, "a", "Invalid literal size", NULL, 0, 0 },
        { "a X {5-}\r\n", 0, CF_E_PARSE, "a", "Invalid literal size", NULL, 0, 0 },
        /* too large: a synchronizing literal is refused before "+" and never sent */
        { "a X {101}\r\n", 0, CF_E_LIMIT, "a", "Literal too large (limit 100 bytes)", "TOOBIG", 0, 0 },
        { "a X {99999999999999999999999}\r\n", 0, CF_E_LIMIT, "a", "Literal too large", "TOOBIG", 0, 0 },
        /* a non-synchronizing one arrives anyway and is skipped, with what follows it */
        { NULL, 0, CF_E_LIMIT, "a", "Literal too large (limit 100 bytes)", "TOOBIG", 0, 0 },
        { NULL, 0, CF_E_LIMIT, "a", "Literal too large (limit 100 bytes)", "TOOBIG", 0, 0 },
        { "a X foo{3+}\r\nabc\r\n", 0, CF_E_PARSE, "a", "Invalid character '{' in atom", NULL, 0, 0 },
        { "a X \"open {3}\r\n", 0, CF_E_PARSE, "a", "Unterminated quoted string", NULL, 0, 0 },
        { "a X {3+}\r\nabc\"x {2+}\r\nab\r\n", 0, CF_E_PARSE, "a", "Expected space, not '\"'", NULL, 0, 0 },
        /* LITERAL-: {N+} only up to 4096 */
        { NULL, 0, CF_E_LIMIT, "a", "Non-synchronizing literal larger than 4096 bytes", "TOOBIG", 0, 1 },
        /* lines: 200 is the limit */
        { NULL, 0, CF_E_LIMIT, "a", "Line too long", NULL, 0, 0 },
        { NULL, 0, CF_E_LIMIT, NULL, "Line too long", NULL, 0, 0 },
        { NULL, 0, CF_E_LIMIT, "a", "Line too long", NULL, 1, 0 },
        /* the whole command: 400 */
        { NULL, 0, CF_E_LIMIT, "a", "Command too long", "TOOBIG", 3, 0 },
        /* sections */
        { "a FETCH 1 BODY[HEADER.FIELDS]\r\n", 0, CF_E_PARSE, "a", "Missing header field list", NULL, 0, 0 },
        { "a FETCH 1 BODY[HEADER.FIELDS ()]\r\n", 0, CF_E_PARSE, "a", "Empty header field list", NULL, 0, 0 },
        { "a FETCH 1 BODY[HEADER.FIELDS (a ((b)))]\r\n", 0, CF_E_PARSE, "a", "Invalid header field name", NULL, 0, 0 },
        { "a FETCH 1 BODY[HEADER.FIELDS (a\r\n", 0, CF_E_PARSE, "a", "Missing ')' in header field list", NULL, 0, 0 },
        { "a FETCH 1 BODY[0]\r\n", 0, CF_E_PARSE, "a", "Invalid section part number", NULL, 0, 0 },
        { "a FETCH 1 BODY[01]\r\n", 0, CF_E_PARSE, "a", "Invalid section part number", NULL, 0, 0 },
        { "a FETCH 1 BODY[1.]\r\n", 0, CF_E_PARSE, "a", "Invalid section", NULL, 0, 0 },
        { "a FETCH 1 BODY[1X]\r\n", 0, CF_E_PARSE, "a", "Invalid section", NULL, 0, 0 },
        { "a FETCH 1 BODY[MIME]\r\n", 0, CF_E_PARSE, "a", "Invalid section", NULL, 0, 0 },
        { "a FETCH 1 BODY[HEADERS]\r\n", 0, CF_E_PARSE, "a", "Invalid section", NULL, 0, 0 },
        { "a FETCH 1 BODY[TEXT\r\n", 0, CF_E_PARSE, "a", "Missing ']' after section", NULL, 0, 0 },
        { "a FETCH 1 BODY[99999999999]\r\n", 0, CF_E_PARSE, "a", "section part number is too large", NULL, 0, 0 },
        { "a FETCH 1 BODY[]<0>\r\n", 0, CF_E_PARSE, "a", "Invalid partial range", NULL, 0, 0 },
        { "a FETCH 1 BODY[]<1.0>\r\n", 0, CF_E_PARSE, "a", "Invalid partial length", NULL, 0, 0 },
        { "a FETCH 1 BODY[]<.5>\r\n", 0, CF_E_PARSE, "a", "Invalid partial offset", NULL, 0, 0 },
        { "a FETCH 1 BODY[]<1.5\r\n", 0, CF_E_PARSE, "a", "Invalid partial range", NULL, 0, 0 },
        { "a FETCH 1 BODY[]x\r\n", 0, CF_E_PARSE, "a", "Invalid characters after section", NULL, 0, 0 },
        { "a FETCH 1 BINARY[TEXT]\r\n", 0, CF_E_PARSE, "a", "Invalid BINARY section", NULL, 0, 0 },
        { "a FETCH 1 BINARY.SIZE[1]<0.5>\r\n", 0, CF_E_PARSE, "a", "BINARY.SIZE takes no partial range", NULL, 0, 0 },
        /* literal8 outside APPEND: refused before the go-ahead; {N+} skipped */
        { "a LOGIN ~{3}\r\n", 0, CF_E_PARSE, "a", "literal8 is only allowed in APPEND", NULL, 0, 0 },
        /* REPLACE and UID REPLACE take it like APPEND (RFC 8508 section 3.4); other UID
         * commands do not */
        { "a UID FETCH ~{3}\r\n", 0, CF_E_PARSE, "a", "literal8 is only allowed in APPEND", NULL, 0, 0 },
        { "a UID REPLACEX ~{3}\r\n", 0, CF_E_PARSE, "a", "literal8 is only allowed in APPEND", NULL, 0, 0 },
        { "a REPLACE 1 INBOX ~{4}\r\na\0b\0\r\n", 30, 0, NULL, NULL, NULL, 1, 0 },
        { "a uid replace 1 INBOX ~{4}\r\na\0b\0\r\n", 34, 0, NULL, NULL, NULL, 1, 0 },
        { "a SEARCH TEXT ~{3+}\r\na\0b\r\n", 26, CF_E_PARSE, "a", "literal8 is only allowed in APPEND", NULL, 0, 0 },
        { "a X (~{2+}\r\nab)\r\n", 0, CF_E_PARSE, "a", "literal8 is only allowed in APPEND", NULL, 0, 0 },
        /* literal8 in APPEND: the same limits as a literal */
        { "a APPEND INBOX ~{101}\r\n", 0, CF_E_LIMIT, "a", "Literal too large (limit 100 bytes)", "TOOBIG", 0, 0 },
        { "a APPEND INBOX ~{abc}\r\n", 0, CF_E_PARSE, "a", "Invalid literal size", NULL, 0, 0 },
        { "a APPEND INBOX ~{3}x\r\n", 0, CF_E_PARSE, "a", "Literal size must end the line", NULL, 0, 0 },
        { "a APPEND INBOX ~{4}\r\na\0b\0\r\n", 27, 0, NULL, NULL, NULL, 1, 0 },
        { "a APPEND INBOX ~{3}\r\nabc\0\r\n", 27, CF_E_PARSE, "a", "NUL character in command line", NULL, 1, 0 },
        { NULL, 0, CF_E_LIMIT, "a", "Non-synchronizing literal larger than 4096 bytes", "TOOBIG", 0, 1 },
    };
    /* the cases whose input is built here */
    struct buf b0 = BUF_INIT, b1 = BUF_INIT, b2 = BUF_INIT, b3 = BUF_INIT, b4 = BUF_INIT,
               b5 = BUF_INIT;
    buf_printf(&b0, "a X {101+}\r\n%sX\r\n", big100);
    buf_printf(&b1, "a X {101+}\r\n%sX more {3+}\r\nabc and {2+}\r\nab\r\n", big100);
    buf_printf(&b2, "a NOOP %s%s%s\r\n", big100, big100, big100);
    buf_printf(&b3, "%s%s%s\r\n", big100, big100, big100);
    buf_printf(&b4, "a X {2}\r\nab %s%s%s\r\n", big100, big100, big100);
    buf_printf(&b5, "a X {95}\r\n%.95s {95}\r\n%.95s {95}\r\n%.95s {95}\r\n",
               big100, big100, big100);
    struct buf b6 = BUF_INIT;
    buf_appends(&b6, "a X {4097+}\r\n");
    for (int k = 0; k < 4097; k++) buf_putc(&b6, 'x');
    buf_appends(&b6, "\r\n");
    struct buf b7 = BUF_INIT;
    buf_appends(&b7, "a APPEND INBOX ~{4097+}\r\n");
    for (int k = 0; k < 4097; k++) buf_putc(&b7, '\0');
    buf_appends(&b7, "\r\n");
    const char *built[] = { buf_cstr(&b0), buf_cstr(&b1), buf_cstr(&b6), buf_cstr(&b2),
                            buf_cstr(&b3), buf_cstr(&b4), buf_cstr(&b5), buf_cstr(&b7) };
    size_t built_len[] = { 0, 0, 0, 0, 0, 0, 0, b7.len };
    size_t nbuilt = 0;

    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *in = cases[i].in;
        size_t inlen = cases[i].inlen;
        if (!in) {
            inlen = built_len[nbuilt];
            in = built[nbuilt++];
        }
        struct buf buf = BUF_INIT;
        buf_append(&buf, in, inlen ? inlen : strlen(in));
        buf_appends(&buf, "z NOOP\r\n");
        struct imap_memsource ms;
        struct imap_source src;
        imap_memsource_init(&ms, buf.s, buf.len, 200, &src);
        struct imap_parser_limits lim = small_limits();
        lim.literal_minus = cases[i].literal_minus;
        struct imap_parser *p = imap_parser_new(&src, &lim);
        struct imap_command cmd;
        int r = imap_parser_read(p, &cmd);
        int ok = r == cases[i].ret;
        if (r && cases[i].ret) {
            ok = ok && !strcmp(imap_parser_error(p), cases[i].err);
            ok = ok && (cases[i].tag ? cmd.tag && !strcmp(cmd.tag, cases[i].tag) : !cmd.tag);
            ok = ok && (cases[i].code ? imap_parser_error_code(p) &&
                                        !strcmp(imap_parser_error_code(p), cases[i].code)
                                      : !imap_parser_error_code(p));
        }
        ok = ok && ms.go_aheads == cases[i].go;
        if (!ok) {
            fprintf(stderr, "bad case %zu: r=%d tag=%s err='%s' code=%s go=%u\n", i, r,
                    cmd.tag ? cmd.tag : "(null)", imap_parser_error(p),
                    imap_parser_error_code(p) ? imap_parser_error_code(p) : "(null)",
                    ms.go_aheads);
        }
        UNIT_CHECK(ok);
        UNIT_EQ_INT(imap_parser_fatal(p), 0);
        r = imap_parser_read(p, &cmd);
        if (r || strcmp(cmd.tag, "z"))
            fprintf(stderr, "bad case %zu: next command r=%d err='%s'\n", i, r, imap_parser_error(p));
        UNIT_EQ_INT(r, 0);
        UNIT_CHECK(r == 0 && !strcmp(cmd.tag, "z") && !strcmp(cmd.name, "NOOP"));
        imap_parser_free(&p);
        buf_fini(&buf);
    }
    buf_fini(&b0); buf_fini(&b1); buf_fini(&b2); buf_fini(&b3); buf_fini(&b4); buf_fini(&b5); buf_fini(&b6);
    buf_fini(&b7);
}

/* literal8: the flag, the bytes with their NULs, and the accessors that refuse it where a
 * string is wanted (an APPEND mailbox name sent as literal8 is then BAD). */
static void test_literal8(void)
{
    static const char in[] = "t APPEND ~{3}\r\nbox ~{4+}\r\n\0a\0b {2}\r\nok\r\n";
    struct imap_memsource ms;
    struct imap_source src;
    imap_memsource_init(&ms, in, sizeof in - 1, 0, &src);
    struct imap_parser *p = imap_parser_new(&src, NULL);
    struct imap_command cmd;
    UNIT_EQ_INT(imap_parser_read(p, &cmd), 0);
    UNIT_EQ_INT(cmd.nargs, 3);
    UNIT_EQ_INT(cmd.literals, 3);
    UNIT_EQ_INT(ms.go_aheads, 2);
    UNIT_EQ_INT(cmd.size, sizeof in - 1);
    if (cmd.nargs == 3) {
        const char *s = "x";
        UNIT_EQ_INT(cmd.args[0].type, IMAP_ARG_LITERAL);
        UNIT_EQ_INT(cmd.args[0].literal8, 1);
        UNIT_CHECK(imap_arg_astring(&cmd.args[0]) == NULL);
        UNIT_CHECK(imap_arg_string(&cmd.args[0]) == NULL);
        UNIT_EQ_INT(imap_arg_nstring(&cmd.args[0], &s), 0);
        UNIT_EQ_INT(cmd.args[1].literal8, 1);
        UNIT_EQ_INT(cmd.args[1].nonsync, 1);
        UNIT_EQ_INT(cmd.args[1].len, 4);
        UNIT_CHECK(!memcmp(cmd.args[1].s, "\0a\0b", 4));
        UNIT_EQ_INT(cmd.args[2].literal8, 0);
        UNIT_EQ_STR(imap_arg_astring(&cmd.args[2]), "ok");
    }
    UNIT_EQ_INT(imap_parser_read(p, &cmd), CF_E_EOF);
    imap_parser_free(&p);
}

/* End of input in the middle of a command, and a literal size no client could mean. */
static void test_eof_and_fatal(void)
{
    static const struct { const char *in; int ret; int fatal; } cases[] = {
        { "a NOOP", CF_E_EOF, 0 },
        { "a X {5}\r\nab", CF_E_EOF, 0 },
        { "a X {5+}\r\nabcde", CF_E_EOF, 0 },
        { "a X {500+}\r\nabc", CF_E_EOF, 0 },            /* skipping runs into the end */
        { "a X {99999999999999999999999+}\r\nz NOOP\r\n", CF_E_LIMIT, 1 },
        { "a X y{99999999999999999999999+}\r\nz NOOP\r\n", CF_E_PARSE, 1 },
        { "a X y{4294967296+}\r\nz NOOP\r\n", CF_E_PARSE, 1 },
        { "", CF_E_EOF, 0 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct imap_memsource ms;
        struct imap_source src;
        imap_memsource_init(&ms, cases[i].in, strlen(cases[i].in), 200, &src);
        struct imap_parser_limits lim = small_limits();
        struct imap_parser *p = imap_parser_new(&src, &lim);
        struct imap_command cmd;
        int r = imap_parser_read(p, &cmd);
        if (r != cases[i].ret) fprintf(stderr, "eof case %zu: r=%d\n", i, r);
        UNIT_EQ_INT(r, cases[i].ret);
        UNIT_EQ_INT(imap_parser_fatal(p), cases[i].fatal);
        imap_parser_free(&p);
    }
}

/* Review M3: the argument cap (at any depth) and an oversized non-synchronizing literal that
 * ends the connection instead of being read, as imapd sets them before login. Review H1: a
 * line of many quoted strings parses into exactly its strings. */
static void test_limits(void)
{
    static const struct {
        const char *in; size_t max_args; int fatal_big;
        int ret; const char *code; int fatal; unsigned go; const char *next;
    } cases[] = {
        { "a X a b\r\n", 2, 0, 0, NULL, 0, 0, "z" },
        { "a X a b c\r\n", 2, 0, CF_E_LIMIT, "LIMIT", 0, 0, "z" },
        { "a X (a (b))\r\n", 3, 0, CF_E_LIMIT, "LIMIT", 0, 0, "z" },
        { "a X (a (b))\r\n", 4, 0, 0, NULL, 0, 0, "z" },
        { "a FETCH 1 BODY[HEADER.FIELDS (A B C)]\r\n", 3, 0, CF_E_LIMIT, "LIMIT", 0, 0, "z" },
        /* the rest of a rejected command is still consumed: its {N+} and the next line */
        { "a X a b c {3+}\r\nxyz d\r\n", 2, 0, CF_E_LIMIT, "LIMIT", 0, 0, "z" },
        /* over max_literal (100): {N} gets no go-ahead; {N+} is skipped or fatal */
        { "a X {101}\r\n", 0, 1, CF_E_LIMIT, "TOOBIG", 0, 0, "z" },
        { "a X {101+}\r\n", 0, 0, CF_E_LIMIT, "TOOBIG", 0, 0, NULL },
        { "a X {101+}\r\n", 0, 1, CF_E_LIMIT, "TOOBIG", 1, 0, NULL },
        /* a rejected command whose continuation announces an oversized {N+} */
        { "a X a b c {200+}\r\n", 2, 1, CF_E_LIMIT, "LIMIT", 1, 0, NULL },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct buf in = BUF_INIT;
        buf_appends(&in, cases[i].in);
        if (!cases[i].next && !cases[i].fatal)         /* the 101 bytes of the skipped literal */
            for (int k = 0; k < 101; k++) buf_putc(&in, 'x');
        if (!cases[i].next && !cases[i].fatal) buf_appends(&in, "\r\n");
        buf_appends(&in, "z NOOP\r\n");
        struct imap_memsource ms;
        struct imap_source src;
        imap_memsource_init(&ms, in.s, in.len, 200, &src);
        struct imap_parser_limits lim = small_limits();
        lim.max_args = cases[i].max_args;
        lim.nonsync_too_big_fatal = cases[i].fatal_big;
        struct imap_parser *p = imap_parser_new(&src, &lim);
        struct imap_command cmd;
        int r = imap_parser_read(p, &cmd);
        const char *code = imap_parser_error_code(p);
        int ok = r == cases[i].ret && imap_parser_fatal(p) == cases[i].fatal &&
                 ms.go_aheads == cases[i].go &&
                 (cases[i].code ? code && !strcmp(code, cases[i].code) : !code);
        if (!ok) fprintf(stderr, "limits case %zu: r=%d err='%s' fatal=%d go=%u\n", i, r,
                         imap_parser_error(p), imap_parser_fatal(p), ms.go_aheads);
        UNIT_CHECK(ok);
        if (!cases[i].fatal) {
            r = imap_parser_read(p, &cmd);
            UNIT_CHECK(r == 0 && !strcmp(cmd.tag, "z"));
        }
        imap_parser_free(&p);
        buf_fini(&in);
    }

    /* 3000 quoted strings (with escapes) on one line: all there, each with its own bytes */
    struct buf in = BUF_INIT;
    buf_appends(&in, "q X");
    for (int k = 0; k < 3000; k++) buf_appends(&in, k % 2 ? " \"\"" : " \"a\\\"b\\\\\"");
    buf_appends(&in, "\r\n");
    struct imap_memsource ms;
    struct imap_source src;
    imap_memsource_init(&ms, in.s, in.len, 0, &src);
    struct imap_parser *p = imap_parser_new(&src, NULL);
    struct imap_command cmd;
    UNIT_EQ_INT(imap_parser_read(p, &cmd), 0);
    UNIT_EQ_INT(cmd.nargs, 3000);
    int good = 1;
    for (size_t k = 0; k < cmd.nargs; k++) {
        const char *want = k % 2 ? "" : "a\"b\\";
        good = good && cmd.args[k].type == IMAP_ARG_QUOTED && cmd.args[k].len == strlen(want) &&
               !strcmp(cmd.args[k].s, want);
    }
    UNIT_CHECK(good);
    imap_parser_free(&p);
    buf_fini(&in);
}

/* Several commands back to back, as a pipelining client sends them. */
static void test_pipeline(void)
{
    const char *in = "1 NOOP\r\n2 LOGIN {1+}\r\nu {1}\r\np\r\n3 BAD\"\r\n4 CAPABILITY\r\n";
    struct imap_memsource ms;
    struct imap_source src;
    struct buf transcript = BUF_INIT;
    imap_memsource_init(&ms, in, strlen(in), 0, &src);
    ms.transcript = &transcript;
    struct imap_parser *p = imap_parser_new(&src, NULL);
    struct imap_command cmd;
    UNIT_EQ_INT(imap_parser_read(p, &cmd), 0);
    UNIT_EQ_STR(cmd.tag, "1");
    UNIT_EQ_INT(imap_parser_read(p, &cmd), 0);
    UNIT_EQ_STR(cmd.tag, "2");
    UNIT_EQ_INT(cmd.nargs, 2);
    UNIT_EQ_INT(ms.go_aheads, 1);
    UNIT_EQ_INT(imap_parser_read(p, &cmd), CF_E_PARSE);
    UNIT_EQ_STR(cmd.tag, "3");
    UNIT_EQ_INT(imap_parser_read(p, &cmd), 0);
    UNIT_EQ_STR(cmd.name, "CAPABILITY");
    UNIT_EQ_INT(imap_parser_read(p, &cmd), CF_E_EOF);
    UNIT_EQ_STR(buf_cstr(&transcript), "+\n");
    imap_parser_free(&p);
    buf_fini(&transcript);
}

static void test_seqset(void)
{
    static const struct { const char *in, *want; } cases[] = {
        { "1", "1" }, { "1:3", "1:3" }, { "3:1", "1:3" }, { "1,2,3", "1:3" },
        { "5,1:2,4", "1:2,4:5" }, { "1:5,2:3", "1:5" }, { "9,7,5,3,1", "1,3,5,7,9" },
        { "10:20,1:9", "1:20" }, { "1:3,5:7,2:6", "1:7" }, { "*", "*" }, { "1:*", "1:*" },
        { "*:4", "4:*" }, { "*:*", "*" }, { "1:3,7:*,2:*", "1:3,2:*,7:*" },
        { "4294967295", "4294967295" }, { "4294967294:4294967295,1", "1,4294967294:4294967295" },
        { "0", NULL }, { "01", NULL }, { "1,", NULL }, { ",1", NULL }, { "1::2", NULL },
        { "", NULL }, { "a", NULL }, { "1:", NULL }, { "4294967296", NULL }, { "1 2", NULL },
        { "**", NULL }, { "1:0", NULL }, { "-1", NULL }, { "1,,2", NULL },
        { "$", "$" }, { "$,1", NULL }, { "1,$", NULL }, { "$$", NULL }, { "1:$", NULL },
        { "$:1", NULL },
    };
    struct imap_seqset set = IMAP_SEQSET_INIT;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *err = NULL;
        int r = imap_seqset_parse(&set, cases[i].in, strlen(cases[i].in), &err);
        if (!cases[i].want) {
            if (r != CF_E_PARSE) fprintf(stderr, "seqset '%s' parsed\n", cases[i].in);
            UNIT_EQ_INT(r, CF_E_PARSE);
            UNIT_CHECK(err != NULL);
            UNIT_EQ_INT(set.count, 0);
            continue;
        }
        UNIT_EQ_INT(r, 0);
        UNIT_EQ_INT(set.saved, strcmp(cases[i].in, "$") == 0);
        struct buf b = BUF_INIT;
        imap_seqset_format(&set, &b);
        UNIT_EQ_STR(buf_cstr(&b), cases[i].want);
        buf_fini(&b);
    }

    static const struct { const char *in; uint32_t max; const char *want; uint64_t size; } res[] = {
        { "1:*", 10, "1:10", 10 }, { "5:*", 3, "3:5", 3 }, { "*", 0, "", 0 }, { "*", 7, "7", 1 },
        { "2:4,9:*,*", 6, "2:4,6:9", 7 }, { "2:*,9:*", 5, "2:9", 8 }, { "1:3", 0, "1:3", 3 },
        { "1:2,*", 3, "1:3", 3 },
    };
    struct imap_seqset out = IMAP_SEQSET_INIT;
    for (size_t i = 0; i < sizeof res / sizeof res[0]; i++) {
        const char *err;
        UNIT_EQ_INT(imap_seqset_parse(&set, res[i].in, strlen(res[i].in), &err), 0);
        imap_seqset_resolve(&set, res[i].max, &out);
        struct buf b = BUF_INIT;
        imap_seqset_format(&out, &b);
        UNIT_EQ_STR(buf_cstr(&b), res[i].want);
        UNIT_EQ_INT(imap_seqset_size(&out), res[i].size);
        buf_fini(&b);
    }

    /* imap_seqset_subtract */
    static const struct { const char *a, *b, *want; } sub[] = {
        { "1:10", "3:4,7", "1:2,5:6,8:10" }, { "1:10", "1:10", "" }, { "1:10", "11:20", "1:10" },
        { "5", "1:4,6:9", "5" }, { "1:3,8:9", "2:8", "1,9" }, { "1:4294967295", "4294967295", "1:4294967294" },
    };
    struct imap_seqset bset = IMAP_SEQSET_INIT;
    for (size_t i = 0; i < sizeof sub / sizeof sub[0]; i++) {
        const char *err;
        UNIT_EQ_INT(imap_seqset_parse(&set, sub[i].a, strlen(sub[i].a), &err), 0);
        UNIT_EQ_INT(imap_seqset_parse(&bset, sub[i].b, strlen(sub[i].b), &err), 0);
        imap_seqset_subtract(&set, &bset, &out);
        struct buf b = BUF_INIT;
        imap_seqset_format(&out, &b);
        UNIT_EQ_STR(buf_cstr(&b), sub[i].want);
        buf_fini(&b);
    }
    imap_seqset_fini(&bset);

    imap_seqset_clear(&out);
    imap_seqset_add(&out, 1, 1);
    imap_seqset_add(&out, 3, 3);
    imap_seqset_add(&out, 2, 2);
    imap_seqset_add(&out, 4294967295u, 4294967295u);
    imap_seqset_add(&out, 10, 5);
    UNIT_EQ_INT(out.count, 3);
    UNIT_CHECK(imap_seqset_contains(&out, 1));
    UNIT_CHECK(imap_seqset_contains(&out, 3));
    UNIT_CHECK(!imap_seqset_contains(&out, 4));
    UNIT_CHECK(imap_seqset_contains(&out, 7));
    UNIT_CHECK(!imap_seqset_contains(&out, 11));
    UNIT_CHECK(imap_seqset_contains(&out, 4294967295u));
    UNIT_CHECK(!imap_seqset_contains(&out, 0));
    imap_seqset_add(&out, 4, 4294967294u);
    UNIT_EQ_INT(out.count, 1);
    UNIT_EQ_INT(imap_seqset_size(&out), 4294967295ull);
    /* many ranges, added out of order, stay sorted and merged */
    imap_seqset_clear(&out);
    for (uint32_t k = 1000; k >= 1; k--) imap_seqset_add(&out, k * 3, k * 3);
    UNIT_EQ_INT(out.count, 1000);
    for (uint32_t k = 1; k <= 1000; k++) imap_seqset_add(&out, k * 3 + 1, k * 3 + 2);
    UNIT_EQ_INT(out.count, 1);
    UNIT_EQ_INT(out.r[0].lo, 3);
    UNIT_EQ_INT(out.r[0].hi, 3002);
    imap_seqset_fini(&out);
    imap_seqset_fini(&set);
}

/* imap_parser_refused_literal: set only when a synchronizing literal was refused for its size
 * before the go-ahead (APPENDLIMIT: NO [TOOBIG]), never for an oversized {N+}, the LITERAL-
 * limit or other errors; cleared by the next command. */
static void test_refused_literal(void)
{
    static const struct {
        const char *in; int literal_minus; int ret; int refused;
    } cases[] = {
        { "a APPEND INBOX {101}\r\n", 0, CF_E_LIMIT, 1 },
        { "a APPEND INBOX ~{101}\r\n", 0, CF_E_LIMIT, 1 },
        { "a APPEND INBOX {3+}\r\nabc {101}\r\n", 0, CF_E_LIMIT, 1 },
        { "a X {100}\r\n", 0, 0, 0 },
        { "a APPEND INBOX {5000+}\r\n", 1, CF_E_LIMIT, 0 },     /* LITERAL- */
        { "a X {abc}\r\n", 0, CF_E_PARSE, 0 },
        { "a X (\r\n", 0, CF_E_PARSE, 0 },
        { "a X {99999999999999999999999}\r\n", 0, CF_E_LIMIT, 0 },   /* no size at all */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct buf in = BUF_INIT;
        buf_appends(&in, cases[i].in);
        if (cases[i].literal_minus)
            for (int k = 0; k < 5000; k++) buf_putc(&in, 'x');
        if (cases[i].literal_minus) buf_appends(&in, "\r\n");
        if (!strcmp(cases[i].in, "a X {100}\r\n")) {
            for (int k = 0; k < 100; k++) buf_putc(&in, 'x');
            buf_appends(&in, "\r\n");
        }
        buf_appends(&in, "z NOOP\r\n");
        struct imap_memsource ms;
        struct imap_source src;
        imap_memsource_init(&ms, in.s, in.len, 0, &src);
        struct imap_parser_limits lim = small_limits();
        lim.max_literal = cases[i].literal_minus ? 10000 : 100;
        lim.max_command = 20000;
        lim.literal_minus = cases[i].literal_minus;
        struct imap_parser *p = imap_parser_new(&src, &lim);
        struct imap_command cmd;
        int r = imap_parser_read(p, &cmd);
        if (r != cases[i].ret || imap_parser_refused_literal(p) != cases[i].refused)
            fprintf(stderr, "refused case %zu: r=%d refused=%d err='%s'\n", i, r,
                    imap_parser_refused_literal(p), imap_parser_error(p));
        UNIT_EQ_INT(r, cases[i].ret);
        UNIT_EQ_INT(imap_parser_refused_literal(p), cases[i].refused);
        /* the next command clears it */
        UNIT_EQ_INT(imap_parser_read(p, &cmd), 0);
        UNIT_EQ_STR(cmd.tag, "z");
        UNIT_EQ_INT(imap_parser_refused_literal(p), 0);
        imap_parser_free(&p);
        buf_fini(&in);
    }
}

int main(void)
{
    test_good();
    test_types();
    test_bad();
    test_literal8();
    test_eof_and_fatal();
    test_pipeline();
    test_limits();
    test_seqset();
    test_refused_literal();
    UNIT_DONE();
}
