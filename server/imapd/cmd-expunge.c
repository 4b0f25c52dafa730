/* cmd-expunge.c: EXPUNGE (RFC 3501 section 6.4.3) and UID EXPUNGE (RFC 4315 section 2.1). */
#include "imapd.h"
#include "selected.h"
#include "core/xmalloc.h"
#include <stdlib.h>
#include <string.h>

void cmd_expunge(struct client *c, const struct imap_command *cmd)
{
    struct selected *sel = c->sel;
    int uid_cmd = command_is_uid(cmd);
    struct imap_seqset msgs = IMAP_SEQSET_INIT;
    uint32_t *uids = NULL;
    size_t n = 0;
    const char *err = NULL;
    if (uid_cmd ? cmd->nargs != 1 || !imap_arg_atom(&cmd->args[0]) : cmd->nargs != 0) {
        client_tagged(c, cmd->tag, uid_cmd ? "BAD UID EXPUNGE takes a UID set"
                                           : "BAD EXPUNGE takes no arguments");
        goto out;
    }
    if (uid_cmd && selected_msgset(sel, cmd->args[0].s, 1, &msgs, &err) < 0) {
        client_tagged(c, cmd->tag, "BAD %s", err);
        goto out;
    }
    if (sel->readonly) {
        client_tagged(c, cmd->tag, "NO [READ-ONLY] The mailbox is read-only");
        goto out;
    }
    if (!strchr(sel->rights, 'e')) {
        client_tagged(c, cmd->tag, "NO [NOPERM] Permission denied");
        goto out;
    }
    if (uid_cmd) {
        uint64_t total = imap_seqset_size(&msgs);
        uids = xreallocarray(NULL, total ? total : 1, sizeof *uids);
        for (size_t i = 0; i < msgs.count; i++)
            for (uint64_t m = msgs.r[i].lo; m <= msgs.r[i].hi; m++)
                uids[n++] = selected_uid(sel, (uint32_t)m);
    }
    int r = (!uid_cmd || n) ? selected_expunge(c->store, sel, uids, n) : 0;
    if (r < 0) {
        imapd_reply_error(c, cmd->tag, r);
        goto out;
    }
    /* the `* N EXPUNGE` responses come from command_dispatch's sync before the tagged OK */
    client_tagged(c, cmd->tag, "OK %s completed", cmd->name);
out:
    free(uids);
    imap_seqset_fini(&msgs);
}
