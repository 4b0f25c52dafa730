/* master.c: cofferd's supervisor loop: a zygote and prefork workers per service, status pipe,
 * reaping, respawn rate limits, reload on SIGHUP, graceful shutdown, status line and file. */
#include "master.h"
#include "settle.h"
#include "core/error.h"
#include "core/log.h"
#include "core/strarr.h"
#include "core/xmalloc.h"
#include "net/conntab.h"
#include "net/listen.h"
#include "net/worker.h"
#include "store/dupdb.h"
#include "store/kv.h"
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

struct listener {
    char *spec;                 /* as configured */
    int fd;
    int is_unix;
};

struct service {
    char *name;
    char *program;              /* resolved path */
    char *args;                 /* the args setting, as written */
    struct strarr listen;       /* the listen setting, as written */
    struct listener *l;
    size_t nl;
    long long prefork, maxchild;
    int active;                 /* 0: removed or replaced; lingers until its workers are gone */
    unsigned long long served;  /* connections accepted (BUSY reports) */
    long long paused_until;     /* monotonic ms; 0 when spawning is allowed */
    long long *exits;           /* times of recent abnormal exits (monotonic ms) */
    size_t nexits;
    struct zygote *zy;          /* the zygote that forks its workers; NULL until started */
    struct service *next;
};

/* A service's zygote: the service's program run with -Z. It loads the config, TLS context and
 * libraries once and forks a worker for each byte the master sends on its control socket; each
 * worker is reparented to the master (a child subreaper) and announces its pid on that socket.
 * It is not a worker: not in g_children, not in the status counts. */
struct zygote {
    pid_t pid;
    struct service *svc;
    int fd;                     /* master's end of the control socket; -1 once closed */
    int ready;                  /* its first record (its own pid) has arrived */
    int pending;                /* requests not answered yet; count as idle workers */
    long long asked;            /* monotonic ms: oldest unanswered request, once ready */
    int retired;                /* no longer its service's zygote (reload, stuck, shutdown) */
    int signaled;               /* we sent it a signal, so death by signal is expected */
    struct zygote *next;
};

/* a ready zygote that leaves a request unanswered this long is killed and replaced */
#define ZYGOTE_ANSWER_MS 2000

enum child_state { CH_STARTING, CH_READY, CH_BUSY };

struct child {
    pid_t pid;
    struct service *svc;
    enum child_state state;
    int retiring;               /* sent SIGUSR2: will exit after its session */
    int signaled;               /* we sent it a signal, so death by signal is expected */
    struct child *next;
};

static struct config *g_cfg;
static char *g_conf_path;
static int g_debug;
static struct service *g_services;
static struct child *g_children;
static struct zygote *g_zygotes;
static int g_status_rd = -1, g_status_wr = -1;
static int g_sig_rd = -1, g_sig_wr = -1;
static int g_stopping, g_killed;
static long long g_kill_deadline;
static int g_status_dirty;
static long long g_status_written = LLONG_MIN / 2, g_next_status_log;
static time_t g_started;
static struct conntab *g_conntab;   /* connections per address and user (net/conntab.h) */
static int g_conntab_fd = -1;
static unsigned char g_status_carry[sizeof(struct worker_status)];
static size_t g_status_ncarry;

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

const struct config *master_config(void) { return g_cfg; }

/* ---- configuration checks ---- */

char *master_resolve_program(const struct config *cfg, const char *program)
{
    if (program[0] == '/') return xstrdup(program);
    if (strchr(program, '/')) return xasprintf("%s/%s", cfg->dir, program);
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0) return xstrdup(program);
    exe[n] = '\0';
    char *slash = strrchr(exe, '/');
    if (slash) *slash = '\0';
    return xasprintf("%s/%s", exe, program);
}

/* unix_perm: a service's socket_mode and socket_group as a listen_unix_perm (H4). The mode is
 * octal, at most 0777, and never gives others any right; without socket_mode it is 0600, or
 * 0660 with socket_group. 0, or CF_E_PARSE with the reason in why. */
static int unix_perm(const struct config_service *cs, struct listen_unix_perm *perm,
                     struct buf *why)
{
    const char *mode = service_str(cs, SVC_SOCKET_MODE);
    const char *group = service_str(cs, SVC_SOCKET_GROUP);
    perm->gid = -1;
    if (*group) {
        struct group *g = getgrnam(group);
        if (!g) {
            buf_printf(why, "socket_group %s: no such group\n", group);
            return CF_E_PARSE;
        }
        perm->gid = (long)g->gr_gid;
    }
    perm->mode = *group ? 0660 : LISTEN_UNIX_MODE;
    if (*mode) {
        char *end;
        errno = 0;
        unsigned long m = strtoul(mode, &end, 8);
        if (*end || errno || m > 0777 || mode[0] == '-') {
            buf_printf(why, "socket_mode %s: not an octal mode such as 0660\n", mode);
            return CF_E_PARSE;
        }
        /* connecting needs write permission on the file: a mode that lets others write
         * would undo H4, so it is refused rather than honoured */
        if (m & 0007) {
            buf_printf(why, "socket_mode %s: gives others access; use socket_group\n", mode);
            return CF_E_PARSE;
        }
        perm->mode = (unsigned)m;
    }
    return 0;
}

