/* worker.c: the worker side of cofferd's prefork model: the zygote that forks workers, and the
 * worker that accepts on the inherited listeners, reports READY/BUSY to the master and serves
 * each connection through the program's ops. */
#include "net/worker.h"
#include "core/error.h"
#include "core/fileutil.h"
#include "core/log.h"
#include "core/xmalloc.h"
#include "net/conntab.h"
#include "net/handoff.h"
#include "core/metrics.h"
#include "net/listen.h"
#include "net/stream.h"
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <malloc.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

volatile sig_atomic_t worker_shutdown;
volatile sig_atomic_t worker_retire;

static struct strarr g_args = STRARR_INIT;
static int g_status_fd = -1;
static struct conntab *g_conntab;     /* NULL without a master (inetd mode) */

int worker_kick_user(const char *user, int sig)
{
    return g_conntab ? conntab_signal_user(g_conntab, user, sig) : CF_E_AGAIN;
}
static int g_note_slot;               /* the current connection's slot, for worker_note */
static int g_last_state;

const struct strarr *worker_args(void) { return &g_args; }

/* listeners this process still holds; see close_listeners */
static volatile sig_atomic_t g_nlisten;

/* close_listeners: called from the signal handlers (close is async-signal-safe). A worker told
 * to stop must not keep the listening sockets open while it finishes a long session: the
 * kernel would go on queueing connections on a socket the master has closed (a removed
 * service, or shutdown), and they would hang until this worker exits and then be reset.
 * The accept loop never touches the fds again once a flag is set. */
static void close_listeners(void)
{
    int n = g_nlisten;
    g_nlisten = 0;
    for (int i = 0; i < n; i++) close(WORKER_FIRST_FD + i);
}

static void on_term(int sig) { (void)sig; worker_shutdown = 1; close_listeners(); }
static void on_usr2(int sig) { (void)sig; worker_retire = 1; close_listeners(); }

/* install_signals: SIGTERM and SIGUSR2 without SA_RESTART, so a blocked poll() returns EINTR
 * and the flag is looked at at once. Under a master, SIGINT and SIGHUP are ignored: a Ctrl-C
 * or hangup on cofferd's terminal reaches the whole process group, and the master decides
 * what happens to its workers. */
static void install_signals(int under_master)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sigemptyset(&sa.sa_mask);
    sa.sa_handler = on_term;
    sigaction(SIGTERM, &sa, NULL);
    sa.sa_handler = on_usr2;
    sigaction(SIGUSR2, &sa, NULL);
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL);
    if (under_master) {
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGHUP, &sa, NULL);
    }
    stream_set_interrupt_flag(&worker_shutdown);
}

/* report: tell the master our state (only on change). If the master has gone away (EPIPE),
 * finish the current session and exit rather than serve on unsupervised. */
static void report(int state)
{
    if (g_status_fd < 0 || state == g_last_state) return;
    struct worker_status m = { (int32_t)getpid(), (int32_t)state };
    ssize_t n;
    do n = write(g_status_fd, &m, sizeof m);
    while (n < 0 && errno == EINTR);
    if (n < 0 && errno == EPIPE) worker_retire = 1;
    g_last_state = state;
}

static int env_int(const char *name, int def)
{
    const char *v = getenv(name);
    if (!v || !*v) return def;
    char *end;
    long x = strtol(v, &end, 10);
    if (*end || x < 0 || x > INT_MAX) return def;
    return (int)x;
}

/* enter_table: count the new connection against max_preauth_per_ip and take its slot.
 * 0 to serve it, 1 when it must be refused (logged; ws->end_reason set). */
static int enter_table(struct worker_session *ws, const struct conntab_addr *addr)
{
    if (!g_conntab) return 0;
    long long limit = config_int(ws->cfg, CFG_MAX_PREAUTH_PER_IP);
    int count = 0;
    int r = conntab_enter(g_conntab, (int)getpid(), ws->svc->name, addr, limit, &count);
    if (r > 0) {
        ws->conn_slot = g_note_slot = r;
        return 0;
    }
    if (r == 0) {
        log_notice("connect_refused", "reason=max_preauth_per_ip peer=%s count=%d limit=%lld",
                   ws->peer, count, limit);
        ws->end_reason = "max_preauth_per_ip";
        return 1;
    }
    /* a full table or a failed lock must not lock everybody out: serve, uncounted */
    log_warn("conntab_unavailable", "error=%s", log_quote(cf_strerror(r)));
    return 0;
}

