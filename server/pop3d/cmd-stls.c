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
    if (!worker_tls_available(c->ws)) {
        client_reply(c, "-ERR TLS is not available");
        return;
    }
    client_reply(c, "+OK Begin TLS negotiation");
    if (worker_starttls(c->ws, &c->end_reason) < 0) return;
    /* RFC 2595 section 4: forget what was said before TLS; SASL is set up anew with the TLS
     * strength (plaintext mechanisms become available) */
    free(c->user_arg);
    c->user_arg = NULL;
    csasl_free(&c->sasl);
}
