/* cmd-append.c: APPEND (RFC 3501 section 6.3.11) with MULTIAPPEND (RFC 3502), CATENATE
 * (RFC 4469), APPENDUID (RFC 4315 UIDPLUS) and quota checks (RFC 9208 OVERQUOTA response
 * code, RFC 5530); REPLACE and UID REPLACE (RFC 8508). */
#include "imapd.h"
#include "acl-check.h"
#include "core/buf.h"
#include "core/error.h"
#include "core/log.h"
#include "core/config.h"
#include "core/xmalloc.h"
#include "imap/imap-date.h"
#include "imapurl.h"
#include "selected.h"
#include "store/mboxname.h"
#include "store/store-mail.h"
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Messages one APPEND may carry (RFC 3502 sets no limit; this keeps a runaway client from
 * building a huge commit). */
#define APPEND_MAX_MESSAGES 1000

/* parse_flags: a flag list into system flags and keywords (pointing into the arguments). A
 * missing right drops the flag silently (RFC 4314 section 4, APPEND). 0 or CF_E_PARSE. */
static int parse_flags(const struct imap_arg *list, const char *rights, uint32_t *flags,
                       struct strarr *keywords)
{
    static const struct { const char *name; uint32_t bit; char right; } sys[] = {
        { "\\Seen", FLAG_SEEN, 's' }, { "\\Answered", FLAG_ANSWERED, 'w' },
        { "\\Flagged", FLAG_FLAGGED, 'w' }, { "\\Deleted", FLAG_DELETED, 't' },
        { "\\Draft", FLAG_DRAFT, 'w' },
    };
    for (size_t i = 0; i < list->count; i++) {
        const char *f = imap_arg_atom(&list->list[i]);
        if (!f) return CF_E_PARSE;   /* NIL counts: flag-keyword = atom (RFC 3501 section 9) */
        if (*f == '\\') {
            size_t k;
            for (k = 0; k < sizeof sys / sizeof sys[0]; k++)
                if (!strcasecmp(f, sys[k].name)) break;
            if (k == sizeof sys / sizeof sys[0]) return CF_E_PARSE;   /* \Recent, unknown */
            if (strchr(rights, sys[k].right)) *flags |= sys[k].bit;
            continue;
        }
        /* flag-keyword = atom: none of the atom-specials the parser lets into atoms */
        if (strpbrk(f, "]%*\"\\(){")) return CF_E_PARSE;
        if (strchr(rights, 'w') && strarr_find_case(keywords, f) < 0) strarr_add(keywords, f);
    }
    return 0;
}

struct one_msg {
    uint32_t flags;
    struct strarr keywords;
    int64_t date;
    const struct imap_arg *literal;
    const struct imap_arg *catenate;    /* CATENATE's list of parts, else NULL */
    struct buf cat;                     /* the catenated message (catenate_build) */
};

/* catenate_check: 1 when list is a valid RFC 4469 section 5 part list:
 * cat-part *(SP cat-part), cat-part = "TEXT" SP literal / "URL" SP astring */
static int catenate_check(const struct imap_arg *list)
{
    if (!list->count || list->count % 2) return 0;
    for (size_t k = 0; k < list->count; k += 2) {
        const struct imap_arg *v = &list->list[k + 1];
        if (imap_arg_atom_eq(&list->list[k], "TEXT")) {
            if (v->type != IMAP_ARG_LITERAL) return 0;
        } else if (imap_arg_atom_eq(&list->list[k], "URL")) {
            if (!imap_arg_astring(v) || v->type == IMAP_ARG_NIL) return 0;
        } else {
            return 0;
        }
    }
    return 1;
}

/* catenate_build: the message of one CATENATE into one->cat: the TEXT literals as they are,
 * each URL's data read with the rights FETCH needs ('r', RFC 4469 section 3); a relative URL
 * is relative to the selected mailbox; a URLAUTH URL must be valid for this session and reads
 * as its owner (RFC 4469 section 3). Nothing is stored here: the caller appends all messages
 * in one commit or none. 0, or -1 after answering (NO [BADURL url], NO [TOOBIG]). */
