/* cmd-auth.c: LOGIN and AUTHENTICATE (RFC 3501 sections 6.2.2 and 6.2.3, RFC 4959 SASL-IR),
 * through Cyrus SASL (lib/auth/sasl.h), what happens at a successful login, and
 * UNAUTHENTICATE (RFC 8437), which undoes it. */
#include "core/metrics.h"
#include "imapd.h"
#include "notify.h"
#include "selected.h"
#include "core/config.h"
#include "core/error.h"
#include "core/log.h"
#include "core/xmalloc.h"
#include "auth/sasl-exchange.h"
#include "net/stream.h"
#include "store/mboxname.h"
#include "store/store.h"
#include "store/userfence.h"
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Failed attempts allowed on one connection; the last one is answered with BYE. */
#define AUTH_MAX_FAILURES 3


/* ---- the SASL connection of the session ---- */

/* auth_sasl: the session's SASL server exchange, made on first use and made again after
 * STARTTLS (the mechanisms offered depend on TLS). NULL when SASL failed (logged). */
static struct csasl *auth_sasl(struct client *c)
{
    int ssf = stream_tls_ssf(c->stream);
    if (c->sasl && c->sasl_ssf == ssf) return c->sasl;
    csasl_free(&c->sasl);
    if (csasl_session_new("imap", c->ws, &c->sasl)) return NULL;
    c->sasl_ssf = ssf;
    return c->sasl;
}

void auth_capabilities(const struct client *c, struct buf *out)
{
    if (c->state != CLIENT_NOT_AUTH) return;
    /* The SASL exchange is a cache of this connection's state, made on first use: building
     * it here is no change a caller of a const client could notice. */
    struct csasl *s = auth_sasl((struct client *)c);
    if (s) {
        struct buf mechs = BUF_INIT;
        struct strarr list = STRARR_INIT;
        csasl_mechs(s, " ", &mechs);
        strarr_split(&list, buf_cstr(&mechs), " ", 1);
        for (size_t i = 0; i < list.count; i++) {
            buf_appends(out, " AUTH=");
            buf_appends(out, list.v[i]);
        }
        strarr_fini(&list);
        buf_fini(&mechs);
    }
    buf_appends(out, " SASL-IR");
}

void auth_session_end(struct client *c)
{
    csasl_free(&c->sasl);
    free(c->user);
    free(c->authid);
    c->user = c->authid = NULL;
}

/* ---- success and failure ---- */

static int is_admin(const struct client *c, const char *user)
{
    const struct strarr *admins = config_list(c->ws->cfg, CFG_ADMINS);
    return strarr_find(admins, user) >= 0;
}

/* special_use_flag: the RFC 6154 attribute a folder name in autocreate_special_use stands
 * for ("Sent" -> "\Sent"), or NULL. */
static const char *special_use_flag(const char *name)
{
    static const char *const flags[] = { "\\All", "\\Archive", "\\Drafts", "\\Flagged",
                                         "\\Junk", "\\Sent", "\\Trash" };
    for (size_t i = 0; i < sizeof flags / sizeof flags[0]; i++)
        if (!strcasecmp(flags[i] + 1, name)) return flags[i];
    return NULL;
}

/* autocreate: the folders of autocreate_special_use, at the user's first login. Failures are
 * logged and do not stop the login. */
static void autocreate(struct client *c)
{
    const struct strarr *list = config_list(c->ws->cfg, CFG_AUTOCREATE_SPECIAL_USE);
    struct buf name = BUF_INIT;
    for (size_t i = 0; i < list->count; i++) {
        const char *flag = special_use_flag(list->v[i]);
        if (!flag) {
            log_warn("autocreate_skipped", "folder=%s reason=not_special_use",
                     log_quote(list->v[i]));
            continue;
        }
        buf_reset(&name);
        buf_printf(&name, "%s%s%c%s", MBOXNAME_USER_PREFIX, c->user, MBOXNAME_SEP, list->v[i]);
        int r = store_create(c->store, buf_cstr(&name), NULL, NULL, flag, 0);
        if (r && r != CF_E_EXISTS)
            log_err("autocreate_failed", "mailbox=%s error=%s", log_quote(buf_cstr(&name)),
                    log_quote(cf_strerror(r)));
    }
    buf_fini(&name);
}

