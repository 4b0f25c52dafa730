/* cmd-stls.c: STLS (RFC 2595 section 4). */
#include "pop3d.h"
#include "auth/sasl.h"
#include "core/error.h"
#include "core/log.h"
#include "net/stream.h"
#include <stdlib.h>

void cmd_stls(struct client *c, const struct pop3_command *cmd)
{
    if (cmd->args.count) {
        client_reply(c, "-ERR STLS takes no arguments");
        return;
    }
    if (stream_is_tls(c->stream)) {
        client_reply(c, "-ERR TLS is already active");
        return;
    }
    if (!client_tls_available(c)) {
        client_reply(c, "-ERR TLS is not available");
        return;
    }
    client_reply(c, "+OK Begin TLS negotiation");
    if (stream_flush(c->stream) < 0) {
        c->end_reason = "io";
        return;
    }
    /* plaintext pipelined after STLS may have been injected: the stream discards it */
    int r = stream_start_tls(c->stream, c->ws->tls);
    if (r < 0) {
        log_info("starttls_failed", "error=%s", log_quote(cf_strerror(r)));
        c->end_reason = "tls_failed";
        return;
    }
    /* RFC 2595 section 4: forget what was said before TLS; SASL is set up anew with the TLS
     * strength (plaintext mechanisms become available) */
    free(c->user_arg);
    c->user_arg = NULL;
    csasl_free(&c->sasl);
    log_info("starttls", "tls=%s", log_quote(stream_tls_info(c->stream)));
}
