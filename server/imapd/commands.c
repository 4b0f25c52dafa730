/* commands.c: the one table of IMAP commands (name, handler, the state each needs and how its
 * completion is synced) and the dispatcher that runs a command and writes its completion.
 *
 * A command not in this table is answered "BAD Unknown command NAME", so the server never
 * claims to support what it does not. New commands are added here and in a cmd-<family>.c
 * file. UID FETCH/STORE/COPY/MOVE/SEARCH/EXPUNGE are the UID entry, whose handler (cmd-uid.c)
 * looks up its first argument among the entries flagged CMD_UID.
 *
 * Handlers record their tagged response (client_tagged); command_dispatch writes it after the
 * untagged updates the command's flags allow, as Dovecot's COMMAND_FLAG_USES_SEQS decides it
 * (dovecot/core src/imap/imap-commands.h). Its COMMAND_FLAG_BREAKS_SEQS has no counterpart:
 * it is for running pipelined commands in parallel, and here they run one at a time. */
#include "core/metrics.h"
#include "imapd.h"
#include "selected.h"
#include "notify.h"
#include "core/error.h"
#include <string.h>
#include <time.h>

static const struct command commands[] = {
    /* RFC 3501 section 6.1: any state */
    { "CAPABILITY", cmd_capability, 0 },
    { "LOGOUT", cmd_logout, CMD_NO_SYNC | CMD_LEAVES_MAILBOX },
    { "NOOP", cmd_noop, 0 },
    /* RFC 3501 section 6.2: not authenticated state */
    { "STARTTLS", cmd_starttls, CMD_NOT_AUTH_ONLY },
    { "AUTHENTICATE", cmd_authenticate, CMD_NOT_AUTH_ONLY },
    { "LOGIN", cmd_login, CMD_NOT_AUTH_ONLY },
    /* RFC 8437 (cmd-auth.c): back to not authenticated state; no updates before its OK */
    { "UNAUTHENTICATE", cmd_unauthenticate, CMD_NEEDS_AUTH | CMD_NO_SYNC | CMD_LEAVES_MAILBOX },
    /* RFC 3501 section 6.3: authenticated state (selected state too) */
    { "CREATE", cmd_create, CMD_NEEDS_AUTH },
    { "DELETE", cmd_delete, CMD_NEEDS_AUTH },
    { "RENAME", cmd_rename, CMD_NEEDS_AUTH },
    { "SUBSCRIBE", cmd_subscribe, CMD_NEEDS_AUTH },
    { "UNSUBSCRIBE", cmd_unsubscribe, CMD_NEEDS_AUTH },
    { "LIST", cmd_list, CMD_NEEDS_AUTH },
    { "LSUB", cmd_lsub, CMD_NEEDS_AUTH },
    { "STATUS", cmd_status, CMD_NEEDS_AUTH },
    { "APPEND", cmd_append, CMD_NEEDS_AUTH },
    { "NAMESPACE", cmd_namespace, CMD_NEEDS_AUTH },     /* RFC 2342 */
    { "ENABLE", cmd_enable, CMD_NEEDS_AUTH },           /* RFC 5161 */
    { "ID", cmd_id, 0 },                                /* RFC 2971: any state */
    { "IDLE", cmd_idle, CMD_NEEDS_AUTH },               /* RFC 2177 */
    { "NOTIFY", cmd_notify, CMD_NEEDS_AUTH },           /* RFC 5465 (notify.c) */
    { "COMPRESS", cmd_compress, CMD_NEEDS_AUTH | CMD_NO_SYNC },   /* RFC 4978 */
    { "SELECT", cmd_select, CMD_NEEDS_AUTH | CMD_LEAVES_MAILBOX | CMD_NO_SYNC },
    /* RFC 4314 section 3: ACL (cmd-acl.c); RFC 9208 section 4.1: QUOTA (cmd-quota.c) */
    { "SETACL", cmd_setacl, CMD_NEEDS_AUTH },
    { "DELETEACL", cmd_deleteacl, CMD_NEEDS_AUTH },
    { "GETACL", cmd_getacl, CMD_NEEDS_AUTH },
    { "LISTRIGHTS", cmd_listrights, CMD_NEEDS_AUTH },
    { "MYRIGHTS", cmd_myrights, CMD_NEEDS_AUTH },
    { "GETQUOTA", cmd_getquota, CMD_NEEDS_AUTH },
    { "GETQUOTAROOT", cmd_getquotaroot, CMD_NEEDS_AUTH },
    { "SETQUOTA", cmd_setquota, CMD_NEEDS_AUTH },
    { "EXAMINE", cmd_examine, CMD_NEEDS_AUTH | CMD_LEAVES_MAILBOX | CMD_NO_SYNC },
    /* RFC 3501 section 6.4: selected state */
    { "CHECK", cmd_check, CMD_NEEDS_SELECTED },
    { "CLOSE", cmd_close, CMD_NEEDS_SELECTED },
    { "UNSELECT", cmd_unselect, CMD_NEEDS_SELECTED | CMD_LEAVES_MAILBOX },   /* RFC 3691 */
    { "EXPUNGE", cmd_expunge, CMD_NEEDS_SELECTED | CMD_UID },  /* UID EXPUNGE: RFC 4315 */
    { "FETCH", cmd_fetch, CMD_NEEDS_SELECTED | CMD_UID | CMD_USES_SEQS },
    { "STORE", cmd_store, CMD_NEEDS_SELECTED | CMD_UID | CMD_USES_SEQS },
    { "COPY", cmd_copy, CMD_NEEDS_SELECTED | CMD_UID },
    { "SEARCH", cmd_search, CMD_NEEDS_SELECTED | CMD_UID | CMD_USES_SEQS },
    { "MOVE", cmd_move, CMD_NEEDS_SELECTED | CMD_UID },        /* RFC 6851 */
    { "REPLACE", cmd_replace, CMD_NEEDS_SELECTED | CMD_UID },  /* RFC 8508 (cmd-append.c) */
    { "CANCELUPDATE", cmd_cancelupdate, CMD_NEEDS_SELECTED },  /* RFC 5267 */
    /* RFC 5256, RFC 5957, RFC 5267 section 3 (cmd-sort.c) */
    { "SORT", cmd_sort, CMD_NEEDS_SELECTED | CMD_UID | CMD_USES_SEQS },
    { "THREAD", cmd_thread, CMD_NEEDS_SELECTED | CMD_UID | CMD_USES_SEQS },
    { "UID", cmd_uid, CMD_NEEDS_SELECTED },
    /* RFC 4467 URLAUTH, RFC 5524 URLAUTH=BINARY (cmd-urlauth.c) */
    { "GENURLAUTH", cmd_genurlauth, CMD_NEEDS_AUTH },
    { "RESETKEY", cmd_resetkey, CMD_NEEDS_AUTH },
    { "URLFETCH", cmd_urlfetch, CMD_NEEDS_AUTH },
    /* RFC 5464 METADATA, METADATA-SERVER (cmd-metadata.c) */
    { "GETMETADATA", cmd_getmetadata, CMD_NEEDS_AUTH },
    { "SETMETADATA", cmd_setmetadata, CMD_NEEDS_AUTH },
};

