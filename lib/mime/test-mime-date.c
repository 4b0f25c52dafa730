/* test-mime-date.c: unit tests of lib/mime/date.c (RFC 5322 date-time: mime_parse_date, and the
 * day as written: mime_date_day) and of the calendar helpers in lib/core/date.c. */
#include "mime/date.h"
#include "core/date.h"
#include "core/unit.h"
#include <stdio.h>
#include <string.h>

static void test_civil(void)
{
    static const struct { int64_t y; unsigned m, d; int64_t days; } cases[] = {
        { 1970, 1, 1, 0 }, { 1969, 12, 31, -1 }, { 2000, 2, 29, 11016 }, { 2000, 3, 1, 11017 },
        { 2024, 2, 29, 19782 }, { 2003, 7, 1, 12234 }, { 1900, 3, 1, -25508 },
        { 2100, 3, 1, 47541 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        UNIT_EQ_INT(date_days_from_civil(cases[i].y, cases[i].m, cases[i].d), cases[i].days);
    UNIT_EQ_INT(date_month_parse("Jan", 3), 0);
    UNIT_EQ_INT(date_month_parse("dEcember", 8), 11);
    UNIT_EQ_INT(date_month_parse("Ma", 2), -1);
    UNIT_EQ_INT(date_month_parse("Foo", 3), -1);
    UNIT_EQ_STR(date_month_name(6), "Jul");
    UNIT_EQ_STR(date_month_name(12), "???");
}

static void test_parse_date(void)
{
    static const struct { const char *s; int64_t t; } cases[] = {
        { "Thu, 13 Feb 1969 23:32:54 -0330", -27723426 },
        { "Fri, 21 Nov 1997 09:55:06 -0600", 880127706 },
        { "21 Nov 1997 09:55:06 GMT", 880106106 },
        { " Tue, 1 Jul 2003 10:52:37 +0200 (CEST)", 1057049557 },
        { "Tue,(c) 1 (x) Jul (y) 2003 10: 52 : 37 +0200", 1057049557 },
        { "Tue, 1 July 2003 10:52:37 +0200", 1057049557 },
        { "Tue, 1 Jul 03 10:52:37 +0200", 1057049557 },
        { "Tue, 1 Jul 103 10:52:37 +0200", 1057049557 },
        { "1 Jan 70 00:00 +0000", 0 },   /* 0 also means unparsable, both fine */
        { "Mon, 07 Feb 2022 12:00:00 PST", 1644264000 },
        { "Mon, 07 Feb 2022 12:00:00 z", 1644235200 },   /* military zone: -0000 */
        { "Sat, 29 Feb 2020 00:00:01 +0000", 1582934401 },
        { "Sat, 29 Feb 2020 00:00:01 +00", 0 },
        { "Sat, 29 Feb 2020 24:00:00 +0000", 0 },
        { "Sat, 29 Feb 2020 +0000", 0 },
        { "1 Jan 1899 00:00 +0000", 0 },
        { "garbage", 0 },
        { "", 0 },
        { "Mon, 32 Jan 2020 00:00:00 +0000", 0 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int64_t t = mime_parse_date(cases[i].s, strlen(cases[i].s));
        if (t != cases[i].t) fprintf(stderr, "date case %zu: %s\n", i, cases[i].s);
        UNIT_EQ_INT(t, cases[i].t);
    }
    /* the length bounds the parse: no NUL needed, nothing read past it */
    UNIT_EQ_INT(mime_parse_date("21 Nov 1997 09:55:06 GMTxx", 24), 880106106);
}

static void test_date_day(void)
{
    static const struct { const char *s; int ok; int64_t day; } cases[] = {
        { "Tue, 1 Jul 2003 10:52:37 +0200", 1, 12234 },
        { "Tue, 1 Jul 2003 23:52:37 -1000", 1, 12234 },   /* as written, zone disregarded */
        { " (comment) 1 jul 2003", 1, 12234 },
        { "1 Jul 03", 1, 12234 },
        { "1-Jul-2003", 1, 12234 },
        { "Tue 1 Jul 2003", 1, 12234 },
        { "yesterday", 0, 0 },
        { "", 0, 0 },
        { "0 Jul 2003", 0, 0 },
        { "1 Jul 3", 0, 0 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int64_t d = -1;
        int ok = mime_date_day(cases[i].s, strlen(cases[i].s), &d);
        if (ok != cases[i].ok) fprintf(stderr, "day case %zu: %s\n", i, cases[i].s);
        UNIT_EQ_INT(ok, cases[i].ok);
        if (ok) UNIT_EQ_INT(d, cases[i].day);
    }
}

int main(void)
{
    test_civil();
    test_parse_date();
    test_date_day();
    UNIT_DONE();
}
