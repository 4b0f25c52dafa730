/* test-imap-date.c: unit tests of lib/imap/imap-date.c: RFC 3501 date (SEARCH) and date-time
 * (APPEND, FETCH INTERNALDATE), parsed and formatted. */
#include "imap/imap-date.h"
#include "core/buf.h"
#include "core/error.h"
#include "core/unit.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void test_date(void)
{
    static const struct { const char *s; int r; int64_t day; } cases[] = {
        { "1-Jan-1970", 0, 0 },
        { "29-Feb-2024", 0, 19782 },
        { "1-Mar-2024", 0, 19783 },
        { "01-mar-2024", 0, 19783 },
        { "1-mar-2024x", CF_E_PARSE, 0 },
        { "-Mar-2024", CF_E_PARSE, 0 },
        { "111-Mar-2024", CF_E_PARSE, 0 },
        { "1-Mar-24", CF_E_PARSE, 0 },
        { "1-Mux-2024", CF_E_PARSE, 0 },
        { "32-Mar-2024", CF_E_PARSE, 0 },
        { "1 Mar 2024", CF_E_PARSE, 0 },
        { "1-Mar", CF_E_PARSE, 0 },
        { "", CF_E_PARSE, 0 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int64_t d = -1;
        int r = imap_date_parse(cases[i].s, strlen(cases[i].s), &d);
        if (r != cases[i].r) fprintf(stderr, "date case %zu: %s\n", i, cases[i].s);
        UNIT_EQ_INT(r, cases[i].r);
        if (!r) UNIT_EQ_INT(d, cases[i].day);
    }
}

static void test_datetime_parse(void)
{
    static const struct { const char *s; int r; int64_t t; } cases[] = {
        { "17-Jul-1996 02:44:25 -0700", 0, 837596665 },
        { " 7-Jul-1996 02:44:25 +0000", 0, 836707465 },
        { "7-Jul-1996 02:44:25 +0000", 0, 836707465 },
        { "07-jul-1996 02:44:25 +0130", 0, 836702065 },
        { "01-Jan-1970 00:00:00 +0000", 0, 0 },
        { "01-Jan-1970 00:00:00 +0100", CF_E_PARSE, 0 },   /* before the epoch */
        { "29-Feb-2024 12:00:00 +0000", 0, 1709208000 },
        { "30-Feb-2024 12:00:00 +0000", CF_E_PARSE, 0 },
        { "17-Jul-1996 24:44:25 -0700", CF_E_PARSE, 0 },
        { "17-Jul-1996 02:44:25 -0760", CF_E_PARSE, 0 },
        { "17-Jul-1996 02:44:25", CF_E_PARSE, 0 },
        { "17-Jul-1996 02:44:25 -0700x", CF_E_PARSE, 0 },
        { "17-Jux-1996 02:44:25 -0700", CF_E_PARSE, 0 },
        { "17-Ju", CF_E_PARSE, 0 },
        { "", CF_E_PARSE, 0 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int64_t t = -1;
        int r = imap_datetime_parse(cases[i].s, &t);
        if (r != cases[i].r) fprintf(stderr, "date-time case %zu: %s\n", i, cases[i].s);
        UNIT_EQ_INT(r, cases[i].r);
        if (!r) UNIT_EQ_INT(t, cases[i].t);
    }
}

static void test_datetime_append(void)
{
    static const struct { const char *tz; int64_t t; const char *out; } cases[] = {
        { "UTC0", 0, "\" 1-Jan-1970 00:00:00 +0000\"" },
        { "UTC0", 837596665, "\"17-Jul-1996 09:44:25 +0000\"" },
        { "PST8PDT", 837596665, "\"17-Jul-1996 02:44:25 -0700\"" },
        { "IST-5:30", 1709208000, "\"29-Feb-2024 17:30:00 +0530\"" },
        { "UTC0", 1796677671, "\" 7-Dec-2026 21:07:51 +0000\"" },
    };
    struct buf b = BUF_INIT;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        setenv("TZ", cases[i].tz, 1);
        tzset();
        buf_reset(&b);
        imap_datetime_append(cases[i].t, &b);
        UNIT_EQ_STR(buf_cstr(&b), cases[i].out);
        /* what FETCH writes, APPEND reads back */
        int64_t t = -1;
        b.s[b.len - 1] = '\0';
        UNIT_EQ_INT(imap_datetime_parse(b.s + 1, &t), 0);
        UNIT_EQ_INT(t, cases[i].t);
    }
    buf_fini(&b);
}

int main(void)
{
    test_date();
    test_datetime_parse();
    test_datetime_append();
    UNIT_DONE();
}
