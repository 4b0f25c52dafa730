/* date.c: proleptic Gregorian day numbers and month abbreviations, shared by the RFC 5322
 * (lib/mime) and IMAP (lib/imap) date code. */
#include "core/date.h"
#include <strings.h>
#include <time.h>

static const char month_names[12][4] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                         "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };

int64_t date_days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

int date_month_parse(const char *s, size_t n)
{
    if (n < 3) return -1;
    for (int i = 0; i < 12; i++)
        if (!strncasecmp(s, month_names[i], 3)) return i;
    return -1;
}

const char *date_month_name(int month)
{
    return month >= 0 && month < 12 ? month_names[month] : "???";
}

int64_t date_local_day(int64_t t)
{
    time_t tt = (time_t)t;
    struct tm tm;
    if (!localtime_r(&tt, &tm)) return t / 86400;
    return date_days_from_civil((int64_t)tm.tm_year + 1900, (unsigned)tm.tm_mon + 1,
                                (unsigned)tm.tm_mday);
}
