/* master.c: cofferd's supervisor (master.h): configuration checks, services and their
 * listeners, signals, reload on SIGHUP, graceful shutdown and the loop. The zygotes are in
 * zygote.c, worker bookkeeping and reaping in reap.c, the status pipe and file in status.c. */
#include "master-int.h"
#include "notify.h"
#include "settle.h"
#include "core/error.h"
#include "core/log.h"
#include "core/paths.h"
#include "core/xmalloc.h"
#include "net/conntab.h"
#include "net/listen.h"
#include "store/store.h"
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
#include <unistd.h>

struct config *g_cfg;
char *g_conf_path;
int g_debug;
struct service *g_services;
struct child *g_children;
struct zygote *g_zygotes;
int g_status_rd = -1, g_status_wr = -1;
int g_sig_rd = -1, g_sig_wr = -1;
int g_stopping, g_killed;
long long g_kill_deadline;
int g_status_dirty;
long long g_status_written = LLONG_MIN / 2, g_next_status_log;
time_t g_started;
struct conntab *g_conntab;   /* connections per address and user (net/conntab.h) */
int g_conntab_fd = -1;

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
    /* beside cofferd (the build tree), else in the installed libexec directory, found from
     * cofferd's own place so that an installed tree can be moved as a whole */
    char *beside = xasprintf("%s/%s", exe, program);
    if (access(beside, X_OK) == 0) return beside;
    free(beside);
    return xasprintf("%s/%s/%s", exe, COFFER_LIBEXEC_REL, program);
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
    if (metrics_validate(cfg, err)) r = CF_E_PARSE;
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

void service_free(struct service *s)
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

/* ---- signals, setup ---- */

static void on_signal(int sig)
{
    int saved = errno;
    unsigned char c = (unsigned char)sig;
    if (write(g_sig_wr, &c, 1) < 0) {
        /* the pipe is full: enough wake-ups are already queued */
    }
    errno = saved;
}

const int g_handled[] = { SIGHUP, SIGINT, SIGTERM, SIGUSR1, SIGUSR2, SIGCHLD };
const size_t g_nhandled = sizeof g_handled / sizeof g_handled[0];

static void install_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sigfillset(&sa.sa_mask);
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_RESTART | SA_NOCLDSTOP;
    for (size_t i = 0; i < g_nhandled; i++)
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
    int mr = metrics_setup(cfg, err);   /* the counters and the metrics listener (metrics.c) */
    if (mr) {
        master_fini();
        return mr;
    }

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
    metrics_fini();
    int *fds[] = { &g_status_rd, &g_status_wr, &g_sig_rd, &g_sig_wr, &g_conntab_fd };
    for (size_t i = 0; i < 5; i++)
        if (*fds[i] >= 0) { close(*fds[i]); *fds[i] = -1; }
    config_free(&g_cfg);
    xfree_ptr(&g_conf_path);
}

/* ---- reload and shutdown ---- */

static void set_log_level(const struct config *cfg)
{
    if (g_debug) return;
    enum log_level lvl = LOG_LVL_INFO;
    log_level_parse(config_str(cfg, CFG_LOG_LEVEL), &lvl);
    log_set_level(lvl);
}

/* reload_warn_restart_only: the settings a reload cannot change are logged and ignored. */
static void reload_warn_restart_only(const struct config *cfg)
{
    static const enum config_id restart_only[] = { CFG_USER, CFG_CONFIGDIR, CFG_PIDFILE,
                                                   CFG_LOG_TARGET, CFG_METRICS_LISTEN };
    for (size_t i = 0; i < sizeof restart_only / sizeof restart_only[0]; i++)
        if (strcmp(config_str(cfg, restart_only[i]), config_str(g_cfg, restart_only[i])))
            log_warn("reload_ignored", "setting=%s reason=\"needs a restart\"",
                     config_global_defs(&(size_t){0})[restart_only[i]].name);
}

/* reload_build: phase 1: build the new service list without touching the running one, so any
 * failure (a port that cannot be bound) leaves everything as it was. Running records that can
 * serve cfg unchanged go into kept (at most 256, *nkept of them); new records onto *fresh,
 * also on failure. 0, or CF_E_IO with the reason in err. */
