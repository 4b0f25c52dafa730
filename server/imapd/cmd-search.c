/* cmd-search.c: SEARCH and UID SEARCH (RFC 3501 sections 6.4.4, 6.4.8, 7.2.5): the search
 * program of lib/imap/search.h run over the selected view through the message handle
 * (store/mail.h): index records first, the header block when a header key needs it (cached
 * where it fits), and the message file only for BODY/TEXT. */
#include "imapd.h"
#include "selected.h"
#include "imap/search.h"
#include "core/buf.h"
#include "core/error.h"
#include "store/index.h"
#include "store/mail.h"
#include "store/mailbox.h"
#include <string.h>

/* The accessors' state: the message handle, re-pointed at each message. */
struct search_ctx {
    struct selected *sel;
    uint32_t uid;
    struct mail *mail;
};

static int sx_record(void *ctx, uint32_t msgno, struct search_record *r)
{
    struct search_ctx *x = ctx;
    const struct index_record *mrec;
    x->uid = selected_uid(x->sel, msgno);
    mail_set_uid(x->mail, x->uid);
    int found = mail_record(x->mail, &mrec);
    if (found < 0) return found;
    /* expunged by another session but still numbered here (RFC 2180 section 4.3): it
     * matches nothing; CF_E_NOTFOUND tells the loop to skip it */
    if (found == 0) return CF_E_NOTFOUND;
    struct index_record rec = *mrec;
    selected_seen_apply(x->sel, &rec);   /* per-user \Seen (selected.h) */
    memset(r, 0, sizeof(*r));
    r->uid = x->uid;
    r->flags = rec.flags & FLAG_SYSTEM_MASK;
    r->recent = selected_is_recent(x->sel, x->uid);
    r->internaldate = rec.internaldate;
    r->size = rec.size;
    r->user_flags = mrec->user_flags;    /* owned by the handle until sx_release */
    r->user_flags_len = sizeof(mrec->user_flags);
    return 0;
}

static int sx_message(void *ctx, uint32_t msgno, const char **p, size_t *len)
{
    struct search_ctx *x = ctx;
    (void)msgno;
    return mail_message(x->mail, p, len);
}

static int sx_header(void *ctx, uint32_t msgno, const char **p, size_t *len)
{
    struct search_ctx *x = ctx;
    (void)msgno;
    return mail_header(x->mail, p, len);
}

static int sx_sections(void *ctx, uint32_t msgno, const char **p, size_t *len)
{
    struct search_ctx *x = ctx;
    (void)msgno;
    return mail_sections(x->mail, p, len);
}

static void sx_release(void *ctx, uint32_t msgno)
{
    struct search_ctx *x = ctx;
    (void)msgno;
    mail_reset(x->mail);
}

static const struct search_msg_ops sx_ops = {
    sx_record, sx_header, sx_sections, sx_message, sx_release,
};

void cmd_search(struct client *c, const struct imap_command *cmd)
{
    struct selected *sel = c->sel;
    int uid_cmd = command_is_uid(cmd);
    struct search_program *prog = NULL;
    struct search_ctx x;
    struct buf out = BUF_INIT;
    const char *err = NULL;
    uint32_t n, msgno;
    int r;

    r = search_parse(cmd->args, cmd->nargs, &prog, &err);
    if (r == CF_E_NOTFOUND) {
        /* RFC 3501 section 6.4.4: NO with the charsets we do take */
        client_tagged(c, cmd->tag, "NO [BADCHARSET (UTF-8 US-ASCII)] %s", err);
        return;
    }
    if (r == CF_E_LIMIT) {
        client_tagged(c, cmd->tag, "NO [LIMIT] %s (limit %d bytes)", err, SEARCH_MAX_STRINGS);
        return;
    }
    if (r < 0) {
        client_tagged(c, cmd->tag, "BAD %s", err);
        return;
    }
    memset(&x, 0, sizeof(x));
    x.sel = sel;
    x.mail = mail_new(sel->mb);
    n = selected_count(sel);
    search_prepare(prog, n, n ? selected_uid(sel, n) : 0, mailbox_keywords(sel->mb));

    buf_appends(&out, "SEARCH");
    for (msgno = 1; msgno <= n; msgno++) {
        r = search_match(prog, &sx_ops, &x, msgno);
        if (r == CF_E_NOTFOUND) {       /* expunged meanwhile: not a match */
            sx_release(&x, msgno);
            continue;
        }
        if (r < 0) break;
        if (r) buf_printf(&out, " %u", uid_cmd ? x.uid : msgno);
    }
    mail_free(&x.mail);
    search_free(&prog);
    if (r < 0 && r != CF_E_NOTFOUND) {
        imapd_reply_error(c, cmd->tag, r);
    } else {
        client_untagged(c, "%s", buf_cstr(&out));
        client_tagged(c, cmd->tag, "OK %s completed", cmd->name);
    }
    buf_fini(&out);
}