static int catenate_build(struct client *c, const struct imap_command *cmd, struct one_msg *one,
                          uint64_t max)
{
    const struct imap_arg *list = one->catenate;
    for (size_t k = 0; k < list->count; k += 2) {
        const struct imap_arg *v = &list->list[k + 1];
        if (v->type == IMAP_ARG_LITERAL && imap_arg_atom_eq(&list->list[k], "TEXT")) {
            buf_append(&one->cat, v->s, v->len);
        } else {
            const char *text = imap_arg_astring(v);
            struct imap_url u;
            int r = imap_url_parse(text, v->len, &u);
            if (r == 0 && u.access != IMAP_URL_ACCESS_NONE) {
                /* a URLAUTH URL: only when it is valid for this session, as its owner */
                if (!imapurl_authorized(c, &u, text, v->len)) r = CF_E_NOTFOUND;
                else r = imapurl_fetch(c, &u, u.user,
                                       strarr_find(config_list(c->ws->cfg, CFG_ADMINS), u.user) >= 0,
                                       NULL, IMAPURL_RAW, &one->cat, NULL);
            } else if (r == 0) {
                r = imapurl_fetch(c, &u, c->user, c->is_admin, c->sel ? c->sel->name : NULL,
                                  IMAPURL_RAW, &one->cat, NULL);
            }
            imap_url_fini(&u);
            if (r == CF_E_PARSE || r == CF_E_LIMIT || r == CF_E_NOTFOUND) {
                struct buf b = BUF_INIT;
                imap_url_printable(text, v->len, &b);
                /* RFC 4469 section 5 (erratum 4046): the URL bare in the code */
                client_tagged(c, cmd->tag, "NO [BADURL %s] CATENATE cannot use this URL",
                              buf_cstr(&b));
                buf_fini(&b);
                return -1;
            }
            if (r < 0) {
                imapd_reply_error(c, cmd->tag, r);
                return -1;
            }
        }
        /* RFC 4469 section 3: TOOBIG when the result is larger than the server accepts */
        if (one->cat.len > max) {
            client_tagged(c, cmd->tag, "NO [TOOBIG] The catenated message is too large");
            return -1;
        }
    }
    if (one->cat.len == 0) {
        client_tagged(c, cmd->tag, "NO [CANNOT] An empty message cannot be appended");
        return -1;
    }
    return 0;
}

/* parse_messages: the messages of an APPEND into *m_r (grown; *n_r of them, each to be freed
 * by the caller even on failure). 0, or -1 after answering the command. */
