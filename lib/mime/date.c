/* date.c: RFC 5322 section 3.3 date-time parsing (the Date: header field), obsolete forms
 * included, for the sent date kept in each index record and for SEARCH SENT*. */
#include "mime/date.h"
#include "core/date.h"
#include "mime/mime-int.h"

static int is_alpha(char c) { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z'); }

/* read_num: up to maxd decimal digits at p into *v; the end of the digits, or NULL when none. */
static const char *read_num(const char *p, const char *end, int maxd, long *v)
{
    int n = 0;
    *v = 0;
    while (p < end && n < maxd && *p >= '0' && *p <= '9') { *v = *v * 10 + (*p++ - '0'); n++; }
    return n ? p : NULL;
}

/* parse_day: "[day-of-week ,] day month year" with CFWS between the parts (a '-' between
 * them is tolerated, and a full month name); the byte after the year, or NULL. The year comes
 * back with the section 4.3 rules for two and three digits applied. */
static const char *parse_day(const char *p, const char *end, long *day, int *mon, long *year)
{
    p = mime_skip_cfws(p, end);
    if (p < end && is_alpha(*p)) {                  /* day-of-week */
        while (p < end && (is_alpha(*p) || *p == '.')) p++;
        p = mime_skip_cfws(p, end);
        if (p < end && *p == ',') p++;
        p = mime_skip_cfws(p, end);
    }
    if (!(p = read_num(p, end, 2, day)) || *day < 1 || *day > 31) return NULL;
    p = mime_skip_cfws(p, end);
    if (p < end && *p == '-') p++;
    if ((*mon = date_month_parse(p, (size_t)(end - p))) < 0) return NULL;
    p += 3;
    while (p < end && is_alpha(*p)) p++;
    p = mime_skip_cfws(p, end);
    if (p < end && *p == '-') p++;
    const char *ys = p;
    if (!(p = read_num(p, end, 4, year)) || p - ys < 2) return NULL;
    if (p - ys == 2) *year += *year < 50 ? 2000 : 1900;   /* RFC 5322 section 4.3 */
    else if (p - ys == 3) *year += 1900;
    return p;
}

int mime_date_day(const char *s, size_t len, int64_t *day_r)
{
    long day, year;
    int mon;
    if (!parse_day(s, s + len, &day, &mon, &year)) return 0;
    *day_r = date_days_from_civil(year, (unsigned)mon + 1, (unsigned)day);
    return 1;
}

/* zone_offset: seconds east of UTC of the zone at p: "+hhmm"/"-hhmm", or an obsolete name;
 * 0 for unknown names (military letters: section 4.3 says treat as -0000). -1 on a malformed
 * numeric zone. */
static int zone_offset(const char *p, const char *end, long *off)
{
    *off = 0;
    if (p < end && (*p == '+' || *p == '-')) {
        long z;
        int sign = *p == '-' ? -1 : 1;
        const char *zs = p + 1;
        if (!(p = read_num(zs, end, 4, &z)) || p - zs != 4) return -1;
        *off = sign * ((z / 100) * 3600 + (z % 100) * 60);
        return 0;
    }
    static const struct { const char *n; size_t len; int h; } zones[] = {
        { "UT", 2, 0 }, { "GMT", 3, 0 }, { "EST", 3, -5 }, { "EDT", 3, -4 }, { "CST", 3, -6 },
        { "CDT", 3, -5 }, { "MST", 3, -7 }, { "MDT", 3, -6 }, { "PST", 3, -8 }, { "PDT", 3, -7 } };
    for (size_t i = 0; i < sizeof zones / sizeof zones[0]; i++) {
        if ((size_t)(end - p) >= zones[i].len && mime_ieq(p, zones[i].len, zones[i].n)) {
            *off = zones[i].h * 3600L;
            break;
        }
    }
    return 0;
}

int64_t mime_parse_date(const char *s, size_t len)
{
    const char *p, *end = s + len;
    long day, year, hh, mm, ss = 0, off;
    int mon;
    if (!(p = parse_day(s, end, &day, &mon, &year))) return 0;
    p = mime_skip_cfws(p, end);
    if (!(p = read_num(p, end, 2, &hh)) || p >= end || *p != ':') return 0;
    if (!(p = read_num(mime_skip_cfws(p + 1, end), end, 2, &mm))) return 0;
    p = mime_skip_cfws(p, end);
    if (p < end && *p == ':') {
        if (!(p = read_num(mime_skip_cfws(p + 1, end), end, 2, &ss))) return 0;
        p = mime_skip_cfws(p, end);
    }
    if (zone_offset(p, end, &off) < 0) return 0;
    if (hh > 23 || mm > 59 || ss > 60 || year < 1900) return 0;
    return date_days_from_civil(year, (unsigned)mon + 1, (unsigned)day) * 86400 + hh * 3600 +
           mm * 60 + ss - off;
}
