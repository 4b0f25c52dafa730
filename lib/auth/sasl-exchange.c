/* sasl-exchange.c: the session's SASL exchange and its challenge/response loop, shared by
 * imapd, pop3d and lmtpd. */
#include "auth/sasl-exchange.h"
#include "core/base64.h"
#include "core/error.h"
#include <stdio.h>
#include <string.h>

/* sasl_addr: a worker address ("IP:PORT" or "[v6]:PORT") as SASL wants it ("IP;PORT") in
 * out; NULL when there is no port to split off. */
static const char *sasl_addr(const char *a, char *out, size_t outlen)
{
    const char *colon = strrchr(a, ':');
    if (!colon) return NULL;
    size_t hl = (size_t)(colon - a);
    if (hl >= 2 && a[0] == '[' && a[hl - 1] == ']') {
        a++;
        hl -= 2;
    }
    snprintf(out, outlen, "%.*s;%s", (int)hl, a, colon + 1);
    return out;
}

int csasl_session_new(const char *service, const struct worker_session *ws, struct csasl **out)
{
    char local[96], peer[96];
    const char *l = ws->is_unix ? NULL : sasl_addr(ws->local, local, sizeof local);
    const char *p = ws->is_unix ? NULL : sasl_addr(ws->peer, peer, sizeof peer);
    /* L12: the negotiated cipher's strength; SASL offers plaintext mechanisms above 0 */
    return csasl_new(service, l, p, stream_tls_ssf(ws->stream), out);
}

/* send_challenge: prefix, data in base64, CRLF (buffered). */
static void send_challenge(struct stream *st, const char *prefix, const char *data, size_t len)
{
    struct buf b = BUF_INIT;
    buf_appends(&b, prefix);
    base64_encode(data, len, &b);
    buf_appends(&b, "\r\n");
    stream_write(st, b.s, b.len);
    buf_fini(&b);
}

/* read_response: the client's answer to a challenge, decoded into data. CSASL_FINISHED with
 * the answer, another outcome (*result_r set for CSASL_READ_FAILED) otherwise. */
static enum csasl_outcome read_response(struct stream *st, struct buf *line, struct buf *data,
                                        int *result_r)
{
    int r = stream_flush(st);
    if (r == 0) r = stream_read_line(st, line);
    if (r == CF_E_LIMIT) return CSASL_TOO_LONG;
    if (r < 0) {
        *result_r = r;
        return CSASL_READ_FAILED;
    }
    if (line->len == 1 && line->s[0] == '*') return CSASL_CANCELLED;
    if (base64_decode(line->s ? line->s : "", line->len, data)) return CSASL_BAD_RESPONSE;
    return CSASL_FINISHED;
}

enum csasl_outcome csasl_exchange(struct csasl *s, struct stream *st, const char *prefix,
                                  const char *mech, const char *ir, int *result_r)
{
    struct buf line = BUF_INIT, data = BUF_INIT;
    enum csasl_outcome o = CSASL_FINISHED;
    const char *out = NULL;
    size_t outlen = 0;
    int r;
    if (ir) {
        if (strcmp(ir, "=") && base64_decode(ir, strlen(ir), &data)) {
            o = CSASL_BAD_INITIAL;
            goto done;
        }
        r = csasl_start(s, mech, data.s ? data.s : "", data.len, &out, &outlen);
    } else {
        r = csasl_start(s, mech, NULL, 0, &out, &outlen);
    }
    while (r == 1) {
        send_challenge(st, prefix, out, outlen);
        if ((o = read_response(st, &line, &data, result_r)) != CSASL_FINISHED) goto done;
        r = csasl_step(s, data.s ? data.s : "", data.len, &out, &outlen);
    }
    if (r == 0 && outlen) {
        /* none of the three protocols carries data with success (IMAP, POP3 section 4 of
         * RFC 5034, the 235 of RFC 4954): the server's last data (SCRAM's "v=" signature)
         * goes as one more challenge, answered with an empty line */
        send_challenge(st, prefix, out, outlen);
        if ((o = read_response(st, &line, &data, result_r)) != CSASL_FINISHED) goto done;
        if (data.len) r = CF_E_PARSE;
    }
    *result_r = r;
done:
    buf_fini(&line);
    buf_fini(&data);
    return o;
}
