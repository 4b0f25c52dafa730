/* test-imap-condstore.c: the RFC 7162 parsers (imap-condstore.h): mod-sequence values, select
 * parameters, FETCH and STORE modifiers, on commands read by the real parser. */
#include "core/unit.h"
#include "imap/imap-condstore.h"
#include "imap/imap-memsource.h"
#include "imap/imap-parser.h"
#include <string.h>

/* with_arg: parse "t X <text>\r\n" and hand its first argument to fn; returns fn's result. */
struct cmdbox {
    struct imap_memsource ms;
    struct imap_source src;
    struct imap_parser *p;
    struct imap_command cmd;
    char line[512];
};

static const struct imap_arg *parse_arg(struct cmdbox *b, const char *text)
{
    snprintf(b->line, sizeof b->line, "t X %s\r\n", text);
    imap_memsource_init(&b->ms, b->line, strlen(b->line), 0, &b->src);
    b->p = imap_parser_new(&b->src, NULL);
    if (imap_parser_read(b->p, &b->cmd) < 0 || b->cmd.nargs != 1) return NULL;
    return &b->cmd.args[0];
}

static void done(struct cmdbox *b) { imap_parser_free(&b->p); }

static void test_modseq(void)
{
    uint64_t v = 0;
    UNIT_EQ_INT(imap_modseq_parse("1", 1, 0, &v), 0);
    UNIT_EQ_INT(v, 1);
    UNIT_EQ_INT(imap_modseq_parse("0", 1, 0, &v), -1);
    UNIT_EQ_INT(imap_modseq_parse("0", 1, 1, &v), 0);
    UNIT_EQ_INT(v, 0);
    UNIT_EQ_INT(imap_modseq_parse("9223372036854775807", 19, 0, &v), 0);
    UNIT_CHECK(v == IMAP_MODSEQ_MAX);
    UNIT_EQ_INT(imap_modseq_parse("9223372036854775808", 19, 0, &v), -1);
    UNIT_EQ_INT(imap_modseq_parse("99999999999999999999", 20, 0, &v), -1);
    UNIT_EQ_INT(imap_modseq_parse("-1", 2, 1, &v), -1);
    UNIT_EQ_INT(imap_modseq_parse("+1", 2, 1, &v), -1);
    UNIT_EQ_INT(imap_modseq_parse("12a", 3, 1, &v), -1);
    UNIT_EQ_INT(imap_modseq_parse("", 0, 1, &v), -1);
}

