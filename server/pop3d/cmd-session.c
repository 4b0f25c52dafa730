/* cmd-session.c: CAPA, NOOP and QUIT (RFC 2449 section 5, RFC 1939 sections 4-6). */
#include "pop3d.h"

static int no_args(struct client *c, const struct pop3_command *cmd)
{
    if (cmd->args.count == 0) return 1;
    client_reply(c, "-ERR %s takes no arguments", cmd->name);
    return 0;
}

/* Only what this server really does: USER, TOP and UIDL join the list with the commands. */
void cmd_capa(struct client *c, const struct pop3_command *cmd)
{
    if (!no_args(c, cmd)) return;
    client_reply(c, "+OK Capability list follows");
    client_reply(c, "RESP-CODES");
    client_reply(c, "AUTH-RESP-CODE");
    client_reply(c, "PIPELINING");
    if (c->state == CLIENT_AUTHORIZATION && client_tls_available(c)) client_reply(c, "STLS");
    client_reply(c, "IMPLEMENTATION Coffer");
    client_reply(c, ".");
}

void cmd_noop(struct client *c, const struct pop3_command *cmd)
{
    if (!no_args(c, cmd)) return;
    client_reply(c, "+OK");
}

void cmd_quit(struct client *c, const struct pop3_command *cmd)
{
    if (!no_args(c, cmd)) return;
    client_reply(c, "+OK Coffer POP3 server signing off");
    c->end_reason = "quit";
}
