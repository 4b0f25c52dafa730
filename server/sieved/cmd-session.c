/* cmd-session.c: CAPABILITY, LOGOUT, NOOP and STARTTLS (RFC 5804 sections 2.4, 2.3, 2.13, 2.2). */
#include "sieved.h"
#include "auth/sasl.h"
#include "core/log.h"
#include "net/stream.h"
#include <string.h>

void cmd_capability(struct client *c, const struct msieve_command *cmd)
{
    (void)cmd;
    client_capabilities(c);
    client_status(c, "OK", NULL, "Capability completed");
}

void cmd_logout(struct client *c, const struct msieve_command *cmd)
{
    (void)cmd;
    client_status(c, "OK", NULL, "Logout completed");
    c->end_reason = "logout";
}

/* NOOP with a string echoes it in a TAG response code (section 2.13), so a client can tell
 * where the responses to its pipelined commands end. */
void cmd_noop(struct client *c, const struct msieve_command *cmd)
{
    if (!cmd->nargs) {
        client_status(c, "OK", NULL, "Done");
        return;
    }
    struct stream *s = c->stream;
    stream_puts(s, "OK (TAG ");
    client_string(c, cmd->args[0].s, cmd->args[0].len);
    stream_puts(s, ") \"Done\"\r\n");
}

void cmd_starttls(struct client *c, const struct msieve_command *cmd)
{
    (void)cmd;
    if (stream_is_tls(c->stream)) {
        client_status(c, "NO", NULL, "TLS is already active");
        return;
    }
    if (!worker_tls_available(c->ws)) {
        client_status(c, "NO", NULL, "TLS is not available");
        return;
    }
    client_status(c, "OK", NULL, "Begin TLS negotiation now");
    if (worker_starttls(c->ws, &c->end_reason) < 0) return;
    /* a new SASL exchange sees the TLS strength (plaintext mechanisms become available);
     * section 2.2: the server sends its capabilities again, then OK */
    csasl_free(&c->sasl);
    client_capabilities(c);
    client_status(c, "OK", NULL, "TLS negotiation successful");
}