static int reload_build(const struct config *cfg, struct service **fresh, struct service **kept,
                        size_t *nkept, struct buf *err)
{
    struct service **tail = fresh;
    for (size_t i = 0; i < cfg->nservices; i++) {
        const struct config_service *cs = &cfg->services[i];
        struct service *old = NULL;
        for (struct service *s = g_services; s; s = s->next)
            if (s->active && !strcmp(s->name, cs->name)) old = s;
        if (old && *nkept < 256 && service_same(cfg, old, cs)) {
            kept[(*nkept)++] = old;
            continue;
        }
        struct service *s = service_new(cfg, cs, err);
        if (!s) return CF_E_IO;
        *tail = s;
        tail = &s->next;
    }
    return 0;
}

/* reload_commit: phase 2: the service list of cfg, in its order, from the kept records
 * (unlinked from g_services) and the fresh ones. Every running worker is retired (SIGUSR2):
 * it finishes its session and exits. Every zygote is retired too, so the replacements are
 * forked from a new zygote that has read the new file (and has a new address-space layout).
 * What is left of the old list is removed or replaced: its listeners are closed (a UNIX path
 * is unlinked unless the new list still serves it) and its workers drain. */
static void reload_commit(const struct config *cfg, struct service *fresh, struct service **kept,
                          size_t nkept)
{
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
        int left = zygote_count_of(s);
        for (struct child *c = g_children; c; c = c->next) left += c->svc == s;
        if (!left) {
            service_free(s);
            continue;
        }
        s->next = NULL;
        *ntail = s;
        ntail = &s->next;
    }
}

/* reload_fail: drop what phase 1 built (fresh) and log err, one event per problem; the old
 * configuration stays in force. */
static void reload_fail(struct service *fresh, struct buf *err)
{
    while (fresh) {
        struct service *s = fresh;
        fresh = s->next;
        for (size_t i = 0; i < s->nl; i++)
            listener_close(&s->l[i], s->l[i].fd >= 0 && find_fd(s->l[i].spec) < 0);
        service_free(s);
    }
    struct strarr lines = STRARR_INIT;
    strarr_split(&lines, buf_cstr(err), "\n", 1);
    for (size_t i = 0; i < lines.count; i++)
        log_err("reload_failed", "error=%s", log_quote(lines.v[i]));
    if (!lines.count) log_err("reload_failed", "error=unknown");
    strarr_fini(&lines);
}

/* reload: SIGHUP: re-read the configuration and apply it, or keep the old one (logged). */
static void reload(void)
{
    struct config *cfg = NULL;
    struct buf err = BUF_INIT;
    struct service *fresh = NULL, *kept[256];
    size_t nkept = 0;
    log_notice("reload", "config=%s", log_quote(g_conf_path));
    /* MONOTONIC_USEC lets a Type=notify-reload manager match this to its own SIGHUP */
    notify_send("RELOADING=1\nMONOTONIC_USEC=%lld\nSTATUS=reloading %s", now_ms() * 1000,
                g_conf_path);
    if (config_load(g_conf_path, &cfg, &err) || master_validate(cfg, &err)) goto fail;
    reload_warn_restart_only(cfg);
    if (reload_build(cfg, &fresh, kept, &nkept, &err)) goto fail;
    reload_commit(cfg, fresh, kept, nkept);
    config_free(&g_cfg);
    g_cfg = cfg;
    set_log_level(g_cfg);
    g_status_dirty = 1;
    g_next_status_log = 0;
    log_notice("reloaded", "services=%zu", g_cfg->nservices);
    notify_send("READY=1\nSTATUS=reloaded");
    buf_fini(&err);
    return;
fail:
    reload_fail(fresh, &err);
    config_free(&cfg);
    buf_fini(&err);
    /* still serving, with the old configuration */
    notify_send("READY=1\nSTATUS=reload failed, running the previous configuration (see the "
                "log)");
}

static void begin_shutdown(int sig, long long now)
{
    if (g_stopping) {
        /* a second SIGTERM/SIGINT: do not wait for the timeout */
        g_kill_deadline = now;
        return;
    }
    g_stopping = 1;
    notify_send("STOPPING=1\nSTATUS=stopping: workers finish their sessions");
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
    if (usr1) status_log(now);
}

static int min_timeout(int cur, long long when, long long now)
{
    long long d = when - now;
    if (d < 0) d = 0;
    if (d > 60000) d = 60000;
    return cur < 0 || d < cur ? (int)d : cur;
}

/* run_maintenance: maintenance() every db_checkpoint_interval (not while stopping);
 * *next_maint is when it runs next (0: never). */
