/* test-imap-listopts.c: unit tests of lib/imap/imap-listopts.c: LIST-EXTENDED arguments (RFC
 * 5258 section 6; the BAD cases of its section 3) and STATUS item lists. */
#include "imap/imap-listopts.h"
#include "imap/imap-memsource.h"
#include "imap/imap-parser.h"
#include "core/buf.h"
#include "core/error.h"
#include "core/unit.h"
#include <stdio.h>
#include <string.h>

/* run: parse "t LIST <args>" and its options; the parser's command goes into *cmd (valid until
 * imap_parser_free). Returns imap_list_opts_parse's value. */
static int run(const char *args, struct imap_parser **p, struct imap_list_opts *o,
               struct imap_memsource *ms, struct buf *in)
{
    struct imap_source src;
    struct imap_parser_limits lim;
    struct imap_command cmd;
    const char *why = NULL;
    imap_parser_limits_default(&lim);
    buf_reset(in);
    buf_printf(in, "t LIST %s\r\n", args);
    imap_memsource_init(ms, in->s, in->len, 1000, &src);
    *p = imap_parser_new(&src, &lim);
    int r = imap_parser_read(*p, &cmd);
    UNIT_EQ_INT(r, 0);
    if (r) return r;
    r = imap_list_opts_parse(cmd.args, cmd.nargs, o, &why);
    UNIT_CHECK(why != NULL);
    return r;
}

