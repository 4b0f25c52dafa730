/* lmtpd.h: the LMTP server's session state, command table and command handlers. */
#ifndef COFFER_LMTPD_LMTPD_H
#define COFFER_LMTPD_LMTPD_H
#include "net/worker.h"
#include <time.h>

struct client {
    struct worker_session *ws;
    struct stream *stream;          /* ws->stream; not owned */
    int greeted;                    /* LHLO was accepted (reset by STARTTLS, RFC 3207 4.2) */
    char *lhlo_name;                /* what the client called itself (owned) */
    const char *end_reason;         /* set when the session is to end */
    struct timespec started;
};

/* A command line: the verb in upper case and everything after the first space. */
struct lmtp_command {
    char *verb;
    const char *args;               /* "" when there are none */
};

struct client *client_new(struct worker_session *ws);
void client_free(struct client **c);

/* client_tls_available: 1 when STARTTLS may be offered (certificate configured, service not
 * tls = none, not yet under TLS). */
int client_tls_available(const struct client *c);

/* client_reply: one reply line plus CRLF, buffered until the session loop flushes. */
int client_reply(struct client *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* client_reset: forget the current transaction (RSET, LHLO, STARTTLS). */
void client_reset(struct client *c);

const char *lmtpd_hostname(void);

struct command {
    const char *verb;
    void (*handler)(struct client *c, const struct lmtp_command *cmd);
};

const struct command *command_find(const char *verb);

/* command_dispatch: run the handler; "500 5.5.2 Unknown command" otherwise. */
void command_dispatch(struct client *c, const struct lmtp_command *cmd);

void cmd_lhlo(struct client *c, const struct lmtp_command *cmd);     /* cmd-session.c */
void cmd_helo(struct client *c, const struct lmtp_command *cmd);
void cmd_noop(struct client *c, const struct lmtp_command *cmd);
void cmd_rset(struct client *c, const struct lmtp_command *cmd);
void cmd_quit(struct client *c, const struct lmtp_command *cmd);
void cmd_starttls(struct client *c, const struct lmtp_command *cmd); /* cmd-starttls.c */

#endif
