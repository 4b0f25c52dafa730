/* client.c: the state of one LMTP connection and its replies. */
#include "lmtpd.h"
#include "auth/sasl.h"
#include "core/config.h"
#include "core/xmalloc.h"
#include "net/stream.h"
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct client *client_new(struct worker_session *ws)
{
    struct client *c = xzmalloc(sizeof *c);
    c->ws = ws;
    c->stream = ws->stream;
    clock_gettime(CLOCK_MONOTONIC, &c->started);
    c->spool_fd = -1;
    return c;
}

const struct line_texts client_texts = {
    "500 5.5.2 Line too long",   /* RFC 5321 section 4.5.3.1.4 */
    "421 4.4.2 Idle timeout", "421 4.3.2 Server shutting down",
};

void client_free(struct client **cp)
{
    struct client *c = *cp;
    if (!c) return;
    client_reset(c);
    csasl_free(&c->sasl);
    free(c->auth_user);
    free(c->rcpts);
    free(c->lhlo_name);
    free(c);
    *cp = NULL;
}

void client_reset(struct client *c)
{
    free(c->mail_from);
    c->mail_from = NULL;
    c->declared_size = 0;
    for (size_t i = 0; i < c->nrcpts; i++) {
        struct rcpt *r = &c->rcpts[i];
        free(r->addr);
        free(r->user);
        free(r->detail);
        free(r->mailbox);
    }
    c->nrcpts = 0;
    if (c->spool_fd >= 0) close(c->spool_fd);
    c->spool_fd = -1;
    c->spool_size = 0;
    c->bdat_failed = 0;
    c->bdat_error = NULL;
}

int client_reply(struct client *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int r = worker_vreply(c->stream, fmt, ap);   /* L1: one line, controls as '?' */
    va_end(ap);
    return r;
}
