/* test-imap-partial.c: unit tests of lib/imap/imap-partial.c: PARTIAL ranges parsed (positive,
 * negative, reversed, malformed), echoed and applied to result counts. */
#include "imap/imap-partial.h"
#include "core/buf.h"
#include "core/error.h"
#include "core/unit.h"
#include <stdio.h>
#include <string.h>

static void test_parse(void)
{
    static const struct { const char *s; int r; uint32_t lo, hi; int last; const char *echo; }
    cases[] = {
        { "1:100", 0, 1, 100, 0, "1:100" },
        { "100:1", 0, 1, 100, 0, "1:100" },
        { "5:5", 0, 5, 5, 0, "5:5" },
        { "-1:-100", 0, 1, 100, 1, "-1:-100" },
        { "-100:-1", 0, 1, 100, 1, "-1:-100" },
        { "1:4294967295", 0, 1, 4294967295u, 0, "1:4294967295" },
        { "1:4294967296", CF_E_PARSE, 0, 0, 0, NULL },
        { "0:10", CF_E_PARSE, 0, 0, 0, NULL },
        { "1:0", CF_E_PARSE, 0, 0, 0, NULL },
        { "-0:-1", CF_E_PARSE, 0, 0, 0, NULL },
        { "01:10", CF_E_PARSE, 0, 0, 0, NULL },
        { "-1:100", CF_E_PARSE, 0, 0, 0, NULL },
        { "1:-100", CF_E_PARSE, 0, 0, 0, NULL },
        { "1:*", CF_E_PARSE, 0, 0, 0, NULL },
        { "1", CF_E_PARSE, 0, 0, 0, NULL },
        { "1:", CF_E_PARSE, 0, 0, 0, NULL },
        { ":1", CF_E_PARSE, 0, 0, 0, NULL },
        { "1:2,3", CF_E_PARSE, 0, 0, 0, NULL },
        { "1:2 ", CF_E_PARSE, 0, 0, 0, NULL },
        { "--1:-2", CF_E_PARSE, 0, 0, 0, NULL },
        { "-", CF_E_PARSE, 0, 0, 0, NULL },
        { "", CF_E_PARSE, 0, 0, 0, NULL },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct imap_partial p = { 0, 0, 0 };
        const char *err = NULL;
        int r = imap_partial_parse(cases[i].s, strlen(cases[i].s), &p, &err);
        if (r != cases[i].r) fprintf(stderr, "partial case %zu: %s\n", i, cases[i].s);
        UNIT_EQ_INT(r, cases[i].r);
        if (r < 0) {
            UNIT_CHECK(err != NULL);
            continue;
        }
        UNIT_EQ_INT(p.lo, cases[i].lo);
        UNIT_EQ_INT(p.hi, cases[i].hi);
        UNIT_EQ_INT(p.last, cases[i].last);
        struct buf b = BUF_INIT;
        imap_partial_format(&p, &b);
        UNIT_EQ_STR(buf_cstr(&b), cases[i].echo);
        buf_fini(&b);
    }
}

static void test_window(void)
{
    static const struct { struct imap_partial p; uint64_t count; int r; uint64_t first, end; }
    cases[] = {
        { { 1, 100, 0 }, 1000, 1, 0, 100 },
        { { 1, 100, 0 }, 50, 1, 0, 50 },
        { { 50, 60, 0 }, 55, 1, 49, 55 },
        { { 56, 60, 0 }, 55, 0, 0, 0 },
        { { 1, 1, 0 }, 0, 0, 0, 0 },
        { { 1, 100, 1 }, 1000, 1, 900, 1000 },
        { { 1, 100, 1 }, 50, 1, 0, 50 },
        { { 2, 3, 1 }, 10, 1, 7, 9 },
        { { 11, 20, 1 }, 10, 0, 0, 0 },
        { { 1, 4294967295u, 0 }, 3, 1, 0, 3 },
        { { 1, 4294967295u, 1 }, 3, 1, 0, 3 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint64_t first = 99, end = 99;
        int r = imap_partial_window(&cases[i].p, cases[i].count, &first, &end);
        if (r != cases[i].r || first != cases[i].first || end != cases[i].end)
            fprintf(stderr, "window case %zu\n", i);
        UNIT_EQ_INT(r, cases[i].r);
        UNIT_EQ_INT(first, cases[i].first);
        UNIT_EQ_INT(end, cases[i].end);
    }
}

int main(void)
{
    test_parse();
    test_window();
    UNIT_DONE();
}
