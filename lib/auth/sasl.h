/* sasl.h: Coffer's glue over the Cyrus SASL server library: password checks for LOGIN, USER/PASS
 * and AUTHENTICATE/AUTH exchanges, proxy authorization for administrators, and sasldb user
 * management for the tools. All options come from coffer.conf (sasl_* settings). */
#ifndef COFFER_AUTH_SASL_H
#define COFFER_AUTH_SASL_H
#include "core/buf.h"
#include "core/config.h"
#include "core/strarr.h"
#include <stddef.h>

struct csasl;

/* csasl_init: once per process, before any other call; keeps a pointer to cfg (which must
 * outlive every session). 0 or CF_E_INTERNAL (logged). */
int csasl_init(const struct config *cfg);
void csasl_done(void);

/* csasl_new: a server exchange for one session. service is the SASL service name ("imap",
 * "pop", "lmtp"); local/peer are "IP;PORT" strings or NULL; tls_ssf is the TLS cipher strength
 * (0 without TLS). Plaintext mechanisms are offered only when tls_ssf > 0 or allow_plaintext. */
int csasl_new(const char *service, const char *local, const char *peer, int tls_ssf,
              struct csasl **out);
void csasl_free(struct csasl **s);

/* csasl_mechs: the mechanisms offered now, separated by sep, into out (replacing it). */
int csasl_mechs(struct csasl *s, const char *sep, struct buf *out);

/* csasl_mech_allowed: 1 if mech (case-insensitive) is offered now. */
int csasl_mech_allowed(struct csasl *s, const char *mech);

/* csasl_start / csasl_step: run an exchange with raw (not base64) client data. Return 1 when
 * the server sends *out (valid until the next call) and waits for more, 0 when authentication
 * succeeded (*out may hold final server data), CF_E_PERM when it failed (bad credentials),
 * CF_E_PARSE for a malformed exchange, CF_E_NOTFOUND for an unknown or unoffered mechanism,
 * CF_E_AGAIN for a temporary failure (backend unreachable). in may be NULL for "no initial
 * response". */
int csasl_start(struct csasl *s, const char *mech, const char *in, size_t inlen,
                const char **out, size_t *outlen);
int csasl_step(struct csasl *s, const char *in, size_t inlen, const char **out, size_t *outlen);

/* The longest user name accepted (without realm). */
#define CSASL_MAX_NAME 255

/* csasl_checkpass: a plaintext password check (IMAP LOGIN, POP3 USER/PASS) of ulen bytes of
 * user and plen bytes of pass (either may hold a NUL, which fails). 0 ok: the session is then
 * SASL's canonical name of user (csasl_user), which must equal user without "@<sasl_realm>";
 * a name SASL would change (white space, control characters, '@' of another realm, empty or
 * longer than CSASL_MAX_NAME) fails like a wrong password: CF_E_PERM. CF_E_AGAIN: backend
 * trouble. Exchanges (csasl_start/step) apply the same name rules to their identities. */
int csasl_checkpass(struct csasl *s, const char *user, size_t ulen, const char *pass,
                    size_t plen);

/* After success: the authorized user (authzid, or the authid) and the authenticated identity,
 * both without realm. NULL before success. */
const char *csasl_user(const struct csasl *s);
const char *csasl_authid(const struct csasl *s);

/* User management in sasldb (the tools). csasl_setpass creates the user when create is set
 * (CF_E_EXISTS if it already exists) or changes the password of an existing one
 * (CF_E_NOTFOUND if it does not exist). */
int csasl_setpass(const char *user, const char *pass, int create);
int csasl_deluser(const char *user);              /* 0, CF_E_NOTFOUND, CF_E_IO */
/* csasl_user_exists: 1 when user has a password record (userPassword, which SASL's setpass
 * writes for every user) in sasl_realm, 0 when not, <0 on error. One lookup: lmtpd asks it
 * for every recipient, so it must not cost the number of users. */
int csasl_user_exists(const char *user);
int csasl_listusers(struct strarr *out);          /* sorted user names of sasl_realm */

/* csasl_acl_grantee_ok: under acl_local_users_only (a scale-out backend), whether rights may
 * be granted to ident (an RFC 4314 identifier as SETACL or `coffer acl set` got it): a
 * negative entry ("-name", which grants nothing), "anyone", "anonymous", a name in admins, or
 * a user of this server's password database. 1 yes (always when the setting is off), 0 no
 * (a user of another backend, or nobody), <0 the database could not be read (logged). Reads
 * the whole user list: for ACL changes, not for every command. */
int csasl_acl_grantee_ok(const char *ident);

#endif