static int parse_messages(struct client *c, const struct imap_command *cmd, const char *rights,
                          struct one_msg **m_r, size_t *n_r)
{
    size_t cap = 0;
    /* RFC 3502 section 6: append-message *( SP append-message ), each
     * [flag-list SP] [date-time SP] literal */
    for (size_t i = 1; i < cmd->nargs;) {
        if (*n_r == cap) {
            cap = cap ? 2 * cap : 4;
            *m_r = xrealloc(*m_r, cap * sizeof **m_r);
        }
        if (*n_r == APPEND_MAX_MESSAGES) {
            client_tagged(c, cmd->tag, "NO [LIMIT] At most %d messages per APPEND",
                          APPEND_MAX_MESSAGES);
            return -1;
        }
        struct one_msg *one = &(*m_r)[(*n_r)++];
        memset(one, 0, sizeof *one);
        strarr_init(&one->keywords);
        buf_init(&one->cat);
        if (cmd->args[i].type == IMAP_ARG_LIST) {
            if (parse_flags(&cmd->args[i], rights, &one->flags, &one->keywords)) {
                client_tagged(c, cmd->tag, "BAD Invalid flag in APPEND");
                return -1;
            }
            i++;
        }
        if (i < cmd->nargs && cmd->args[i].type == IMAP_ARG_QUOTED) {
            if (imap_datetime_parse(cmd->args[i].s, &one->date) < 0) {
                client_tagged(c, cmd->tag, "BAD Invalid date-time in APPEND");
                return -1;
            }
            i++;
        }
        /* RFC 4469 section 5: append-data =/ "CATENATE" SP "(" cat-part *(SP cat-part) ")" */
        if (i + 1 < cmd->nargs && imap_arg_atom_eq(&cmd->args[i], "CATENATE") &&
            cmd->args[i + 1].type == IMAP_ARG_LIST) {
            if (!catenate_check(&cmd->args[i + 1])) {
                client_tagged(c, cmd->tag, "BAD Invalid CATENATE part list");
                return -1;
            }
            one->catenate = &cmd->args[i + 1];
            i += 2;
            continue;
        }
        /* RFC 6855 section 4: append-data =/ "UTF8" SP "(" literal8 ")", a message that may
         * hold UTF-8 header fields; only after ENABLE UTF8=ACCEPT (rev2.c) */
        if (i < cmd->nargs && imap_arg_atom_eq(&cmd->args[i], "UTF8")) {
            const struct imap_arg *u = i + 1 < cmd->nargs ? &cmd->args[i + 1] : NULL;
            if (!(c->enabled & CLIENT_ENABLED_UTF8ACCEPT)) {
                client_tagged(c, cmd->tag, "BAD APPEND UTF8 needs ENABLE UTF8=ACCEPT first");
                return -1;
            }
            if (!u || u->type != IMAP_ARG_LIST || u->count != 1 ||
                u->list[0].type != IMAP_ARG_LITERAL || !u->list[0].literal8) {
                client_tagged(c, cmd->tag, "BAD APPEND UTF8 needs a literal8: UTF8 (~{n}...)");
                return -1;
            }
            one->literal = &u->list[0];
            i += 2;
            if (one->literal->len == 0) {
                client_tagged(c, cmd->tag, "NO [CANNOT] An empty message cannot be appended");
                return -1;
            }
            continue;
        }
        if (i >= cmd->nargs || cmd->args[i].type != IMAP_ARG_LITERAL) {
            client_tagged(c, cmd->tag, "BAD APPEND needs the message as a literal");
            return -1;
        }
        one->literal = &cmd->args[i++];
        if (one->literal->len == 0) {
            client_tagged(c, cmd->tag, "NO [CANNOT] An empty message cannot be appended");
            return -1;
        }
    }
    return 0;
}

/* uid_set: the RFC 4315 uid-set of the appended messages (one commit: mostly one range). */
static void uid_set(const struct mailbox_msg *msgs, size_t n, struct buf *out)
{
    for (size_t i = 0; i < n; i++) {
        size_t j = i;
        while (j + 1 < n && msgs[j + 1].uid == msgs[j].uid + 1) j++;
        buf_printf(out, "%s%u", out->len ? "," : "", msgs[i].uid);
        if (j > i) buf_printf(out, ":%u", msgs[j].uid);
        i = j;
    }
}

/* append_target: the mailbox an APPEND or REPLACE stores into, named by arg, into name (the
 * internal name, decoded as the session's names are: modified UTF-7 or UTF-8), e and rights
 * (the caller's, which must include 'i'). 0, or -1 after answering: RFC 3501 section 6.3.11
 * NO [TRYCREATE] when the mailbox does not exist (a client may then CREATE it), NO [CANNOT]
 * for a name that can never be created. */
static int append_target(struct client *c, const struct imap_command *cmd,
                         const struct imap_arg *arg, struct buf *name, struct mboxlist_entry *e,
                         char *rights)
{
    const char *mbox = imap_arg_astring(arg);
    if (!c->store) {
        client_tagged(c, cmd->tag, "NO [UNAVAILABLE] The mail store is not available");
        return -1;
    }
    if (!mbox || strlen(mbox) != arg->len) {
        client_tagged(c, cmd->tag, "NO [CANNOT] Invalid mailbox name");
        return -1;
    }
    int r = rev2_name_from_wire(c, mbox, name);
    if (r == CF_E_PARSE) {
        client_tagged(c, cmd->tag, "NO [CANNOT] Invalid mailbox name");
        return -1;
    }
    r = r == 0 ? acl_lookup(c, buf_cstr(name), e, 'i', rights) : 0;
    if (r == 0) {
        client_tagged(c, cmd->tag, "NO [TRYCREATE] No such mailbox");
        return -1;
    }
    if (r < 0) {
        imapd_reply_error(c, cmd->tag, r);
        return -1;
    }
    return 0;
}

