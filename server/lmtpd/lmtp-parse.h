/* lmtp-parse.h: the pure parts of LMTP command and reply parsing (no session, no store), apart
 * so that the fuzz target test/fuzz/fuzz-lmtp.c can reach them; shared by lmtpd and the
 * router's LMTP entry lmtproute (server/router/lmtproute.c). */
#ifndef COFFER_LMTPD_LMTP_PARSE_H
#define COFFER_LMTPD_LMTP_PARSE_H
#include "core/buf.h"

/* lmtp_parse_path: "<path> params" after "FROM:" or "TO:" (RFC 5321 section 4.1.2). The
 * mailbox (source route dropped) into path, *rest pointing into s after the '>' and its spaces.
 * 0 or CF_E_PARSE. */
int lmtp_parse_path(const char *s, struct buf *path, const char **rest);

/* lmtp_local_part: the local part of addr (up to its last '@'), unquoted when it is a quoted
 * string (RFC 5321 section 4.1.2), appended to local. */
void lmtp_local_part(const char *addr, struct buf *local);

/* lmtp_data_line: how one line of DATA counts, s[0..n) as the stream returned it (without its
 * line end), bare_lf 1 when it ended in a bare LF rather than CRLF. 1: it ends the message;
 * 0: data, of which the first *skip bytes (0 or 1: a dot added by dot-stuffing, RFC 5321
 * section 4.5.2) are not part. Only CRLF "." CRLF ends the data (RFC 5321 section 4.1.1.4):
 * a lone dot next to a bare LF is data, stored as it came, so that a message cannot end early
 * for us while the MTA before us read on (SMTP smuggling, review L11). *prev_bare_lf carries
 * the line end of the line before: start it at 0 (the 354 reply counts as the CRLF before a
 * first "."), set it to 1 after a line the stream refused as too long. */
int lmtp_data_line(const char *s, size_t n, int bare_lf, int *prev_bare_lf, size_t *skip);

/* lmtp_parse_mail_params: the parameters after MAIL FROM's path (RFC 5321 section 4.1.2):
 * SIZE=n (RFC 1870 section 6; over max is refused), BODY=7BIT or BODY=8BITMIME (RFC 6152),
 * AUTH=... (RFC 4954 section 5: the MTA's word on who submitted it, taken and ignored).
 * *size gets SIZE's value (0 when absent). 0, or CF_E_PARSE with the reply for the client
 * (code, enhanced status code and text, no CRLF) in reply. */
int lmtp_parse_mail_params(const char *rest, long long max, long long *size, struct buf *reply);

/* lmtp_parse_reply_line: one line of a server's reply (RFC 5321 section 4.2), line[0..len)
 * without its CRLF: "CODE-text" (more lines follow), "CODE text" or a bare "CODE" (the last
 * line). *code the code (200..599), *last 1 on the last line, *text what follows the
 * separator ("" for a bare code). 0, or CF_E_PARSE (no three digits, a code outside 2xx..5xx,
 * another separator, a control character other than a tab in the text). */
int lmtp_parse_reply_line(const char *line, size_t len, int *code, int *last, const char **text);

#endif
