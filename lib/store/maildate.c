/* maildate.c: RFC 5322 section 3.3 date-time parsing (the Date: header), obsolete forms
 * included, for the sent date kept in each index record and for SEARCH SENT*. */
#include "store/mailbox.h"
#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static const char *skip_cfws(const char *p, const char *end)
{
    for (;;) {
        while (p < end && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')) p++;
        if (p < end && *p == '(') {   /* comment, possibly nested */
            int depth = 0;
            for (; p < end; p++) {
                if (*p == '\\' && p + 1 < end) { p++; continue; }
                if (*p == '(') depth++;
                else if (*p == ')' && --depth == 0) { p++; break; }
            }
            continue;
        }
        return p;
    }
}

static const char *read_num(const char *p, const char *end, int maxd, long *v)
{
    int n = 0;
    *v = 0;
    while (p < end && n < maxd && *p >= '0' && *p <= '9') { *v = *v * 10 + (*p++ - '0'); n++; }
    return n ? p : NULL;
}

int64_t mailbox_parse_date(const char *s, size_t len)
{
    static const char *months[] = { "jan", "feb", "mar", "apr", "may", "jun",
                                    "jul", "aug", "sep", "oct", "nov", "dec" };
    const char *p = s, *end = s + len;
    long day, year, hh, mm, ss = 0;
    p = skip_cfws(p, end);
    if (p < end && ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z'))) {
        while (p < end && *p != ',') p++;   /* day-of-week */
        if (p == end) return 0;
        p = skip_cfws(p + 1, end);
    }
    if (!(p = read_num(p, end, 2, &day))) return 0;
    p = skip_cfws(p, end);
    if (end - p < 3) return 0;
    int mon = -1;
    for (int i = 0; i < 12; i++)
        if (!strncasecmp(p, months[i], 3)) mon = i;
    if (mon < 0) return 0;
    p += 3;
    while (p < end && ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z'))) p++;
    p = skip_cfws(p, end);
    const char *ys = p;
    if (!(p = read_num(p, end, 4, &year))) return 0;
    if (p - ys == 2) year += year < 50 ? 2000 : 1900;   /* RFC 5322 section 4.3 */
    else if (p - ys == 3) year += 1900;
    p = skip_cfws(p, end);
    if (!(p = read_num(p, end, 2, &hh)) || p >= end || *p != ':') return 0;
    if (!(p = read_num(skip_cfws(p + 1, end), end, 2, &mm))) return 0;
    p = skip_cfws(p, end);
    if (p < end && *p == ':') {
        if (!(p = read_num(skip_cfws(p + 1, end), end, 2, &ss))) return 0;
        p = skip_cfws(p, end);
    }
    long off = 0;
    if (p < end && (*p == '+' || *p == '-')) {
        long z;
        int sign = *p == '-' ? -1 : 1;
        const char *zs = p + 1;
        if (!(p = read_num(zs, end, 4, &z)) || p - zs != 4) return 0;
        off = sign * ((z / 100) * 3600 + (z % 100) * 60);
    } else if (p < end) {
        static const struct { const char *n; int h; } zones[] = {
            { "UT", 0 }, { "GMT", 0 }, { "EST", -5 }, { "EDT", -4 }, { "CST", -6 },
            { "CDT", -5 }, { "MST", -7 }, { "MDT", -6 }, { "PST", -8 }, { "PDT", -7 } };
        for (size_t i = 0; i < sizeof zones / sizeof zones[0]; i++) {
            size_t zl = strlen(zones[i].n);
            if ((size_t)(end - p) >= zl && !strncasecmp(p, zones[i].n, zl)) {
                off = zones[i].h * 3600L;
                break;
            }
        }
        /* other zone names (military letters): section 4.3 says treat as -0000 */
    }
    if (day < 1 || day > 31 || hh > 23 || mm > 59 || ss > 60 || year < 1900) return 0;
    int64_t t = days_from_civil(year, (unsigned)mon + 1, (unsigned)day) * 86400 + hh * 3600 +
                mm * 60 + ss - off;
    return t;
}