int worker_note_login(struct worker_session *ws, const char *user)
{
    if (g_conntab && ws->conn_slot > 0) {
        long long limit = config_int(ws->cfg, CFG_MAX_USERIP_CONNECTIONS);
        int count = 0;
        int r = conntab_login(g_conntab, ws->conn_slot, user, limit, &count);
        if (r == CF_E_LIMIT) {
            log_notice("login_refused", "user=%s reason=max_userip_connections peer=%s count=%d "
                       "limit=%lld", log_quote(user ? user : ""), ws->peer, count, limit);
            return CF_E_LIMIT;
        }
        if (r < 0) log_warn("conntab_unavailable", "error=%s", log_quote(cf_strerror(r)));
    }
    stream_set_deadline(ws->stream, 0);
    return 0;
}

void worker_note_resumed(struct worker_session *ws, const char *user)
{
    if (g_conntab && ws->conn_slot > 0) {
        int count = 0;
        int r = conntab_login(g_conntab, ws->conn_slot, user, 0, &count);
        if (r < 0) log_warn("conntab_unavailable", "error=%s", log_quote(cf_strerror(r)));
    }
    stream_set_deadline(ws->stream, 0);
}

void worker_note_logout(struct worker_session *ws)
{
    if (g_conntab && ws->conn_slot > 0) conntab_logout(g_conntab, ws->conn_slot);
    stream_set_deadline(ws->stream, config_int(ws->cfg, CFG_LOGIN_TIMEOUT));
}

void worker_note_end(struct worker_session *ws)
{
    if (g_conntab && ws->conn_slot > 0) conntab_leave(g_conntab, ws->conn_slot);
    ws->conn_slot = 0;   /* the slot may be another connection's by the time worker_main ends */
    g_note_slot = 0;
}

void worker_note(const char *text)
{
    if (g_conntab && g_note_slot > 0) conntab_note(g_conntab, g_note_slot, text);
}

/* A session handed back by imap-hibernate (ops->resume): its kind and state. */
struct resumed {
    uint32_t kind;
    struct buf state;
};

/* serve: one connection on fd (owned; freed with the stream); res: a resumed session, else
 * NULL. */
static void serve(const struct worker_ops *ops, const struct config *cfg,
                  const struct config_service *svc, struct tls_ctx *tls, int fd,
                  struct resumed *res)
{
    struct worker_session ws;
    memset(&ws, 0, sizeof ws);
    ws.cfg = cfg;
    ws.svc = svc;
    ws.tls = tls;

    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    struct conntab_addr addr;
    if (getpeername(fd, (struct sockaddr *)&ss, &len) == 0) {
        listen_format((struct sockaddr *)&ss, len, ws.peer, sizeof ws.peer);
        ws.is_unix = ss.ss_family == AF_UNIX;
        ws.is_loopback = listen_is_loopback((struct sockaddr *)&ss);
        conntab_addr_of(fd, (struct sockaddr *)&ss, len, &addr);
    } else {
        /* not a socket (inetd mode on a pipe is relayed, so this is rare): a local user */
        snprintf(ws.peer, sizeof ws.peer, "unix");
        ws.is_unix = ws.is_loopback = 1;
        conntab_addr_of(fd, NULL, 0, &addr);
    }
    len = sizeof ss;
    if (getsockname(fd, (struct sockaddr *)&ss, &len) == 0)
        listen_format((struct sockaddr *)&ss, len, ws.local, sizeof ws.local);
    else
        snprintf(ws.local, sizeof ws.local, "unix");

