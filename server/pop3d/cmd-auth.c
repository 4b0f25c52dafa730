/* cmd-auth.c: the AUTHORIZATION state: USER/PASS (RFC 1939 section 7), AUTH (RFC 5034) over
 * Cyrus SASL, APOP (refused), failed-login pacing, and entering TRANSACTION with the maildrop. */
#include "core/metrics.h"
#include "pop3d.h"
#include "auth/sasl-exchange.h"
#include "core/config.h"
#include "core/error.h"
#include "core/log.h"
#include "core/xmalloc.h"
#include "net/stream.h"
#include "store/userfence.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>


/* login_complete: the credentials were good: open the maildrop and enter TRANSACTION, or stay
 * in AUTHORIZATION with -ERR when the maildrop is busy or unavailable (RFC 1939 section 4). */
static void login_complete(struct client *c, const char *user, const char *mech)
{
    struct store *st = pop3d_store();
    /* a user fenced on this backend (userfence.h) gets no maildrop here */
    if (userfence_check(c->ws->cfg, user)) {
        log_info("login_refused", "user=%s reason=fenced", log_quote(user));
        client_reply(c, "-ERR [SYS/TEMP] Account is being moved, try again later");
        return;
    }
    int r = st ? maildrop_open(st, c->ws->cfg, user, &c->drop) : CF_E_IO;
    if (r == CF_E_LOCKED) {
        log_info("login_refused", "user=%s reason=in_use", log_quote(user));
        client_reply(c, "-ERR [IN-USE] Maildrop is locked by another POP3 session");
        return;
    }
    if (r == CF_E_AGAIN) {
        log_info("login_refused", "user=%s reason=login_delay", log_quote(user));
        client_reply(c, "-ERR [LOGIN-DELAY] Minimum time between mail checks not yet over");
        return;
    }
    if (r == CF_E_PERM) {
        log_notice("login_refused", "user=%s reason=no_read_right", log_quote(user));
        client_reply(c, "-ERR [SYS/PERM] Reading this maildrop is not permitted");
        return;
    }
    if (r) {
        log_err("login_refused", "user=%s reason=%s", log_quote(user), log_quote(cf_strerror(r)));
        client_reply(c, "-ERR [SYS/TEMP] Maildrop not available, try again later");
        return;
    }
    /* H2, L8: at most max_userip_connections sessions of one user from one address */
    if (worker_note_login(c->ws, user) < 0) {
        maildrop_close(&c->drop);
        client_reply(c, "-ERR [IN-USE] Too many connections");
        return;
    }
    if (userfence_check(c->ws->cfg, user)) {    /* fenced meanwhile: as in imapd */
        log_info("login_refused", "user=%s reason=fenced", log_quote(user));
        worker_note_logout(c->ws);
        maildrop_close(&c->drop);
        client_reply(c, "-ERR [SYS/TEMP] Account is being moved, try again later");
        return;
    }
    free(c->user);
    c->user = xstrdup(user);
    c->state = CLIENT_TRANSACTION;
    log_set_user(user);
    log_set_mailbox("INBOX");
    uint32_t n;
    uint64_t octets;
    maildrop_stat(c->drop, &n, &octets);
    log_info("login", "mech=%s tls=%d messages=%u", mech, stream_is_tls(c->stream), n);
    metrics_login(c->ws->svc->name, mech, 1);
    client_reply(c, "+OK Maildrop locked and ready: %u messages (%llu octets)", n,
                 (unsigned long long)octets);
}

/* login_failed: log, pause auth_fail_delay, reply; the connection ends after
 * POP3_MAX_AUTH_FAILURES. r is CF_E_AGAIN for a backend failure (not counted), else a bad
 * credential. */
static void login_failed(struct client *c, const char *user, const char *mech, int r)
{
    if (r == CF_E_AGAIN) {
        log_err("login_failed", "user=%s mech=%s reason=backend", log_quote(user ? user : ""),
                mech);
        client_reply(c, "-ERR [SYS/TEMP] Authentication is unavailable now, try again later");
        return;
    }
    c->auth_failures++;
    log_notice("login_failed", "user=%s mech=%s failures=%d", log_quote(user ? user : ""), mech,
               c->auth_failures);
    metrics_login(c->ws->svc->name, mech, 0);
    long long delay = config_int(c->ws->cfg, CFG_AUTH_FAIL_DELAY);
    if (delay > 0) {
        struct timespec ts = { (time_t)delay, 0 };
        while (nanosleep(&ts, &ts) < 0 && errno == EINTR && !worker_shutdown) {}
    }
    if (c->auth_failures >= POP3_MAX_AUTH_FAILURES) {
        client_reply(c, "-ERR [AUTH] Authentication failed; too many failures, goodbye");
        c->end_reason = "auth_failures";
        return;
    }
    client_reply(c, "-ERR [AUTH] Authentication failed");
}

