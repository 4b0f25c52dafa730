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
    if (!client_tls_available(c)) {
        client_tagged(c, cmd->tag, "BAD STARTTLS is not available");
        return;
    }
    client_tagged(c, cmd->tag, "OK Begin TLS negotiation now");
    if (stream_flush(c->stream) < 0) {
        c->end_reason = "io";
        return;
    }
    /* Anything the client pipelined after STARTTLS was sent in plaintext and could have been
     * injected by a man in the middle: the stream throws it away before the handshake (and logs that). */
    int r = stream_start_tls(c->stream, c->ws->tls);
    if (r < 0) {
        log_info("starttls_failed", "error=%s", log_quote(cf_strerror(r)));
        c->end_reason = "tls_failed";
        return;
    }
    log_info("starttls", "tls=%s", log_quote(stream_tls_info(c->stream)));
}
