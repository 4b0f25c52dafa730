/* cmd-session.c: CAPA, NOOP and QUIT (RFC 2449 section 5, RFC 1939 sections 4-6). */
#include "pop3d.h"
#include "core/config.h"
#include "auth/sasl.h"
#include "core/log.h"

static int no_args(struct client *c, const struct pop3_command *cmd)
{
    if (cmd->args.count == 0) return 1;
    client_reply(c, "-ERR %s takes no arguments", cmd->name);
    return 0;
}

/* Only what this server does now: USER while passwords may be sent, SASL with the mechanisms
 * the library offers on this connection, STLS while it can still be started. */
void cmd_capa(struct client *c, const struct pop3_command *cmd)
{
    if (!no_args(c, cmd)) return;
    client_reply(c, "+OK Capability list follows");
    client_reply(c, "TOP");
    client_reply(c, "UIDL");
    if (c->state == CLIENT_AUTHORIZATION) {
        if (worker_plaintext_ok(c->ws)) client_reply(c, "USER");
        struct csasl *s = client_sasl(c);
        struct buf mechs = BUF_INIT;
        if (s && csasl_mechs(s, " ", &mechs) == 0 && mechs.len)
            client_reply(c, "SASL %s", buf_cstr(&mechs));
        buf_fini(&mechs);
    }
    client_reply(c, "RESP-CODES");
    client_reply(c, "AUTH-RESP-CODE");
    client_reply(c, "PIPELINING");
    if (c->state == CLIENT_AUTHORIZATION && worker_tls_available(c->ws)) client_reply(c, "STLS");
    /* RFC 2449 sections 6.7 and 6.8: the server never removes messages by itself, and a
     * client must wait pop3_login_delay seconds between logins */
    client_reply(c, "EXPIRE NEVER");
    client_reply(c, "LOGIN-DELAY %lld", config_int(c->ws->cfg, CFG_POP3_LOGIN_DELAY));
    client_reply(c, "IMPLEMENTATION Coffer");
    client_reply(c, ".");
}

void cmd_noop(struct client *c, const struct pop3_command *cmd)
{
    if (!no_args(c, cmd)) return;
    client_reply(c, "+OK");
}

/* QUIT in the TRANSACTION state enters UPDATE (RFC 1939 section 6): the messages marked
 * deleted are expunged; the reply says how many. Before login it only says goodbye. */
void cmd_quit(struct client *c, const struct pop3_command *cmd)
{
    if (!no_args(c, cmd)) return;
    c->end_reason = "quit";
    if (c->state != CLIENT_TRANSACTION) {
        client_reply(c, "+OK Coffer POP3 server signing off");
        return;
    }
    c->state = CLIENT_UPDATE;
    uint32_t expunged = 0;
    int r = maildrop_commit(c->drop, &expunged);
    maildrop_close(&c->drop);       /* writes pending \Seen flags and unlocks */
    if (r) {
        client_reply(c, "-ERR [SYS/TEMP] Some deleted messages were not removed");
        return;
    }
    if (expunged) log_info("pop3_expunge", "messages=%u", expunged);
    client_reply(c, "+OK Coffer POP3 server signing off (%u messages deleted)", expunged);
}
