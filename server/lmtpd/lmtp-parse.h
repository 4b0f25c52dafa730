/* lmtp-parse.h: the pure parts of LMTP command parsing (no session, no store), apart so that
 * the fuzz target test/fuzz/fuzz-lmtp.c can reach them. */
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

#endif
