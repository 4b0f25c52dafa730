/* zygote.c: cofferd's zygotes (master-int.h): one per service, its program run with -Z. The
 * master starts it with the listeners and the status pipe, asks it for a worker with one byte
 * on a control socket, and takes each new worker's pid from that socket; a zygote that stops
 * answering is replaced. */
#include "master-int.h"
#include "core/error.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/xmalloc.h"
#include "net/worker.h"
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static void build_env(struct strarr *env, size_t nl)
{
    for (char **e = environ; e && *e; e++)
        if (strncmp(*e, WORKER_ENV_LISTEN_FDS "=", sizeof WORKER_ENV_LISTEN_FDS) &&
            strncmp(*e, WORKER_ENV_STATUS_FD "=", sizeof WORKER_ENV_STATUS_FD) &&
            strncmp(*e, WORKER_ENV_ZYGOTE_FD "=", sizeof WORKER_ENV_ZYGOTE_FD) &&
            strncmp(*e, WORKER_ENV_CONNTAB_FD "=", sizeof WORKER_ENV_CONNTAB_FD) &&
            strncmp(*e, METRICS_ENV_FD "=", sizeof METRICS_ENV_FD) &&
            strncmp(*e, WORKER_ENV_DEBUG "=", sizeof WORKER_ENV_DEBUG))
            strarr_add(env, *e);
    if (g_debug) strarr_add(env, WORKER_ENV_DEBUG "=1");
    /* The dynamic linker resolves every symbol of the program and its libraries when the
     * zygote starts, not at each function's first call in each worker: lazy binding in a
     * worker walks the symbol tables of every loaded library (libcrypto's is large) and
     * maps those pages into each worker, ~0.6 MB of RSS per connection (docs/perf/idle.md).
     * A worker inherits the resolved tables from its zygote by fork. */
    if (!getenv("LD_BIND_NOW")) strarr_add(env, "LD_BIND_NOW=1");
    strarr_take(env, xasprintf("%s=%zu", WORKER_ENV_LISTEN_FDS, nl));
    strarr_take(env, xasprintf("%s=%zu", WORKER_ENV_STATUS_FD, WORKER_FIRST_FD + nl));
    strarr_take(env, xasprintf("%s=%zu", WORKER_ENV_ZYGOTE_FD, WORKER_FIRST_FD + nl + 1));
    if (g_conntab_fd >= 0)
        strarr_take(env, xasprintf("%s=%zu", WORKER_ENV_CONNTAB_FD, WORKER_FIRST_FD + nl + 2));
    /* the metrics counters come after the connection table (or in its place) */
    if (metrics_shm_fd() >= 0)
        strarr_take(env, xasprintf("%s=%zu", METRICS_ENV_FD,
                                   WORKER_FIRST_FD + nl + 2 + (g_conntab_fd >= 0)));
}

/* exec_child: fork+exec s's program as its zygote (argv gets -Z) with zfd, the zygote's end
 * of the control socket. The child gets the listeners as fds 3.., the status pipe next, zfd
 * after it, then the connection table (when there is one), nothing else (close_range),
 * default signal handling and an empty mask. Returns the pid, or -1 (logged). */
