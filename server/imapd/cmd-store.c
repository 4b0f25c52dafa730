/* cmd-store.c: STORE and UID STORE (RFC 3501 sections 6.4.6, 6.4.8): FLAGS, +FLAGS, -FLAGS and
 * their .SILENT forms, with system flags and keywords. */
#include "imapd.h"
#include "selected.h"
#include "core/error.h"
#include "core/strarr.h"
#include "core/xmalloc.h"
#include "store/store-mail.h"
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* flag_system: the FLAG_* bit of a system flag name (any case), 0 if it is none. */
static uint32_t flag_system(const char *s)
{
    static const struct { const char *name; uint32_t bit; } sys[] = {
        { "\\Seen", FLAG_SEEN }, { "\\Answered", FLAG_ANSWERED }, { "\\Flagged", FLAG_FLAGGED },
        { "\\Deleted", FLAG_DELETED }, { "\\Draft", FLAG_DRAFT },
    };
    for (size_t i = 0; i < sizeof sys / sizeof sys[0]; i++)
        if (!strcasecmp(s, sys[i].name)) return sys[i].bit;
    return 0;
}

/* keyword_valid: RFC 3501 section 9 flag-keyword = atom: no atom-specials, no '\' . */
static int keyword_valid(const char *s)
{
    if (!*s) return 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p <= ' ' || *p >= 0x7f || strchr("(){%*\"\\]", *p)) return 0;
    }
    return 1;
}

/* parse_flag_list: the flags args[0..n) into *sys and kw (RFC 3501 section 9 flag). NULL, or
 * a reason for BAD. */
static const char *parse_flag_list(const struct imap_arg *args, size_t n, uint32_t *sys,
                                   struct strarr *kw)
{
    for (size_t i = 0; i < n; i++) {
        const char *s = imap_arg_atom(&args[i]);
        /* NIL is an atom like any other here (RFC 3501 section 9: flag-keyword = atom) */
        if (!s) return "Flags must be atoms";
        if (s[0] == '\\') {
            if (!strcasecmp(s, "\\Recent")) return "\\Recent cannot be stored";
            uint32_t bit = flag_system(s);
            if (!bit) return "Unknown system flag";
            *sys |= bit;
            continue;
        }
        if (!keyword_valid(s)) return "Invalid keyword";
        if (strarr_find_case(kw, s) < 0) strarr_add(kw, s);
    }
    return NULL;
}

void cmd_store(struct client *c, const struct imap_command *cmd)
{
    struct selected *sel = c->sel;
    int uid_cmd = command_is_uid(cmd);
    struct imap_seqset msgs = IMAP_SEQSET_INIT;
    struct strarr kw = STRARR_INIT;
    struct buf b = BUF_INIT;
    uint32_t *uids = NULL;
    const char *err = NULL;
    if (cmd->nargs < 3 || !imap_arg_atom(&cmd->args[0]) || !imap_arg_atom(&cmd->args[1])) {
        client_tagged(c, cmd->tag, "BAD %s takes a sequence set, an item and flags", cmd->name);
        goto out;
    }
    const char *item = cmd->args[1].s;
    enum mailbox_store_op op = STORE_SET;
    if (*item == '+') op = STORE_ADD, item++;
    else if (*item == '-') op = STORE_REMOVE, item++;
    int silent = 0;
    if (!strcasecmp(item, "FLAGS.SILENT")) silent = 1;
    else if (strcasecmp(item, "FLAGS")) {
        client_tagged(c, cmd->tag, "BAD Unknown STORE item %.40s", cmd->args[1].s);
        goto out;
    }
    uint32_t sys = 0;
    if (cmd->nargs == 3 && cmd->args[2].type == IMAP_ARG_LIST)
        err = parse_flag_list(cmd->args[2].list, cmd->args[2].count, &sys, &kw);
    else
        err = parse_flag_list(cmd->args + 2, cmd->nargs - 2, &sys, &kw);
    if (err) {
        client_tagged(c, cmd->tag, "BAD %s", err);
        goto out;
    }
    if (selected_msgset(sel, cmd->args[0].s, uid_cmd, &msgs, &err) < 0) {
        client_tagged(c, cmd->tag, "BAD %s", err);
        goto out;
    }
    if (sel->readonly) {
        client_tagged(c, cmd->tag, "NO [READ-ONLY] The mailbox is read-only");
        goto out;
    }
    /* RFC 4314 section 4: flags the user has no right to change are left alone */
    if (!strchr(sel->rights, 's')) sys &= ~FLAG_SEEN;
    if (!strchr(sel->rights, 't')) sys &= ~FLAG_DELETED;
    if (!strchr(sel->rights, 'w')) {
        sys &= FLAG_SEEN | FLAG_DELETED;
        strarr_fini(&kw);
        if (op == STORE_SET) op = STORE_ADD;   /* cannot clear what it may not write */
    }
    uint64_t total = imap_seqset_size(&msgs);
    uids = xreallocarray(NULL, total ? total : 1, sizeof *uids);
    size_t n = 0;
    for (size_t i = 0; i < msgs.count; i++)
        for (uint64_t m = msgs.r[i].lo; m <= msgs.r[i].hi; m++)
            uids[n++] = selected_uid(sel, (uint32_t)m);
    /* a shared mailbox keeps \Seen per user (selected.h): that part goes to the seen set */
    int r = 0;
    if (sel->seen_user && n && strchr(sel->rights, 's') &&
        (op == STORE_SET || (sys & FLAG_SEEN))) {
        r = selected_seen_change(sel, uids, n, op != STORE_REMOVE && (sys & FLAG_SEEN));
        sys &= ~FLAG_SEEN;
    }
    struct mailbox_store st = { op, sys, kw.count ? (const char *const *)kw.v : NULL, 0 };
    if (!r && n && (!sel->seen_user || sys || kw.count || op == STORE_SET))
        r = store_set_flags(c->store, sel->mb, uids, n, &st, NULL, NULL);
    if (r < 0) {
        imapd_reply_error(c, cmd->tag, r);
        goto out;
    }
    /* RFC 3501 section 6.4.6: the new flags of each message, unless .SILENT; either way the
     * next sync does not report this command's own changes again */
    size_t k = 0;
    for (size_t i = 0; i < msgs.count; i++) {
        for (uint64_t m = msgs.r[i].lo; m <= msgs.r[i].hi; m++, k++) {
            imap_seqset_add(&sel->skip, uids[k], uids[k]);
            struct index_record rec;
            int rr = mailbox_record(sel->mb, uids[k], &rec);
            /* RFC 2180 section 4.2.1: one expunged elsewhere is skipped silently */
            if (rr <= 0 || (rec.flags & FLAG_EXPUNGED)) continue;
            if (silent) continue;
            selected_keywords_announce(c);
            buf_reset(&b);
            buf_printf(&b, "%u FETCH (FLAGS ", (unsigned)m);
            selected_flags_append(sel, &rec, &b);
            if (uid_cmd) buf_printf(&b, " UID %u", (unsigned)uids[k]);
            buf_putc(&b, ')');
            client_untagged(c, "%s", buf_cstr(&b));
        }
    }
    client_tagged(c, cmd->tag, "OK %s completed", cmd->name);
out:
    free(uids);
    buf_fini(&b);
    strarr_fini(&kw);
    imap_seqset_fini(&msgs);
}