/* one_msg_to_store: the store's view of a parsed message; the bytes stay where they are (the
 * parser's literal or the CATENATE result): no copy on the way to the message file. */
static void one_msg_to_store(const struct one_msg *one, struct mailbox_msg *msg)
{
    msg->data = one->catenate ? one->cat.s : one->literal->s;
    msg->len = one->catenate ? one->cat.len : one->literal->len;
    msg->fd = -1;
    msg->internaldate = one->date;
    msg->flags = one->flags;
    msg->keywords = one->keywords.count ? (const char *const *)one->keywords.v : NULL;
}

void cmd_append(struct client *c, const struct imap_command *cmd)
{
    struct buf name = BUF_INIT, uids = BUF_INIT;
    struct mboxlist_entry e;
    mboxlist_entry_init(&e);
    struct mailbox *mb = NULL;
    struct one_msg *m = NULL;
    struct mailbox_msg *msgs = NULL;
    size_t n = 0;
    char rights[ACL_RIGHTS_SIZE] = "";

    const char *mbox = cmd->nargs >= 1 ? imap_arg_astring(&cmd->args[0]) : NULL;
    if (!mbox || cmd->nargs < 2) {
        client_tagged(c, cmd->tag, "BAD APPEND needs a mailbox name and a message literal");
        goto done;
    }
    if (append_target(c, cmd, &cmd->args[0], &name, &e, rights) < 0) goto done;

    if (parse_messages(c, cmd, rights, &m, &n) < 0) goto done;
    /* every CATENATE resolved before anything is stored: one bad URL appends nothing */
    uint64_t max = (uint64_t)config_int(c->ws->cfg, CFG_MAX_LITERAL);
    for (size_t i = 0; i < n; i++)
        if (m[i].catenate && catenate_build(c, cmd, &m[i], max) < 0) goto done;

    /* the literals stay in the parser's buffer: no copy on the way to the message files */
    msgs = xzmalloc(n * sizeof *msgs);
    uint64_t total = 0;
    for (size_t i = 0; i < n; i++) {
        one_msg_to_store(&m[i], &msgs[i]);
        total += msgs[i].len;
    }

    /* Into the selected mailbox through the session's own handle: no second open, lock
     * file, cache and index mapping for each APPEND (a second handle cost about 20 system
     * calls, docs/perf/append-store.md). The entry append_target just read (rights and
     * all) must name the mailbox the handle has open, on the partition it has it on: a
     * mailbox deleted and made again under the name, or moved, is opened as before. The
     * handle's view is left alone (mailbox_append), so the sync after the command reports
     * the new messages as EXISTS and RECENT as it did (RFC 3501 section 6.3.11). */
    int r = 0;
    struct mailbox *target = NULL;
    if (c->sel && store_is_mailbox(c->store, &e, c->sel->mb)) {
        target = c->sel->mb;
    } else {
        r = store_open_target(c->store, buf_cstr(&name), NULL, &mb);
        if (r == CF_E_NOTFOUND) {
            client_tagged(c, cmd->tag, "NO [TRYCREATE] No such mailbox");
            goto done;
        }
        target = mb;
    }
    /* one store transaction: quota lock, check, commit, settle (store/store-mail.h) */
    if (!r) r = store_append(c->store, target, buf_cstr(&name), msgs, n);
    if (r) {
        imapd_reply_error(c, cmd->tag, r);   /* OVERQUOTA, LIMIT, UNAVAILABLE, ... */
        goto done;
    }

    /* RFC 4315 section 3: APPENDUID uidvalidity uid-set (one commit: consecutive uids) */
    uint32_t uidvalidity = mailbox_header(target)->uidvalidity;
    uid_set(msgs, n, &uids);
    log_info("append", "mailbox=%s uids=%s messages=%zu size=%llu handle=%s",
             log_quote(buf_cstr(&name)), buf_cstr(&uids), n, (unsigned long long)total,
             mb ? "opened" : "selected");
    client_tagged(c, cmd->tag, "OK [APPENDUID %u %s] APPEND completed", uidvalidity,
                  buf_cstr(&uids));
done:
    mailbox_close(&mb);
    for (size_t i = 0; i < n; i++) {
        strarr_fini(&m[i].keywords);
        buf_fini(&m[i].cat);
    }
    free(m);
    free(msgs);
    mboxlist_entry_fini(&e);
    buf_fini(&name);
    buf_fini(&uids);
}

