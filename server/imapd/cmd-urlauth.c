/* cmd-urlauth.c: GENURLAUTH, RESETKEY and URLFETCH (RFC 4467 URLAUTH, the INTERNAL
 * mechanism) with the RFC 5524 URLFETCH parameters BODY, BINARY and BODYPARTSTRUCTURE
 * (URLAUTH=BINARY). Tokens and data come from imapurl.c; the access keys from the store
 * (store-db.h, urlauth.db). */
#include "imapd.h"
#include "acl-check.h"
#include "imapurl.h"
#include "core/config.h"
#include "core/error.h"
#include "core/log.h"
#include "net/stream.h"
#include "store/mboxlist.h"
#include "store/store.h"
#include <string.h>
#include <strings.h>

/* bad_url: NO [BADURL url] text (RFC 4469 section 5, erratum 4046: the URL bare) */
static void bad_url(struct client *c, const char *tag, const char *url, size_t len,
                    const char *text)
{
    struct buf b = BUF_INIT;
    imap_url_printable(url, len, &b);
    client_tagged(c, tag, "NO [BADURL %s] %s", buf_cstr(&b), text);
    buf_fini(&b);
}

void cmd_genurlauth(struct client *c, const struct imap_command *cmd)
{
    /* RFC 4467 section 9: "GENURLAUTH" 1*(SP url-rump SP mechanism); every URL is checked
     * before any answer, so a failure answers none of them */
    struct buf resp = BUF_INIT, data = BUF_INIT;
    if (cmd->nargs < 2 || cmd->nargs % 2) {
        client_tagged(c, cmd->tag, "BAD GENURLAUTH needs pairs of URL and mechanism");
        goto done;
    }
    buf_appends(&resp, "GENURLAUTH");
    for (size_t i = 0; i < cmd->nargs; i += 2) {
        const struct imap_arg *ua = &cmd->args[i];
        const char *text = imap_arg_astring(ua);
        const char *mech = imap_arg_atom(&cmd->args[i + 1]);
        if (!text || !mech) {
            client_tagged(c, cmd->tag, "BAD GENURLAUTH needs pairs of URL and mechanism");
            goto done;
        }
        if (strcasecmp(mech, IMAPURL_MECH)) {
            client_tagged(c, cmd->tag, "NO Only the INTERNAL URLAUTH mechanism is supported");
            goto done;
        }
        struct imap_url u;
        int r = imap_url_parse(text, ua->len, &u);
        /* RFC 4467 section 6.1: an absolute URL rump (access identifier, no verifier) whose
         * user is the session's, naming a message the user may read */
        const char *why = NULL;
        if (r) why = "Invalid URL";
        else if (u.form != IMAP_URL_ABSOLUTE || !u.user) why = "The URL must be absolute and name the user";
        else if (u.access == IMAP_URL_ACCESS_NONE) why = "The URL has no ;URLAUTH= access identifier";
        else if (u.mech) why = "The URL already has a verifier";
        else if (strcmp(u.user, c->user)) why = "The URL names another user";
        else if (u.has_expire && u.expire <= (int64_t)time(NULL)) why = "The URL has expired";
        if (!why) {
            buf_reset(&data);
            r = imapurl_fetch(c, &u, c->user, c->is_admin, NULL, IMAPURL_RAW, &data, NULL);
            if (r == CF_E_NOTFOUND) why = "No such message";
            else if (r < 0) {
                imap_url_fini(&u);
                imapd_reply_error(c, cmd->tag, r);
                goto done;
            }
        }
        unsigned char key[STORE_URLAUTH_KEY_LEN];
        if (!why) {
            r = imapurl_owner_key(c, &u, 1, key);
            if (r == 0) why = "No such mailbox";
            else if (r < 0) {
                imap_url_fini(&u);
                imapd_reply_error(c, cmd->tag, r);
                goto done;
            }
        }
        if (why) {
            imap_url_fini(&u);
            bad_url(c, cmd->tag, text, ua->len, why);
            goto done;
        }
        /* url-full = url-rump ":" mechanism ":" token (RFC 4467 section 2) */
        char hex[41];
        imapurl_token(key, text, u.rump_len, hex);
        struct buf full = BUF_INIT;
        buf_append(&full, text, u.rump_len);
        buf_printf(&full, ":%s:%s", IMAPURL_MECH, hex);
        buf_putc(&resp, ' ');
        imap_string_append(&resp, full.s, full.len);   /* quoted, as clients expect */
        buf_fini(&full);
        imap_url_fini(&u);
    }
    client_untagged(c, "%s", buf_cstr(&resp));
    client_tagged(c, cmd->tag, "OK GENURLAUTH completed");
done:
    buf_fini(&resp);
    buf_fini(&data);
}