int master_validate(const struct config *cfg, struct buf *err)
{
    int r = 0;
    for (size_t i = 0; i < cfg->nservices; i++) {
        const struct config_service *s = &cfg->services[i];
        const struct strarr *ls = service_list(s, SVC_LISTEN);
        for (size_t k = 0; k < ls->count; k++) {
            struct listen_addr a;
            struct buf why = BUF_INIT;
            if (listen_parse(ls->v[k], &a, &why)) {
                buf_printf(err, "%s:%d: service '%s': %s", cfg->path, s->line, s->name,
                           buf_cstr(&why));
                r = CF_E_PARSE;
            }
            buf_fini(&why);
            /* the same address twice anywhere in the file would fail at bind time with a
             * less helpful "in use" */
            for (size_t j = 0; j <= i; j++) {
                const struct strarr *o = service_list(&cfg->services[j], SVC_LISTEN);
                for (size_t m = 0; m < (j == i ? k : o->count); m++)
                    if (!strcmp(o->v[m], ls->v[k])) {
                        buf_printf(err, "%s:%d: service '%s': listen address %s is also used "
                                   "by service '%s'\n", cfg->path, s->line, s->name, ls->v[k],
                                   cfg->services[j].name);
                        r = CF_E_PARSE;
                    }
            }
        }
        struct listen_unix_perm perm;
        struct buf why = BUF_INIT;
        if (unix_perm(s, &perm, &why)) {
            buf_printf(err, "%s:%d: service '%s': %s", cfg->path, s->line, s->name,
                       buf_cstr(&why));
            r = CF_E_PARSE;
        }
        buf_fini(&why);
        char *prog = master_resolve_program(cfg, service_str(s, SVC_PROGRAM));
        if (access(prog, X_OK) < 0) {
            buf_printf(err, "%s:%d: service '%s': program %s: %s\n", cfg->path, s->line, s->name,
                       prog, strerror(errno));
            r = CF_E_PARSE;
        }
        free(prog);
    }
    return r;
}

/* ---- services and listeners ---- */

static void listener_close(struct listener *l, int unlink_path)
{
    if (l->fd >= 0) close(l->fd);
    l->fd = -1;
    if (unlink_path && l->is_unix) unlink(l->spec);
}

/* spec_in_use: is spec a listen address of an active service other than except? */
static int spec_in_use(const char *spec, const struct service *except)
{
    for (struct service *s = g_services; s; s = s->next)
        if (s != except && s->active && strarr_find(&s->listen, spec) >= 0) return 1;
    return 0;
}

static void service_close_listeners(struct service *s, int unlink_paths)
{
    for (size_t i = 0; i < s->nl; i++)
        listener_close(&s->l[i], unlink_paths && !spec_in_use(s->l[i].spec, s));
}

static void service_free(struct service *s)
{
    service_close_listeners(s, 0);
    for (size_t i = 0; i < s->nl; i++) free(s->l[i].spec);
    free(s->l);
    free(s->name);
    free(s->program);
    free(s->args);
    strarr_fini(&s->listen);
    free(s->exits);
    free(s);
}

/* find_fd: a listener already open for spec in the current service list, or -1. Reuse keeps
 * the socket (and its queue of waiting connections) across a reload. */
static int find_fd(const char *spec)
{
    for (struct service *s = g_services; s; s = s->next)
        if (s->active)
            for (size_t i = 0; i < s->nl; i++)
                if (s->l[i].fd >= 0 && !strcmp(s->l[i].spec, spec)) return s->l[i].fd;
    return -1;
}

/* service_new: a service record for cs with its listeners open (reused by dup or bound).
 * Returns NULL with the reason in err. */
static struct service *service_new(const struct config *cfg, const struct config_service *cs,
                                   struct buf *err)
{
    struct service *s = xzmalloc(sizeof *s);
    s->name = xstrdup(cs->name);
    s->program = master_resolve_program(cfg, service_str(cs, SVC_PROGRAM));
    s->args = xstrdup(service_str(cs, SVC_ARGS));
    const struct strarr *ls = service_list(cs, SVC_LISTEN);
    for (size_t i = 0; i < ls->count; i++) strarr_add(&s->listen, ls->v[i]);
    s->prefork = service_int(cs, SVC_PREFORK);
    s->maxchild = service_int(cs, SVC_MAXCHILD);
    s->active = 1;
    s->l = xreallocarray(NULL, ls->count, sizeof *s->l);
    struct listen_unix_perm perm;
    if (unix_perm(cs, &perm, err)) goto fail;
    for (size_t i = 0; i < ls->count; i++) {
        struct listener *l = &s->l[s->nl];
        l->spec = xstrdup(ls->v[i]);
        l->is_unix = ls->v[i][0] == '/';
        l->fd = -1;
        s->nl++;
        int old = find_fd(ls->v[i]);
        if (old >= 0) {
            l->fd = fcntl(old, F_DUPFD_CLOEXEC, 3);
            if (l->fd < 0) {
                buf_printf(err, "cannot listen on %s: %s\n", ls->v[i], strerror(errno));
                goto fail;
            }
        } else if (listen_open_perm(ls->v[i], &perm, &l->fd, err)) {
            goto fail;
        } else {
            log_info("listening", "service=%s address=%s", log_quote(s->name),
                     log_quote(ls->v[i]));
        }
    }
    return s;
fail:
    /* only unlink UNIX paths we created here: a failed reload must leave the old ones alone */
    for (size_t i = 0; i < s->nl; i++)
        listener_close(&s->l[i], s->l[i].fd >= 0 && find_fd(s->l[i].spec) < 0);
    service_free(s);
    return NULL;
}