static void run_maintenance(long long now, long long *next_maint)
{
    long long maint = config_int(g_cfg, CFG_DB_CHECKPOINT_INTERVAL) * 1000;
    if (maint > 0 && !g_stopping) {
        if (!*next_maint || *next_maint > now + maint) *next_maint = now + maint;
        if (now >= *next_maint) {
            /* free what dead processes left in the database environment, checkpoint it
             * (so recovery at the next start replays little and old log files can go) and
             * prune expired duplicate-delivery records: in children (dbjob.c) */
            dbjob_request_maintenance();
            *next_maint = now_ms() + maint;
        }
    } else {
        *next_maint = 0;
    }
}

/* run_status: the status log line every status_interval, and the status file at most once
 * a second when something changed. */
static void run_status(long long now)
{
    long long interval = config_int(g_cfg, CFG_STATUS_INTERVAL) * 1000;
    if (interval > 0) {
        if (!g_next_status_log) g_next_status_log = now + interval;
        if (now >= g_next_status_log) {
            status_log(now);
            g_next_status_log = now + interval;
        }
    } else {
        g_next_status_log = 0;
    }
    if (g_status_dirty && now - g_status_written >= 1000) status_write_file(now);
}

/* poll_timeout: milliseconds until the next thing the loop must do on its own (-1: none). */
static int poll_timeout(long long now, long long next_maint)
{
    int timeout = -1;
    if (g_status_dirty) timeout = min_timeout(timeout, g_status_written + 1000, now);
    if (g_next_status_log) timeout = min_timeout(timeout, g_next_status_log, now);
    if (g_stopping && !g_killed) timeout = min_timeout(timeout, g_kill_deadline, now);
    for (struct service *s = g_services; s; s = s->next)
        if (s->paused_until) timeout = min_timeout(timeout, s->paused_until, now);
    if (g_killed) timeout = min_timeout(timeout, now + 1000, now);
    if (next_maint) timeout = min_timeout(timeout, next_maint, now);
    int dt = dbjob_deadline(now);
    if (dt >= 0) timeout = min_timeout(timeout, now + dt, now);
    int it = retire_idle(now);
    if (it >= 0) timeout = min_timeout(timeout, now + it, now);
    int zt = zygote_deadline(now);
    if (zt >= 0) timeout = min_timeout(timeout, now + zt, now);
    int mt = metrics_deadline(now);
    if (mt >= 0) timeout = min_timeout(timeout, now + mt, now);
    return timeout;
}

/* wait_events: poll the signal pipe, the status pipe and the zygotes' control sockets for at
 * most timeout ms. 0, or -1 when poll fails (logged). */
static int wait_events(int timeout)
{
    size_t np = 2 + metrics_poll_count();
    for (struct zygote *z = g_zygotes; z; z = z->next) np += z->fd >= 0;
    struct pollfd *p = xreallocarray(NULL, np, sizeof *p);
    p[0] = (struct pollfd){ g_sig_rd, POLLIN, 0 };
    p[1] = (struct pollfd){ g_status_rd, POLLIN, 0 };
    np = 2;
    for (struct zygote *z = g_zygotes; z; z = z->next)
        if (z->fd >= 0) p[np++] = (struct pollfd){ z->fd, POLLIN, 0 };
    np += metrics_poll_fill(p + np);
    int r = 0;
    if (poll(p, (nfds_t)np, timeout) < 0 && errno != EINTR) {
        log_err("master_failed", "error=\"poll: %s\"", strerror(errno));
        r = -1;
    }
    free(p);
    return r;
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
        run_maintenance(now, &next_maint);
        if (!g_stopping) spawn_needed(now);
        if (g_stopping && !g_children && !g_zygotes) break;
        if (g_stopping && !g_killed && now >= g_kill_deadline) {
            log_warn("shutdown_kill", "workers=%d", count_all_children());
            for (struct child *c = g_children; c; c = c->next) kill(c->pid, SIGKILL);
            for (struct zygote *z = g_zygotes; z; z = z->next) kill(z->pid, SIGKILL);
            g_killed = 1;
        }
        run_status(now);
        if (wait_events(poll_timeout(now, next_maint)) < 0) return 1;
        now = now_ms();
        /* new workers' pids first, then status: reports a worker wrote before it exited are
         * already in the pipe */
        zygote_read_all(now);
        status_read(now);
        handle_signals(now);
        reap(now);
        dbjob_run(now);
        metrics_run(now_ms());
    }
    char *path = xasprintf("%s/cofferd.status", config_str(g_cfg, CFG_CONFIGDIR));
    unlink(path);
    free(path);
    dbjob_stop();
    settle_stop(g_cfg, !g_killed);
    return 0;
}