static pid_t exec_child(struct service *s, int zfd)
{
    struct strarr argv = STRARR_INIT, env = STRARR_INIT;
    strarr_add(&argv, s->program);
    strarr_add(&argv, "-C");
    strarr_add(&argv, g_conf_path);
    strarr_add(&argv, "-S");
    strarr_add(&argv, s->name);
    strarr_add(&argv, "-Z");
    strarr_split(&argv, s->args, " \t", 0);
    build_env(&env, s->nl);
    char *failmsg = xasprintf("cofferd: cannot execute %s for service %s\n", s->program, s->name);
    pid_t master = getpid();
    int *tmp = xreallocarray(NULL, s->nl + 1, sizeof *tmp);

    /* Signals stay blocked from before fork until the child has reset its handlers, so no
     * master handler ever runs in the child and writes into the master's self-pipe. */
    sigset_t all, old;
    sigfillset(&all);
    sigprocmask(SIG_BLOCK, &all, &old);
    pid_t pid = fork();
    if (pid == 0) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = SIG_DFL;
        for (size_t i = 0; i < g_nhandled; i++)
            sigaction(g_handled[i], &sa, NULL);
        sigaction(SIGPIPE, &sa, NULL);
        /* a zygote whose master dies is told to finish (its workers set this again) */
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (getppid() != master) _exit(1);
        /* copy everything above the target range first, so no dup2 overwrites a source */
        size_t n = s->nl;
        int high = WORKER_FIRST_FD + (int)n + 4;
        for (size_t i = 0; i < n; i++) tmp[i] = fcntl(s->l[i].fd, F_DUPFD_CLOEXEC, high);
        int st = fcntl(g_status_wr, F_DUPFD_CLOEXEC, high);
        int zf = fcntl(zfd, F_DUPFD_CLOEXEC, high);
        int ct = g_conntab_fd >= 0 ? fcntl(g_conntab_fd, F_DUPFD_CLOEXEC, high) : -1;
        int mt = metrics_shm_fd() >= 0 ? fcntl(metrics_shm_fd(), F_DUPFD_CLOEXEC, high) : -1;
        for (size_t i = 0; i < n; i++) dup2(tmp[i], WORKER_FIRST_FD + (int)i);
        dup2(st, WORKER_FIRST_FD + (int)n);       /* dup2 clears close-on-exec on the copy */
        dup2(zf, WORKER_FIRST_FD + (int)n + 1);
        int next = WORKER_FIRST_FD + (int)n + 2;
        if (ct >= 0) dup2(ct, next++);
        if (mt >= 0) dup2(mt, next++);
        close_range((unsigned)next, ~0U, 0);
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        execve(argv.v[0], argv.v, env.v);
        if (write(2, failmsg, strlen(failmsg)) < 0) {
            /* nothing more to say */
        }
        _exit(127);
    }
    int e = errno;
    sigprocmask(SIG_SETMASK, &old, NULL);
    free(failmsg);
    free(tmp);
    strarr_fini(&argv);
    strarr_fini(&env);
    if (pid < 0)
        log_err("spawn_failed", "service=%s error=%s", log_quote(s->name), log_quote(strerror(e)));
    return pid;
}

int zygote_count_of(const struct service *s)
{
    int n = 0;
    for (struct zygote *z = g_zygotes; z; z = z->next) n += z->svc == s;
    return n;
}

/* zygote_start: fork+exec s's zygote with a fresh control socket. 0 or CF_E_IO (logged). */
static int zygote_start(struct service *s)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
        log_err("spawn_failed", "service=%s error=\"socketpair: %s\"", log_quote(s->name),
                strerror(errno));
        return CF_E_IO;
    }
    fcntl(sv[0], F_SETFL, O_NONBLOCK);
    pid_t pid = exec_child(s, sv[1]);
    close(sv[1]);
    if (pid < 0) {
        close(sv[0]);
        return CF_E_IO;
    }
    struct zygote *z = xzmalloc(sizeof *z);
    z->pid = pid;
    z->svc = s;
    z->fd = sv[0];
    z->next = g_zygotes;
    g_zygotes = z;
    s->zy = z;
    log_debug("zygote_start", "service=%s pid=%d", log_quote(s->name), (int)pid);
    return 0;
}

/* zygote_retire: z stops being its service's zygote and is sent sig. Its control socket stays
 * open until it is reaped, so a worker it forked just before still gets known (and retired). */
void zygote_retire(struct zygote *z, int sig)
{
    if (z->svc->zy == z) z->svc->zy = NULL;
    z->retired = 1;
    z->pending = 0;
    if (!z->signaled) {
        z->signaled = 1;
        kill(z->pid, sig);
    }
}

/* zygote_request: ask s's zygote for one worker. 0, or CF_E_IO when the request could not be
 * written (the zygote is then retired with SIGKILL and replaced). */