    struct timespec start;
    clock_gettime(CLOCK_MONOTONIC, &start);
    if (!res) {
        log_new_session_id();
        log_info("connect", "service=%s peer=%s local=%s", log_quote(svc->name), ws.peer,
                 ws.local);
    }
    ws.stream = stream_new(fd);
    if (res) {
        /* admitted long ago: its slot counts for its user, uncounted before login; the
         * session sets its own id and logs its own line (ops->resume) */
        if (g_conntab) {
            int count = 0;
            int r = conntab_enter(g_conntab, (int)getpid(), svc->name, &addr, 0, &count);
            if (r > 0) ws.conn_slot = g_note_slot = r;
        }
        ops->resume(&ws, res->kind, buf_cstr(&res->state), res->state.len);
        goto closed;
    }
    /* H2: the whole unauthenticated phase, TLS handshake included, has one deadline counted
     * from accept; a peer that sends nothing, or one byte at a time, gives the worker back
     * after login_timeout instead of idle_timeout */
    stream_set_deadline(ws.stream, config_int(cfg, CFG_LOGIN_TIMEOUT));
    int implicit = !strcmp(service_str(svc, SVC_TLS), "implicit");
    metrics_connection(svc->name);
    if (enter_table(&ws, &addr)) {
        if (ops->too_many && !implicit) stream_printf(ws.stream, "%s\r\n", ops->too_many);
        goto closed;
    }
    if (implicit) {
        int r = stream_start_tls(ws.stream, tls);
        if (r < 0) {
            log_info("disconnect", "reason=tls_failed error=%s in=%llu out=%llu",
                     log_quote(stream_tls_error(ws.stream)), stream_bytes_in(ws.stream),
                     stream_bytes_out(ws.stream));
            goto done;
        }
        ws.tls_implicit = 1;
    }
    ops->session(&ws);
    /* an idle timeout before login is the login deadline */
    if (ws.end_reason && !strcmp(ws.end_reason, "timeout") && stream_deadline_passed(ws.stream))
        ws.end_reason = "login_timeout";
closed:;
    /* the one line that closes every session: its reason comes from the protocol */
    struct timespec end;
    clock_gettime(CLOCK_MONOTONIC, &end);
    double secs = (double)(end.tv_sec - start.tv_sec) + (end.tv_nsec - start.tv_nsec) / 1e9;
    /* with COMPRESS (RFC 4978) in/out are the compressed bytes; the deflate fields give the
     * plain and compressed bytes since it started, so the ratio is wire/plain */
    char zinfo[160] = "";
    unsigned long long zpi, zwi, zpo, zwo;
    if (stream_compress_stats(ws.stream, &zpi, &zwi, &zpo, &zwo))
        snprintf(zinfo, sizeof zinfo,
                 " deflate_in=%llu/%llu deflate_out=%llu/%llu deflate_ratio_out=%.3f", zwi, zpi,
                 zwo, zpo, zpo ? (double)zwo / (double)zpo : 1.0);
    log_info("disconnect", "reason=%s peer=%s in=%llu out=%llu duration=%.3f%s%s%s",
             ws.end_reason ? ws.end_reason : "closed", ws.peer, stream_bytes_in(ws.stream),
             stream_bytes_out(ws.stream), secs, stream_is_tls(ws.stream) ? " tls=" : "",
             stream_is_tls(ws.stream) ? log_quote(stream_tls_info(ws.stream)) : "", zinfo);
done:
    metrics_bytes(svc->name, stream_bytes_in(ws.stream), stream_bytes_out(ws.stream));
    stream_free(&ws.stream);
    if (g_conntab && ws.conn_slot > 0) conntab_leave(g_conntab, ws.conn_slot);
    g_note_slot = 0;
    log_set_session(NULL);
    log_set_user(NULL);
    log_set_mailbox(NULL);
}

/* relay_start: inetd mode when fd 0 is not a socket (a terminal or pipes): the session gets one end
 * of a socketpair and a child process copies stdin to it and it to stdout, so the stream
 * always sits on a socket (it sets O_NONBLOCK, which must not leak onto a terminal).
 * Returns the session's fd and the relay's pid in *pid_r, or -1. */
