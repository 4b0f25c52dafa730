/* cmd-mail.c: MAIL FROM and RCPT TO (RFC 5321 sections 4.1.1.2 and 4.1.1.3, RFC 2033), and
 * how a recipient address becomes a mailbox: user, user+folder, +shared. */
#include "lmtpd.h"
#include "lmtp-parse.h"
#include "auth/sasl.h"
#include "core/config.h"
#include "core/error.h"
#include "core/log.h"
#include "core/xmalloc.h"
#include "store/acl.h"
#include "store/deliver.h"
#include "store/mboxname.h"
#include "store/store.h"
#include "store/userfence.h"
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

int acl_grants_anyone(const char *acl, char right)
{
    /* an LMTP sender is nobody logged in: "anyone" and "anonymous" entries apply */
    return (acl_text_rights(acl, NULL) & acl_right_bit(right)) != 0;
}

void cmd_mail(struct client *c, const struct lmtp_command *cmd)
{
    if (!c->greeted) {
        client_reply(c, "503 5.5.1 Send LHLO first");
        return;
    }
    if (c->mail_from) {
        client_reply(c, "503 5.5.1 Nested MAIL command");
        return;
    }
    if (auth_required(c)) {
        client_reply(c, "530 5.7.0 Authentication required");      /* RFC 4954 section 6 */
        return;
    }
    if (strncasecmp(cmd->args, "FROM:", 5)) {
        client_reply(c, "501 5.5.4 Syntax: MAIL FROM:<address>");
        return;
    }
    struct buf path = BUF_INIT;
    const char *rest;
    if (lmtp_parse_path(cmd->args + 5, &path, &rest) < 0) {
        client_reply(c, "501 5.1.7 Bad sender address syntax");
        goto done;
    }
    long long size = 0;
    struct buf reply = BUF_INIT;
    if (lmtp_parse_mail_params(rest, config_int(c->ws->cfg, CFG_MAX_LITERAL), &size, &reply)) {
        client_reply(c, "%s", buf_cstr(&reply));
        buf_fini(&reply);
        goto done;
    }
    c->mail_from = xstrdup(buf_cstr(&path));
    c->declared_size = size;
    client_reply(c, "250 2.1.0 Sender OK");
done:
    buf_fini(&path);
}

/* user_known: whether user can receive mail: 1 with an INBOX, 2 known to SASL without one
 * (and lmtp_autocreate_inbox set), 0 unknown, <0 error. */
static int user_known(struct client *c, struct store *st, const char *user)
{
    if (mboxname_valid_user(user) < 0) return 0;
    /* fenced (being moved to another backend, or moved away: userfence.h): deferred, so
     * the MTA asks the router again later; never delivered or autocreated here */
    int f = userfence_check(c->ws->cfg, user);
    if (f) return f < 0 ? f : CF_E_LOCKED;
    struct buf inbox = BUF_INIT;
    mboxname_user_inbox(user, &inbox);
    int r = store_lookup(st, buf_cstr(&inbox), NULL);
    buf_fini(&inbox);
    if (r != 0) return r;
    if (!config_int(c->ws->cfg, CFG_LMTP_AUTOCREATE_INBOX)) return 0;
    r = csasl_user_exists(user);
    return r == 1 ? 2 : r;
}

/* postable: 1 when name exists and grants "p" to anyone, 0 when not, <0 error. */
static int postable(struct store *st, const char *name)
{
    if (mboxname_valid(name) < 0) return 0;
    struct mboxlist_entry e;
    mboxlist_entry_init(&e);
    int r = store_lookup(st, name, &e);
    if (r == 1) r = acl_grants_anyone(e.acl, 'p');
    mboxlist_entry_fini(&e);
    return r;
}

/* resolve: fill r from addr. 1 ok, 0 unknown recipient, <0 local trouble.
 *   user@domain       the user's INBOX (the domain is the MTA's business)
 *   user+folder@...   user/USER/folder when it exists and grants anyone "p", else the INBOX
 *   +name@...         the shared mailbox "name", which must grant anyone "p"
 * A user name is tried as given, then in lower case (MTAs fold case unpredictably). */