static void service_apply_limits(struct service *s, const struct config_service *cs)
{
    s->prefork = service_int(cs, SVC_PREFORK);
    s->maxchild = service_int(cs, SVC_MAXCHILD);
}

/* service_same: can the running record s serve cs without rebinding or a new program? */
static int service_same(const struct config *cfg, const struct service *s,
                        const struct config_service *cs)
{
    const struct strarr *ls = service_list(cs, SVC_LISTEN);
    if (strcmp(s->args, service_str(cs, SVC_ARGS)) || ls->count != s->listen.count) return 0;
    for (size_t i = 0; i < ls->count; i++)
        if (strcmp(ls->v[i], s->listen.v[i])) return 0;
    char *prog = master_resolve_program(cfg, service_str(cs, SVC_PROGRAM));
    int same = !strcmp(prog, s->program);
    free(prog);
    return same;
}

/* ---- signals ---- */

static void on_signal(int sig)
{
    int saved = errno;
    unsigned char c = (unsigned char)sig;
    if (write(g_sig_wr, &c, 1) < 0) {
        /* the pipe is full: enough wake-ups are already queued */
    }
    errno = saved;
}

static const int g_handled[] = { SIGHUP, SIGINT, SIGTERM, SIGUSR1, SIGUSR2, SIGCHLD };

static void install_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sigfillset(&sa.sa_mask);
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_RESTART | SA_NOCLDSTOP;
    for (size_t i = 0; i < sizeof g_handled / sizeof g_handled[0]; i++)
        sigaction(g_handled[i], &sa, NULL);
    sa.sa_handler = SIG_IGN;
    sa.sa_flags = 0;
    sigaction(SIGPIPE, &sa, NULL);
}

int master_setup(struct config *cfg, const char *conf_path, int debug, struct buf *err)
{
    g_cfg = cfg;
    g_conf_path = xstrdup(conf_path);
    g_debug = debug;
    int p[2];
    if (pipe2(p, O_CLOEXEC) < 0) goto syserr;
    g_status_rd = p[0];
    g_status_wr = p[1];
    /* only the master's end is non-blocking: a worker that finds the pipe full waits rather
     * than lose a report */
    fcntl(g_status_rd, F_SETFL, O_NONBLOCK);
    if (pipe2(p, O_CLOEXEC | O_NONBLOCK) < 0) goto syserr;
    g_sig_rd = p[0];
    g_sig_wr = p[1];
    install_signals();
    /* Room for every worker the configuration allows, four times over (reloads can raise
     * maxchild while retired workers still hold slots). Untouched pages of the memfd cost
     * nothing. Without a table the limits per address and user are off (logged), but the
     * server runs. */
    long long want = 0;
    for (size_t i = 0; i < cfg->nservices; i++)
        want += service_int(&cfg->services[i], SVC_MAXCHILD);
    want = want * 4 < 4096 ? 4096 : want * 4 > (1 << 20) ? (1 << 20) : want * 4;
    if (conntab_create((size_t)want, &g_conntab, &g_conntab_fd))
        log_err("conntab_unavailable", "error=\"connection limits are off\"");

    struct service **tail = &g_services;
    for (size_t i = 0; i < cfg->nservices; i++) {
        struct service *s = service_new(cfg, &cfg->services[i], err);
        if (!s) {
            master_fini();
            return CF_E_IO;
        }
        *tail = s;
        tail = &s->next;
    }
    return 0;
syserr:
    buf_printf(err, "pipe: %s\n", strerror(errno));
    master_fini();
    return CF_E_INTERNAL;
}

void master_fini(void)
{
    while (g_services) {
        struct service *s = g_services;
        g_services = s->next;
        service_free(s);
    }
    while (g_children) {
        struct child *c = g_children;
        g_children = c->next;
        free(c);
    }
    while (g_zygotes) {
        struct zygote *z = g_zygotes;
        g_zygotes = z->next;
        if (z->fd >= 0) close(z->fd);
        free(z);
    }
    conntab_free(&g_conntab);
    int *fds[] = { &g_status_rd, &g_status_wr, &g_sig_rd, &g_sig_wr, &g_conntab_fd };
    for (size_t i = 0; i < 5; i++)
        if (*fds[i] >= 0) { close(*fds[i]); *fds[i] = -1; }
    config_free(&g_cfg);
    xfree_ptr(&g_conf_path);
}

/* ---- workers ---- */

static void count_children(const struct service *s, int *total, int *idle, int *ready, int *busy)
{
    *total = *idle = *ready = *busy = 0;
    for (struct child *c = g_children; c; c = c->next) {
        if (c->svc != s) continue;
        (*total)++;
        if (c->state == CH_READY) (*ready)++;
        if (c->state == CH_BUSY) (*busy)++;
        if (!c->retiring && c->state != CH_BUSY) (*idle)++;
    }
}

/* record_abnormal: note a crash or failed start of s; too many within respawn_window pause
 * its spawning for respawn_pause, so a broken program does not fork-loop. */
