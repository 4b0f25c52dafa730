/* cmd-compress.c: COMPRESS DEFLATE (RFC 4978); the deflate layer is lib/net/stream-deflate.c. */
#include "imapd.h"
#include "core/error.h"
#include "core/log.h"
#include "net/stream.h"
#include <strings.h>

void cmd_compress(struct client *c, const struct imap_command *cmd)
{
    const char *mech = cmd->nargs == 1 ? imap_arg_atom(&cmd->args[0]) : NULL;
    if (!mech || cmd->args[0].type != IMAP_ARG_ATOM) {
        client_tagged(c, cmd->tag, "BAD COMPRESS takes one argument: a mechanism name");
        return;
    }
    /* RFC 4978 section 3: DEFLATE is the one mechanism; any other is BAD */
    if (strcasecmp(mech, "DEFLATE")) {
        client_tagged(c, cmd->tag, "BAD Unknown compression mechanism %.64s", mech);
        return;
    }
    /* RFC 4978 section 3: NO with COMPRESSIONACTIVE when the same compression is already on
     * (TLS never compresses here: tls_ctx_new sets SSL_OP_NO_COMPRESSION) */
    if (stream_is_compressed(c->stream)) {
        client_tagged(c, cmd->tag, "NO [COMPRESSIONACTIVE] DEFLATE is already active");
        return;
    }
    client_tagged(c, cmd->tag, "OK DEFLATE active");
    /* compression starts right after the CRLF of the tagged OK, which goes out uncompressed
     * (RFC 4978 section 3): stream_start_deflate flushes it first */
    client_reply_flush(c);
    int r = stream_start_deflate(c->stream);
    if (r < 0) {
        /* the OK is out: the client now compresses and we cannot follow; end the session */
        log_err("compress_failed", "op=start error=%d", r);
        c->end_reason = "compress_error";
        return;
    }
    log_info("compress", "mechanism=DEFLATE tls=%d", stream_is_tls(c->stream));
}
