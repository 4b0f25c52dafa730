/* cmd-any.c: the commands valid in any state: CAPABILITY, NOOP, LOGOUT (RFC 3501 section 6.1). */
#include "imapd.h"

static int no_args(struct client *c, const struct imap_command *cmd)
{
    if (cmd->nargs == 0) return 1;
    client_tagged(c, cmd->tag, "BAD %s takes no arguments", cmd->name);
    return 0;
}

void cmd_capability(struct client *c, const struct imap_command *cmd)
{
    if (!no_args(c, cmd)) return;
    struct buf caps = BUF_INIT;
    client_capabilities(c, &caps);
    client_untagged(c, "CAPABILITY %s", buf_cstr(&caps));
    client_tagged(c, cmd->tag, "OK CAPABILITY completed");
    buf_fini(&caps);
}

void cmd_noop(struct client *c, const struct imap_command *cmd)
{
    if (!no_args(c, cmd)) return;
    client_tagged(c, cmd->tag, "OK NOOP completed");
}

/* RFC 3501 section 6.1.3: BYE first, then the tagged OK, then the server closes. */
void cmd_logout(struct client *c, const struct imap_command *cmd)
{
    if (!no_args(c, cmd)) return;
    client_untagged(c, "BYE Coffer IMAP4rev1 server logging out");
    client_tagged(c, cmd->tag, "OK LOGOUT completed");
    c->state = CLIENT_LOGOUT;
    c->end_reason = "logout";
}
