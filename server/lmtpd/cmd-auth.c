/* cmd-auth.c: AUTH (RFC 4954) for LMTP: an MTA proves who it is with SASL. With
 * lmtp_require_auth set, TCP connections must authenticate as an administrator before MAIL;
 * UNIX-socket connections are trusted through the socket's file permissions. */
#include "lmtpd.h"
#include "auth/sasl.h"
#include "core/base64.h"
#include "core/config.h"
#include "core/error.h"
#include "core/log.h"
#include "core/strarr.h"
#include "core/xmalloc.h"
#include "net/stream.h"
#include <stdlib.h>
#include <string.h>

/* client_sasl: the session's SASL exchange, made on first use (and again after STARTTLS, which
 * changes what may be offered). NULL when the SASL library refused. */
static struct csasl *client_sasl(struct client *c)
{
    int ssf = stream_is_tls(c->stream) ? 128 : 0;
    if (c->sasl && c->sasl_ssf != ssf) csasl_free(&c->sasl);
    if (!c->sasl && csasl_new("lmtp", NULL, NULL, ssf, &c->sasl) == 0) c->sasl_ssf = ssf;
    return c->sasl;
}

void auth_lhlo_line(struct client *c, struct strarr *lines)
{
    if (c->auth_user) return;
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

/* AUTH mechanism [initial-response] (RFC 4954 section 4). */
void cmd_auth(struct client *c, const struct lmtp_command *cmd)
{
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
    struct buf in = BUF_INIT, out = BUF_INIT, line = BUF_INIT;
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
    const char *resp;
    size_t resplen;
    int r;
    if (args.count == 2) {
        /* "=" is an empty initial response (RFC 4954 section 4) */
        const char *ir = strcmp(args.v[1], "=") ? args.v[1] : "";
        if (base64_decode(ir, strlen(ir), &in)) {
            client_reply(c, "501 5.5.2 Cannot decode the initial response");
            goto done;
        }
        r = csasl_start(s, mech, in.s ? in.s : "", in.len, &resp, &resplen);
    } else {
        r = csasl_start(s, mech, NULL, 0, &resp, &resplen);
    }
    while (r == 1) {
        buf_reset(&out);
        base64_encode(resp, resplen, &out);
        client_reply(c, "334 %s", buf_cstr(&out));
        if (stream_flush(c->stream) < 0 || stream_read_line(c->stream, &line) < 0) {
            c->end_reason = "io";
            goto done;
        }
        if (!strcmp(buf_cstr(&line), "*")) {
            client_reply(c, "501 5.0.0 Authentication cancelled");
            goto done;
        }
        if (base64_decode(line.s ? line.s : "", line.len, &in)) {
            client_reply(c, "501 5.5.2 Cannot decode the response");
            goto done;
        }
        r = csasl_step(s, in.s ? in.s : "", in.len, &resp, &resplen);
    }
    if (r == CF_E_NOTFOUND) {
        client_reply(c, "504 5.5.4 Unrecognized or unavailable authentication mechanism");
    } else if (r == CF_E_AGAIN) {
        client_reply(c, "454 4.7.0 Temporary authentication failure");
    } else if (r == CF_E_PARSE) {
        client_reply(c, "501 5.5.2 Malformed authentication exchange");
    } else if (r < 0) {
        log_notice("auth_failed", "service=lmtp mech=%s peer=%s", log_quote(mech), c->ws->peer);
        client_reply(c, "535 5.7.8 Authentication credentials invalid");
    } else if (!is_admin(c, csasl_authid(s))) {
        /* only the MTA's account may hand over mail for everybody */
        log_notice("auth_refused", "service=lmtp authid=%s reason=not_admin",
                   log_quote(csasl_authid(s)));
        client_reply(c, "535 5.7.8 Not authorized to deliver mail");
    } else {
        c->auth_user = xstrdup(csasl_authid(s));
        worker_note_login(c->ws, NULL);     /* H2: end of the pre-login phase; no per-user
                                             * limit for the MTA's account */
        log_info("login", "service=lmtp authid=%s mech=%s", log_quote(c->auth_user),
                 log_quote(mech));
        client_reply(c, "235 2.7.0 Authentication successful");
    }
done:
    strarr_fini(&args);
    buf_fini(&in);
    buf_fini(&out);
    buf_fini(&line);
}