static void record_abnormal(struct service *s, long long now)
{
    long long window = config_int(g_cfg, CFG_RESPAWN_WINDOW) * 1000;
    long long limit = config_int(g_cfg, CFG_RESPAWN_LIMIT);
    size_t keep = 0;
    for (size_t i = 0; i < s->nexits; i++)
        if (now - s->exits[i] < window) s->exits[keep++] = s->exits[i];
    s->exits = xreallocarray(s->exits, keep + 1, sizeof *s->exits);
    s->exits[keep++] = now;
    s->nexits = keep;
    if ((long long)s->nexits > limit && !s->paused_until && s->active && !g_stopping) {
        long long pause = config_int(g_cfg, CFG_RESPAWN_PAUSE);
        s->paused_until = now + (pause > 0 ? pause * 1000 : 1);
        log_err("respawn_paused", "service=%s exits=%zu window=%lld pause=%lld",
                log_quote(s->name), s->nexits, window / 1000, pause);
        s->nexits = 0;
    }
}

static void build_env(struct strarr *env, size_t nl)
{
    for (char **e = environ; e && *e; e++)
        if (strncmp(*e, WORKER_ENV_LISTEN_FDS "=", sizeof WORKER_ENV_LISTEN_FDS) &&
            strncmp(*e, WORKER_ENV_STATUS_FD "=", sizeof WORKER_ENV_STATUS_FD) &&
            strncmp(*e, WORKER_ENV_ZYGOTE_FD "=", sizeof WORKER_ENV_ZYGOTE_FD) &&
            strncmp(*e, WORKER_ENV_CONNTAB_FD "=", sizeof WORKER_ENV_CONNTAB_FD) &&
            strncmp(*e, WORKER_ENV_DEBUG "=", sizeof WORKER_ENV_DEBUG))
            strarr_add(env, *e);
    if (g_debug) strarr_add(env, WORKER_ENV_DEBUG "=1");
    strarr_take(env, xasprintf("%s=%zu", WORKER_ENV_LISTEN_FDS, nl));
    strarr_take(env, xasprintf("%s=%zu", WORKER_ENV_STATUS_FD, WORKER_FIRST_FD + nl));
    strarr_take(env, xasprintf("%s=%zu", WORKER_ENV_ZYGOTE_FD, WORKER_FIRST_FD + nl + 1));
    if (g_conntab_fd >= 0)
        strarr_take(env, xasprintf("%s=%zu", WORKER_ENV_CONNTAB_FD, WORKER_FIRST_FD + nl + 2));
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
        for (size_t i = 0; i < sizeof g_handled / sizeof g_handled[0]; i++)
            sigaction(g_handled[i], &sa, NULL);
        sigaction(SIGPIPE, &sa, NULL);
        /* a zygote whose master dies is told to finish (its workers set this again) */
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (getppid() != master) _exit(1);
        /* copy everything above the target range first, so no dup2 overwrites a source */
        size_t n = s->nl;
        int high = WORKER_FIRST_FD + (int)n + 3;
        for (size_t i = 0; i < n; i++) tmp[i] = fcntl(s->l[i].fd, F_DUPFD_CLOEXEC, high);
        int st = fcntl(g_status_wr, F_DUPFD_CLOEXEC, high);
        int zf = fcntl(zfd, F_DUPFD_CLOEXEC, high);
        int ct = g_conntab_fd >= 0 ? fcntl(g_conntab_fd, F_DUPFD_CLOEXEC, high) : -1;
        for (size_t i = 0; i < n; i++) dup2(tmp[i], WORKER_FIRST_FD + (int)i);
        dup2(st, WORKER_FIRST_FD + (int)n);       /* dup2 clears close-on-exec on the copy */
        dup2(zf, WORKER_FIRST_FD + (int)n + 1);
        if (ct >= 0) dup2(ct, WORKER_FIRST_FD + (int)n + 2);
        close_range((unsigned)(WORKER_FIRST_FD + n + (ct >= 0 ? 3 : 2)), ~0U, 0);
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

/* ---- zygotes ---- */

static int count_zygotes_of(const struct service *s)
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
static void zygote_retire(struct zygote *z, int sig)
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
static pid_t proc_ppid(pid_t pid)
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

static struct child *find_child(pid_t pid, struct child ***link_r)
{
    for (struct child **pp = &g_children; *pp; pp = &(*pp)->next)
        if ((*pp)->pid == pid) {
            if (link_r) *link_r = pp;
            return *pp;
        }
    return NULL;
}

static struct zygote *find_zygote(pid_t pid, struct zygote ***link_r)
{
    for (struct zygote **pp = &g_zygotes; *pp; pp = &(*pp)->next)
        if ((*pp)->pid == pid) {
            if (link_r) *link_r = pp;
            return *pp;
        }
    return NULL;
}

static void retire(struct child *c)
{
    if (c->retiring) return;
    c->retiring = 1;
    c->signaled = 1;
    kill(c->pid, SIGUSR2);
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

static void read_zygotes(long long now)
{
    for (struct zygote *z = g_zygotes; z; z = z->next) read_zygote(z, now);
}

/* spawn_needed: keep max(prefork, 1) idle workers per active service, within maxchild, by
 * asking its zygote (started here when missing). A request not answered yet counts as an
 * idle worker, so one slow fork does not make us ask again. One idle worker is the floor:
 * with none, nobody would accept. */
static void spawn_needed(long long now)
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

static void read_status(long long now)
{
    unsigned char b[sizeof(struct worker_status) * 256];
    int drained = 0;
    for (;;) {
        memcpy(b, g_status_carry, g_status_ncarry);
        ssize_t n = read(g_status_rd, b + g_status_ncarry, sizeof b - g_status_ncarry);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return;
        size_t len = g_status_ncarry + (size_t)n, off = 0;
        for (; off + sizeof(struct worker_status) <= len; off += sizeof(struct worker_status)) {
            struct worker_status m;
            memcpy(&m, b + off, sizeof m);
            struct child *c = find_child((pid_t)m.pid, NULL);
            if (!c && !drained) {
                /* a new worker sends its pid to the master on its zygote's control socket
                 * before its first report: take those records, then look again */
                read_zygotes(now);
                drained = 1;
                c = find_child((pid_t)m.pid, NULL);
            }
            if (!c) {
                /* one of ours that we do not know (its pid record was lost) must not serve
                 * unsupervised: retire it */
                if (m.state == WORKER_READY && m.pid > 0 && !find_zygote((pid_t)m.pid, NULL) &&
                    proc_ppid((pid_t)m.pid) == getpid()) {
                    log_warn("worker_unknown", "pid=%d", (int)m.pid);
                    kill((pid_t)m.pid, SIGUSR2);
                }
                continue;
            }
            if (m.state == WORKER_READY) {
                c->state = CH_READY;
            } else if (m.state == WORKER_BUSY) {
                c->state = CH_BUSY;
                c->svc->served++;
            }
            g_status_dirty = 1;
        }
        g_status_ncarry = len - off;
        memcpy(g_status_carry, b + off, g_status_ncarry);
    }
}

static void describe_status(int st, char *out, size_t n)
{
    if (WIFEXITED(st)) snprintf(out, n, "exit:%d", WEXITSTATUS(st));
    else if (WIFSIGNALED(st)) snprintf(out, n, "signal:%s%s", sigabbrev_np(WTERMSIG(st)) ?
                                       sigabbrev_np(WTERMSIG(st)) : "?",
                                       WCOREDUMP(st) ? ":core" : "");
    else snprintf(out, n, "unknown:%d", st);
}

/* service_release: free a retired service once no worker or zygote refers to it. */
static void service_release(struct service *s)
{
    if (s->active) return;
    for (struct child *o = g_children; o; o = o->next)
        if (o->svc == s) return;
    if (count_zygotes_of(s)) return;
    struct service **pp = &g_services;
    while (*pp != s) pp = &(*pp)->next;
    *pp = s->next;
    service_free(s);
}

/* reap_zygote: z has exited: the service gets a new one in spawn_needed (rate-limited like
 * workers: an unexpected death counts as an abnormal exit). */
static void reap_zygote(struct zygote *z, int st, long long now)
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

/* db_failchk: free the database locks and transactions of dead workers (kv_failchk), so a
 * worker killed in the middle of a transaction cannot make the others wait forever. */
static void db_failchk(void)
{
    char *dir = xasprintf("%s/db", config_str(g_cfg, CFG_CONFIGDIR));
    kv_failchk(dir);
    free(dir);
}

static void reap(long long now)
{
    int need_failchk = 0;
    int st;
    pid_t pid;
    while ((pid = waitpid(-1, &st, WNOHANG)) > 0) {
        /* a worker killed in a session never released its slot in the connection table
         * (also one whose pid record we never took) */
        if (g_conntab && !(WIFEXITED(st) && WEXITSTATUS(st) == 0)) {
            /* the quota roots it was changing (settle.h), before its slots are freed */
            struct strarr notes = STRARR_INIT;
            conntab_notes_of(g_conntab, (int)pid, &notes);
            for (size_t i = 0; i < notes.count; i++) settle_note(notes.v[i]);
            strarr_fini(&notes);
        }
        if (g_conntab) conntab_clear_pid(g_conntab, (int)pid);
        struct zygote **zlink;
        struct zygote *z = find_zygote(pid, &zlink);
        if (z) {
            *zlink = z->next;
            reap_zygote(z, st, now);
            continue;
        }
        struct child **link;
        struct child *c = find_child(pid, &link);
        if (!c) continue;       /* a worker whose pid record we never took, or a stray orphan */
        *link = c->next;
        struct service *s = c->svc;
        int normal = (WIFEXITED(st) && WEXITSTATUS(st) == 0) ||
                     (WIFSIGNALED(st) && c->signaled &&
                      (WTERMSIG(st) == SIGTERM || WTERMSIG(st) == SIGUSR2 ||
                       WTERMSIG(st) == SIGKILL));
        char how[48];
        describe_status(st, how, sizeof how);
        /* a worker that did not exit cleanly may have died inside a database transaction */
        if (!(WIFEXITED(st) && WEXITSTATUS(st) == 0)) need_failchk = 1;
        if (normal) {
            log_debug("worker_exit", "service=%s pid=%d status=%s", log_quote(s->name),
                      (int)pid, how);
        } else {
            log_warn("worker_crashed", "service=%s pid=%d status=%s state=%s",
                     log_quote(s->name), (int)pid, how,
                     c->state == CH_BUSY ? "busy" : c->state == CH_READY ? "ready" : "starting");
            record_abnormal(s, now);
        }
        free(c);
        g_status_dirty = 1;
        service_release(s);
    }
    if (need_failchk) db_failchk();
    /* after failchk: the recount must not wait on database locks of the dead */
    if (settle_pending()) settle_spawn(g_cfg);
}

/* zygote_deadline: kill and replace a ready zygote that has left a request unanswered for
 * ZYGOTE_ANSWER_MS; returns the poll timeout until the next such deadline, or cur. */
static int zygote_deadline(long long now)
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


/* ---- status ---- */

/* status_lines: one line per service name, aggregated over its current record and records
 * being retired (after a reload), in configuration order; removed services still running
 * workers come last. conns adds the connections before and after login (the status file has
 * them; the log line keeps its old shape). */
static void status_lines(struct strarr *out, int conns)
{
    struct strarr names = STRARR_INIT;
    for (int pass = 0; pass < 2; pass++)
        for (struct service *s = g_services; s; s = s->next)
            if (s->active == !pass && strarr_find(&names, s->name) < 0) strarr_add(&names, s->name);
    for (size_t i = 0; i < names.count; i++) {
        int workers = 0, ready = 0, busy = 0;
        unsigned long long served = 0;
        for (struct service *s = g_services; s; s = s->next) {
            if (strcmp(s->name, names.v[i])) continue;
            int t, id, r, b;
            count_children(s, &t, &id, &r, &b);
            workers += t;
            ready += r;
            busy += b;
            served += s->served;
        }
        struct buf line = BUF_INIT;
        buf_printf(&line, "service=%s workers=%d ready=%d busy=%d served=%llu",
                   log_quote(names.v[i]), workers, ready, busy, served);
        /* connections before and after login, from the connection table (a snapshot) */
        if (conns && g_conntab)
            buf_printf(&line, " preauth=%d loggedin=%d",
                       conntab_count(g_conntab, names.v[i], CONNTAB_PREAUTH),
                       conntab_count(g_conntab, names.v[i], CONNTAB_AUTH));
        strarr_add(out, buf_cstr(&line));
        buf_fini(&line);
    }
    strarr_fini(&names);
}

/* write_status_file: configdir/cofferd.status, replaced with rename so a reader never sees a
 * half-written file. No fsync: it describes the running process only and is worthless after a
 * crash, and an fsync a second would stall the supervisor on a busy disk. */
static void write_status_file(long long now)
{
    struct strarr lines = STRARR_INIT;
    struct buf b = BUF_INIT;
    status_lines(&lines, 1);
    buf_printf(&b, "pid=%d started=%lld updated=%lld state=%s\n", (int)getpid(),
               (long long)g_started, (long long)time(NULL), g_stopping ? "stopping" : "running");
    for (size_t i = 0; i < lines.count; i++) buf_printf(&b, "%s\n", lines.v[i]);
    const char *dir = config_str(g_cfg, CFG_CONFIGDIR);
    char *path = xasprintf("%s/cofferd.status", dir);
    char *tmp = xasprintf("%s/.cofferd.status.tmp", dir);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0 || write(fd, b.s, b.len) != (ssize_t)b.len || close(fd) < 0 ||
        rename(tmp, path) < 0) {
        log_warn("status_write_failed", "path=%s error=%s", log_quote(path),
                 log_quote(strerror(errno)));
        unlink(tmp);
    }
    free(path);
    free(tmp);
    buf_fini(&b);
    strarr_fini(&lines);
    g_status_dirty = 0;
    g_status_written = now;
}

static void log_status(long long now)
{
    struct strarr lines = STRARR_INIT;
    status_lines(&lines, 0);
    for (size_t i = 0; i < lines.count; i++) log_info("status", "%s", lines.v[i]);
    strarr_fini(&lines);
    write_status_file(now);
}

/* ---- reload and shutdown ---- */

static void set_log_level(const struct config *cfg)
{
    if (g_debug) return;
    enum log_level lvl = LOG_LVL_INFO;
    log_level_parse(config_str(cfg, CFG_LOG_LEVEL), &lvl);
    log_set_level(lvl);
}

static void reload(void)
{
    struct config *cfg = NULL;
    struct buf err = BUF_INIT;
    struct service *fresh = NULL, **tail = &fresh;
    log_notice("reload", "config=%s", log_quote(g_conf_path));
    if (config_load(g_conf_path, &cfg, &err) || master_validate(cfg, &err)) goto fail;
    static const enum config_id restart_only[] = { CFG_USER, CFG_CONFIGDIR, CFG_PIDFILE,
                                                   CFG_LOG_TARGET };
    for (size_t i = 0; i < sizeof restart_only / sizeof restart_only[0]; i++)
        if (strcmp(config_str(cfg, restart_only[i]), config_str(g_cfg, restart_only[i])))
            log_warn("reload_ignored", "setting=%s reason=\"needs a restart\"",
                     config_global_defs(&(size_t){0})[restart_only[i]].name);

    /* Phase 1: build the new service list without touching the running one, so any failure
     * (a port that cannot be bound) leaves everything as it was. Kept records are marked by
     * being in the fresh list; they are unlinked from g_services in phase 2. */
    struct service *kept[256];
    size_t nkept = 0;
    for (size_t i = 0; i < cfg->nservices; i++) {
        const struct config_service *cs = &cfg->services[i];
        struct service *old = NULL;
        for (struct service *s = g_services; s; s = s->next)
            if (s->active && !strcmp(s->name, cs->name)) old = s;
        if (old && nkept < 256 && service_same(cfg, old, cs)) {
            kept[nkept++] = old;
            continue;
        }
        struct service *s = service_new(cfg, cs, &err);
        if (!s) goto fail;
        *tail = s;
        tail = &s->next;
    }

    /* Phase 2: commit. Every running worker is retired (SIGUSR2): it finishes its session
     * and exits. Every zygote is retired too, so the replacements are forked from a new
     * zygote that has read the new file (and has a new address-space layout). */
    for (struct child *c = g_children; c; c = c->next) retire(c);
    for (struct zygote *z = g_zygotes; z; z = z->next)
        if (!z->retired) zygote_retire(z, SIGTERM);
    struct service *newlist = NULL, **ntail = &newlist;
    for (size_t i = 0; i < cfg->nservices; i++) {
        const struct config_service *cs = &cfg->services[i];
        struct service *s = NULL;
        for (size_t k = 0; k < nkept && !s; k++)
            if (!strcmp(kept[k]->name, cs->name)) s = kept[k];
        if (s) {
            struct service **pp = &g_services;
            while (*pp != s) pp = &(*pp)->next;
            *pp = s->next;
            service_apply_limits(s, cs);
        } else {
            struct service **pp = &fresh;
            while (strcmp((*pp)->name, cs->name)) pp = &(*pp)->next;
            s = *pp;
            *pp = s->next;
            log_info("service_started", "service=%s", log_quote(s->name));
        }
        s->next = NULL;
        *ntail = s;
        ntail = &s->next;
    }
    /* what is left of the old list is removed or replaced: close its listeners (a UNIX path
     * is unlinked unless the new list still serves it) and let its workers drain */
    struct service *oldlist = g_services;
    g_services = newlist;
    while (oldlist) {
        struct service *s = oldlist;
        oldlist = s->next;
        if (s->active) {
            s->active = 0;
            service_close_listeners(s, 1);
            log_info("service_retired", "service=%s", log_quote(s->name));
        }
        int left = count_zygotes_of(s);
        for (struct child *c = g_children; c; c = c->next) left += c->svc == s;
        if (!left) {
            service_free(s);
            continue;
        }
        s->next = NULL;
        *ntail = s;
        ntail = &s->next;
    }
    config_free(&g_cfg);
    g_cfg = cfg;
    set_log_level(g_cfg);
    g_status_dirty = 1;
    g_next_status_log = 0;
    log_notice("reloaded", "services=%zu", g_cfg->nservices);
    buf_fini(&err);
    return;
fail:
    while (fresh) {
        struct service *s = fresh;
        fresh = s->next;
        for (size_t i = 0; i < s->nl; i++)
            listener_close(&s->l[i], s->l[i].fd >= 0 && find_fd(s->l[i].spec) < 0);
        service_free(s);
    }
    /* one event per problem; the old configuration stays in force */
    struct strarr lines = STRARR_INIT;
    strarr_split(&lines, buf_cstr(&err), "\n", 1);
    for (size_t i = 0; i < lines.count; i++)
        log_err("reload_failed", "error=%s", log_quote(lines.v[i]));
    if (!lines.count) log_err("reload_failed", "error=unknown");
    strarr_fini(&lines);
    config_free(&cfg);
    buf_fini(&err);
}

static int count_all_children(void)
{
    int n = 0;
    for (struct child *c = g_children; c; c = c->next) n++;
    return n;
}

static void begin_shutdown(int sig, long long now)
{
    if (g_stopping) {
        /* a second SIGTERM/SIGINT: do not wait for the timeout */
        g_kill_deadline = now;
        return;
    }
    g_stopping = 1;
    log_notice("shutdown", "signal=%s workers=%d", sigabbrev_np(sig), count_all_children());
    for (struct service *s = g_services; s; s = s->next) {
        s->active = 0;
        service_close_listeners(s, 1);
    }
    for (struct child *c = g_children; c; c = c->next) {
        c->signaled = 1;
        kill(c->pid, SIGTERM);
    }
    for (struct zygote *z = g_zygotes; z; z = z->next)
        if (!z->retired) zygote_retire(z, SIGTERM);
    g_kill_deadline = now + config_int(g_cfg, CFG_SHUTDOWN_TIMEOUT) * 1000;
    g_status_dirty = 1;
}

/* ---- the loop ---- */

static void handle_signals(long long now)
{
    unsigned char sigs[64];
    ssize_t n;
    int hup = 0, usr1 = 0, term = 0;
    while ((n = read(g_sig_rd, sigs, sizeof sigs)) > 0)
        for (ssize_t i = 0; i < n; i++) {
            if (sigs[i] == SIGHUP) hup = 1;
            else if (sigs[i] == SIGUSR1) usr1 = 1;
            else if (sigs[i] == SIGTERM || sigs[i] == SIGINT) term = sigs[i];
            /* SIGCHLD only wakes us: reap() runs every round */
        }
    if (term) begin_shutdown(term, now);
    if (hup && !g_stopping) reload();
    if (usr1) log_status(now);
}

static int min_timeout(int cur, long long when, long long now)
{
    long long d = when - now;
    if (d < 0) d = 0;
    if (d > 60000) d = 60000;
    return cur < 0 || d < cur ? (int)d : cur;
}

/* maintenance: free what dead processes left in the database environment, checkpoint it (so
 * recovery at the next start replays little and old log files can go) and prune expired
 * duplicate-delivery records. Runs in the
 * master every db_checkpoint_interval; opens and closes the environment each time, so no
 * database handle is held across fork+exec. */
static void maintenance(void)
{
    db_failchk();
    char *dir = xasprintf("%s/db", config_str(g_cfg, CFG_CONFIGDIR));
    struct kv_env *env = NULL;
    struct dupdb *dup = NULL;
    if (kv_env_open(dir, &env) == 0) {
        if (kv_checkpoint(env)) log_warn("checkpoint_failed", "dir=%s", log_quote(dir));
        if (dupdb_open(env, &dup) == 0) {
            int64_t before = (int64_t)time(NULL) - config_int(g_cfg, CFG_DUPLICATE_LIFETIME);
            int n = dupdb_prune(dup, before);
            if (n > 0) log_info("duplicates_pruned", "count=%d", n);
            dupdb_close(&dup);
        }
        kv_env_close(&env);
    }
    free(dir);
}

int master_run(void)
{
    g_started = time(NULL);
    /* Workers are forked by the zygotes and orphaned at once; as a child subreaper the master
     * becomes their parent, so it waits for them and sees how they died, as if it had forked
     * them itself. */
    if (prctl(PR_SET_CHILD_SUBREAPER, 1) < 0) {
        log_err("master_failed", "error=\"prctl(PR_SET_CHILD_SUBREAPER): %s\"", strerror(errno));
        return 1;
    }
    long long now = now_ms();
    long long interval = config_int(g_cfg, CFG_STATUS_INTERVAL) * 1000;
    g_next_status_log = interval > 0 ? now + interval : 0;
    long long next_maint = 0;
    settle_start(g_cfg);
    for (;;) {
        now = now_ms();
        long long maint = config_int(g_cfg, CFG_DB_CHECKPOINT_INTERVAL) * 1000;
        if (maint > 0 && !g_stopping) {
            if (!next_maint || next_maint > now + maint) next_maint = now + maint;
            if (now >= next_maint) {
                maintenance();
                next_maint = now_ms() + maint;
            }
        } else {
            next_maint = 0;
        }
        if (!g_stopping) spawn_needed(now);
        if (g_stopping && !g_children && !g_zygotes) break;
        if (g_stopping && !g_killed && now >= g_kill_deadline) {
            log_warn("shutdown_kill", "workers=%d", count_all_children());
            for (struct child *c = g_children; c; c = c->next) kill(c->pid, SIGKILL);
            for (struct zygote *z = g_zygotes; z; z = z->next) kill(z->pid, SIGKILL);
            g_killed = 1;
        }
        interval = config_int(g_cfg, CFG_STATUS_INTERVAL) * 1000;
        if (interval > 0) {
            if (!g_next_status_log) g_next_status_log = now + interval;
            if (now >= g_next_status_log) {
                log_status(now);
                g_next_status_log = now + interval;
            }
        } else {
            g_next_status_log = 0;
        }
        if (g_status_dirty && now - g_status_written >= 1000) write_status_file(now);

        int timeout = -1;
        if (g_status_dirty) timeout = min_timeout(timeout, g_status_written + 1000, now);
        if (g_next_status_log) timeout = min_timeout(timeout, g_next_status_log, now);
        if (g_stopping && !g_killed) timeout = min_timeout(timeout, g_kill_deadline, now);
        for (struct service *s = g_services; s; s = s->next)
            if (s->paused_until) timeout = min_timeout(timeout, s->paused_until, now);
        if (g_killed) timeout = min_timeout(timeout, now + 1000, now);
        if (next_maint) timeout = min_timeout(timeout, next_maint, now);
        int zt = zygote_deadline(now);
        if (zt >= 0) timeout = min_timeout(timeout, now + zt, now);

        size_t np = 2;
        for (struct zygote *z = g_zygotes; z; z = z->next) np += z->fd >= 0;
        struct pollfd *p = xreallocarray(NULL, np, sizeof *p);
        p[0] = (struct pollfd){ g_sig_rd, POLLIN, 0 };
        p[1] = (struct pollfd){ g_status_rd, POLLIN, 0 };
        np = 2;
        for (struct zygote *z = g_zygotes; z; z = z->next)
            if (z->fd >= 0) p[np++] = (struct pollfd){ z->fd, POLLIN, 0 };
        if (poll(p, (nfds_t)np, timeout) < 0 && errno != EINTR) {
            log_err("master_failed", "error=\"poll: %s\"", strerror(errno));
            free(p);
            return 1;
        }
        free(p);
        now = now_ms();
        /* new workers' pids first, then status: reports a worker wrote before it exited are
         * already in the pipe */
        read_zygotes(now);
        read_status(now);
        handle_signals(now);
        reap(now);
    }
    char *path = xasprintf("%s/cofferd.status", config_str(g_cfg, CFG_CONFIGDIR));
    unlink(path);
    free(path);
    settle_stop(g_cfg, !g_killed);
    return 0;
}
