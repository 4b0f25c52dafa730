/* cmd-auth.c: AUTH (RFC 4954) for LMTP: an MTA proves who it is with SASL. With
 * lmtp_require_auth set, TCP connections must authenticate as an administrator before MAIL.
 * UNIX-socket connections are trusted through the socket's file permissions (socket_mode,
 * socket_group), so AUTH is neither offered nor accepted there (H4). Failures are paced and
 * counted like IMAP's and POP3's logins, and a good password of a user who may not deliver gets
 * the same answer as a wrong one, so AUTH is no faster password oracle than LOGIN (M1). */
#include "core/metrics.h"
#include "lmtpd.h"
#include "auth/sasl-exchange.h"
#include "core/config.h"
#include "core/error.h"
#include "core/log.h"
#include "core/strarr.h"
#include "core/xmalloc.h"
#include "net/stream.h"
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Failed attempts allowed on one connection, as in imapd and pop3d: the third ends it, so the
 * pauses below hold a worker for at most LMTP_MAX_AUTH_FAILURES * auth_fail_delay. */
#define LMTP_MAX_AUTH_FAILURES 3

/* client_sasl: the session's SASL exchange, made on first use (and again after STARTTLS, which
 * changes what may be offered). NULL when the SASL library refused. */
static struct csasl *client_sasl(struct client *c)
{
    int ssf = stream_tls_ssf(c->stream);
    if (c->sasl && c->sasl_ssf != ssf) csasl_free(&c->sasl);
    if (!c->sasl && csasl_session_new("lmtp", c->ws, &c->sasl) == 0) c->sasl_ssf = ssf;
    return c->sasl;
}

void auth_lhlo_line(struct client *c, struct strarr *lines)
{
    if (c->auth_user || c->ws->is_unix) return;
    struct csasl *s = client_sasl(c);
    struct buf mechs = BUF_INIT;
    if (s && csasl_mechs(s, " ", &mechs) == 0 && mechs.len)
        strarr_take(lines, xasprintf("AUTH %s", buf_cstr(&mechs)));   /* RFC 4954 section 3 */
    buf_fini(&mechs);
}

int auth_required(const struct client *c)
{
    return config_int(c->ws->cfg, CFG_LMTP_REQUIRE_AUTH) && !c->ws->is_unix && !c->auth_user;
}

static int is_admin(const struct client *c, const char *user)
{
    return strarr_find(config_list(c->ws->cfg, CFG_ADMINS), user) >= 0;
}

/* fail_delay: sleep auth_fail_delay; a signal (shutdown) cuts it short. */
static void fail_delay(struct client *c)
{
    long long secs = config_int(c->ws->cfg, CFG_AUTH_FAIL_DELAY);
    if (secs <= 0) return;
    struct timespec ts = { (time_t)secs, 0 };
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR && !worker_shutdown) {}
}

/* auth_failed: count, log, pause, answer. A wrong password and a right one of a user who is
 * not an administrator get the same words after the same pause (M1); the log tells them
 * apart. The last allowed failure ends the session (421, RFC 5321 section 3.8). */
static void auth_failed(struct client *c, const char *mech, const char *authid,
                        const char *reason)
{
    c->auth_failures++;
    log_notice("auth_failed", "service=lmtp mech=%s authid=%s reason=%s attempt=%d",
               log_quote(mech), log_quote(authid ? authid : ""), reason, c->auth_failures);
    metrics_login(c->ws->svc->name, mech, 0);
    fail_delay(c);
    if (c->auth_failures >= LMTP_MAX_AUTH_FAILURES) {
        client_reply(c, "421 4.7.0 Too many failed authentication attempts, closing connection");
        c->end_reason = "auth_failures";
        return;
    }
    client_reply(c, "535 5.7.8 Authentication credentials invalid");
}

/* AUTH mechanism [initial-response] (RFC 4954 section 4). */
void cmd_auth(struct client *c, const struct lmtp_command *cmd)
{
    if (c->ws->is_unix) {
        /* H4: the socket's file permissions already decided; a password would add nothing
         * but a place to guess passwords at */
        client_reply(c, "502 5.5.1 AUTH is not offered on this socket");
        return;
    }
    if (!c->greeted) {
        client_reply(c, "503 5.5.1 Send LHLO first");
        return;
    }
    if (c->auth_user) {
        client_reply(c, "503 5.5.1 Already authenticated");
        return;
    }
    if (c->mail_from) {
        client_reply(c, "503 5.5.1 AUTH is not permitted during a mail transaction");
        return;
    }
    struct strarr args = STRARR_INIT;
    strarr_split(&args, cmd->args, " ", 0);
    struct csasl *s = client_sasl(c);
    if (args.count < 1 || args.count > 2) {
        client_reply(c, "501 5.5.4 Syntax: AUTH mechanism [initial-response]");
        goto done;
    }
    if (!s) {
        client_reply(c, "454 4.7.0 Temporary authentication failure");
        goto done;
    }
    const char *mech = args.v[0];
    int r = CF_E_PERM;
    /* RFC 4954 section 4: "334 " challenges, "*" cancels, "=" is an empty initial response */
    switch (csasl_exchange(s, c->stream, "334 ", mech, args.count == 2 ? args.v[1] : NULL, &r)) {
    case CSASL_FINISHED:
        break;
    case CSASL_BAD_INITIAL:
        client_reply(c, "501 5.5.2 Cannot decode the initial response");
        goto done;
    case CSASL_CANCELLED:
        client_reply(c, "501 5.0.0 Authentication cancelled");
        goto done;
    case CSASL_BAD_RESPONSE:
        client_reply(c, "501 5.5.2 Cannot decode the response");
        goto done;
    case CSASL_TOO_LONG:
        client_reply(c, "500 5.5.2 Line too long");   /* RFC 5321 section 4.5.3.1.4 */
        goto done;
    case CSASL_READ_FAILED:
        c->end_reason = worker_read_end(c->stream, r, &client_texts);
        goto done;
    }
    if (r == CF_E_NOTFOUND) {
        client_reply(c, "504 5.5.4 Unrecognized or unavailable authentication mechanism");
    } else if (r == CF_E_AGAIN) {
        client_reply(c, "454 4.7.0 Temporary authentication failure");
    } else if (r == CF_E_PARSE) {
        client_reply(c, "501 5.5.2 Malformed authentication exchange");
    } else if (r < 0) {
        auth_failed(c, mech, csasl_authid(s), "credentials");
    } else if (!is_admin(c, csasl_authid(s))) {
        /* only the MTA's account may hand over mail for everybody */
        auth_failed(c, mech, csasl_authid(s), "not_admin");
    } else {
        c->auth_user = xstrdup(csasl_authid(s));
        worker_note_login(c->ws, NULL);     /* H2: end of the pre-login phase; no per-user
                                             * limit for the MTA's account */
        log_info("login", "service=lmtp authid=%s mech=%s", log_quote(c->auth_user),
                 log_quote(mech));
        metrics_login(c->ws->svc->name, mech, 1);
        client_reply(c, "235 2.7.0 Authentication successful");
    }
done:
    /* the next attempt starts on a fresh exchange (a failed one cannot be reused) */
    if (!c->auth_user) csasl_free(&c->sasl);
    strarr_fini(&args);
}
