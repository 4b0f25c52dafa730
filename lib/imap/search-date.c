/* search-date.c: the dates of SEARCH (search.h, search-int.h): RFC 3501 date-text, the day
 * an RFC 5322 Date: field names, and day numbers in the server's time zone. */
#include "imap/search-int.h"
#include "core/error.h"
#include <time.h>

/* days_from_civil: days since 1970-01-01 of a proleptic Gregorian date. */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    int64_t era, yoe, doy, doe;
    y -= m <= 2;
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = y - era * 400;
    doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static const char *const months[12] = {
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"
};

static int month_index(const char *s, size_t n)
{
    if (n != 3) return -1;
    for (int i = 0; i < 12; i++)
        if (strncasecmp(s, months[i], 3) == 0) return i;
    return -1;
}

int search_date_parse(const char *s, size_t len, int64_t *day_r)
{
    size_t i = 0, ds;
    unsigned day = 0, year = 0;
    int mon;
    while (i < len && i < 2 && s[i] >= '0' && s[i] <= '9') day = day * 10 + (unsigned)(s[i++] - '0');
    if (i == 0 || i >= len || s[i] != '-' || day < 1 || day > 31) return CF_E_PARSE;
    i++;
    if (len - i < 4) return CF_E_PARSE;
    mon = month_index(s + i, 3);
    if (mon < 0 || s[i + 3] != '-') return CF_E_PARSE;
    i += 4;
    ds = i;
    while (i < len && s[i] >= '0' && s[i] <= '9') year = year * 10 + (unsigned)(s[i++] - '0');
    if (i != len || i - ds != 4) return CF_E_PARSE;
    *day_r = days_from_civil(year, (unsigned)mon + 1, day);
    return 0;
}

/* skip_cfws: skip white space and (nested) comments. */
static size_t skip_cfws(const char *s, size_t len, size_t i)
{
    for (;;) {
        while (i < len && (s[i] == ' ' || s[i] == '\t' || s[i] == '\r' || s[i] == '\n')) i++;
        if (i < len && s[i] == '(') {
            int depth = 0;
            for (; i < len; i++) {
                if (s[i] == '\\' && i + 1 < len) { i++; continue; }
                if (s[i] == '(') depth++;
                else if (s[i] == ')' && --depth == 0) { i++; break; }
            }
            continue;
        }
        return i;
    }
}

int search_sent_day(const char *s, size_t len, int64_t *day_r)
{
    size_t i = skip_cfws(s, len, 0), st;
    unsigned day = 0, year = 0;
    int mon;
    /* optional day-of-week "," */
    if (i < len && ((s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= 'a' && s[i] <= 'z'))) {
        while (i < len && ((s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= 'a' && s[i] <= 'z'))) i++;
        i = skip_cfws(s, len, i);
        if (i < len && s[i] == ',') i++;
        i = skip_cfws(s, len, i);
    }
    st = i;
    while (i < len && i - st < 2 && s[i] >= '0' && s[i] <= '9') day = day * 10 + (unsigned)(s[i++] - '0');
    if (i == st || day < 1 || day > 31) return 0;
    i = skip_cfws(s, len, i);
    if (i < len && s[i] == '-') i++;      /* tolerate "1-Jul-2003" */
    if (len - i < 3 || (mon = month_index(s + i, 3)) < 0) return 0;
    i = skip_cfws(s, len, i + 3);
    if (i < len && s[i] == '-') i++;
    st = i;
    while (i < len && i - st < 4 && s[i] >= '0' && s[i] <= '9') year = year * 10 + (unsigned)(s[i++] - '0');
    if (i - st < 2) return 0;
    if (i - st == 2) year += year < 50 ? 2000 : 1900;        /* RFC 5322 section 4.3 */
    else if (i - st == 3) year += 1900;
    *day_r = days_from_civil(year, (unsigned)mon + 1, day);
    return 1;
}

/* local_day: the day number of t in the server's time zone. */
int64_t local_day(int64_t t)
{
    time_t tt = (time_t)t;
    struct tm tm;
    if (!localtime_r(&tt, &tm)) return t / 86400;
    return days_from_civil((int64_t)tm.tm_year + 1900, (unsigned)tm.tm_mon + 1,
                           (unsigned)tm.tm_mday);
}