static int relay_start(pid_t *pid_r)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) return -1;
    pid_t pid = fork();
    if (pid < 0) {
        close(sv[0]);
        close(sv[1]);
        return -1;
    }
    if (pid == 0) {
        close(sv[0]);
        int s = sv[1], in_open = 1;
        char b[16384];
        for (;;) {
            struct pollfd p[2] = { { s, POLLIN, 0 }, { 0, POLLIN, 0 } };
            if (poll(p, in_open ? 2 : 1, -1) < 0) {
                if (errno == EINTR) continue;
                _exit(1);
            }
            if (p[0].revents) {
                ssize_t n = read(s, b, sizeof b);
                if (n <= 0) _exit(0);
                if (write_all(1, b, (size_t)n)) _exit(0);
            }
            if (in_open && p[1].revents) {
                ssize_t n = read(0, b, sizeof b);
                if (n <= 0) {
                    in_open = 0;
                    shutdown(s, SHUT_WR);
                } else if (write_all(s, b, (size_t)n)) {
                    _exit(0);
                }
            }
        }
    }
    close(sv[1]);
    *pid_r = pid;
    return sv[0];
}

static int inetd_session(const struct worker_ops *ops, const struct config *cfg,
                         const struct config_service *svc, struct tls_ctx *tls)
{
    struct stat st;
    if (fstat(0, &st) == 0 && S_ISSOCK(st.st_mode)) {
        int fd = dup(0);
        if (fd < 0) return 1;
        serve(ops, cfg, svc, tls, fd, NULL);
        return 0;
    }
    pid_t relay = -1;
    int fd = relay_start(&relay);
    if (fd < 0) {
        log_err("inetd_failed", "error=%s", log_quote(strerror(errno)));
        return 1;
    }
    serve(ops, cfg, svc, tls, fd, NULL);
    int st2;
    while (waitpid(relay, &st2, 0) < 0 && errno == EINTR) {}
    return 0;
}

/* ---- the zygote ---- */

/* zygote_send: one int32 record to the master on the control socket; 0 or -1. */
static int zygote_send(int zfd, int32_t v)
{
    ssize_t n;
    do n = send(zfd, &v, sizeof v, MSG_NOSIGNAL);
    while (n < 0 && errno == EINTR);
    return n == (ssize_t)sizeof v ? 0 : -1;
}

/* zygote_adopted: the new worker, just orphaned by its short-lived parent. Waits (bounded)
 * until the kernel has made the master (a child subreaper) its parent, tells the master its
 * pid, and asks for SIGTERM should the master die. Exits when anything is off: a worker the
 * master does not know about must not serve. Returns only in a worker that may go on. */
static void zygote_adopted(int zfd, pid_t master, char *zflag)
{
    for (int i = 0; getppid() != master; i++) {
        /* the master is gone (then do not hold its listeners a moment longer), or it is not
         * a subreaper after 2 s */
        if (i >= 2000 || (kill(master, 0) < 0 && errno == ESRCH)) _exit(1);
        usleep(1000);
    }
    /* The pid goes out before the first READY on the status pipe; the master reads the
     * control sockets before it gives up on a status record from a pid it does not know. */
    if (zygote_send(zfd, (int32_t)getpid())) _exit(1);
    close(zfd);
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != master) _exit(1);          /* the master died before prctl took effect */
    /* ps and the test harness tell a worker (-W) from its zygote (-Z) by the command line,
     * which is the argv memory of this process */
    if (zflag) zflag[1] = 'W';
    /* Per-process state after fork: the log session id is made per connection
     * (log_new_session_id reads /dev/urandom); OpenSSL 3 notices the new pid and reseeds its
     * random generators before their next use; Cyrus SASL seeds a pool per connection
     * (sasl_server_new), not the one sasl_server_init made; the store is opened on first use
     * here in the worker. */
}

/* zygote_fork: make one worker. A short-lived child forks the worker and exits at once, so
 * the worker is reparented to the master, which then waits for it like any other worker.
 * Returns 1 in the new worker, 0 in the zygote. */