static void test_good(void)
{
    static const struct {
        const char *args; unsigned sel, ret; int extended; size_t npats, nstatus;
    } cases[] = {
        { "\"\" *", 0, 0, 0, 1, 0 },
        { "() \"\" %", 0, 0, 0, 1, 0 },
        { "(REMOTE) \"\" %", IMAP_LIST_SEL_REMOTE, 0, 1, 1, 0 },
        { "(SUBSCRIBED) \"\" *", IMAP_LIST_SEL_SUBSCRIBED, IMAP_LIST_RET_SUBSCRIBED, 1, 1, 0 },
        { "(subscribed recursivematch) \"\" %",
          IMAP_LIST_SEL_SUBSCRIBED | IMAP_LIST_SEL_RECURSIVEMATCH, IMAP_LIST_RET_SUBSCRIBED, 1,
          1, 0 },
        { "(RECURSIVEMATCH SPECIAL-USE REMOTE) \"\" %",
          IMAP_LIST_SEL_RECURSIVEMATCH | IMAP_LIST_SEL_SPECIAL_USE | IMAP_LIST_SEL_REMOTE, 0, 1,
          1, 0 },
        { "\"\" (INBOX \"Sent*\")", 0, 0, 1, 2, 0 },
        { "\"\" % RETURN ()", 0, 0, 1, 1, 0 },
        { "\"\" % RETURN (CHILDREN SUBSCRIBED SPECIAL-USE)", 0,
          IMAP_LIST_RET_CHILDREN | IMAP_LIST_RET_SUBSCRIBED | IMAP_LIST_RET_SPECIAL_USE, 1, 1, 0 },
        { "\"\" % RETURN (STATUS (MESSAGES SIZE messages HIGHESTMODSEQ))", 0,
          IMAP_LIST_RET_STATUS, 1, 1, 3 },
        { "(SUBSCRIBED) ref (a b c d e f g h i j k l m n o p) RETURN (STATUS (DELETED-STORAGE))",
          IMAP_LIST_SEL_SUBSCRIBED, IMAP_LIST_RET_SUBSCRIBED | IMAP_LIST_RET_STATUS, 1, 16, 1 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct imap_parser *p = NULL;
        struct imap_memsource ms;
        struct buf in = BUF_INIT;
        struct imap_list_opts o;
        int r = run(cases[i].args, &p, &o, &ms, &in);
        if (r) fprintf(stderr, "good case %zu: %s\n", i, cases[i].args);
        UNIT_EQ_INT(r, 0);
        if (!r) {
            UNIT_EQ_INT(o.sel, cases[i].sel);
            UNIT_EQ_INT(o.ret, cases[i].ret);
            UNIT_EQ_INT(o.extended, cases[i].extended);
            UNIT_EQ_INT(o.npats, cases[i].npats);
            UNIT_EQ_INT(o.nstatus, cases[i].nstatus);
            UNIT_CHECK(o.ref != NULL);
        }
        imap_parser_free(&p);
        buf_fini(&in);
    }
}

static void test_bad(void)
{
    static const char *const cases[] = {
        "\"\"", "() \"\"", "(RECURSIVEMATCH) \"\" *", "(RECURSIVEMATCH REMOTE) \"\" *",
        "(BOGUS) \"\" *", "(\"SUBSCRIBED\") \"\" *", "((SUBSCRIBED)) \"\" *",
        "\"\" * RETURN", "\"\" * RETURN CHILDREN", "\"\" * RETURN (BOGUS)",
        "\"\" * RETURN (RECURSIVEMATCH)", "\"\" * RETURN (STATUS)", "\"\" * RETURN (STATUS ())",
        "\"\" * RETURN (STATUS (BOGUS))", "\"\" * RETURN (STATUS MESSAGES)",
        "\"\" * RETURN (STATUS (MESSAGES) STATUS (UNSEEN))", "\"\" * BOGUS (CHILDREN)",
        "\"\" ()", "\"\" (a (b))", "(a) (b) c", "\"\" (a b c d e f g h i j k l m n o p q)",
        "\"\" * RETURN (CHILDREN) extra", "() () \"\" *",
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct imap_parser *p = NULL;
        struct imap_memsource ms;
        struct buf in = BUF_INIT;
        struct imap_list_opts o;
        int r = run(cases[i], &p, &o, &ms, &in);
        if (r != CF_E_PARSE) fprintf(stderr, "bad case %zu: %s\n", i, cases[i]);
        UNIT_EQ_INT(r, CF_E_PARSE);
        imap_parser_free(&p);
        buf_fini(&in);
    }
}

static void test_status_items(void)
{
    struct imap_arg items[IMAP_STATUS_ITEMS_MAX + 1];
    static const char *const names[] = { "messages", "RECENT", "UIDNEXT", "UIDVALIDITY",
                                         "UNSEEN", "DELETED", "SIZE", "DELETED-STORAGE",
                                         "HIGHESTMODSEQ", "mailboxid", "appendlimit", "SIZE" };
    for (size_t i = 0; i < IMAP_STATUS_ITEMS_MAX + 1; i++) {
        memset(&items[i], 0, sizeof items[i]);
        items[i].type = IMAP_ARG_ATOM;
        items[i].s = names[i];
        items[i].len = strlen(names[i]);
    }
    struct imap_arg list;
    memset(&list, 0, sizeof list);
    list.type = IMAP_ARG_LIST;
    list.list = items;
    list.count = IMAP_STATUS_ITEMS_MAX + 1;
    unsigned order[IMAP_STATUS_ITEMS_MAX];
    size_t n = 99;
    UNIT_EQ_INT(imap_status_items_parse(&list, order, &n), 0);
    UNIT_EQ_INT(n, IMAP_STATUS_ITEMS_MAX);   /* the repeated SIZE once */
    UNIT_EQ_INT(order[0], IMAP_STATUS_MESSAGES);
    UNIT_EQ_INT(order[8], IMAP_STATUS_HIGHESTMODSEQ);
    UNIT_EQ_INT(order[9], IMAP_STATUS_MAILBOXID);          /* RFC 8474 */
    UNIT_EQ_INT(order[10], IMAP_STATUS_APPENDLIMIT);
    UNIT_EQ_STR(imap_status_item_name(IMAP_STATUS_APPENDLIMIT), "APPENDLIMIT");
    UNIT_EQ_STR(imap_status_item_name(order[7]), "DELETED-STORAGE");
    UNIT_EQ_STR(imap_status_item_name(3), "");
    list.count = 0;
    UNIT_EQ_INT(imap_status_items_parse(&list, order, &n), CF_E_PARSE);
    items[0].type = IMAP_ARG_QUOTED;
    list.count = 1;
    UNIT_EQ_INT(imap_status_items_parse(&list, order, &n), CF_E_PARSE);
    UNIT_EQ_INT(imap_status_items_parse(&items[1], order, &n), CF_E_PARSE);  /* not a list */
}

int main(void)
{
    test_good();
    test_bad();
    test_status_items();
    UNIT_DONE();
}