/* login_ok: the session is now authenticated as the SASL connection's user. */
static void login_ok(struct client *c, const char *tag, const char *mech)
{
    const char *user = csasl_user(c->sasl), *authid = csasl_authid(c->sasl);
    /* H2, L8: at most max_userip_connections sessions of one user from one address (RFC 5530
     * section 3 LIMIT); the session stays unauthenticated, on a fresh SASL exchange */
    if (worker_note_login(c->ws, user) < 0) {
        csasl_free(&c->sasl);
        client_tagged(c, tag, "NO [LIMIT] Too many connections");
        return;
    }
    /* a user fenced on this backend (being moved to another, or moved away: userfence.h)
     * gets in nowhere, before the INBOX below could be made again. Checked after the table
     * counts the session: a FENCE either sees this session there and ends it, or came
     * before this check */
    if (userfence_check(c->ws->cfg, user)) {
        log_info("login_refused", "user=%s reason=fenced", log_quote(user));
        worker_note_logout(c->ws);
        csasl_free(&c->sasl);
        client_tagged(c, tag, "NO [UNAVAILABLE] Account is being moved, try again later");
        return;
    }
    free(c->user);
    free(c->authid);
    c->user = xstrdup(user);
    c->authid = xstrdup(authid ? authid : user);
    c->is_admin = is_admin(c, c->user);
    c->state = CLIENT_AUTH;
    log_set_user(c->user);
    if (strcmp(c->user, c->authid))
        log_info("login", "authid=%s mech=%s tls=%d", log_quote(c->authid), log_quote(mech),
                 stream_is_tls(c->stream));
    else
        log_info("login", "mech=%s tls=%d", log_quote(mech), stream_is_tls(c->stream));
    metrics_login(c->ws->svc->name, mech, 1);
    if (c->store && mboxname_valid_user(c->user) == 0) {
        int r = store_ensure_inbox(c->store, c->user);
        if (r == 1) autocreate(c);
        else if (r < 0)
            log_err("inbox_create_failed", "error=%s", log_quote(cf_strerror(r)));
    }
    /* RFC 3501 section 6.2.3 / RFC 4959: the new capability list rides on the OK */
    struct buf caps = BUF_INIT;
    client_capabilities(c, &caps);
    client_tagged(c, tag, "OK [CAPABILITY %s] Logged in", buf_cstr(&caps));
    buf_fini(&caps);
}

/* fail_delay: sleep auth_fail_delay; a signal (shutdown) cuts it short. */
static void fail_delay(struct client *c)
{
    long long secs = config_int(c->ws->cfg, CFG_AUTH_FAIL_DELAY);
    if (secs <= 0) return;
    struct timespec ts = { (time_t)secs, 0 };
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR && !worker_shutdown) {}
}

/* login_failed: count, log, delay, answer; after AUTH_MAX_FAILURES say BYE and end. */
static void login_failed(struct client *c, const char *tag, const char *user, const char *mech,
                         int r)
{
    if (r == CF_E_AGAIN) {
        /* the password backend is down: not the client's fault, not counted */
        log_err("login_unavailable", "user=%s mech=%s", log_quote(user ? user : ""),
                log_quote(mech));
        client_tagged(c, tag, "NO [UNAVAILABLE] Authentication is temporarily unavailable");
        return;
    }
    c->auth_failures++;
    csasl_free(&c->sasl);       /* the next attempt starts on a fresh exchange */
    log_notice("login_failed", "user=%s mech=%s attempt=%d", log_quote(user ? user : ""),
               log_quote(mech), c->auth_failures);
    metrics_login(c->ws->svc->name, mech, 0);
    fail_delay(c);
    client_tagged(c, tag, "NO [AUTHENTICATIONFAILED] Authentication failed");
    if (c->auth_failures >= AUTH_MAX_FAILURES) {
        client_untagged(c, "BYE Too many failed authentication attempts");
        c->state = CLIENT_LOGOUT;
        c->end_reason = "auth_failures";
    }
}

/* ---- LOGIN ---- */

/* RFC 3501 section 6.2.3. Refused before TLS unless allow_plaintext (LOGINDISABLED is then
 * advertised; RFC 5530 section 3 PRIVACYREQUIRED). */
void cmd_login(struct client *c, const struct imap_command *cmd)
{
    const char *user = cmd->nargs == 2 ? imap_arg_astring(&cmd->args[0]) : NULL;
    const char *pass = cmd->nargs == 2 ? imap_arg_astring(&cmd->args[1]) : NULL;
    if (!user || !pass) {
        client_tagged(c, cmd->tag, "BAD LOGIN needs a user name and a password");
        return;
    }
    if (!worker_plaintext_ok(c->ws)) {
        client_tagged(c, cmd->tag, "NO [PRIVACYREQUIRED] LOGIN is disabled before STARTTLS");
        return;
    }
    struct csasl *s = auth_sasl(c);
    if (!s) {
        client_tagged(c, cmd->tag, "NO [UNAVAILABLE] Authentication is unavailable");
        return;
    }
    /* a NUL inside a literal fails in csasl_checkpass, and the session is SASL's canonical
     * name, never the argument (M2) */
    int r = csasl_checkpass(s, user, cmd->args[0].len, pass, cmd->args[1].len);
    if (r) {
        login_failed(c, cmd->tag, user, "LOGIN", r);
        return;
    }
    login_ok(c, cmd->tag, "LOGIN");
}

/* ---- AUTHENTICATE ---- */