static int zygote_fork(int zfd, pid_t master, char *zflag)
{
    pid_t mid = fork();
    if (mid < 0) {
        log_err("zygote_fork_failed", "error=%s", log_quote(strerror(errno)));
        zygote_send(zfd, WORKER_ZYGOTE_FAILED);
        return 0;
    }
    if (mid == 0) {
        pid_t w = fork();
        if (w != 0) _exit(w < 0 ? 1 : 0);
        zygote_adopted(zfd, master, zflag);
        return 1;
    }
    int st = 0;
    while (waitpid(mid, &st, 0) < 0 && errno == EINTR) {}
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        log_err("zygote_fork_failed", "error=\"second fork failed\"");
        zygote_send(zfd, WORKER_ZYGOTE_FAILED);
    }
    return 0;
}

/* zygote_loop: the zygote's life: announce itself, then fork one worker per request byte
 * until SIGTERM/SIGUSR2, end of file on the control socket (the master retired it or died)
 * or the loss of the master. Returns 1 in a new worker (which goes on to the accept loop),
 * 0 when the zygote should exit, -1 on an error. */
static int zygote_loop(int zfd, char *zflag)
{
    pid_t master = getppid();
    fcntl(zfd, F_SETFD, FD_CLOEXEC);
    if (zygote_send(zfd, (int32_t)getpid())) {
        log_err("zygote_failed", "error=\"control socket: %s\"", strerror(errno));
        return -1;
    }
    sigset_t block, orig;
    sigemptyset(&block);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGUSR2);
    for (;;) {
        sigprocmask(SIG_BLOCK, &block, &orig);
        if (worker_shutdown || worker_retire || getppid() != master) {
            sigprocmask(SIG_SETMASK, &orig, NULL);
            return 0;
        }
        struct pollfd p = { zfd, POLLIN, 0 };
        int n = ppoll(&p, 1, NULL, &orig);
        int e = errno;
        sigprocmask(SIG_SETMASK, &orig, NULL);
        if (n < 0) {
            if (e == EINTR) continue;
            log_err("zygote_failed", "error=\"poll: %s\"", strerror(e));
            return -1;
        }
        char req[16];
        ssize_t k = recv(zfd, req, sizeof req, MSG_DONTWAIT);
        if (k == 0) return 0;
        if (k < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) continue;
            log_err("zygote_failed", "error=\"control socket: %s\"", strerror(errno));
            return -1;
        }
        if (zygote_fork(zfd, master, zflag)) return 1;
    }
}

/* resume_index: which of the nfds listeners is ops->resume_socket, or -1. */
static int resume_index(const struct worker_ops *ops, const struct config *cfg, int nfds)
{
    const char *path = ops->resume_socket && ops->resume ? ops->resume_socket(cfg) : NULL;
    if (!path || !*path) return -1;
    for (int i = 0; i < nfds; i++) {
        struct sockaddr_un un;
        socklen_t len = sizeof un;
        memset(&un, 0, sizeof un);
        if (getsockname(WORKER_FIRST_FD + i, (struct sockaddr *)&un, &len) == 0 &&
            un.sun_family == AF_UNIX && !strncmp(un.sun_path, path, sizeof un.sun_path))
            return i;
    }
    return -1;
}

/* serve_resumed: a connection on the resume listener: a sibling handing a session back.
 * The peer is checked, the client's descriptor and state read, and the session served;
 * anything else is logged and closed. */
static void serve_resumed(const struct worker_ops *ops, const struct config *cfg,
                          const struct config_service *svc, struct tls_ctx *tls, int c)
{
    long pid, uid;
    if (!handoff_peer_ok(c, &pid, &uid)) {
        log_warn("resume_refused", "reason=peer peer_pid=%ld peer_uid=%ld", pid, uid);
        close(c);
        return;
    }
    struct resumed res = { 0, BUF_INIT };
    int fd = -1;
    int r = handoff_recv(c, &fd, &res.kind, &res.state, 2000);
    close(c);
    if (r < 0) {
        log_warn("resume_refused", "reason=%s peer_pid=%ld", log_quote(cf_strerror(r)), pid);
        buf_fini(&res.state);
        return;
    }
    serve(ops, cfg, svc, tls, fd, &res);
    buf_fini(&res.state);
}

