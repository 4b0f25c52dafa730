/* imap-date.c: RFC 3501 section 9 date and date-time, parsed and formatted. */
#include "imap/imap-date.h"
#include "core/date.h"
#include "core/error.h"
#include <string.h>
#include <time.h>

/* digits: exactly n decimal digits at s into *out; 0, or -1 when one is not a digit. */
static int digits(const char *s, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return -1;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 0;
}

int imap_date_parse(const char *s, size_t len, int64_t *day_r)
{
    size_t i = 0, ds;
    unsigned day = 0, year = 0;
    int mon;
    while (i < len && i < 2 && s[i] >= '0' && s[i] <= '9') day = day * 10 + (unsigned)(s[i++] - '0');
    if (i == 0 || i >= len || s[i] != '-' || day < 1 || day > 31) return CF_E_PARSE;
    i++;
    if (len - i < 4) return CF_E_PARSE;
    mon = date_month_parse(s + i, 3);
    if (mon < 0 || s[i + 3] != '-') return CF_E_PARSE;
    i += 4;
    ds = i;
    while (i < len && s[i] >= '0' && s[i] <= '9') year = year * 10 + (unsigned)(s[i++] - '0');
    if (i != len || i - ds != 4) return CF_E_PARSE;
    *day_r = date_days_from_civil(year, (unsigned)mon + 1, day);
    return 0;
}

int imap_datetime_parse(const char *s, int64_t *t_r)
{
    static const int mdays[] = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
    int day, year, hh, mm, ss, zh, zm, mon;
    if (*s == ' ') s++;
    size_t dl = s[0] >= '0' && s[0] <= '9' && s[1] == '-' ? 1 : 2;
    if (digits(s, (int)dl, &day) || s[dl] != '-') return CF_E_PARSE;
    s += dl + 1;
    if (!s[0] || !s[1] || !s[2] || (mon = date_month_parse(s, 3)) < 0 || s[3] != '-')
        return CF_E_PARSE;
    s += 4;
    if (digits(s, 4, &year) || s[4] != ' ' || digits(s + 5, 2, &hh) || s[7] != ':' ||
        digits(s + 8, 2, &mm) || s[10] != ':' || digits(s + 11, 2, &ss) || s[13] != ' ' ||
        (s[14] != '+' && s[14] != '-') || digits(s + 15, 2, &zh) || digits(s + 17, 2, &zm) ||
        s[19])
        return CF_E_PARSE;
    if (day < 1 || day > mdays[mon] || hh > 23 || mm > 59 || ss > 60 || zm > 59)
        return CF_E_PARSE;
    int64_t t = date_days_from_civil(year, (unsigned)mon + 1, (unsigned)day) * 86400 +
                hh * 3600 + mm * 60 + ss;
    int64_t zone = (zh * 60 + zm) * 60;
    t += s[14] == '+' ? -zone : zone;
    if (t < 0) return CF_E_PARSE;
    *t_r = t;
    return 0;
}

/* put2: v (0..99) as two digits at p. */
static char *put2(char *p, unsigned v)
{
    p[0] = (char)('0' + v / 10 % 10);
    p[1] = (char)('0' + v % 10);
    return p + 2;
}

void imap_datetime_append(int64_t t, struct buf *out)
{
    time_t tt = (time_t)t;
    struct tm tm;
    if (!localtime_r(&tt, &tm)) {
        tt = 0;
        gmtime_r(&tt, &tm);
    }
    long off = tm.tm_gmtoff / 60;
    char sign = off < 0 ? '-' : '+';
    if (off < 0) off = -off;
    int year = tm.tm_year + 1900;
    if (year < 0 || year > 9999 || off / 60 > 99) {    /* not seen in practice: printf's widths */
        buf_printf(out, "\"%2d-%s-%04d %02d:%02d:%02d %c%02ld%02ld\"", tm.tm_mday,
                   date_month_name(tm.tm_mon), year, tm.tm_hour, tm.tm_min, tm.tm_sec,
                   sign, off / 60, off % 60);
        return;
    }
    /* by hand, no printf: FETCH 1:* (INTERNALDATE ...) formats one per message */
    char s[28], *p = s;
    const char *mon = date_month_name(tm.tm_mon);
    *p++ = '"';
    *p++ = tm.tm_mday >= 10 ? (char)('0' + tm.tm_mday / 10) : ' ';
    *p++ = (char)('0' + tm.tm_mday % 10);
    *p++ = '-';
    memcpy(p, mon, 3);
    p += 3;
    *p++ = '-';
    p = put2(p, (unsigned)year / 100);
    p = put2(p, (unsigned)year % 100);
    *p++ = ' ';
    p = put2(p, (unsigned)tm.tm_hour);
    *p++ = ':';
    p = put2(p, (unsigned)tm.tm_min);
    *p++ = ':';
    p = put2(p, (unsigned)tm.tm_sec);
    *p++ = ' ';
    *p++ = sign;
    p = put2(p, (unsigned)(off / 60));
    p = put2(p, (unsigned)(off % 60));
    *p++ = '"';
    buf_append(out, s, (size_t)(p - s));
}
