/* cmd-starttls.c: STARTTLS (RFC 3207). */
#include "lmtpd.h"
#include "core/error.h"
#include "core/log.h"
#include "net/stream.h"
#include <stdlib.h>

void cmd_starttls(struct client *c, const struct lmtp_command *cmd)
{
    if (*cmd->args) {
        client_reply(c, "501 5.5.4 Syntax: STARTTLS takes no parameters");
        return;
    }
    if (stream_is_tls(c->stream)) {
        client_reply(c, "503 5.5.1 TLS is already active");
        return;
    }
    if (!worker_tls_available(c->ws)) {
        client_reply(c, "454 4.7.0 TLS not available");
        return;
    }
    client_reply(c, "220 2.0.0 Ready to start TLS");
    if (worker_starttls(c->ws, &c->end_reason) < 0) return;
    client_reset(c);
    c->greeted = 0;
    /* RFC 3207 section 4.2: forget what the client said before TLS, an AUTH included */
    free(c->auth_user);
    c->auth_user = NULL;
    free(c->lhlo_name);
    c->lhlo_name = NULL;
}
