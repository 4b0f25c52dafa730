/* sasl-exchange.h: the part of a SASL authentication the three services share: the session's
 * server exchange (csasl_session_new: one policy for TLS strength and peer addresses) and the
 * challenge/response loop over the session's stream (csasl_exchange). IMAP AUTHENTICATE
 * (RFC 3501 section 6.2.2, RFC 4959), POP3 AUTH (RFC 5034) and LMTP/SMTP AUTH (RFC 4954)
 * differ only in the challenge prefix and in the words of their answers. */
#ifndef COFFER_AUTH_SASL_EXCHANGE_H
#define COFFER_AUTH_SASL_EXCHANGE_H
#include "auth/sasl.h"
#include "net/stream.h"
#include "net/worker.h"

/* csasl_session_new: csasl_new for the connection of ws: its local and peer addresses (as SASL
 * writes them, "IP;PORT"; none for a UNIX socket) and the TLS strength of its stream now
 * (stream_tls_ssf; a new exchange is needed after STARTTLS). 0 or CF_E_INTERNAL (logged). */
int csasl_session_new(const char *service, const struct worker_session *ws, struct csasl **out);

enum csasl_outcome {
    CSASL_FINISHED,         /* SASL decided: *result_r as csasl_step: 0 authenticated, else
                             * CF_E_PERM, CF_E_PARSE, CF_E_NOTFOUND or CF_E_AGAIN */
    CSASL_BAD_INITIAL,      /* the initial response is not base64 */
    CSASL_CANCELLED,        /* the client answered a challenge with "*" */
    CSASL_BAD_RESPONSE,     /* a response was not base64 */
    CSASL_TOO_LONG,         /* a response was longer than the stream's line limit (the
                             * line is skipped) */
    CSASL_READ_FAILED,      /* reading a response failed: *result_r is the stream's error
                             * (worker_read_end turns it into the end reason) */
};

/* csasl_exchange: run an exchange of mechanism mech on st: csasl_start with the initial
 * response ir (base64 as the client sent it, "=" for an empty one, NULL for none), then
 * challenges (prefix, then the data in base64, then CRLF: "+ " for IMAP and POP3, "334 " for
 * LMTP) and responses until SASL decides. Data the server still has with success goes as one
 * more challenge, which the client must answer with an empty line (RFC 4422 section 5; a
 * non-empty answer gives CF_E_PARSE). Flushes st before each read; blocks on the client.
 * Writes nothing but challenges: the caller answers every outcome in its protocol's words. */
enum csasl_outcome csasl_exchange(struct csasl *s, struct stream *st, const char *prefix,
                                  const char *mech, const char *ir, int *result_r);

#endif
