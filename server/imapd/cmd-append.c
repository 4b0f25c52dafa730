/* cmd-append.c: APPEND (RFC 3501 section 6.3.11) with MULTIAPPEND (RFC 3502), APPENDUID
 * (RFC 4315 UIDPLUS) and quota checks (RFC 9208 OVERQUOTA response code, RFC 5530). */
#include "imapd.h"
#include "acl-check.h"
#include "core/buf.h"
#include "core/error.h"
#include "core/log.h"
#include "core/xmalloc.h"
#include "store/mboxname.h"
#include "store/store-mail.h"
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Messages one APPEND may carry (RFC 3502 sets no limit; this keeps a runaway client from
 * building a huge commit). */
#define APPEND_MAX_MESSAGES 1000

/* days_from_civil: days since 1970-01-01 of a proleptic Gregorian date. */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static int digits(const char *s, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return -1;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 0;
}

/* parse_date_time: RFC 3501 section 9 date-time without its quotes:
 * "dd-Mon-yyyy hh:mm:ss +zzzz", the day as two digits or a space and one digit (a bare single
 * digit is accepted too, as many clients send it). Seconds since the epoch, or -1. */
static int64_t parse_date_time(const char *s)
{
    static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
    int day, year, hh, mm, ss, zh, zm;
    if (*s == ' ') s++;
    size_t dl = s[0] >= '0' && s[0] <= '9' && s[1] == '-' ? 1 : 2;
    if (digits(s, (int)dl, &day) || s[dl] != '-') return -1;
    s += dl + 1;
    const char *mon = NULL;
    for (int i = 0; i < 12; i++)
        if (!strncasecmp(s, months + 3 * i, 3)) mon = months + 3 * i;
    if (!mon || s[3] != '-') return -1;
    unsigned month = (unsigned)((mon - months) / 3 + 1);
    s += 4;
    if (digits(s, 4, &year) || s[4] != ' ' || digits(s + 5, 2, &hh) || s[7] != ':' ||
        digits(s + 8, 2, &mm) || s[10] != ':' || digits(s + 11, 2, &ss) || s[13] != ' ' ||
        (s[14] != '+' && s[14] != '-') || digits(s + 15, 2, &zh) || digits(s + 17, 2, &zm) ||
        s[19])
        return -1;
    static const int mdays[] = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
    if (day < 1 || day > mdays[month - 1] || hh > 23 || mm > 59 || ss > 60 || zm > 59)
        return -1;
    int64_t t = days_from_civil(year, month, (unsigned)day) * 86400 + hh * 3600 + mm * 60 + ss;
    int64_t zone = (zh * 60 + zm) * 60;
    t += s[14] == '+' ? -zone : zone;
    return t < 0 ? -1 : t;
}

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
            one->date = parse_date_time(cmd->args[i].s);
            if (one->date < 0) {
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
        client_tagged(c, cmd->tag, r == CF_E_PERM ? "NO [NOPERM] Permission denied"
                                                  : "NO [SERVERBUG] Internal error");
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
        switch (r) {
        case CF_E_QUOTA: client_tagged(c, cmd->tag, "NO [OVERQUOTA] Quota exceeded"); break;
        case CF_E_LIMIT: client_tagged(c, cmd->tag, "NO [LIMIT] Too many keywords in the mailbox"); break;
        /* RFC 5530 section 3: a write or flush failed (EIO, ENOSPC); nothing was committed */
        case CF_E_IO: client_tagged(c, cmd->tag, "NO [UNAVAILABLE] The mail store could not write; try again"); break;
        default: client_tagged(c, cmd->tag, "NO [SERVERBUG] Internal error"); break;
        }
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
