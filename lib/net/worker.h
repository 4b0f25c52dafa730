/* worker.h: the worker side of cofferd's prefork model, shared by imapd, pop3d and lmtpd.
 *
 * cofferd binds the listeners and forks+execs each worker as
 *     PROGRAM -C /path/coffer.conf -S SERVICE
 * with the service's listening sockets as fds 3 .. 3+N-1 (N in $COFFER_LISTEN_FDS) and a status
 * pipe to the master in $COFFER_STATUS_FD. worker_main() loads the config, calls ops->init,
 * then loops: report ready, accept on any listener, report busy, serve the connection with
 * ops->session, until maxuse connections are served or the master says stop.
 *
 * For tests and debugging, "PROGRAM -C conf -S SERVICE -i" serves one session on stdin/stdout
 * without a master (inetd style). */
#ifndef COFFER_NET_WORKER_H
#define COFFER_NET_WORKER_H
#include "core/config.h"
#include "core/strarr.h"
#include <signal.h>
#include <stdint.h>

struct stream;
struct tls_ctx;

struct worker_session {
    struct stream *stream;              /* owned by worker_main; freed after ops->session */
    const struct config *cfg;
    const struct config_service *svc;
    struct tls_ctx *tls;                /* NULL when no certificate is configured */
    int tls_implicit;                   /* service is tls = implicit: handshake already done */
    char peer[80];                      /* "127.0.0.1:51234", "[::1]:51234" or "unix" */
    char local[80];                     /* address the connection arrived on */
    int is_unix;                        /* connection over a UNIX socket */
    int is_loopback;                    /* peer is 127.0.0.0/8, ::1 or UNIX */
    const char *end_reason;             /* set by ops->session: why it ended ("logout",
                                         * "timeout", ...), for the disconnect log line */
};

struct worker_ops {
    const char *name;                   /* program name for logs: "imapd" */
    /* once per process after the config is loaded; non-zero return exits the worker */
    int (*init)(const struct config *cfg, const struct config_service *svc);
    /* serve one connection; the session id, peer and service are already in the log context */
    void (*session)(struct worker_session *ws);
};

/* Set by SIGTERM: the server is shutting down. A session waiting for input gets CF_E_SHUTDOWN
 * from the stream, says goodbye in its protocol (* BYE, -ERR, 421) and returns. */
extern volatile sig_atomic_t worker_shutdown;

/* Set by SIGUSR2 (cofferd retires the worker on reload): exit when the current session ends,
 * at once when idle. Live connections are never cut by it. */
extern volatile sig_atomic_t worker_retire;

/* The contract between cofferd and its workers. Listeners are fds WORKER_FIRST_FD ..
 * WORKER_FIRST_FD+N-1 with N in $COFFER_LISTEN_FDS; $COFFER_STATUS_FD is the write end of one
 * pipe shared by all workers, on which each sends struct worker_status records: READY when it is
 * idle and about to accept, BUSY when it got a connection. A record is 8 bytes, far below
 * PIPE_BUF, so writes from many workers never interleave. */
#define WORKER_FIRST_FD 3
#define WORKER_ENV_LISTEN_FDS "COFFER_LISTEN_FDS"
#define WORKER_ENV_STATUS_FD "COFFER_STATUS_FD"
/* set to 1 by `cofferd -d`: the worker logs to stderr at debug level whatever the config says */
#define WORKER_ENV_DEBUG "COFFER_DEBUG"
enum worker_state { WORKER_READY = 1, WORKER_BUSY = 2 };
struct worker_status {
    int32_t pid;
    int32_t state;                      /* enum worker_state */
};

/* worker_args: the extra arguments after "-C conf -S service" (from the service's args
 * setting), valid after worker_main has started; owned by worker.c. */
const struct strarr *worker_args(void);

/* worker_main: never returns to a caller that should go on; returns the exit code for main. */
int worker_main(int argc, char **argv, const struct worker_ops *ops);

#endif