/* accept_loop: the prefork worker's life. Returns the exit code. */
static int accept_loop(const struct worker_ops *ops, const struct config *cfg,
                       const struct config_service *svc, struct tls_ctx *tls, int nfds)
{
    struct pollfd *p = xreallocarray(NULL, (size_t)nfds, sizeof *p);
    for (int i = 0; i < nfds; i++) {
        int fd = WORKER_FIRST_FD + i;
        int fl = fcntl(fd, F_GETFL);
        if (fl < 0) {
            log_err("worker_failed", "error=\"listener fd %d: %s\"", fd, strerror(errno));
            free(p);
            return 1;
        }
        /* Several workers poll the same sockets; when one connection wakes them all, the
         * losers' accept must fail with EAGAIN instead of blocking. */
        if (!(fl & O_NONBLOCK)) fcntl(fd, F_SETFL, fl | O_NONBLOCK);
        fcntl(fd, F_SETFD, FD_CLOEXEC);
        p[i].fd = fd;
        p[i].events = POLLIN;
    }
    g_nlisten = nfds;
    if (worker_shutdown || worker_retire) close_listeners();
    int ri = resume_index(ops, cfg, nfds);
    long long maxuse = service_int(svc, SVC_MAXUSE);
    long long served = 0;
    sigset_t block, orig;
    sigemptyset(&block);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGUSR2);

    int dirty = 0;   /* a session ran since the worker last gave back its memory */
    int ready = 0;   /* READY has been reported for this wait */
    while (maxuse == 0 || served < maxuse) {
        if (!ready) report(WORKER_READY);
        ready = 1;
        /* Flags are checked with the signals blocked and ppoll unblocks them atomically, so
         * a signal that arrives just before we sleep still wakes us. */
        sigprocmask(SIG_BLOCK, &block, &orig);
        if (worker_shutdown || worker_retire) {
            sigprocmask(SIG_SETMASK, &orig, NULL);
            break;
        }
        const struct timespec release = { 0, WORKER_RELEASE_MS * 1000000L };
        int n = ppoll(p, (nfds_t)nfds, dirty ? &release : NULL, &orig);
        int e = errno;
        sigprocmask(SIG_SETMASK, &orig, NULL);
        if (n < 0) {
            if (e == EINTR) continue;
            log_err("worker_failed", "error=\"poll: %s\"", strerror(e));
            free(p);
            return 1;
        }
        if (n == 0) {
            /* idle for a while after a session: no burst is going on, so give back what the
             * sessions left (the program's handles, reopened on first use, and the heap
             * they freed) instead of holding it until the next connection */
            if (ops->release) ops->release();
            malloc_trim(0);
            dirty = 0;
            continue;
        }
        for (int i = 0; i < nfds; i++) {
            if (!p[i].revents) continue;
            int c = accept4(p[i].fd, NULL, NULL, SOCK_CLOEXEC);
            if (c < 0) {
                e = errno;
                /* a signal handler may have closed the listeners since poll returned */
                if (worker_shutdown || worker_retire) break;
                if (e == EAGAIN || e == EWOULDBLOCK || e == EINTR || e == ECONNABORTED ||
                    e == EPROTO)
                    continue;
                /* EMFILE and friends: back off instead of spinning */
                log_warn("accept_failed", "error=%s", log_quote(strerror(e)));
                usleep(100000);
                continue;
            }
            report(WORKER_BUSY);
            served++;
            dirty = 1;
            ready = 0;
            if (i == ri) serve_resumed(ops, cfg, svc, tls, c);
            else serve(ops, cfg, svc, tls, c, NULL);
            break;   /* report READY again and poll afresh, also checking the flags */
        }
    }
    free(p);
    log_debug("worker_exit", "service=%s served=%lld reason=%s", log_quote(svc->name), served,
              worker_shutdown ? "shutdown" : worker_retire ? "retired" : "maxuse");
    return 0;
}