static void test_select_params(void)
{
    static const struct { const char *in; int ok, condstore, qresync, known, match; } cases[] = {
        { "(CONDSTORE)", 1, 1, 0, 0, 0 },
        { "(condstore)", 1, 1, 0, 0, 0 },
        { "(QRESYNC (67890007 20050715194045000))", 1, 0, 1, 0, 0 },
        { "(QRESYNC (67890007 20050715194045000 41,43:211,214:541))", 1, 0, 1, 1, 0 },
        { "(QRESYNC (67890007 90060115194045000 41:211,214:541 (1:10 41:50)))", 1, 0, 1, 1, 1 },
        { "(QRESYNC (67890007 90060115194045000 (1,3 41,43)))", 1, 0, 1, 0, 1 },
        { "(CONDSTORE QRESYNC (1 2))", 1, 1, 1, 0, 0 },
        { "()", 0, 0, 0, 0, 0 },
        { "(FOO)", 0, 0, 0, 0, 0 },
        { "(CONDSTORE CONDSTORE)", 0, 0, 0, 0, 0 },
        { "(QRESYNC)", 0, 0, 0, 0, 0 },
        { "(QRESYNC ())", 0, 0, 0, 0, 0 },
        { "(QRESYNC (1))", 0, 0, 0, 0, 0 },
        { "(QRESYNC (0 5))", 0, 0, 0, 0, 0 },
        { "(QRESYNC (1 0))", 0, 0, 0, 0, 0 },
        { "(QRESYNC (x 5))", 0, 0, 0, 0, 0 },
        { "(QRESYNC (1 5 1:*))", 0, 0, 0, 0, 0 },
        { "(QRESYNC (1 5 $))", 0, 0, 0, 0, 0 },
        { "(QRESYNC (1 5 1:10 (1:3 1,2)))", 0, 0, 0, 0, 0 },     /* sizes differ */
        { "(QRESYNC (1 5 1:10 (1:3)))", 0, 0, 0, 0, 0 },
        { "(QRESYNC (1 5 1:10 (1 2) x))", 0, 0, 0, 0, 0 },
        { "(QRESYNC (1 5) QRESYNC (1 5))", 0, 0, 0, 0, 0 },
        { "CONDSTORE", 0, 0, 0, 0, 0 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct cmdbox b;
        const struct imap_arg *a = parse_arg(&b, cases[i].in);
        UNIT_CHECK(a != NULL);
        struct imap_select_params p;
        imap_select_params_init(&p);
        const char *err = NULL;
        int r = a ? imap_select_params_parse(a, &p, &err) : -1;
        if ((r == 0) != cases[i].ok) fprintf(stderr, "case %s\n", cases[i].in);
        UNIT_EQ_INT(r == 0, cases[i].ok);
        if (!r) {
            UNIT_EQ_INT(p.condstore, cases[i].condstore);
            UNIT_EQ_INT(p.qresync, cases[i].qresync);
            UNIT_EQ_INT(p.q.has_known_uids, cases[i].known);
            UNIT_EQ_INT(p.q.has_match, cases[i].match);
        } else {
            UNIT_CHECK(err != NULL);
        }
        imap_select_params_fini(&p);
        done(&b);
    }
    struct cmdbox b;
    struct imap_select_params p;
    imap_select_params_init(&p);
    const char *err = NULL;
    const struct imap_arg *a = parse_arg(&b, "(QRESYNC (67890007 90060115194045000 41:211,214:541 (1:10 41:50)))");
    UNIT_EQ_INT(imap_select_params_parse(a, &p, &err), 0);
    UNIT_EQ_INT(p.q.uidvalidity, 67890007);
    UNIT_CHECK(p.q.modseq == 90060115194045000ull);
    UNIT_EQ_INT(imap_seqset_size(&p.q.known_uids), 171 + 328);
    UNIT_EQ_INT(imap_seqset_contains(&p.q.uid_match, 45), 1);
    imap_select_params_fini(&p);
    done(&b);
}

static void test_fetch_modifiers(void)
{
    static const struct { const char *in; int ok; uint64_t cs; int van; } cases[] = {
        { "(CHANGEDSINCE 12345)", 1, 12345, 0 },
        { "(changedsince 7 vanished)", 1, 7, 1 },
        { "(VANISHED CHANGEDSINCE 7)", 1, 7, 1 },
        { "(CHANGEDSINCE 0)", 0, 0, 0 },
        { "(CHANGEDSINCE)", 0, 0, 0 },
        { "(CHANGEDSINCE x)", 0, 0, 0 },
        { "(CHANGEDSINCE 1 CHANGEDSINCE 2)", 0, 0, 0 },
        { "(VANISHED)", 0, 0, 0 },
        { "(CHANGEDSINCE 1 VANISHED VANISHED)", 0, 0, 0 },
        { "(FOO 1)", 0, 0, 0 },
        { "()", 0, 0, 0 },
        { "(CHANGEDSINCE \"5\")", 0, 0, 0 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct cmdbox b;
        const struct imap_arg *a = parse_arg(&b, cases[i].in);
        uint64_t cs = 99;
        int van = 9;
        const char *err = NULL;
        int r = a ? imap_fetch_modifiers_parse(a, &cs, &van, &err) : -1;
        UNIT_EQ_INT(r == 0, cases[i].ok);
        if (!r) {
            UNIT_CHECK(cs == cases[i].cs);
            UNIT_EQ_INT(van, cases[i].van);
        }
        done(&b);
    }
}

static void test_store_modifiers(void)
{
    static const struct { const char *in; int ok; uint64_t v; } cases[] = {
        { "(UNCHANGEDSINCE 320162338)", 1, 320162338 },
        { "(unchangedsince 0)", 1, 0 },
        { "(UNCHANGEDSINCE)", 0, 0 },
        { "(UNCHANGEDSINCE -1)", 0, 0 },
        { "(UNCHANGEDSINCE 1 UNCHANGEDSINCE 2)", 0, 0 },
        { "(CHANGEDSINCE 1)", 0, 0 },
        { "()", 0, 0 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct cmdbox b;
        const struct imap_arg *a = parse_arg(&b, cases[i].in);
        uint64_t v = 99;
        int has = 0;
        const char *err = NULL;
        int r = a ? imap_store_modifiers_parse(a, &v, &has, &err) : -1;
        UNIT_EQ_INT(r == 0, cases[i].ok);
        if (!r) {
            UNIT_CHECK(v == cases[i].v);
            UNIT_EQ_INT(has, 1);
        }
        done(&b);
    }
}

int main(void)
{
    test_modseq();
    test_select_params();
    test_fetch_modifiers();
    test_store_modifiers();
    UNIT_DONE();
}