const struct command *command_find(const char *name)
{
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(commands[i].name, name)) return &commands[i];
    return NULL;
}

/* command_sync: the untagged updates owed before the tagged response of the command that
 * just ran with flags and completed with done. */
static void command_sync(struct client *c, unsigned flags, enum client_done done)
{
    /* a BAD command never ran: it owes nothing, and must not make a client renumber
     * messages (RFC 3501 section 7.4.1: no EXPUNGE while no command is in progress) */
    if (done != CLIENT_DONE_OK && done != CLIENT_DONE_NO) return;
    if (!c->sel || c->state != CLIENT_SELECTED || c->end_reason) return;
    if (flags & CMD_NO_SYNC) return;
    unsigned sync = 0;
    if (flags & CMD_USES_SEQS) sync |= SELECTED_SYNC_NO_EXPUNGE;
    if (flags & CMD_UID_FORM) sync |= SELECTED_SYNC_UID;
    int r = selected_sync(c, sync);
    /* the mailbox was deleted, the 'r' right revoked, or the index is damaged: BYE, and the
     * tagged response still follows */
    if (r < 0) selected_sync_failed(c, r);
}

void command_finish(struct client *c)
{
    /* the updates go to the stream before the recorded tagged line: take it out first */
    struct client_reply reply;
    client_reply_take(c, &reply);
    command_sync(c, c->cmd_flags, reply.done);
    client_reply_write(c, &reply);
    c->cmd_flags = 0;
}

void command_dispatch(struct client *c, const struct imap_command *cmd)
{
    const struct command *def = command_find(cmd->name);
    if (!def) {
        client_tagged(c, cmd->tag, "BAD Unknown command %.64s", cmd->name);
        goto done;
    }
    if ((def->flags & CMD_NEEDS_AUTH) && c->state == CLIENT_NOT_AUTH) {
        client_tagged(c, cmd->tag, "BAD Not authenticated");
        goto done;
    }
    if ((def->flags & CMD_NEEDS_SELECTED) && c->state != CLIENT_SELECTED) {
        client_tagged(c, cmd->tag, "BAD No mailbox selected");
        goto done;
    }
    if ((def->flags & CMD_NOT_AUTH_ONLY) && c->state != CLIENT_NOT_AUTH) {
        client_tagged(c, cmd->tag, "BAD Already authenticated");
        goto done;
    }
    /* L3 of the 2026-12 review: the rights of the selected mailbox as they are now, not as
     * they were at SELECT; commands that only leave the mailbox need none */
    if (c->state == CLIENT_SELECTED && c->sel && !(def->flags & CMD_LEAVES_MAILBOX) &&
        selected_rights_check(c) < 0) {
        selected_sync_failed(c, CF_E_PERM);
        goto done;
    }
    c->cmd_flags = def->flags;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    notify_before_command(c);         /* NOTIFY: others' changes first (notify.h) */
    def->handler(c, cmd);
    notify_after_command(c, cmd);     /* NOTIFY: the command's own changes, untold */
    command_finish(c);
    /* the latency as the server sees it: from dispatch to the tagged reply's write; labelled
     * with the table's names only (UID FETCH counts as UID), so a client cannot make labels */
    clock_gettime(CLOCK_MONOTONIC, &t1);
    long long us = (t1.tv_sec - t0.tv_sec) * 1000000LL + (t1.tv_nsec - t0.tv_nsec) / 1000;
    metrics_command(def->name, us < 0 ? 0 : (uint64_t)us);
    return;
done:
    client_reply_flush(c);
}
