/* imap-date.h: RFC 3501 section 9 date ("1-Feb-1994", SEARCH SINCE/BEFORE/ON/SENT*) and
 * date-time ("17-Jul-1996 02:44:25 -0700", APPEND and FETCH INTERNALDATE). */
#ifndef COFFER_IMAP_DATE_H
#define COFFER_IMAP_DATE_H
#include "core/buf.h"
#include <stddef.h>
#include <stdint.h>

/* imap_date_parse: date-text ("1-Feb-1994": day of 1 or 2 digits, month in any case, 4-digit
 * year, nothing after) of len bytes to a day number (days since 1970-01-01). 0 and *day_r, or
 * CF_E_PARSE. */
int imap_date_parse(const char *s, size_t len, int64_t *day_r);

/* imap_datetime_parse: date-time without its quotes, NUL-terminated: "dd-Mon-yyyy hh:mm:ss
 * +zzzz", the day as two digits or a space and one digit (a bare single digit is accepted too,
 * as many clients send it). 0 and *t_r (seconds since the epoch), or CF_E_PARSE (also for
 * dates before the epoch). */
int imap_datetime_parse(const char *s, int64_t *t_r);

/* imap_datetime_append: append t (seconds since the epoch) to out as a quoted date-time in the
 * server's time zone, "\"17-Jul-1996 02:44:25 -0700\"" (the day padded with a space). */
void imap_datetime_append(int64_t t, struct buf *out);

#endif
