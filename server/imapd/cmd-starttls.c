/* cmd-starttls.c: STARTTLS (RFC 3501 section 6.2.1, RFC 2595 section 3.1). */
#include "imapd.h"
#include "core/error.h"
#include "core/log.h"
#include "net/stream.h"

void cmd_starttls(struct client *c, const struct imap_command *cmd)
{
    if (cmd->nargs) {
        client_tagged(c, cmd->tag, "BAD STARTTLS takes no arguments");
        return;
    }
    if (stream_is_tls(c->stream)) {
        client_tagged(c, cmd->tag, "BAD TLS is already active");
        return;
    }
    if (!worker_tls_available(c->ws)) {
        client_tagged(c, cmd->tag, "BAD STARTTLS is not available");
        return;
    }
    client_tagged(c, cmd->tag, "OK Begin TLS negotiation now");
    /* the OK goes out in clear before the handshake (RFC 3501 section 6.2.1) */
    client_reply_flush(c);
    if (worker_starttls(c->ws, &c->end_reason) < 0) return;
}
