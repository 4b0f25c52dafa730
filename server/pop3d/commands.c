/* commands.c: the one table of POP3 commands: keyword, handler, and the state each needs.
 * Keywords not in the table get "-ERR Unknown command". */
#include "pop3d.h"
#include <string.h>

static const struct command commands[] = {
    { "APOP", cmd_apop, CMD_AUTHORIZATION },    /* RFC 1939 section 7 (refused) */
    { "AUTH", cmd_auth, CMD_AUTHORIZATION },    /* RFC 5034 section 4 */
    { "CAPA", cmd_capa, 0 },                    /* RFC 2449 section 5 */
    { "DELE", cmd_dele, CMD_TRANSACTION },      /* RFC 1939 section 5 */
    { "LIST", cmd_list, CMD_TRANSACTION },
    { "NOOP", cmd_noop, CMD_TRANSACTION },
    { "PASS", cmd_pass, CMD_AUTHORIZATION },    /* RFC 1939 section 7 */
    { "QUIT", cmd_quit, 0 },                    /* RFC 1939 sections 4 and 6 */
    { "RETR", cmd_retr, CMD_TRANSACTION },      /* RFC 1939 section 5 */
    { "RSET", cmd_rset, CMD_TRANSACTION },
    { "STAT", cmd_stat, CMD_TRANSACTION },
    { "STLS", cmd_stls, CMD_AUTHORIZATION },    /* RFC 2595 section 4 */
    { "TOP", cmd_top, CMD_TRANSACTION },        /* RFC 1939 section 7 */
    { "UIDL", cmd_uidl, CMD_TRANSACTION },
    { "USER", cmd_user, CMD_AUTHORIZATION },
};

const struct command *command_find(const char *name)
{
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(commands[i].name, name)) return &commands[i];
    return NULL;
}

void command_dispatch(struct client *c, const struct pop3_command *cmd)
{
    const struct command *def = command_find(cmd->name);
    if (!def) {
        client_reply(c, "-ERR Unknown command");
        return;
    }
    if ((def->flags & CMD_AUTHORIZATION) && c->state != CLIENT_AUTHORIZATION) {
        client_reply(c, "-ERR %s is not allowed after login", def->name);
        return;
    }
    if ((def->flags & CMD_TRANSACTION) && c->state != CLIENT_TRANSACTION) {
        client_reply(c, "-ERR %s is only allowed after login", def->name);
        return;
    }
    def->handler(c, cmd);
}