void cmd_resetkey(struct client *c, const struct imap_command *cmd)
{
    /* RFC 4467 section 6.2: "RESETKEY" [SP mailbox *(SP mechanism)] */
    struct buf name = BUF_INIT;
    struct mboxlist_entry e;
    mboxlist_entry_init(&e);
    int r;
    if (!c->store) {
        client_tagged(c, cmd->tag, "NO [UNAVAILABLE] The mail store is not available");
        goto done;
    }
    if (cmd->nargs == 0) {
        /* every key of the user: all the user's URLAUTH URLs fail from now on */
        r = store_urlauth_reset(c->store, c->user, NULL);
        if (r < 0) imapd_reply_error(c, cmd->tag, r);
        else client_tagged(c, cmd->tag, "OK All mailbox access keys removed");
        goto done;
    }
    for (size_t i = 1; i < cmd->nargs; i++) {
        const char *mech = imap_arg_atom(&cmd->args[i]);
        if (!mech) {
            client_tagged(c, cmd->tag, "BAD RESETKEY takes a mailbox and mechanisms");
            goto done;
        }
        if (strcasecmp(mech, IMAPURL_MECH)) {
            client_tagged(c, cmd->tag, "BAD Unknown URLAUTH mechanism");
            goto done;
        }
    }
    const char *mbox = imap_arg_astring(&cmd->args[0]);
    if (!mbox || strlen(mbox) != cmd->args[0].len) {
        client_tagged(c, cmd->tag, "BAD RESETKEY takes a mailbox and mechanisms");
        goto done;
    }
    if (imapd_mailbox_name(c, cmd->tag, mbox, &name) < 0) goto done;
    /* the key guards what the user reads: the user must see and read the mailbox */
    r = acl_lookup(c, buf_cstr(&name), &e, 'r', NULL);
    if (r == 0) {
        client_tagged(c, cmd->tag, "NO [NONEXISTENT] No such mailbox");
        goto done;
    }
    if (r < 0) {
        imapd_reply_error(c, cmd->tag, r);
        goto done;
    }
    r = store_urlauth_reset(c->store, c->user, e.uniqueid);
    if (r < 0) {
        imapd_reply_error(c, cmd->tag, r);
        goto done;
    }
    log_info("urlauth_resetkey", "mailbox=%s", log_quote(buf_cstr(&name)));
    client_tagged(c, cmd->tag, "OK RESETKEY completed");
done:
    mboxlist_entry_fini(&e);
    buf_fini(&name);
}

/* RFC 5524 section 3: what an extended URLFETCH asks for one URL */
enum {
    WANT_BODY = 1,
    WANT_BINARY = 2,
    WANT_BODYPARTSTRUCTURE = 4,
};

/* append_data: data as a literal ({n}, or ~{n} when it holds a NUL: RFC 3516 literal8) */
static void append_data(struct buf *out, const struct buf *data, int binary)
{
    int nul = data->len && memchr(data->s, '\0', data->len) != NULL;
    buf_printf(out, "%s{%zu}\r\n", binary && nul ? "~" : "", data->len);
    if (data->len) buf_append(out, data->s, data->len);
}

/* urlfetch_one: the URLFETCH response for one URL (RFC 4467 section 6.3, RFC 5524 section
 * 3): "url literal", "url NIL" when it is invalid, expired, revoked or not for this user,
 * and in the extended form "url (BODYPARTSTRUCTURE ..) (BINARY ..) (BODY ..)". 0 or the
 * stream's error. */
