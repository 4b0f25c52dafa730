/* worker.h: the worker side of cofferd's prefork model, shared by imapd, pop3d, lmtpd
 * and sieved.
 *
 * cofferd binds the listeners and forks+execs one zygote per service as
 *     PROGRAM -C /path/coffer.conf -S SERVICE -Z
 * with the service's listening sockets as fds 3 .. 3+N-1 (N in $COFFER_LISTEN_FDS), a status
 * pipe to the master in $COFFER_STATUS_FD and a control socket in $COFFER_ZYGOTE_FD.
 * worker_main() loads the config, sets up the log and TLS context and calls ops->init; the
 * zygote then forks one worker per request from the master (so the workers share its
 * relocated library pages and loaded state copy-on-write; each is reparented to the master).
 * A worker loops: report ready, accept on any listener, report busy, serve the connection
 * with ops->session, until maxuse connections are served or the master says stop. Without
 * -Z (an older master, or by hand) the process is a worker itself. See man/cofferd.8.
 *
 * For tests and debugging, "PROGRAM -C conf -S SERVICE -i" serves one session on stdin/stdout
 * without a master (inetd style). */
#ifndef COFFER_NET_WORKER_H
#define COFFER_NET_WORKER_H
#include "core/config.h"
#include "core/strarr.h"
#include <signal.h>
#include <stdarg.h>
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
    int conn_slot;                      /* private to worker.c: its slot in the connection
                                         * table (net/conntab.h), 0 when not counted */
};

struct worker_ops {
    const char *name;                   /* program name for logs: "imapd" */
    /* once after the config, log and TLS context are set up, before any connection: under
     * cofferd in the service's zygote, so what it loads is shared copy-on-write by every
     * worker forked from it (under -i, in the process itself). It must not open what cannot
     * cross fork, such as a Berkeley DB environment: open such handles lazily, on first use
     * in the worker. Non-zero return exits the process. */
    int (*init)(const struct config *cfg, const struct config_service *svc);
    /* serve one connection; the session id, peer and service are already in the log context */
    void (*session)(struct worker_session *ws);
    /* the line (without CRLF) sent to a connection refused because its address already has
     * max_preauth_per_ip connections that have not logged in; NULL: close without a word.
     * Never sent on an implicit-TLS service (the refusal must not cost a handshake). */
    const char *too_many;
    /* IDLE hibernation (imapd; man/imap-hibernate.8), all optional. resume_socket: the path
     * of the service's UNIX listener on which imap-hibernate hands sessions back ("" or NULL:
     * none). A connection accepted there is checked (handoff_peer_ok: a sibling under the
     * master, same uid), carries the client's descriptor and the session state (net/handoff.h),
     * and is served by resume instead of session: no greeting, no login deadline, not counted
     * against max_preauth_per_ip. */
    const char *(*resume_socket)(const struct config *cfg);
    void (*resume)(struct worker_session *ws, uint32_t kind, const char *state, size_t len);
    /* run: a program that serves its listeners itself (imap-hibernate, one process with
     * epoll): called in the worker, after its READY report, instead of the accept loop, with
     * the number of listeners (fds WORKER_FIRST_FD ...); returns the exit code. */
    int (*run)(const struct config *cfg, const struct config_service *svc, int nfds);
    /* release (optional): the worker has been idle for WORKER_RELEASE_MS since its last
     * session: close what sessions left open that is cheap to reopen on first use (the store:
     * its Berkeley DB handles and mapped regions). worker.c then gives the freed heap back to
     * the kernel (malloc_trim). Not called between sessions that follow each other closely,
     * so a burst of logins never pays for the reopening. */
    void (*release)(void);
};

/* How long a worker waits idle after a session before ops->release and malloc_trim: long
 * enough that back-to-back sessions (a login burst, a client reconnecting) keep their open
 * handles, short enough that a quiet worker is small when anyone looks. */
#define WORKER_RELEASE_MS 200

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
/* The zygote's control socket (SOCK_SEQPACKET, one end each): the master sends one byte per
 * worker wanted; the zygote answers each with one int32 record: the new worker's pid (sent by
 * the worker itself, after it has been reparented to the master), or WORKER_ZYGOTE_FAILED when
 * the fork failed. The zygote's first record is its own pid: it is ready to fork. */
#define WORKER_ENV_ZYGOTE_FD "COFFER_ZYGOTE_FD"
#define WORKER_ZYGOTE_FAILED (-1)
/* The connection table (net/conntab.h), a memfd made by the master and inherited by every
 * zygote and worker: its fd number. Without it (inetd mode, an older master) nothing is
 * counted and only login_timeout applies. */
#define WORKER_ENV_CONNTAB_FD "COFFER_CONNTAB_FD"
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

/* The replies a line protocol (POP3, LMTP) gives when a line is refused or the session ends
 * for the stream's reasons; each is sent followed by CRLF. */
struct line_texts {
    const char *too_long;   /* an over-long line; the session goes on (worker_next_line only) */
    const char *timeout;    /* idle timeout; the session ends */
    const char *shutdown;   /* the server is stopping; the session ends */
};

/* worker_vreply: one reply line to s, buffered until the session flushes: fmt formatted, every
 * control character as '?' (review L1: a reply may quote the client or a Sieve reason, and a
 * bare CR or a NUL must never reach the peer, which could read it as the end of the reply),
 * then CRLF. For the line protocols' client_reply (LMTP, POP3). stream_write's result. */
int worker_vreply(struct stream *s, const char *fmt, va_list ap);