/* ---- REPLACE (RFC 8508) ---- */

/* replace_target: the message REPLACE names (args[0], one seq-number: a number or "*", RFC
 * 8508 section 5) as its uid in the view into *uid_r. 0; -1 after answering: BAD for a bad or
 * out-of-range message number (RFC 3501 section 6.4.5), NO [NONEXISTENT] for a UID not in the
 * view, NO [EXPUNGEISSUED] for a message another session expunged (RFC 5530). */
static int replace_target(struct client *c, const struct imap_command *cmd, int uid_cmd,
                          uint32_t *uid_r)
{
    struct selected *sel = c->sel;
    struct imap_seqset set = IMAP_SEQSET_INIT;
    const char *err = NULL;
    const char *text = imap_arg_atom(&cmd->args[0]);
    int ret = -1;
    /* one seq-number: no set, no range, not "$" */
    if (!text || cmd->args[0].type == IMAP_ARG_NIL || strpbrk(text, ",:$")) {
        client_tagged(c, cmd->tag, "BAD %s needs one message %s", cmd->name,
                      uid_cmd ? "UID" : "sequence number");
        goto out;
    }
    if (selected_msgset(sel, text, uid_cmd, &set, &err) < 0) {
        client_tagged(c, cmd->tag, "BAD %s", err);
        goto out;
    }
    if (imap_seqset_size(&set) != 1) {
        /* a UID not in the view (section 3.2: "can't remove specified message") */
        client_tagged(c, cmd->tag, "NO [NONEXISTENT] No message with that UID");
        goto out;
    }
    uint32_t uid = selected_uid(sel, (uint32_t)set.r[0].lo);
    struct index_record rec;
    int r = mailbox_record(sel->mb, uid, &rec);
    if (r < 0) {
        imapd_reply_error(c, cmd->tag, r);
        goto out;
    }
    if (r == 0 || (rec.flags & FLAG_EXPUNGED)) {
        client_tagged(c, cmd->tag, "NO [EXPUNGEISSUED] The message has been expunged");
        goto out;
    }
    *uid_r = uid;
    ret = 0;
out:
    imap_seqset_fini(&set);
    return ret;
}

/* RFC 8508 section 3: REPLACE seq-number mailbox append-message, UID REPLACE uid ..., in
 * selected state only (section 3.5). The message is appended to the named mailbox (any
 * mailbox the user may insert into, section 3.4), then the old one leaves the selected
 * mailbox: store_replace, two commits in that order, so a crash can leave both but never
 * neither. Rights (section 4.1): 'i' on the target as APPEND; 't' and 'e' on the selected
 * mailbox as UID STORE \Deleted and UID EXPUNGE. Responses (sections 3.2 and 4.3): APPENDUID
 * in an untagged OK first, then EXISTS/EXPUNGE (VANISHED under QRESYNC, section 4.5) from the
 * dispatcher's sync, then the tagged OK; on any error nothing has changed (no EXPUNGE is
 * sent). One message only (section 4.7); CATENATE as in APPEND (section 4.2). */
