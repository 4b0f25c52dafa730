/* commands.c: the one table of IMAP commands: name, handler, and the state each needs.
 *
 * A command not in this table is answered "BAD Unknown command NAME", so the server never
 * claims to support what it does not. New commands are added here and in a cmd-<family>.c
 * file; UID FETCH/STORE/COPY/SEARCH/EXPUNGE will come as a UID entry whose handler looks up
 * its first argument among the entries flagged CMD_UID. */
#include "imapd.h"
#include "selected.h"
#include "core/error.h"
#include <string.h>

static const struct command commands[] = {
    /* RFC 3501 section 6.1: any state */
    { "CAPABILITY", cmd_capability, 0 },
    { "LOGOUT", cmd_logout, 0 },
    { "NOOP", cmd_noop, 0 },
    /* RFC 3501 section 6.2: not authenticated state */
    { "STARTTLS", cmd_starttls, CMD_NOT_AUTH_ONLY },
    { "AUTHENTICATE", cmd_authenticate, CMD_NOT_AUTH_ONLY },
    { "LOGIN", cmd_login, CMD_NOT_AUTH_ONLY },
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
    { "SELECT", cmd_select, CMD_NEEDS_AUTH },
    /* RFC 4314 section 3: ACL (cmd-acl.c); RFC 9208 section 4.1: QUOTA (cmd-quota.c) */
    { "SETACL", cmd_setacl, CMD_NEEDS_AUTH },
    { "DELETEACL", cmd_deleteacl, CMD_NEEDS_AUTH },
    { "GETACL", cmd_getacl, CMD_NEEDS_AUTH },
    { "LISTRIGHTS", cmd_listrights, CMD_NEEDS_AUTH },
    { "MYRIGHTS", cmd_myrights, CMD_NEEDS_AUTH },
    { "GETQUOTA", cmd_getquota, CMD_NEEDS_AUTH },
    { "GETQUOTAROOT", cmd_getquotaroot, CMD_NEEDS_AUTH },
    { "SETQUOTA", cmd_setquota, CMD_NEEDS_AUTH },
    { "EXAMINE", cmd_examine, CMD_NEEDS_AUTH },
    /* RFC 3501 section 6.4: selected state */
    { "CHECK", cmd_check, CMD_NEEDS_SELECTED },
    { "CLOSE", cmd_close, CMD_NEEDS_SELECTED },
    { "UNSELECT", cmd_unselect, CMD_NEEDS_SELECTED },   /* RFC 3691 */
    { "EXPUNGE", cmd_expunge, CMD_NEEDS_SELECTED | CMD_UID },  /* UID EXPUNGE: RFC 4315 */
    { "FETCH", cmd_fetch, CMD_NEEDS_SELECTED | CMD_UID },
    { "STORE", cmd_store, CMD_NEEDS_SELECTED | CMD_UID },
    { "COPY", cmd_copy, CMD_NEEDS_SELECTED | CMD_UID },
    { "SEARCH", cmd_search, CMD_NEEDS_SELECTED | CMD_UID },
    { "MOVE", cmd_move, CMD_NEEDS_SELECTED | CMD_UID },        /* RFC 6851 */
    { "UID", cmd_uid, CMD_NEEDS_SELECTED },
};

const struct command *command_find(const char *name)
{
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(commands[i].name, name)) return &commands[i];
    return NULL;
}

void command_dispatch(struct client *c, const struct imap_command *cmd)
{
    const struct command *def = command_find(cmd->name);
    if (!def) {
        client_tagged(c, cmd->tag, "BAD Unknown command %.64s", cmd->name);
        return;
    }
    if ((def->flags & CMD_NEEDS_AUTH) && c->state == CLIENT_NOT_AUTH) {
        client_tagged(c, cmd->tag, "BAD Not authenticated");
        return;
    }
    if ((def->flags & CMD_NEEDS_SELECTED) && c->state != CLIENT_SELECTED) {
        client_tagged(c, cmd->tag, "BAD No mailbox selected");
        return;
    }
    if ((def->flags & CMD_NOT_AUTH_ONLY) && c->state != CLIENT_NOT_AUTH) {
        client_tagged(c, cmd->tag, "BAD Already authenticated");
        return;
    }
    /* L3 of the 2026-12 review: the rights of the selected mailbox as they are now, not as
     * they were at SELECT; commands that only leave the mailbox need none */
    if (c->state == CLIENT_SELECTED && c->sel && strcmp(def->name, "LOGOUT") &&
        strcmp(def->name, "SELECT") && strcmp(def->name, "EXAMINE") &&
        strcmp(def->name, "UNSELECT") && selected_rights_check(c) < 0) {
        selected_sync_failed(c, CF_E_PERM);
        return;
    }
    c->cmd = cmd;   /* for the sync before the tagged reply (selected.h) */
    def->handler(c, cmd);
    c->cmd = NULL;
}
