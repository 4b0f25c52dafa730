/* cmd-select.c: SELECT, EXAMINE, CLOSE, UNSELECT and CHECK (RFC 3501 sections 6.3.1, 6.3.2,
 * 6.4.1, 6.4.2; RFC 3691). */
#include "imapd.h"
#include "selected.h"
#include "acl-check.h"
#include "core/error.h"
#include "core/log.h"
#include "core/xmalloc.h"
#include "imap/imap-condstore.h"
#include "store/mboxlist.h"
#include "store/mboxname.h"
#include "store/store.h"
#include <stdio.h>
#include <string.h>

/* first_unseen: the message number of the first message without \Seen, 0 if none. */
static uint32_t first_unseen(struct selected *sel)
{
    const struct index_header *h = mailbox_header(sel->mb);
    if (!sel->seen_user && h->seen >= h->exists) return 0;
    if (!sel->seen_user) {
        /* the flags are the records': as of the open's sync (the same state EXISTS told),
         * else one ordered read up to it */
        int m = mailbox_first_unseen_synced(sel->mb);
        return m > 0 ? (uint32_t)m : 0;
    }
    uint32_t count = selected_count(sel);
    for (uint32_t m = 1; m <= count; m++) {
        struct index_record rec;
        if (mailbox_record(sel->mb, selected_uid(sel, m), &rec) <= 0) continue;
        selected_seen_apply(sel, &rec);
        if (!(rec.flags & (FLAG_SEEN | FLAG_EXPUNGED))) return m;
    }
    return 0;
}

static void do_select(struct client *c, const struct imap_command *cmd, int examine)
{
    struct buf name = BUF_INIT, b = BUF_INIT;
    char rights[ACL_RIGHTS_SIZE] = "";
    struct imap_select_params params;
    struct mboxlist_entry entry;
    imap_select_params_init(&params);
    mboxlist_entry_init(&entry);
    /* RFC 3501 section 6.3.1: a SELECT, even a failing one, first deselects; RFC 7162
     * section 3.2.11: with QRESYNC on, [CLOSED] marks where the old mailbox's responses end */
    if (c->sel && (c->enabled & (CLIENT_ENABLED_QRESYNC | CLIENT_ENABLED_IMAP4REV2)))
        client_untagged(c, "OK [CLOSED] Previous mailbox closed");
    selected_deselect(c);
    if (cmd->nargs != 1 && cmd->nargs != 2) {
        client_tagged(c, cmd->tag, "BAD %s takes one mailbox name", cmd->name);
        goto out;
    }
    /* RFC 4466 section 2.1 select parameters: CONDSTORE and QRESYNC (RFC 7162) */
    if (cmd->nargs == 2) {
        const char *perr = NULL;
        if (imap_select_params_parse(&cmd->args[1], &params, &perr) < 0) {
            client_tagged(c, cmd->tag, "BAD %s", perr);
            goto out;
        }
        /* RFC 7162 section 3.2.5: QRESYNC only after ENABLE QRESYNC */
        if (params.qresync && !(c->enabled & CLIENT_ENABLED_QRESYNC)) {
            client_tagged(c, cmd->tag, "BAD QRESYNC was not enabled (ENABLE QRESYNC first)");
            goto out;
        }
        /* RFC 7162 section 3.1: SELECT (CONDSTORE) is a CONDSTORE-enabling command */
        if (params.condstore) condstore_enable(c, CLIENT_ENABLED_CONDSTORE);
    }
    if (!c->store) {
        client_tagged(c, cmd->tag, "NO [UNAVAILABLE] The mail store is unavailable");
        goto out;
    }
    if (selected_resolve_name(c, cmd->tag, &cmd->args[0], 'r', &name, rights, &entry) < 0)
        goto out;
    /* RFC 4314 section 4: read-write needs a right that changes something */
    int readonly = examine || !strpbrk(rights, "stwe");
    struct selected *sel = NULL;
    int r = selected_open_view(c->store, buf_cstr(&name), readonly, rev2_on(c), &sel);
    if (r < 0) {
        imapd_reply_error(c, cmd->tag, r);
        goto out;
    }
    snprintf(sel->rights, sizeof sel->rights, "%s", rights);
    /* the rights are the ones of this entry's ACL: the next command's rights check
     * (selected_rights_check) compares the entry as it is then with it, instead of computing
     * them again; only when the mailbox opened is the entry's (not one renamed over it
     * between the two lookups) */
    if (!strcmp(mailbox_uniqueid(sel->mb), entry.uniqueid)) {
        snprintf(sel->acl_uniqueid, sizeof sel->acl_uniqueid, "%s", entry.uniqueid);
        sel->acl = xstrdup(entry.acl);
    }
    r = selected_seen_init(sel, c->store, c->user);
    if (r < 0) {
        selected_close(&sel);
        imapd_reply_error(c, cmd->tag, r);
        goto out;
    }
    c->sel = sel;
    c->state = CLIENT_SELECTED;
    log_set_mailbox(sel->name);
    const struct index_header *h = mailbox_header(sel->mb);

    selected_flags_responses(c);
    client_untagged(c, "%u EXISTS", (unsigned)sel->told_exists);
    /* RFC 9051 appendix E: a rev2 session gets no RECENT and no UNSEEN code (rev2.c) */
    if (!rev2_on(c)) client_untagged(c, "%u RECENT", (unsigned)sel->told_recent);
    uint32_t unseen = rev2_on(c) ? 0 : first_unseen(sel);
    if (unseen) client_untagged(c, "OK [UNSEEN %u] First unseen message", (unsigned)unseen);
    client_untagged(c, "OK [UIDVALIDITY %u] UIDs valid", (unsigned)sel->uidvalidity);
    client_untagged(c, "OK [UIDNEXT %u] Predicted next UID", (unsigned)h->uidnext);
    /* RFC 8474 section 4.1 (cmd-mailbox.c status_mailboxid has the form) */
    client_untagged(c, "OK [MAILBOXID (F%s)] Ok", mailbox_uniqueid(sel->mb));
    /* RFC 7162 section 3.1.2.1: every index keeps mod-sequences, so HIGHESTMODSEQ always */
    client_untagged(c, "OK [HIGHESTMODSEQ %llu] Highest",
                    (unsigned long long)selected_highestmodseq(sel));
    if (rev2_on(c)) rev2_select_list(c, sel->name);
    imapd_quota_warn(c, sel->name);
    if (params.qresync && (r = selected_qresync(c, &params.q)) < 0) {
        selected_deselect(c);
        imapd_reply_error(c, cmd->tag, r);
        goto out;
    }
    client_tagged(c, cmd->tag, "OK [%s] %s completed", readonly ? "READ-ONLY" : "READ-WRITE",
                  cmd->name);
out:
    mboxlist_entry_fini(&entry);
    imap_select_params_fini(&params);
    buf_fini(&name);
    buf_fini(&b);
}