static int urlfetch_one(struct client *c, const struct imap_arg *ua, unsigned want, int extended)
{
    struct buf out = BUF_INIT, data = BUF_INIT, bs = BUF_INIT;
    const char *text = imap_arg_astring(ua);
    struct imap_url u;
    int r = imap_url_parse(text, ua->len, &u);
    int ok = r == 0 && imapurl_authorized(c, &u, text, ua->len);
    if (ok) {
        /* the owner's rights, now (RFC 4467 section 6.3: the URL fails once the owner
         * cannot read the message) */
        int owner_admin = strarr_find(config_list(c->ws->cfg, CFG_ADMINS), u.user) >= 0;
        r = imapurl_fetch(c, &u, u.user, owner_admin, NULL,
                          (want & WANT_BINARY) ? IMAPURL_BINARY : IMAPURL_RAW, &data,
                          (want & WANT_BODYPARTSTRUCTURE) ? &bs : NULL);
        ok = r == 0;
    }
    buf_appends(&out, "* URLFETCH ");
    imap_string_append(&out, text, ua->len);
    if (!ok) {
        buf_appends(&out, " NIL");
    } else if (!extended) {
        buf_putc(&out, ' ');
        append_data(&out, &data, 0);
    } else {
        if (want & WANT_BODYPARTSTRUCTURE) {
            buf_appends(&out, " (BODYPARTSTRUCTURE ");
            if (bs.len) buf_append(&out, bs.s, bs.len);
            else buf_appends(&out, "NIL");
            buf_putc(&out, ')');
        }
        if (want & (WANT_BINARY | WANT_BODY)) {
            buf_appends(&out, (want & WANT_BINARY) ? " (BINARY " : " (BODY ");
            append_data(&out, &data, (want & WANT_BINARY) != 0);
            buf_putc(&out, ')');
        }
    }
    if (ok)
        log_info("urlfetch", "owner=%s uid=%u size=%zu", log_quote(u.user), (unsigned)u.uid,
                 data.len);
    buf_appends(&out, "\r\n");
    r = stream_write(c->stream, out.s, out.len);
    imap_url_fini(&u);
    buf_fini(&out);
    buf_fini(&data);
    buf_fini(&bs);
    return r;
}

void cmd_urlfetch(struct client *c, const struct imap_command *cmd)
{
    /* RFC 4467: "URLFETCH" 1*(SP url); RFC 5524: or "(" url *(SP param) ")". Check all the
     * arguments first: a BAD must come before any response. */
    if (!cmd->nargs) {
        client_tagged(c, cmd->tag, "BAD URLFETCH needs at least one URL");
        return;
    }
    for (size_t i = 0; i < cmd->nargs; i++) {
        const struct imap_arg *a = &cmd->args[i];
        if (a->type == IMAP_ARG_LIST) {
            if (!a->count || !imap_arg_astring(&a->list[0]) || a->list[0].type == IMAP_ARG_LIST) {
                client_tagged(c, cmd->tag, "BAD URLFETCH needs (url parameters)");
                return;
            }
            unsigned want = 0;
            for (size_t k = 1; k < a->count; k++) {
                unsigned bit = imap_arg_atom_eq(&a->list[k], "BODY") ? WANT_BODY
                    : imap_arg_atom_eq(&a->list[k], "BINARY") ? WANT_BINARY
                    : imap_arg_atom_eq(&a->list[k], "BODYPARTSTRUCTURE") ? WANT_BODYPARTSTRUCTURE
                    : 0;
                /* RFC 5524 section 3: BODY and BINARY exclude each other; none twice */
                if (!bit || (want & bit) ||
                    ((bit | want) & (WANT_BODY | WANT_BINARY)) == (WANT_BODY | WANT_BINARY)) {
                    client_tagged(c, cmd->tag, "BAD Invalid URLFETCH parameter");
                    return;
                }
                want |= bit;
            }
        } else if (!imap_arg_astring(a)) {
            client_tagged(c, cmd->tag, "BAD URLFETCH needs URLs");
            return;
        }
    }
    for (size_t i = 0; i < cmd->nargs; i++) {
        const struct imap_arg *a = &cmd->args[i];
        int r;
        if (a->type == IMAP_ARG_LIST) {
            unsigned want = 0;
            for (size_t k = 1; k < a->count; k++)
                want |= imap_arg_atom_eq(&a->list[k], "BODY") ? WANT_BODY
                      : imap_arg_atom_eq(&a->list[k], "BINARY") ? WANT_BINARY
                      : WANT_BODYPARTSTRUCTURE;
            r = urlfetch_one(c, &a->list[0], want, 1);
        } else {
            r = urlfetch_one(c, a, WANT_BODY, 0);
        }
        if (r < 0) return;      /* the connection is gone */
    }
    client_tagged(c, cmd->tag, "OK URLFETCH completed");
}
