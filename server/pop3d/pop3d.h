/* pop3d.h: the POP3 server's session state, command table and command handlers. */
#ifndef COFFER_POP3D_POP3D_H
#define COFFER_POP3D_POP3D_H
#include "core/strarr.h"
#include "net/worker.h"
#include <time.h>

/* RFC 1939 section 3: session states. */
enum client_state {
    CLIENT_AUTHORIZATION,
    CLIENT_TRANSACTION,
    CLIENT_UPDATE,
};

struct client {
    struct worker_session *ws;
    struct stream *stream;          /* ws->stream; not owned */
    enum client_state state;
    const char *end_reason;         /* set when the session is to end */
    struct timespec started;
};

/* A command line split at single spaces (RFC 1939 section 3, RFC 2449 section 3). */
struct pop3_command {
    char *name;                     /* the keyword in upper case */
    struct strarr args;
};

struct client *client_new(struct worker_session *ws);
void client_free(struct client **c);

/* client_tls_available: 1 when STLS may be offered: a certificate is configured, the service
 * does not say tls = none, and the connection is not yet under TLS. */
int client_tls_available(const struct client *c);

/* client_reply: write one line plus CRLF (buffered until the session loop flushes). */
int client_reply(struct client *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

const char *pop3d_hostname(void);

enum command_flags {
    CMD_AUTHORIZATION = 1 << 0,     /* only before login (RFC 1939 section 4) */
    CMD_TRANSACTION = 1 << 1,       /* only after login (RFC 1939 section 5) */
};

struct command {
    const char *name;
    void (*handler)(struct client *c, const struct pop3_command *cmd);
    unsigned flags;
};

const struct command *command_find(const char *name);

/* command_dispatch: check the state, run the handler; "-ERR Unknown command" otherwise. */
void command_dispatch(struct client *c, const struct pop3_command *cmd);

void cmd_capa(struct client *c, const struct pop3_command *cmd);     /* cmd-session.c */
void cmd_noop(struct client *c, const struct pop3_command *cmd);
void cmd_quit(struct client *c, const struct pop3_command *cmd);
void cmd_stls(struct client *c, const struct pop3_command *cmd);     /* cmd-stls.c */

#endif
