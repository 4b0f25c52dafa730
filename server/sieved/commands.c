/* commands.c: the one table of ManageSieve commands (RFC 5804 section 2): name, handler, the
 * state each needs and its arguments, checked here so handlers get them right. */
#include "sieved.h"
#include <string.h>

static const struct command commands[] = {
    { "AUTHENTICATE", cmd_authenticate, CMD_NOAUTH, 1, 2, "ss" },   /* section 2.1 */
    { "CAPABILITY", cmd_capability, 0, 0, 0, "" },                  /* section 2.4 */
    { "CHECKSCRIPT", cmd_checkscript, CMD_AUTH, 1, 1, "s" },        /* section 2.12 */
    { "DELETESCRIPT", cmd_deletescript, CMD_AUTH, 1, 1, "s" },      /* section 2.10 */
    { "GETSCRIPT", cmd_getscript, CMD_AUTH, 1, 1, "s" },            /* section 2.9 */
    { "HAVESPACE", cmd_havespace, CMD_AUTH, 2, 2, "sn" },           /* section 2.5 */
    { "LISTSCRIPTS", cmd_listscripts, CMD_AUTH, 0, 0, "" },         /* section 2.7 */
    { "LOGOUT", cmd_logout, 0, 0, 0, "" },                          /* section 2.3 */
    { "NOOP", cmd_noop, 0, 0, 1, "s" },                             /* section 2.13 */
    { "PUTSCRIPT", cmd_putscript, CMD_AUTH, 2, 2, "ss" },           /* section 2.6 */
    { "RENAMESCRIPT", cmd_renamescript, CMD_AUTH, 2, 2, "ss" },     /* section 2.11 */
    { "SETACTIVE", cmd_setactive, CMD_AUTH, 1, 1, "s" },            /* section 2.8 */
    { "STARTTLS", cmd_starttls, CMD_NOAUTH, 0, 0, "" },             /* section 2.2 */
    { "UNAUTHENTICATE", cmd_unauthenticate, CMD_AUTH, 0, 0, "" },   /* section 2.14 */
};

void command_dispatch(struct client *c, const struct msieve_command *cmd)
{
    const struct command *def = NULL;
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(commands[i].name, cmd->name)) def = &commands[i];
    if (!def) {
        client_status(c, "NO", NULL, "Unknown command");
        return;
    }
    if ((def->flags & CMD_NOAUTH) && c->user) {
        client_status(c, "NO", NULL, "%s is not allowed after authentication", def->name);
        return;
    }
    if ((def->flags & CMD_AUTH) && !c->user) {
        client_status(c, "NO", NULL, "Authenticate first");
        return;
    }
    if (cmd->nargs < def->min_args || cmd->nargs > def->max_args) {
        client_status(c, "NO", NULL, "Wrong number of arguments for %s", def->name);
        return;
    }
    for (size_t i = 0; i < cmd->nargs; i++) {
        enum msieve_arg_type want = def->args[i] == 'n' ? MSIEVE_NUMBER : MSIEVE_STRING;
        if (cmd->args[i].type != want) {
            client_status(c, "NO", NULL, "Argument %zu of %s must be a %s", i + 1, def->name,
                          want == MSIEVE_NUMBER ? "number" : "string");
            return;
        }
    }
    def->handler(c, cmd);
}
