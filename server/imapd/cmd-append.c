/* cmd-append.c: APPEND (RFC 3501 section 6.3.11) with MULTIAPPEND (RFC 3502), APPENDUID
 * (RFC 4315 UIDPLUS) and quota checks (RFC 9208 OVERQUOTA response code, RFC 5530). */
#include "imapd.h"
#include "acl-check.h"
#include "core/buf.h"
#include "core/error.h"
#include "core/log.h"
#include "core/xmalloc.h"
#include "imap/imap-date.h"
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
};

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
    if (!c->store) {
        client_tagged(c, cmd->tag, "NO [UNAVAILABLE] The mail store is not available");
        goto done;
    }
    if (strlen(mbox) != cmd->args[0].len) {
        client_tagged(c, cmd->tag, "NO [CANNOT] Invalid mailbox name");
        goto done;
    }
    int r = mboxname_from_imap(c->user, mbox, &name);
    /* RFC 3501 section 6.3.11: NO [TRYCREATE] when the mailbox does not exist (a client
     * may then CREATE it); an invalid name can never be created */
    if (r == CF_E_PARSE) {
        client_tagged(c, cmd->tag, "NO [CANNOT] Invalid mailbox name");
        goto done;
    }
    if (r == 0) r = acl_lookup(c, buf_cstr(&name), &e, 'i', rights);
    else r = 0;
    if (r == 0) {
        client_tagged(c, cmd->tag, "NO [TRYCREATE] No such mailbox");
        goto done;
    }
    if (r < 0) {
        imapd_reply_error(c, cmd->tag, r);
        goto done;
    }

    if (parse_messages(c, cmd, rights, &m, &n) < 0) goto done;

    /* the literals stay in the parser's buffer: no copy on the way to the message files */
    msgs = xzmalloc(n * sizeof *msgs);
    uint64_t total = 0;
    for (size_t i = 0; i < n; i++) {
        msgs[i].data = m[i].literal->s;
        msgs[i].len = m[i].literal->len;
        msgs[i].fd = -1;
        msgs[i].internaldate = m[i].date;
        msgs[i].flags = m[i].flags;
        msgs[i].keywords = m[i].keywords.count ? (const char *const *)m[i].keywords.v : NULL;
        total += m[i].literal->len;
    }

    r = store_open_mailbox(c->store, buf_cstr(&name), NULL, &mb);
    if (r == CF_E_NOTFOUND) {
        client_tagged(c, cmd->tag, "NO [TRYCREATE] No such mailbox");
        goto done;
    }
    /* one store transaction: quota lock, check, commit, settle (store/store-mail.h) */
    if (!r) r = store_append(c->store, mb, buf_cstr(&name), msgs, n);
    if (r) {
        imapd_reply_error(c, cmd->tag, r);   /* OVERQUOTA, LIMIT, UNAVAILABLE, ... */
        goto done;
    }

    /* RFC 4315 section 3: APPENDUID uidvalidity uid-set (one commit: consecutive uids) */
    uint32_t uidvalidity = mailbox_header(mb)->uidvalidity;
    uid_set(msgs, n, &uids);
    log_info("append", "mailbox=%s uids=%s messages=%zu size=%llu", log_quote(buf_cstr(&name)),
             buf_cstr(&uids), n, (unsigned long long)total);
    client_tagged(c, cmd->tag, "OK [APPENDUID %u %s] APPEND completed", uidvalidity,
                  buf_cstr(&uids));
done:
    mailbox_close(&mb);
    for (size_t i = 0; i < n; i++) strarr_fini(&m[i].keywords);
    free(m);
    free(msgs);
    mboxlist_entry_fini(&e);
    buf_fini(&name);
    buf_fini(&uids);
}
