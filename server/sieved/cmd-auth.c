/* cmd-auth.c: AUTHENTICATE (RFC 5804 section 2.1: SASL with an optional initial response,
 * challenges and responses as strings) and UNAUTHENTICATE (section 2.14). */
#include "sieved.h"
#include "auth/sasl.h"
#include "core/base64.h"
#include "core/config.h"
#include "core/error.h"
#include "core/log.h"
#include "core/xmalloc.h"
#include "net/stream.h"
#include "store/userfence.h"
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* login_failed: log, pause auth_fail_delay, answer; BYE after SIEVED_MAX_AUTH_FAILURES.
 * r is CF_E_AGAIN for a backend failure (not counted), else a bad credential. */
static void login_failed(struct client *c, const char *user, const char *mech, int r)
{
    if (r == CF_E_AGAIN) {
        log_err("login_failed", "user=%s mech=%s reason=backend", log_quote(user ? user : ""),
                log_quote(mech));
        client_status(c, "NO", "TRYLATER", "Authentication is unavailable now");
        return;
    }
    c->auth_failures++;
    log_notice("login_failed", "user=%s mech=%s failures=%d", log_quote(user ? user : ""),
               log_quote(mech), c->auth_failures);
    long long delay = config_int(c->ws->cfg, CFG_AUTH_FAIL_DELAY);
    if (delay > 0) {
        struct timespec ts = { (time_t)delay, 0 };
        while (nanosleep(&ts, &ts) < 0 && errno == EINTR && !worker_shutdown) {}
    }
    if (c->auth_failures >= SIEVED_MAX_AUTH_FAILURES) {
        client_status(c, "BYE", NULL, "Too many authentication failures");
        c->end_reason = "auth_failures";
        return;
    }
    client_status(c, "NO", NULL, "Authentication failed");
}

/* login_ok: the session is now the SASL exchange's authorized user's; the final server data
 * (if any) rides on the OK as (SASL "...") (section 2.1). */
static void login_ok(struct client *c, const char *mech, const char *out, size_t outlen)
{
    const char *user = csasl_user(c->sasl), *authid = csasl_authid(c->sasl);
    if (worker_note_login(c->ws, user) < 0) {
        client_status(c, "NO", "TRYLATER", "Too many connections");
        return;
    }
    /* being moved away (userfence.h); after the count, as in imapd */
    if (userfence_check(c->ws->cfg, user)) {
        log_info("login_refused", "user=%s reason=fenced", log_quote(user));
        worker_note_logout(c->ws);
        client_status(c, "NO", "TRYLATER", "Account is being moved, try again later");
        return;
    }
    c->user = xstrdup(user);
    log_set_user(c->user);
    if (authid && strcmp(authid, user))
        log_info("login", "authid=%s mech=%s tls=%d", log_quote(authid), log_quote(mech),
                 stream_is_tls(c->stream));
    else
        log_info("login", "mech=%s tls=%d", log_quote(mech), stream_is_tls(c->stream));
    if (!outlen) {
        client_status(c, "OK", NULL, "Authenticated");
        return;
    }
    struct buf code = BUF_INIT;
    buf_appends(&code, "SASL \"");
    base64_encode(out, outlen, &code);
    buf_appends(&code, "\"");
    client_status(c, "OK", buf_cstr(&code), "Authenticated");
    buf_fini(&code);
}

/* is_plaintext: a mechanism that sends the password itself (offered only under TLS or with
 * allow_plaintext: sasl.h). */
static int is_plaintext(const char *mech)
{
    return !strcasecmp(mech, "PLAIN") || !strcasecmp(mech, "LOGIN");
}

void cmd_authenticate(struct client *c, const struct msieve_command *cmd)
{
    const char *mech = cmd->args[0].s;
    struct csasl *s = client_sasl(c);
    struct buf in = BUF_INIT, chal = BUF_INIT;
    struct msieve_parser p;
    msieve_parser_init(&p, 1);
    if (!s) {
        client_status(c, "NO", "TRYLATER", "Authentication is unavailable now");
        goto done;
    }
    if (strlen(mech) != cmd->args[0].len || !csasl_mech_allowed(s, mech)) {
        /* RFC 5804 section 1.3: ENCRYPT-NEEDED: this mechanism needs TLS first */
        if (is_plaintext(mech) && !worker_plaintext_ok(c->ws))
            client_status(c, "NO", "ENCRYPT-NEEDED",
                          "Plaintext authentication is disallowed without TLS (use STARTTLS)");
        else
            client_status(c, "NO", NULL, "Unsupported authentication mechanism");
        goto done;
    }
    if (cmd->nargs == 2 && base64_decode(cmd->args[1].s, cmd->args[1].len, &in) < 0) {
        client_status(c, "NO", NULL, "Invalid base64 in the initial response");
        goto done;
    }
    const char *out;
    size_t outlen;
    int r = csasl_start(s, mech, cmd->nargs == 2 ? (in.s ? in.s : "") : NULL, in.len, &out,
                        &outlen);
    while (r == 1) {
        buf_reset(&chal);
        base64_encode(out, outlen, &chal);
        client_string(c, chal.s ? chal.s : "", chal.len);
        stream_write(c->stream, "\r\n", 2);
        msieve_parser_reset(&p);
        int got = client_read(c, &p, NULL);
        if (got < 0) goto done;                            /* the session ends */
        if (got == 0) {
            client_status(c, "NO", NULL, "Authentication aborted");
            goto done;
        }
        const struct msieve_arg *a = &p.cmd.args[0];
        if (a->len == 1 && a->s[0] == '*') {
            client_status(c, "NO", NULL, "Authentication cancelled");
            goto done;
        }
        if (base64_decode(a->s, a->len, &in) < 0) {
            client_status(c, "NO", NULL, "Invalid base64 in the response");
            goto done;
        }
        r = csasl_step(s, in.s ? in.s : "", in.len, &out, &outlen);
    }
    char name[64];
    snprintf(name, sizeof name, "%s", mech);
    for (char *q = name; *q; q++) if (*q >= 'a' && *q <= 'z') *q = (char)(*q - 32);
    if (r == 0) login_ok(c, name, out, outlen);
    else login_failed(c, csasl_authid(s), name, r == CF_E_AGAIN ? r : CF_E_PERM);
done:
    csasl_free(&c->sasl);            /* one exchange per SASL connection */
    msieve_parser_reset(&p);
    buf_fini(&in);
    buf_fini(&chal);
}

/* Back to the non-authenticated state (section 2.14): the user and the SASL exchange go, the
 * connection slot counts for no user and the login deadline runs again; TLS stays, and so
 * does the count of failed logins. */
void cmd_unauthenticate(struct client *c, const struct msieve_command *cmd)
{
    (void)cmd;
    log_info("unauthenticate", "tls=%d", stream_is_tls(c->stream));
    free(c->user);
    c->user = NULL;
    csasl_free(&c->sasl);
    log_set_user(NULL);
    worker_note_logout(c->ws);
    client_status(c, "OK", NULL, "Now not authenticated");
}
