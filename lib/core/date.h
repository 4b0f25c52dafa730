/* date.h: the calendar pieces every date format shares: proleptic Gregorian day numbers and
 * the English month abbreviations. RFC 5322 dates are parsed in lib/mime (mime/date.h), IMAP
 * date and date-time in lib/imap (imap/imap-date.h). */
#ifndef COFFER_CORE_DATE_H
#define COFFER_CORE_DATE_H
#include <stddef.h>
#include <stdint.h>

/* date_days_from_civil: days since 1970-01-01 of the proleptic Gregorian date y-m-d (m 1..12,
 * d 1..31; not checked against the month's length). */
int64_t date_days_from_civil(int64_t y, unsigned m, unsigned d);

/* date_month_parse: the month (0..11) whose three-letter English abbreviation ("Jan") the
 * first three bytes of s spell in any case, or -1. s must hold at least n bytes; n < 3
 * gives -1. */
int date_month_parse(const char *s, size_t n);

/* date_month_name: "Jan" .. "Dec" for month 0..11 (a static string); "???" out of range. */
const char *date_month_name(int month);

/* date_local_day: the day number (as date_days_from_civil) of t, seconds since the epoch, in
 * the server's time zone; the UTC day when the local time is unknown. */
int64_t date_local_day(int64_t t);

#endif