/* RFC 3501 section 6.2.2, with RFC 4959's optional initial response ("=" for an empty one). */
void cmd_authenticate(struct client *c, const struct imap_command *cmd)
{
    const char *mech = cmd->nargs >= 1 ? imap_arg_atom(&cmd->args[0]) : NULL;
    const char *ir = cmd->nargs == 2 ? imap_arg_atom(&cmd->args[1]) : NULL;
    if (!mech || cmd->nargs > 2 || (cmd->nargs == 2 && !ir)) {
        client_tagged(c, cmd->tag, "BAD AUTHENTICATE needs a mechanism and at most an initial response");
        return;
    }
    struct csasl *s = auth_sasl(c);
    if (!s) {
        client_tagged(c, cmd->tag, "NO [UNAVAILABLE] Authentication is unavailable");
        return;
    }
    if (!csasl_mech_allowed(s, mech)) {
        if (!worker_plaintext_ok(c->ws) && (!strcasecmp(mech, "PLAIN") || !strcasecmp(mech, "LOGIN")))
            client_tagged(c, cmd->tag, "NO [PRIVACYREQUIRED] %s is disabled before STARTTLS",
                          !strcasecmp(mech, "PLAIN") ? "PLAIN" : "LOGIN");
        else
            client_tagged(c, cmd->tag, "NO [CANNOT] Unsupported authentication mechanism");
        return;
    }
    char *mech_up = xstrdup(mech);
    for (char *p = mech_up; *p; p++)
        if (*p >= 'a' && *p <= 'z') *p = (char)(*p - 'a' + 'A');
    int r = CF_E_PERM;
    switch (csasl_exchange(s, c->stream, "+ ", mech_up, ir, &r)) {
    case CSASL_FINISHED:
        break;
    case CSASL_BAD_INITIAL:
        client_tagged(c, cmd->tag, "BAD Invalid base64 in the initial response");
        goto done;
    case CSASL_CANCELLED:
        client_tagged(c, cmd->tag, "BAD Authentication cancelled");
        goto done;
    case CSASL_BAD_RESPONSE:
    case CSASL_TOO_LONG:
        client_tagged(c, cmd->tag, "BAD Invalid base64 in the response");
        goto done;
    case CSASL_READ_FAILED:
        c->end_reason = worker_read_end(c->stream, r, &client_texts);
        c->state = CLIENT_LOGOUT;
        goto done;
    }
    if (r == 0) {
        login_ok(c, cmd->tag, mech_up);
    } else if (r == CF_E_NOTFOUND) {
        client_tagged(c, cmd->tag, "NO [CANNOT] Unsupported authentication mechanism");
    } else {
        login_failed(c, cmd->tag, NULL, mech_up, r == CF_E_AGAIN ? r : CF_E_PERM);
    }
done:
    free(mech_up);
}

/* ---- UNAUTHENTICATE ---- */

/* RFC 8437 section 3: back to not authenticated state, every per-user part of the session
 * reset and the TLS layer kept. An imapd worker is bound to no user: it runs as the service
 * account and keeps only the process-wide store handle (imapd_store), which holds no user
 * state, so resetting the session (struct client) is the whole reset:
 *  - the selected mailbox is closed without expunge responses (its SEARCHRES result and
 *    CONTEXT=SEARCH contexts go with it: RFC 8437 section 4.1);
 *  - NOTIFY SET is cancelled (section 4.1), ENABLEd extensions (CONDSTORE, QRESYNC) are off;
 *  - the user, the authentication identity, the admin flag and the SASL exchange are dropped
 *    (rights are computed from the ACL text and the user at each check: no cached group
 *    memberships to reset);
 *  - the parser gets the pre-login limits again (client_update_limits), the connection's slot
 *    counts for no user and the login_timeout deadline runs again (worker_note_logout).
 * Kept: TLS (section 3), the ID the client sent (only logged; section 3 leaves it to the
 * implementation), and the count of failed logins, so that UNAUTHENTICATE cannot reset the
 * brute-force limit of one connection. No SASL security layer is ever negotiated (sasl.c:
 * max_ssf 0), so there is none to end. An active COMPRESS layer cannot be ended here
 * (section 4.1 wants it ended after the OK), and NO is not permitted (section 3): the session
 * says BYE instead, which section 3 allows. */
void cmd_unauthenticate(struct client *c, const struct imap_command *cmd)
{
    if (cmd->nargs) {
        client_tagged(c, cmd->tag, "BAD UNAUTHENTICATE takes no arguments");
        return;
    }
    if (stream_is_compressed(c->stream)) {
        log_info("unauthenticate", "result=bye reason=compress");
        client_untagged(c, "BYE [UNAVAILABLE] UNAUTHENTICATE cannot end COMPRESS; "
                           "please reconnect");
        selected_deselect(c);
        c->state = CLIENT_LOGOUT;
        c->end_reason = "unauthenticate_compress";
        return;
    }
    selected_deselect(c);
    notify_free(&c->notify);
    c->enabled = 0;
    log_info("unauthenticate", "tls=%d", stream_is_tls(c->stream));
    auth_session_end(c);
    c->is_admin = 0;
    c->sasl_ssf = 0;
    c->state = CLIENT_NOT_AUTH;
    log_set_user(NULL);
    worker_note_logout(c->ws);
    client_tagged(c, cmd->tag, "OK Completed, now in not authenticated state");
}