void cmd_select(struct client *c, const struct imap_command *cmd) { do_select(c, cmd, 0); }
void cmd_examine(struct client *c, const struct imap_command *cmd) { do_select(c, cmd, 1); }

static int no_args(struct client *c, const struct imap_command *cmd)
{
    if (cmd->nargs == 0) return 1;
    client_tagged(c, cmd->tag, "BAD %s takes no arguments", cmd->name);
    return 0;
}

/* RFC 3501 section 6.4.2: CLOSE expunges silently (not when read-only), then deselects. */
void cmd_close(struct client *c, const struct imap_command *cmd)
{
    if (!no_args(c, cmd)) return;
    if (!c->sel->readonly && strchr(c->sel->rights, 'e')) {
        int r = selected_expunge(c->store, c->sel, NULL, 0);
        if (r < 0) log_warn("imap_close_expunge_failed", "error=%s", cf_strerror(r));
    }
    selected_deselect(c);
    client_tagged(c, cmd->tag, "OK CLOSE completed");
}

/* RFC 3691: UNSELECT deselects without expunging. */
void cmd_unselect(struct client *c, const struct imap_command *cmd)
{
    if (!no_args(c, cmd)) return;
    selected_deselect(c);
    client_tagged(c, cmd->tag, "OK UNSELECT completed");
}

/* RFC 3501 section 6.4.1: every change is committed when made, so CHECK only syncs
 * (command_dispatch does that before the tagged response). */
void cmd_check(struct client *c, const struct imap_command *cmd)
{
    if (!no_args(c, cmd)) return;
    client_tagged(c, cmd->tag, "OK CHECK completed");
}