int worker_starttls(struct worker_session *ws, const char **end_reason)
{
    if (stream_flush(ws->stream) < 0) {
        *end_reason = "io";
        return -1;
    }
    /* the handshake is pre-login work: never let it wait as long as the idle timeout */
    int temporary = !stream_has_deadline(ws->stream);
    if (temporary) stream_set_deadline(ws->stream, config_int(ws->cfg, CFG_LOGIN_TIMEOUT));
    int r = stream_start_tls(ws->stream, ws->tls);
    if (temporary) stream_set_deadline(ws->stream, 0);
    if (r < 0) {
        log_info("starttls_failed", "error=%s", log_quote(stream_tls_error(ws->stream)));
        *end_reason = "tls_failed";
        return -1;
    }
    log_info("starttls", "tls=%s%s", log_quote(stream_tls_info(ws->stream)),
             r == 1 ? " discarded_plaintext=1" : "");
    return 0;
}

int worker_vreply(struct stream *s, const char *fmt, va_list ap)
{
    struct buf b = BUF_INIT;
    buf_vprintf(&b, fmt, ap);
    for (size_t i = 0; i < b.len; i++)
        if ((unsigned char)b.s[i] < 0x20 || b.s[i] == 0x7f) b.s[i] = '?';
    buf_appends(&b, "\r\n");
    int r = stream_write(s, b.s, b.len);
    buf_fini(&b);
    return r;
}

int worker_tls_available(const struct worker_session *ws)
{
    return ws->tls && strcmp(service_str(ws->svc, SVC_TLS), "none") && !stream_is_tls(ws->stream);
}

int worker_plaintext_ok(const struct worker_session *ws)
{
    return stream_is_tls(ws->stream) || config_int(ws->cfg, CFG_ALLOW_PLAINTEXT);
}

const char *worker_read_end(struct stream *s, int r, const struct line_texts *t)
{
    switch (r) {
    case CF_E_TIMEOUT:
        stream_printf(s, "%s\r\n", t->timeout);
        return "timeout";
    case CF_E_SHUTDOWN:
        stream_printf(s, "%s\r\n", t->shutdown);
        return "shutdown";
    case CF_E_EOF:
        return "eof";
    case CF_E_TLS:
        return "tls_error";
    default:
        return "io";
    }
}

int worker_next_line(struct stream *s, struct buf *line, const struct line_texts *t,
                     const char **end_reason)
{
    if (stream_pending(s) == 0 && stream_flush(s) < 0) {
        *end_reason = "io";
        return -1;
    }
    int r = worker_shutdown ? CF_E_SHUTDOWN : stream_read_line(s, line);
    if (r == 0) return 1;
    if (r == CF_E_LIMIT) {
        stream_printf(s, "%s\r\n", t->too_long);
        return 0;
    }
    *end_reason = worker_read_end(s, r, t);
    return -1;
}