static int zygote_request(struct service *s, long long now)
{
    struct zygote *z = s->zy;
    char b = 'w';
    ssize_t n;
    do n = send(z->fd, &b, 1, MSG_NOSIGNAL | MSG_DONTWAIT);
    while (n < 0 && errno == EINTR);
    if (n != 1) {
        log_warn("zygote_lost", "service=%s pid=%d error=%s", log_quote(s->name), (int)z->pid,
                 log_quote(n < 0 ? strerror(errno) : "short write"));
        zygote_retire(z, SIGKILL);
        return CF_E_IO;
    }
    if (!z->pending && z->ready) z->asked = now;
    z->pending++;
    return 0;
}

/* proc_ppid: the parent pid of pid from /proc/PID/stat, or -1 when it is gone. */
pid_t proc_ppid(pid_t pid)
{
    char path[64], b[512];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    ssize_t n = read(fd, b, sizeof b - 1);
    close(fd);
    if (n <= 0) return -1;
    b[n] = '\0';
    /* "pid (comm) state ppid ...": comm may hold spaces and parentheses; the last ')' ends it */
    char *p = strrchr(b, ')');
    char state;
    int ppid;
    if (!p || sscanf(p + 1, " %c %d", &state, &ppid) != 2) return -1;
    return (pid_t)ppid;
}

struct zygote *zygote_find(pid_t pid, struct zygote ***link_r)
{
    for (struct zygote **pp = &g_zygotes; *pp; pp = &(*pp)->next)
        if ((*pp)->pid == pid) {
            if (link_r) *link_r = pp;
            return *pp;
        }
    return NULL;
}

/* zygote_adopt: a worker z says it forked. It is taken on as a child (STARTING) unless it is
 * already gone or not ours; one from a retired zygote, or for a retired service, is retired at
 * once (it carries the old configuration). */
static void zygote_adopt(struct zygote *z, pid_t pid, long long now)
{
    if (z->pending > 0) z->pending--;
    z->asked = z->pending ? now : 0;
    if (find_child(pid, NULL)) return;
    if (kill(pid, 0) < 0 || proc_ppid(pid) != getpid()) {
        log_debug("worker_gone", "service=%s pid=%d", log_quote(z->svc->name), (int)pid);
        return;
    }
    struct child *c = xzmalloc(sizeof *c);
    c->pid = pid;
    c->svc = z->svc;
    c->state = CH_STARTING;
    c->next = g_children;
    g_children = c;
    g_status_dirty = 1;
    log_debug("spawn", "service=%s pid=%d zygote=%d", log_quote(z->svc->name), (int)pid,
              (int)z->pid);
    if (z->retired || !z->svc->active || g_stopping) retire(c);
}

/* read_zygote: take every record waiting on z's control socket. */
static void read_zygote(struct zygote *z, long long now)
{
    while (z->fd >= 0) {
        int32_t v;
        ssize_t n = recv(z->fd, &v, sizeof v, MSG_DONTWAIT);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
        if (n <= 0) {
            /* end of file (the zygote and every worker that still held its end are gone) or
             * an error: the zygote is dying, and reap() will tell how. Its service may start
             * the next one already. */
            close(z->fd);
            z->fd = -1;
            if (z->svc->zy == z) z->svc->zy = NULL;
            z->retired = 1;
            z->pending = 0;
            return;
        }
        if (n != (ssize_t)sizeof v) continue;
        if (v == (int32_t)z->pid) {
            z->ready = 1;
            if (z->pending && !z->asked) z->asked = now;
        } else if (v == WORKER_ZYGOTE_FAILED) {
            if (z->pending > 0) z->pending--;
            z->asked = z->pending ? now : 0;
            record_abnormal(z->svc, now);
        } else if (v > 0) {
            zygote_adopt(z, (pid_t)v, now);
        }
    }
}

void zygote_read_all(long long now)
{
    for (struct zygote *z = g_zygotes; z; z = z->next) read_zygote(z, now);
}

/* spawn_needed: keep max(prefork, 1) idle workers per active service, within maxchild, by
 * asking its zygote (started here when missing). A request not answered yet counts as an
 * idle worker, so one slow fork does not make us ask again. One idle worker is the floor:
 * with none, nobody would accept. */
