/* imapurl.h: what imapd does with an IMAP URL (lib/imap/imap-url.h): read the message data it
 * names with the FETCH rights rule ('r'), and make and check URLAUTH tokens (RFC 4467, the
 * INTERNAL mechanism). Shared by CATENATE (cmd-append.c) and GENURLAUTH/URLFETCH
 * (cmd-urlauth.c), which never call each other. */
#ifndef COFFER_IMAPD_IMAPURL_H
#define COFFER_IMAPD_IMAPURL_H
#include "core/buf.h"
#include "imap/imap-url.h"

struct client;

/* The only URLAUTH mechanism (RFC 4467 section 7): HMAC-SHA1 of the rump URL keyed with the
 * owner's mailbox access key, in hex. */
#define IMAPURL_MECH "INTERNAL"

/* What imapurl_fetch returns besides the data (URLAUTH=BINARY, RFC 5524). */
enum imapurl_want {
    IMAPURL_RAW = 0,            /* the bytes as stored */
    IMAPURL_BINARY = 1,         /* content-transfer-decoded (RFC 5524 BINARY) */
};

/* imapurl_fetch: the data u names into out (appended), read as owner: owner's namespace names
 * the mailbox, and owner must have the 'r' right on it (owner_admin: owner is an
 * administrator). A relative URL names a message of base (an internal name; NULL: none).
 * want: IMAPURL_BINARY decodes the part's base64 or quoted-printable content (then the
 * partial range applies to the decoded data). bodystructure (may be NULL) receives the
 * part's BODYSTRUCTURE (RFC 5524 BODYPARTSTRUCTURE). 0; CF_E_NOTFOUND for anything the URL
 * does not resolve to (no such or invisible mailbox, no 'r', UIDVALIDITY mismatch, no such
 * message or part, unknown content-transfer-encoding for BINARY); CF_E_PARSE for a bad
 * section; or a store error. Blocks on the store. */
int imapurl_fetch(struct client *c, const struct imap_url *u, const char *owner, int owner_admin,
                  const char *base, enum imapurl_want want, struct buf *out,
                  struct buf *bodystructure);

/* imapurl_token: the hex HMAC-SHA1 of rump[0,len) keyed with key (STORE_URLAUTH_KEY_LEN
 * bytes) into hex (41 bytes with the NUL). */
void imapurl_token(const unsigned char *key, const char *rump, size_t len, char *hex);

/* imapurl_owner_key: the mailbox access key of the URL's owner (u->user) for its mailbox into
 * key (STORE_URLAUTH_KEY_LEN), made when create is set. 1, 0 (no such mailbox, or no key), or
 * a store error. Blocks on the database. */
int imapurl_owner_key(struct client *c, const struct imap_url *u, int create, unsigned char *key);

/* imapurl_authorized: 1 when text[0,len) (parsed as u) is a URLAUTH URL the session may use
 * now (RFC 4467 section 3 and 6.3): absolute with a user, not expired, the session's user
 * allowed by the access identifier (submit+: a user named in urlauth_submit_servers), the
 * INTERNAL mechanism, and the token that the owner's current key gives. 0 when not (never
 * says why: URLFETCH answers NIL). Blocks on the database. */
int imapurl_authorized(struct client *c, const struct imap_url *u, const char *text, size_t len);

#endif
