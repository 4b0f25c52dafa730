/* cmd-uid.c: the UID command (RFC 3501 section 6.4.8): runs the sub-command's handler with
 * UIDs instead of message numbers. */
#include "imapd.h"
#include <ctype.h>
#include <string.h>

void cmd_uid(struct client *c, const struct imap_command *cmd)
{
    const char *sub = cmd->nargs ? imap_arg_atom(&cmd->args[0]) : NULL;
    if (!sub || strlen(sub) > 32) {
        client_tagged(c, cmd->tag, "BAD UID needs a command");
        return;
    }
    char name[40] = "UID ";
    size_t i;
    for (i = 0; sub[i]; i++) name[4 + i] = (char)toupper((unsigned char)sub[i]);
    name[4 + i] = '\0';
    const struct command *def = command_find(name + 4);
    if (!def || !(def->flags & CMD_UID)) {
        client_tagged(c, cmd->tag, "BAD Unknown UID command %s", name + 4);
        return;
    }
    /* RFC 3501 section 6.4.8, RFC 9051 section 7.5.1: UID FETCH, UID STORE and UID SEARCH are
     * other commands than FETCH, STORE and SEARCH; they name messages by UID, so EXPUNGE may
     * precede their completion, and FETCH updates carry the UID */
    c->cmd_flags = (def->flags & ~CMD_USES_SEQS) | CMD_UID_FORM;
    /* handlers see "UID FETCH" and the arguments after the sub-command (command_is_uid) */
    struct imap_command uc = *cmd;
    uc.name = name;
    uc.args = cmd->args + 1;
    uc.nargs = cmd->nargs - 1;
    def->handler(c, &uc);
}