void spawn_needed(long long now)
{
    for (struct service *s = g_services; s; s = s->next) {
        if (!s->active) continue;
        if (s->paused_until) {
            if (now < s->paused_until) continue;
            s->paused_until = 0;
            log_notice("respawn_resumed", "service=%s", log_quote(s->name));
        }
        if (!s->zy && zygote_start(s)) {
            record_abnormal(s, now);
            continue;
        }
        int total, idle, ready, busy;
        count_children(s, &total, &idle, &ready, &busy);
        idle += s->zy->pending;
        total += s->zy->pending;
        long long want = s->prefork > 0 ? s->prefork : 1;
        while (idle < want && total < s->maxchild) {
            if (zygote_request(s, now)) {
                record_abnormal(s, now);
                break;
            }
            idle++;
            total++;
        }
    }
}

/* retire_idle: a burst of connections leaves as many idle workers as it needed; each keeps
 * its memory (and the listen queue wakes them all) until maxuse. Those above max(prefork, 1)
 * that have been idle for worker_idle_timeout are retired, oldest first (a retired idle
 * worker exits at once; one that has just accepted finishes its session first). */
int retire_idle(long long now)
{
    long long limit = config_int(g_cfg, CFG_WORKER_IDLE_TIMEOUT) * 1000;
    if (limit <= 0 || g_stopping) return -1;
    int next = -1;
    for (struct service *s = g_services; s; s = s->next) {
        if (!s->active) continue;
        long long keep = s->prefork > 0 ? s->prefork : 1;
        long long idle = 0;
        for (struct child *c = g_children; c; c = c->next)
            idle += c->svc == s && c->state == CH_READY && !c->retiring;
        while (idle > keep) {
            struct child *oldest = NULL;
            for (struct child *c = g_children; c; c = c->next)
                if (c->svc == s && c->state == CH_READY && !c->retiring &&
                    (!oldest || c->ready_since < oldest->ready_since))
                    oldest = c;
            long long due = oldest->ready_since + limit;
            if (due > now) {
                int ms = (int)(due - now < 3600000 ? due - now : 3600000);
                if (next < 0 || ms < next) next = ms;
                break;
            }
            log_debug("worker_idle_retired", "service=%s pid=%d", log_quote(s->name),
                      (int)oldest->pid);
            retire(oldest);
            idle--;
        }
    }
    return next;
}

/* zygote_reap: z has exited: the service gets a new one in spawn_needed (rate-limited like
 * workers: an unexpected death counts as an abnormal exit). */
void zygote_reap(struct zygote *z, int st, long long now)
{
    struct service *s = z->svc;
    /* workers it forked just before it died may have written their pids */
    read_zygote(z, now);
    if (z->fd >= 0) close(z->fd);
    int normal = (WIFEXITED(st) && WEXITSTATUS(st) == 0) ||
                 (WIFSIGNALED(st) && z->signaled);
    char how[48];
    describe_status(st, how, sizeof how);
    if (normal) {
        log_debug("zygote_exit", "service=%s pid=%d status=%s", log_quote(s->name),
                  (int)z->pid, how);
    } else {
        log_warn("zygote_crashed", "service=%s pid=%d status=%s", log_quote(s->name),
                 (int)z->pid, how);
        record_abnormal(s, now);
    }
    if (s->zy == z) s->zy = NULL;
    free(z);
    g_status_dirty = 1;
    service_release(s);
}

/* zygote_deadline: kill and replace a ready zygote that has left a request unanswered for
 * ZYGOTE_ANSWER_MS; returns the poll timeout until the next such deadline, or cur. */
int zygote_deadline(long long now)
{
    int timeout = -1;
    for (struct zygote *z = g_zygotes; z; z = z->next) {
        if (z->retired || !z->ready || !z->pending || !z->asked) continue;
        if (now - z->asked >= ZYGOTE_ANSWER_MS) {
            log_warn("zygote_stuck", "service=%s pid=%d pending=%d", log_quote(z->svc->name),
                     (int)z->pid, z->pending);
            record_abnormal(z->svc, now);
            zygote_retire(z, SIGKILL);
            timeout = 0;
            continue;
        }
        long long d = z->asked + ZYGOTE_ANSWER_MS - now;
        if (timeout < 0 || d < timeout) timeout = (int)d;
    }
    return timeout;
}
