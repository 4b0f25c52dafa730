/* commands.c: the one table of POP3 commands: keyword, handler, and the state each needs.
 * Keywords not in the table get "-ERR Unknown command": USER, PASS, STAT, LIST, RETR, DELE,
 * TOP, UIDL and the rest arrive with the POP3 mail-access work and are added here. */
#include "pop3d.h"
#include <string.h>

static const struct command commands[] = {
    { "CAPA", cmd_capa, 0 },                    /* RFC 2449 section 5 */
    { "NOOP", cmd_noop, 0 },                    /* RFC 1939 section 5 */
    { "QUIT", cmd_quit, 0 },                    /* RFC 1939 sections 4 and 6 */
    { "STLS", cmd_stls, CMD_AUTHORIZATION },    /* RFC 2595 section 4 */
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
        client_reply(c, "-ERR Not allowed after login");
        return;
    }
    if ((def->flags & CMD_TRANSACTION) && c->state != CLIENT_TRANSACTION) {
        client_reply(c, "-ERR Not logged in");
        return;
    }
    def->handler(c, cmd);
}
