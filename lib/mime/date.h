/* date.h: RFC 5322 section 3.3 date-time (the Date: header field), obsolete forms included
 * (section 4.3: two- and three-digit years, zone names, comments anywhere). */
#ifndef COFFER_MIME_DATE_H
#define COFFER_MIME_DATE_H
#include <stddef.h>
#include <stdint.h>

/* mime_parse_date: seconds since the epoch (UTC) of an RFC 5322 date-time such as
 * "Tue, 1 Jul 2003 10:52:37 +0200"; 0 when unparsable or before 1900 (so 0 means unknown).
 * Unknown zone names count as -0000. s need not be NUL-terminated. */
int64_t mime_parse_date(const char *s, size_t len);

/* mime_date_day: the calendar day of an RFC 5322 date-time as written, time and zone
 * disregarded (RFC 3501 section 6.4.4, SENTBEFORE/SENTON/SENTSINCE), as a day number (days
 * since 1970-01-01). Also takes "1-Jul-2003" and a missing time. 1 and *day_r, or 0 when
 * unparsable. */
int mime_date_day(const char *s, size_t len, int64_t *day_r);

#endif