static int resolve(struct client *c, struct store *st, const char *addr, struct rcpt *r)
{
    struct buf local = BUF_INIT, name = BUF_INIT;
    int ret = 0;
    lmtp_local_part(addr, &local);
    const char *lp = buf_cstr(&local);
    if (!*lp) goto done;
    if (lp[0] == '+') {
        ret = postable(st, lp + 1);
        if (ret == 1 && !strncmp(lp + 1, MBOXNAME_USER_PREFIX, strlen(MBOXNAME_USER_PREFIX)))
            ret = 0;    /* personal mailboxes are reached as user+folder */
        if (ret == 1) r->mailbox = xstrdup(lp + 1);
        goto done;
    }
    const char *plus = strchr(lp, '+');
    char *user = xstrndup(lp, plus ? (size_t)(plus - lp) : strlen(lp));
    ret = user_known(c, st, user);
    if (ret == 0) {
        int lower = 0;
        for (char *p = user; *p; p++)
            if (*p >= 'A' && *p <= 'Z') { *p = (char)(*p + 32); lower = 1; }
        if (lower) ret = user_known(c, st, user);
    }
    if (ret <= 0) {
        free(user);
        goto done;
    }
    r->need_inbox = ret == 2;
    r->user = user;
    ret = 1;
    mboxname_user_inbox(user, &name);
    if (plus && plus[1]) {
        r->detail = xstrdup(plus + 1);
        struct buf folder = BUF_INIT;
        buf_printf(&folder, "%s/%s", buf_cstr(&name), r->detail);
        int p = r->need_inbox ? 0 : postable(st, buf_cstr(&folder));
        if (p == 1) buf_printf(&name, "/%s", r->detail);
        buf_fini(&folder);
    }
    r->mailbox = xstrdup(buf_cstr(&name));
done:
    buf_fini(&local);
    buf_fini(&name);
    return ret;
}

void cmd_rcpt(struct client *c, const struct lmtp_command *cmd)
{
    if (!c->mail_from) {
        client_reply(c, "503 5.5.1 Need MAIL command");
        return;
    }
    if (c->spool_fd >= 0) {
        client_reply(c, "503 5.5.1 RCPT after BDAT");
        return;
    }
    if (strncasecmp(cmd->args, "TO:", 3)) {
        client_reply(c, "501 5.5.4 Syntax: RCPT TO:<address>");
        return;
    }
    struct buf path = BUF_INIT;
    const char *rest;
    struct rcpt r;
    memset(&r, 0, sizeof r);
    if (lmtp_parse_path(cmd->args + 3, &path, &rest) < 0 || !path.len) {
        client_reply(c, "501 5.1.3 Bad recipient address syntax");
        goto done;
    }
    if (*rest) {
        client_reply(c, "555 5.5.4 Unsupported parameter");
        goto done;
    }
    if (c->nrcpts >= LMTP_MAX_RCPTS) {
        client_reply(c, "452 4.5.3 Too many recipients");   /* RFC 5321 section 4.5.3.1.10 */
        goto done;
    }
    struct store *st = lmtpd_store();
    if (!st) {
        client_reply(c, "451 4.3.0 Temporary local problem");
        goto done;
    }
    int res = resolve(c, st, buf_cstr(&path), &r);
    if (res == CF_E_LOCKED) {
        log_info("rcpt_deferred", "rcpt=%s reason=fenced", log_quote(buf_cstr(&path)));
        client_reply(c, "451 4.2.1 <%s> Mailbox is being moved, try again later",
                     buf_cstr(&path));
        goto done;
    }
    if (res < 0) {
        log_warn("rcpt_failed", "rcpt=%s error=%s", log_quote(buf_cstr(&path)),
                 log_quote(cf_strerror(res)));
        client_reply(c, "451 4.3.0 Temporary local problem");
        goto done;
    }
    if (res == 0) {
        client_reply(c, "550 5.1.1 <%s> User unknown", buf_cstr(&path));
        goto done;
    }
    /* RFC 2033 section 4.2 allows refusing here; only when already full, as the size is
     * known at DATA (SIZE= if the client gave it) */
    if (!r.need_inbox && deliver_quota_full(st, r.mailbox, c->declared_size) == 1) {
        if (config_int(c->ws->cfg, CFG_LMTP_OVERQUOTA_PERMANENT))
            client_reply(c, "552 5.2.2 <%s> Mailbox over quota", buf_cstr(&path));
        else
            client_reply(c, "452 4.2.2 <%s> Mailbox over quota", buf_cstr(&path));
        goto done;
    }
    if (c->nrcpts == c->rcpts_alloc) {
        c->rcpts_alloc = c->rcpts_alloc ? c->rcpts_alloc * 2 : 8;
        c->rcpts = xrealloc(c->rcpts, c->rcpts_alloc * sizeof *c->rcpts);
    }
    r.addr = xstrdup(buf_cstr(&path));
    c->rcpts[c->nrcpts++] = r;
    memset(&r, 0, sizeof r);
    client_reply(c, "250 2.1.5 OK");
done:
    free(r.user);
    free(r.detail);
    free(r.mailbox);
    buf_fini(&path);
}