int worker_main(int argc, char **argv, const struct worker_ops *ops)
{
    const char *conf = NULL, *svcname = NULL;
    char *zflag = NULL;
    int inetd = 0, i;
    int under_master = getenv(WORKER_ENV_STATUS_FD) != NULL;
    install_signals(under_master);

    for (i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-C") && i + 1 < argc) conf = argv[++i];
        else if (!strcmp(argv[i], "-S") && i + 1 < argc) svcname = argv[++i];
        else if (!strcmp(argv[i], "-i")) inetd = 1;
        else if (!strcmp(argv[i], "-Z")) zflag = argv[i];
        else if (!strcmp(argv[i], "--")) { i++; break; }
        else break;
    }
    strarr_fini(&g_args);
    for (; i < argc; i++) strarr_add(&g_args, argv[i]);
    if (!conf) {
        fprintf(stderr, "usage: %s -C coffer.conf [-S service] [-i | -Z] [args...]\n",
                ops->name);
        return 2;
    }

    struct config *cfg = NULL;
    struct buf err = BUF_INIT;
    struct tls_ctx *tls = NULL;
    int rc = 1;
    if (config_load(conf, &cfg, &err)) {
        fprintf(stderr, "%s: %s", ops->name, buf_cstr(&err));
        rc = 2;
        goto out;
    }
    const struct config_service *svc = NULL;
    if (svcname) {
        svc = config_service(cfg, svcname);
    } else {
        /* without -S, the first service that runs this program */
        for (size_t k = 0; k < cfg->nservices && !svc; k++) {
            const char *prog = service_str(&cfg->services[k], SVC_PROGRAM);
            const char *base = strrchr(prog, '/');
            if (!strcmp(base ? base + 1 : prog, ops->name)) svc = &cfg->services[k];
        }
    }
    if (!svc) {
        fprintf(stderr, "%s: %s: no service %s%s%s\n", ops->name, conf, svcname ? "'" : "for ",
                svcname ? svcname : ops->name, svcname ? "'" : "");
        rc = 2;
        goto out;
    }

    enum log_level lvl = LOG_LVL_INFO;
    log_level_parse(config_str(cfg, CFG_LOG_LEVEL), &lvl);
    int debug = env_int(WORKER_ENV_DEBUG, 0) == 1;
    log_init(ops->name, debug || !strcmp(config_str(cfg, CFG_LOG_TARGET), "stderr"),
             debug ? LOG_LVL_DEBUG : lvl);

    const char *cert = config_str(cfg, CFG_TLS_CERT), *key = config_str(cfg, CFG_TLS_KEY);
    if (*cert && *key) {
        if (tls_ctx_new(cert, key, config_str(cfg, CFG_TLS_CIPHERS),
                        config_str(cfg, CFG_TLS_MIN_VERSION), &tls, &err) < 0) {
            log_err("tls_config_failed", "service=%s error=%s", log_quote(svc->name),
                    log_quote(buf_cstr(&err)));
            goto out;
        }
    } else if (!strcmp(service_str(svc, SVC_TLS), "implicit")) {
        log_err("tls_config_failed", "service=%s error=\"tls = implicit needs tls_cert and "
                "tls_key\"", log_quote(svc->name));
        goto out;
    }
    if (ops->init && ops->init(cfg, svc)) goto out;

    if (inetd) {
        rc = inetd_session(ops, cfg, svc, tls);
        goto out;
    }
    int nfds = env_int(WORKER_ENV_LISTEN_FDS, 0);
    g_status_fd = env_int(WORKER_ENV_STATUS_FD, -1);
    if (g_status_fd >= 0) fcntl(g_status_fd, F_SETFD, FD_CLOEXEC);
    int ctfd = env_int(WORKER_ENV_CONNTAB_FD, -1);
    if (ctfd >= 0) {
        /* mapped here, in the zygote, so every worker inherits the mapping; without it the
         * limits per address and user are off, which is logged, but the service still runs */
        fcntl(ctfd, F_SETFD, FD_CLOEXEC);
        if (conntab_attach(ctfd, &g_conntab))
            log_err("conntab_unavailable", "error=\"connection limits are off\"");
    }
    /* mapped in the zygote too, for the same reason; without it nothing is counted */
    if (metrics_attach_env() < 0) log_err("metrics_unavailable", "error=\"cannot map the counters\"");
    if (nfds <= 0) {
        log_err("worker_failed", "error=\"no listeners: run me from cofferd, or with -i\"");
        goto out;
    }
    if (zflag) {
        int zfd = env_int(WORKER_ENV_ZYGOTE_FD, -1);
        if (zfd < 0) {
            log_err("zygote_failed", "error=\"-Z needs %s\"", WORKER_ENV_ZYGOTE_FD);
            goto out;
        }
        /* give back what init freed, so the heap every worker starts from is compact */
        malloc_trim(0);
        int z = zygote_loop(zfd, zflag);
        if (z <= 0) {
            rc = z < 0;
            goto out;
        }
    }
    if (ops->run) {
        for (int k = 0; k < nfds; k++) fcntl(WORKER_FIRST_FD + k, F_SETFD, FD_CLOEXEC);
        g_nlisten = nfds;
        report(WORKER_READY);
        rc = ops->run(cfg, svc, nfds);
    } else {
        rc = accept_loop(ops, cfg, svc, tls, nfds);
    }
out:
    conntab_free(&g_conntab);
    tls_ctx_free(&tls);
    config_free(&cfg);
    buf_fini(&err);
    strarr_fini(&g_args);
    return rc;
}