void cmd_replace(struct client *c, const struct imap_command *cmd)
{
    struct selected *sel = c->sel;
    int uid_cmd = command_is_uid(cmd);
    struct buf name = BUF_INIT;
    struct mboxlist_entry e;
    mboxlist_entry_init(&e);
    struct mailbox *dst = NULL;
    struct one_msg *m = NULL;
    size_t n = 0;
    char rights[ACL_RIGHTS_SIZE] = "";
    uint32_t old_uid = 0;

    const char *mbox = cmd->nargs >= 3 ? imap_arg_astring(&cmd->args[1]) : NULL;
    if (!mbox) {
        client_tagged(c, cmd->tag, "BAD %s needs a message, a mailbox name and a message literal",
                      cmd->name);
        goto done;
    }
    if (replace_target(c, cmd, uid_cmd, &old_uid) < 0) goto done;
    if (sel->readonly) {
        client_tagged(c, cmd->tag, "NO [READ-ONLY] The mailbox is read-only");
        goto done;
    }
    if (!strchr(sel->rights, 't') || !strchr(sel->rights, 'e')) {
        client_tagged(c, cmd->tag, "NO [NOPERM] Permission denied");
        goto done;
    }
    /* the target as APPEND finds it (section 3.4: TRYCREATE and the other codes as APPEND) */
    if (append_target(c, cmd, &cmd->args[1], &name, &e, rights) < 0) goto done;
    /* append-message as APPEND parses it: the arguments from the mailbox name on */
    struct imap_command sub = *cmd;
    sub.args = cmd->args + 1;
    sub.nargs = cmd->nargs - 1;
    if (parse_messages(c, &sub, rights, &m, &n) < 0) goto done;
    if (n != 1) {
        client_tagged(c, cmd->tag, "BAD %s takes exactly one message", cmd->name);
        goto done;
    }
    uint64_t max = (uint64_t)config_int(c->ws->cfg, CFG_MAX_LITERAL);
    if (m[0].catenate && catenate_build(c, cmd, &m[0], max) < 0) goto done;
    struct mailbox_msg msg;
    memset(&msg, 0, sizeof msg);
    one_msg_to_store(&m[0], &msg);

    int r = store_open_target(c->store, buf_cstr(&name), NULL, &dst);
    if (r == CF_E_NOTFOUND) {
        client_tagged(c, cmd->tag, "NO [TRYCREATE] No such mailbox");
        goto done;
    }
    uint32_t expunged = 0;
    if (!r) r = store_replace(c->store, sel->mb, sel->name, old_uid, dst, buf_cstr(&name), &msg,
                              &expunged);
    if (r == CF_E_NOTFOUND) {
        /* expunged by another session since replace_target: nothing was appended */
        client_tagged(c, cmd->tag, "NO [EXPUNGEISSUED] The message has been expunged");
        goto done;
    }
    if (r < 0 && !msg.uid) {
        imapd_reply_error(c, cmd->tag, r);     /* OVERQUOTA, LIMIT, UNAVAILABLE, ...: no change */
        goto done;
    }
    uint32_t uidvalidity = mailbox_header(dst)->uidvalidity;
    log_info("replace", "mailbox=%s uid=%u old_mailbox=%s old_uid=%u size=%zu",
             log_quote(buf_cstr(&name)), msg.uid, log_quote(sel->name), old_uid, msg.len);
    /* section 4.3: APPENDUID untagged, before the EXPUNGE the sync writes */
    client_untagged(c, "OK [APPENDUID %u %u] Replacement Message ready", uidvalidity, msg.uid);
    if (r < 0) {
        /* the new message is stored but the old one could not go: say so, never OK */
        imapd_reply_error(c, cmd->tag, r);
        goto done;
    }
    client_tagged(c, cmd->tag, "OK %s completed", cmd->name);
done:
    mailbox_close(&dst);
    for (size_t i = 0; i < n; i++) {
        strarr_fini(&m[i].keywords);
        buf_fini(&m[i].cat);
    }
    free(m);
    mboxlist_entry_fini(&e);
    buf_fini(&name);
}