/* worker_tls_available: 1 when STARTTLS (POP3 STLS) may be offered on the session: a
 * certificate is configured, the service does not say tls = none, and the connection is not
 * yet under TLS. */
int worker_tls_available(const struct worker_session *ws);

/* worker_plaintext_ok: 1 when passwords may be sent in the clear on the session: under TLS,
 * or allow_plaintext = yes (RFC 8314 section 3, RFC 2595 section 2). Loopback connections are
 * deliberately not special. */
int worker_plaintext_ok(const struct worker_session *ws);

/* worker_read_end: the end reason of a session whose read failed with r ("timeout",
 * "shutdown", "eof", "tls_error", "io"), after writing the protocol's goodbye from t (a line;
 * CRLF is added) for a timeout or a shutdown. For every service and every read that can end
 * a session: the command loop, IDLE, a SASL exchange, an LMTP message. */
const char *worker_read_end(struct stream *s, int r, const struct line_texts *t);

/* worker_next_line: one step of a line protocol's session loop: flush the replies when no
 * pipelined input is waiting, then read the next line into line. Returns 1 with a line, 0
 * when an over-long line was refused (reply sent: read again), -1 when the session is over:
 * *end_reason says why ("eof", "timeout", "shutdown", "tls_error", "io") and the protocol's
 * goodbye, if any, has been written. */
int worker_next_line(struct stream *s, struct buf *line, const struct line_texts *t,
                     const char **end_reason);

/* worker_starttls: the shared part of STARTTLS/STLS once the protocol's "go ahead" reply is
 * buffered: flush it, run the handshake (plaintext pipelined after the command is discarded
 * by the stream: RFC 3207 section 4.2, RFC 2595 section 3.1) and log the result. The
 * handshake must finish before the login deadline, or within login_timeout when none is
 * running (LMTP after LHLO), never within the long idle timeout. 0 when the
 * session is now under TLS; -1 with *end_reason set when it must end. */
int worker_starttls(struct worker_session *ws, const char **end_reason);

/* The pre-login phase. From accept until the session calls worker_note_login, the stream has
 * a hard deadline of login_timeout (reads, writes and the TLS handshake alike; see
 * stream_set_deadline), and the connection counts against max_preauth_per_ip of its client
 * address. When the deadline passes, the read returns CF_E_TIMEOUT, the session says goodbye
 * as for an idle timeout and the disconnect line says reason=login_timeout.
 *
 * worker_note_login: call once the session is authenticated (IMAP LOGIN/AUTHENTICATE, POP3
 * PASS/AUTH once the maildrop is open; for LMTP, which has no login, the accepted LHLO, or the
 * AUTH when one is required) with the authorization identity, before anything of the new
 * state is shown to the client. Counts the user's connections to this service from the same
 * client address (IDLE sessions included): returns CF_E_LIMIT when max_userip_connections
 * are already there (logged; the caller refuses the login, IMAP "NO [LIMIT]", POP3
 * "-ERR [IN-USE]", and the session stays unauthenticated with its deadline running), else 0:
 * the deadline is lifted and the idle timeout alone applies. user NULL (LMTP) applies no
 * per-user limit. Never blocks longer than one scan of the table under its lock. */
int worker_note_login(struct worker_session *ws, const char *user);

/* worker_note_resumed: for a session handed back after hibernation (ops->resume): it is
 * logged in as user again in the connection table, without applying max_userip_connections
 * (the connection was admitted when it logged in), and no login deadline runs. */
void worker_note_resumed(struct worker_session *ws, const char *user);

/* worker_note_logout: the session is back in its pre-login phase (IMAP UNAUTHENTICATE, RFC
 * 8437): its slot counts for no user (until the next worker_note_login), and a login_timeout
 * deadline runs again from now. Never blocks longer than taking the table's lock. */
void worker_note_logout(struct worker_session *ws);

/* worker_note_end: the session is over (LOGOUT, QUIT, a timeout, an error): its slot leaves the
 * connection table now, not after the worker has flushed its last reply and closed the
 * connection, so that a client told "LOGOUT completed" (or POP3 "+OK ... signing off") that
 * comes straight back is not refused for its own old session (max_userip_connections,
 * max_preauth_per_ip). Call once the session holds nothing a note is for (no quota lock):
 * worker_note does nothing afterwards. Never blocks: stores to shared memory. */
void worker_note_end(struct worker_session *ws);

/* worker_note: record text as what this worker is in the middle of, in its connection's slot
 * of the master's table (conntab_note; "" clears it). When the worker dies by a signal, the
 * master finishes it: for the store's quota roots (quotalock_set_note, quotalock.h) it
 * recounts them. Without a master or a slot, nothing. Never blocks: a store to shared memory. */
void worker_note(const char *text);

/* worker_kick_user: end every session of user on this server (IMAP, POP3, ManageSieve: any
 * logged-in connection of the master's table) by sending its worker sig: SIGTERM says goodbye
 * in the protocol (* BYE, -ERR) at the session's next read; SIGKILL ends it at once (the
 * master finishes what it was doing, as for any worker that died). Returns how many sessions
 * were signalled, CF_E_AGAIN without a master's table (inetd mode), or CF_E_IO. Never blocks
 * longer than one scan of the table. */
int worker_kick_user(const char *user, int sig);

/* worker_main: never returns to a caller that should go on; returns the exit code for main. */
int worker_main(int argc, char **argv, const struct worker_ops *ops);

#endif