/* plaintext_refused: RFC 8314 section 3 / RFC 2595 section 2: no passwords in the clear. */
static int plaintext_refused(struct client *c)
{
    if (worker_plaintext_ok(c->ws)) return 0;
    client_reply(c, "-ERR [AUTH] Plaintext authentication is disallowed without TLS (use STLS)");
    return 1;
}

void cmd_user(struct client *c, const struct pop3_command *cmd)
{
    if (plaintext_refused(c)) return;
    if (cmd->args.count != 1 || !*cmd->args.v[0]) {
        client_reply(c, "-ERR USER needs exactly one user name");
        return;
    }
    free(c->user_arg);
    c->user_arg = xstrdup(cmd->args.v[0]);
    client_reply(c, "+OK Send PASS");
}

void cmd_pass(struct client *c, const struct pop3_command *cmd)
{
    if (plaintext_refused(c)) return;
    if (!c->user_arg) {
        client_reply(c, "-ERR Send USER first");
        return;
    }
    char *user = c->user_arg;
    c->user_arg = NULL;             /* a failed PASS needs a new USER (RFC 1939 section 7) */
    struct csasl *s = client_sasl(c);
    int r = s ? csasl_checkpass(s, user, strlen(user), cmd->rest, strlen(cmd->rest)) : CF_E_AGAIN;
    if (r == 0) login_complete(c, csasl_user(s), "USER");
    else login_failed(c, user, "USER", r == CF_E_AGAIN ? r : CF_E_PERM);
    csasl_free(&c->sasl);           /* one exchange per SASL connection */
    free(user);
}

void cmd_auth(struct client *c, const struct pop3_command *cmd)
{
    struct csasl *s = client_sasl(c);
    if (!s) {
        client_reply(c, "-ERR [SYS/TEMP] Authentication is unavailable now, try again later");
        return;
    }
    if (cmd->args.count == 0) {
        /* not in RFC 5034, but widely used by clients to find the mechanisms (RFC 1734 era) */
        struct buf mechs = BUF_INIT;
        struct strarr names = STRARR_INIT;
        csasl_mechs(s, " ", &mechs);
        strarr_split(&names, buf_cstr(&mechs), " ", 0);
        client_reply(c, "+OK Supported mechanisms follow");
        for (size_t i = 0; i < names.count; i++) client_reply(c, "%s", names.v[i]);
        client_reply(c, ".");
        strarr_fini(&names);
        buf_fini(&mechs);
        return;
    }
    if (cmd->args.count > 2) {
        client_reply(c, "-ERR AUTH takes a mechanism and an optional initial response");
        return;
    }
    const char *mech = cmd->args.v[0];
    int r = CF_E_PERM;
    /* RFC 5034 section 4: "+ " challenges, "*" cancels, an optional initial response */
    switch (csasl_exchange(s, c->stream, "+ ", mech, cmd->args.count == 2 ? cmd->args.v[1] : NULL,
                           &r)) {
    case CSASL_FINISHED:
        break;
    case CSASL_BAD_INITIAL:
        client_reply(c, "-ERR Invalid base64 data");
        goto done;
    case CSASL_CANCELLED:
        client_reply(c, "-ERR Authentication cancelled");
        goto done;
    case CSASL_BAD_RESPONSE:
        client_reply(c, "-ERR Invalid base64 data");
        goto done;
    case CSASL_TOO_LONG:
        client_reply(c, "-ERR Line too long");
        goto done;
    case CSASL_READ_FAILED:
        c->end_reason = worker_read_end(c->stream, r, &client_texts);
        goto done;
    }
    if (r == CF_E_NOTFOUND) {
        client_reply(c, "-ERR Unsupported authentication mechanism");
        goto done;
    }
    char mechname[64];
    snprintf(mechname, sizeof mechname, "%s", mech);
    for (char *p = mechname; *p; p++) if (*p >= 'a' && *p <= 'z') *p = (char)(*p - 32);
    if (r == 0) login_complete(c, csasl_user(s), mechname);
    else login_failed(c, csasl_authid(s), mechname, r == CF_E_AGAIN ? r : CF_E_PERM);
done:
    csasl_free(&c->sasl);
}

/* APOP (RFC 1939 section 7) needs the plaintext password; the SASL glue offers no digest
 * check, so it is not offered: the greeting carries no timestamp and CAPA does not list it. */
void cmd_apop(struct client *c, const struct pop3_command *cmd)
{
    (void)cmd;
    client_reply(c, "-ERR APOP is not supported; use AUTH or USER/PASS");
}
