/* metrics.c: cofferd's metrics and health endpoint (master-int.h "metrics.c", cofferd(8)
 * METRICS AND HEALTH): the shared counters (core/metrics.h) made before any zygote, and a
 * minimal HTTP/1.x server in the master's poll loop that answers GET /metrics (Prometheus
 * text format 0.0.4) and GET /health.
 *
 * The server never blocks the loop: the listener and every connection are non-blocking, a
 * request is at most METRICS_REQ_MAX bytes, a connection lives at most METRICS_CONN_MS, and at
 * most METRICS_CONNS are open (a new one closes the oldest). Nothing of a request is echoed back.
 * Only the first line is looked at (http-req.c); the headers are read up to the blank line and
 * ignored. */
#include "master-int.h"
#include "http-req.h"
#include "core/error.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/xmalloc.h"
#include "net/conntab.h"
#include "net/listen.h"
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define METRICS_CONNS 16
#define METRICS_REQ_MAX 4096
#define METRICS_CONN_MS 5000

struct mconn {
    int fd;                     /* -1: free */
    long long deadline;
    char in[METRICS_REQ_MAX];
    size_t nin;
    struct buf out;             /* the response, once the request is complete */
    size_t sent;
    int draining;               /* response sent, write side shut: reading to the peer's end */
};

static int g_metrics_fd = -1;         /* the shared counters' memfd */
static int g_listen_fd = -1;
static char *g_listen_spec;
static struct mconn g_conns[METRICS_CONNS];

/* after the response, unread input is read and dropped for at most this long before the
 * close, so the close does not reset the connection and lose the response (a 431 for a
 * request that is still arriving) */
#define METRICS_DRAIN_MS 2000

/* crash-respawns per service name (the master's own count; survives reloads) */
static struct strarr g_respawn_names = STRARR_INIT;
static unsigned long long *g_respawns;

int metrics_validate(const struct config *cfg, struct buf *err)
{
    const char *spec = config_str(cfg, CFG_METRICS_LISTEN);
    if (!*spec) return 0;
    struct listen_addr a;
    struct buf why = BUF_INIT;
    int r = 0;
    if (spec[0] == '/') {
        buf_printf(err, "%s: metrics_listen %s: must be a HOST:PORT address\n", cfg->path, spec);
        r = CF_E_PARSE;
    } else if (listen_parse(spec, &a, &why)) {
        buf_printf(err, "%s: metrics_listen: %s", cfg->path, buf_cstr(&why));
        r = CF_E_PARSE;
    }
    for (size_t i = 0; !r && i < cfg->nservices; i++)
        if (strarr_find(service_list(&cfg->services[i], SVC_LISTEN), spec) >= 0) {
            buf_printf(err, "%s: metrics_listen %s is also a listen address of service '%s'\n",
                       cfg->path, spec, cfg->services[i].name);
            r = CF_E_PARSE;
        }
    buf_fini(&why);
    return r;
}

int metrics_setup(const struct config *cfg, struct buf *err)
{
    for (size_t i = 0; i < METRICS_CONNS; i++) g_conns[i].fd = -1;
    /* without counters the server still runs: the endpoint then shows the master's view */
    if (metrics_create(&g_metrics_fd) < 0) {
        log_err("metrics_unavailable", "error=%s", log_quote(strerror(errno)));
        g_metrics_fd = -1;
    }
    const char *spec = config_str(cfg, CFG_METRICS_LISTEN);
    if (!*spec) return 0;
    if (listen_open(spec, &g_listen_fd, err)) return CF_E_IO;
    fcntl(g_listen_fd, F_SETFL, fcntl(g_listen_fd, F_GETFL) | O_NONBLOCK);
    g_listen_spec = xstrdup(spec);
    log_info("listening", "service=metrics address=%s", log_quote(spec));
    return 0;
}

int metrics_shm_fd(void) { return g_metrics_fd; }

static void conn_close(struct mconn *c)
{
    if (c->fd >= 0) close(c->fd);
    c->fd = -1;
    c->nin = c->sent = 0;
    c->draining = 0;
    buf_fini(&c->out);
}

void metrics_fini(void)
{
    for (size_t i = 0; i < METRICS_CONNS; i++)
        if (g_conns[i].fd >= 0) conn_close(&g_conns[i]);
    if (g_listen_fd >= 0) close(g_listen_fd);
    g_listen_fd = -1;
    if (g_metrics_fd >= 0) close(g_metrics_fd);
    g_metrics_fd = -1;
    xfree_ptr(&g_listen_spec);
    strarr_fini(&g_respawn_names);
    free(g_respawns);
    g_respawns = NULL;
}

void metrics_note_respawn(const char *service)
{
    int i = strarr_find(&g_respawn_names, service);
    if (i < 0) {
        strarr_add(&g_respawn_names, service);
        g_respawns = xreallocarray(g_respawns, g_respawn_names.count, sizeof *g_respawns);
        i = (int)g_respawn_names.count - 1;
        g_respawns[i] = 0;
    }
    g_respawns[i]++;
}

/* ---- health ---- */

/* health: 1 when ready for traffic (every active service has its listeners and a worker that
 * accepts or serves), else 0 with the reason in why. */
static int health(struct buf *why)
{
    if (g_stopping) {
        buf_appends(why, "stopping");
        return 0;
    }
    if (g_recovering) {
        buf_appends(why, "database recovery");
        return 0;
    }
    int ok = 1;
    for (struct service *s = g_services; s; s = s->next) {
        if (!s->active) continue;
        /* a worker retired by a reload still says ready until it exits: not counted, so
         * /health does not answer 200 between the reload and the new workers' start only to
         * fall back to 503 when the old ones leave */
        int ready = 0, busy = 0;
        for (struct child *c = g_children; c; c = c->next) {
            if (c->svc != s) continue;
            if (c->state == CH_READY && !c->retiring) ready++;
            if (c->state == CH_BUSY) busy++;
        }
        int listening = 1;
        for (size_t i = 0; i < s->nl; i++) listening &= s->l[i].fd >= 0;
        if (!listening || (ready == 0 && busy == 0)) {
            buf_printf(why, "%sservice %s: %s", ok ? "" : "; ", s->name,
                       listening ? "no worker ready" : "not listening");
            ok = 0;
        }
    }
    return ok;
}

/* ---- the text format ---- */

static void family(struct buf *b, const char *name, const char *type, const char *help)
{
    buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* label: a label value escaped as the text format wants (\\, \", \n) */
static void label(struct buf *b, const char *v)
{
    buf_putc(b, '"');
    for (; *v; v++) {
        if (*v == '\\' || *v == '"') {
            buf_putc(b, '\\');
            buf_putc(b, *v);
        } else if (*v == '\n') {
            buf_appends(b, "\\n");
        } else {
            buf_putc(b, *v);
        }
    }
    buf_putc(b, '"');
}

static uint64_t ld(const uint64_t *p) { return __atomic_load_n(p, __ATOMIC_RELAXED); }

static int named(const struct metrics_slot_name *n)
{
    return __atomic_load_n(&n->state, __ATOMIC_ACQUIRE) == 2;
}

/* service names of the shared slots and of the master's services, in first-seen order */
static void all_services(const struct metrics_shm *m, struct strarr *out)
{
    for (struct service *s = g_services; s; s = s->next)
        if (strarr_find(out, s->name) < 0) strarr_add(out, s->name);
    if (m)
        for (size_t i = 0; i < METRICS_SERVICES; i++)
            if (named(&m->services[i].n) && strarr_find(out, m->services[i].n.name) < 0)
                strarr_add(out, m->services[i].n.name);
}

static void per_service(struct buf *b, const struct metrics_shm *m, const struct strarr *names,
                        const char *metric, size_t field)
{
    for (size_t k = 0; k < names->count; k++) {
        uint64_t v = 0;
        if (m)
            for (size_t i = 0; i < METRICS_SERVICES; i++)
                if (named(&m->services[i].n) && !strcmp(m->services[i].n.name, names->v[k]))
                    v += ld((const uint64_t *)((const char *)&m->services[i] + field));
        buf_printf(b, "%s{service=", metric);
        label(b, names->v[k]);
        buf_printf(b, "} %llu\n", (unsigned long long)v);
    }
}

static void render_services(struct buf *b, const struct metrics_shm *m)
{
    struct strarr names = STRARR_INIT;
    all_services(m, &names);
    family(b, "coffer_connections_total", "counter", "Connections accepted, per service.");
    per_service(b, m, &names, "coffer_connections_total",
                offsetof(struct metrics_service, connections));
    family(b, "coffer_connections", "gauge",
           "Open connections per service, before login (preauth) and after (authenticated).");
    for (size_t k = 0; k < names.count; k++) {
        int pre = g_conntab ? conntab_count(g_conntab, names.v[k], CONNTAB_PREAUTH) : 0;
        int aut = g_conntab ? conntab_count(g_conntab, names.v[k], CONNTAB_AUTH) : 0;
        buf_appends(b, "coffer_connections{service=");
        label(b, names.v[k]);
        buf_printf(b, ",state=\"preauth\"} %d\ncoffer_connections{service=", pre);
        label(b, names.v[k]);
        buf_printf(b, ",state=\"authenticated\"} %d\n", aut);
    }
    family(b, "coffer_received_bytes_total", "counter",
           "Bytes received from clients on closed connections, per service.");
    per_service(b, m, &names, "coffer_received_bytes_total",
                offsetof(struct metrics_service, bytes_in));
    family(b, "coffer_sent_bytes_total", "counter",
           "Bytes sent to clients on closed connections, per service.");
    per_service(b, m, &names, "coffer_sent_bytes_total",
                offsetof(struct metrics_service, bytes_out));

    family(b, "coffer_workers", "gauge", "Worker processes per service and state.");
    for (size_t k = 0; k < names.count; k++) {
        int starting = 0, ready = 0, busy = 0;
        for (struct service *s = g_services; s; s = s->next) {
            if (strcmp(s->name, names.v[k])) continue;
            int t, id, r, bz;
            count_children(s, &t, &id, &r, &bz);
            ready += r;
            busy += bz;
            starting += t - r - bz;
        }
        const char *st[3] = { "starting", "ready", "busy" };
        int v[3] = { starting, ready, busy };
        for (int i = 0; i < 3; i++) {
            buf_appends(b, "coffer_workers{service=");
            label(b, names.v[k]);
            buf_printf(b, ",state=\"%s\"} %d\n", st[i], v[i]);
        }
    }
    family(b, "coffer_worker_max", "gauge", "Most workers a service may run (maxchild).");
    for (struct service *s = g_services; s; s = s->next) {
        if (!s->active) continue;
        buf_appends(b, "coffer_worker_max{service=");
        label(b, s->name);
        buf_printf(b, "} %lld\n", s->maxchild);
    }
    family(b, "coffer_worker_respawns_total", "counter",
           "Workers replaced after a crash or a failed start, per service.");
    for (size_t k = 0; k < names.count; k++) {
        int i = strarr_find(&g_respawn_names, names.v[k]);
        buf_appends(b, "coffer_worker_respawns_total{service=");
        label(b, names.v[k]);
        buf_printf(b, "} %llu\n", i < 0 ? 0ULL : g_respawns[i]);
    }
    strarr_fini(&names);
}

static void render_logins(struct buf *b, const struct metrics_shm *m)
{
    family(b, "coffer_logins_total", "counter",
           "Logins per service, mechanism (IMAP LOGIN as LOGIN, POP3 USER/PASS as USER) and result.");
    /* sum the slots by name (two processes may have claimed the same name) */
    struct strarr keys = STRARR_INIT;
    for (size_t i = 0; i < METRICS_LOGINS; i++)
        if (named(&m->logins[i].n) && strarr_find(&keys, m->logins[i].n.name) < 0)
            strarr_add(&keys, m->logins[i].n.name);
    for (size_t k = 0; k < keys.count; k++) {
        uint64_t ok = 0, failed = 0;
        for (size_t i = 0; i < METRICS_LOGINS; i++)
            if (named(&m->logins[i].n) && !strcmp(m->logins[i].n.name, keys.v[k])) {
                ok += ld(&m->logins[i].ok);
                failed += ld(&m->logins[i].failed);
            }
        char svc[METRICS_NAME_MAX];
        const char *slash = strchr(keys.v[k], '/');
        const char *mech = slash ? slash + 1 : METRICS_OTHER;
        size_t sl = slash ? (size_t)(slash - keys.v[k]) : strlen(keys.v[k]);
        snprintf(svc, sizeof svc, "%.*s", (int)sl, keys.v[k]);
        for (int r = 0; r < 2; r++) {
            buf_appends(b, "coffer_logins_total{service=");
            label(b, svc);
            buf_appends(b, ",mechanism=");
            label(b, mech);
            buf_printf(b, ",result=\"%s\"} %llu\n", r ? "failed" : "ok",
                       (unsigned long long)(r ? failed : ok));
        }
    }
    strarr_fini(&keys);
}

static void render_commands(struct buf *b, const struct metrics_shm *m)
{
    family(b, "coffer_imap_command_duration_seconds", "histogram",
           "IMAP commands by name and the time from dispatch to the tagged reply.");
    struct strarr keys = STRARR_INIT;
    for (size_t i = 0; i < METRICS_COMMANDS; i++)
        if (named(&m->commands[i].n) && strarr_find(&keys, m->commands[i].n.name) < 0)
            strarr_add(&keys, m->commands[i].n.name);
    for (size_t k = 0; k < keys.count; k++) {
        uint64_t bucket[METRICS_LATENCY_BUCKETS + 1] = { 0 }, sum = 0, count = 0;
        for (size_t i = 0; i < METRICS_COMMANDS; i++) {
            const struct metrics_command *c = &m->commands[i];
            if (!named(&c->n) || strcmp(c->n.name, keys.v[k])) continue;
            for (size_t j = 0; j <= METRICS_LATENCY_BUCKETS; j++) bucket[j] += ld(&c->bucket[j]);
            sum += ld(&c->sum_us);
        }
        /* the count is the sum of the buckets, read once, so +Inf always equals _count */
        uint64_t cum = 0;
        for (size_t j = 0; j <= METRICS_LATENCY_BUCKETS; j++) {
            cum += bucket[j];
            buf_appends(b, "coffer_imap_command_duration_seconds_bucket{command=");
            label(b, keys.v[k]);
            if (j < METRICS_LATENCY_BUCKETS)
                buf_printf(b, ",le=\"%g\"} %llu\n", metrics_latency_bounds[j],
                           (unsigned long long)cum);
            else
                buf_printf(b, ",le=\"+Inf\"} %llu\n", (unsigned long long)cum);
        }
        count = cum;
        buf_appends(b, "coffer_imap_command_duration_seconds_sum{command=");
        label(b, keys.v[k]);
        buf_printf(b, "} %.6f\ncoffer_imap_command_duration_seconds_count{command=", sum / 1e6);
        label(b, keys.v[k]);
        buf_printf(b, "} %llu\n", (unsigned long long)count);
    }
    strarr_fini(&keys);
}

static void render_store(struct buf *b, const struct metrics_shm *m)
{
    family(b, "coffer_lmtp_deliveries_total", "counter",
           "LMTP recipients after DATA/BDAT by result (RCPT-time refusals are not counted).");
    for (int i = 0; i < METRICS_LMTP_RESULTS; i++)
        buf_printf(b, "coffer_lmtp_deliveries_total{result=\"%s\"} %llu\n", metrics_lmtp_names[i],
                   (unsigned long long)ld(&m->lmtp[i]));
    family(b, "coffer_fsyncs_total", "counter",
           "fsync and fdatasync calls by Coffer's processes (Berkeley DB's own log flushes apart).");
    buf_printf(b, "coffer_fsyncs_total %llu\n", (unsigned long long)ld(&m->fsyncs));

    int64_t upd = __atomic_load_n(&m->db_updated, __ATOMIC_ACQUIRE);
    family(b, "coffer_db_stats_timestamp_seconds", "gauge",
           "When the Berkeley DB and quota figures below were read (0: not yet).");
    buf_printf(b, "coffer_db_stats_timestamp_seconds %lld\n", (long long)upd);
    uint64_t hit = ld(&m->db_cache_hit), miss = ld(&m->db_cache_miss);
    family(b, "coffer_db_cache_hits_total", "counter", "Berkeley DB cache page hits.");
    buf_printf(b, "coffer_db_cache_hits_total %llu\n", (unsigned long long)hit);
    family(b, "coffer_db_cache_misses_total", "counter", "Berkeley DB cache page misses.");
    buf_printf(b, "coffer_db_cache_misses_total %llu\n", (unsigned long long)miss);
    family(b, "coffer_db_cache_hit_ratio", "gauge",
           "Berkeley DB cache hits / (hits + misses) since the environment was created.");
    buf_printf(b, "coffer_db_cache_hit_ratio %.6f\n",
               hit + miss ? (double)hit / (double)(hit + miss) : 1.0);
    family(b, "coffer_db_lock_waits_total", "counter",
           "Berkeley DB lock requests that had to wait.");
    buf_printf(b, "coffer_db_lock_waits_total %llu\n", (unsigned long long)ld(&m->db_lock_wait));
    family(b, "coffer_db_lock_nowaits_total", "counter",
           "Berkeley DB lock requests granted without waiting.");
    buf_printf(b, "coffer_db_lock_nowaits_total %llu\n",
               (unsigned long long)ld(&m->db_lock_nowait));
    family(b, "coffer_db_deadlocks_total", "counter", "Berkeley DB deadlocks (retried).");
    buf_printf(b, "coffer_db_deadlocks_total %llu\n", (unsigned long long)ld(&m->db_deadlocks));
    family(b, "coffer_db_log_flushes_total", "counter",
           "Berkeley DB log flushes to disk (its own fsyncs).");
    buf_printf(b, "coffer_db_log_flushes_total %llu\n",
               (unsigned long long)ld(&m->db_log_flushes));

    family(b, "coffer_quota_roots", "gauge", "Quota roots with a limit.");
    buf_printf(b, "coffer_quota_roots %llu\n", (unsigned long long)ld(&m->quota_roots));
    family(b, "coffer_quota_roots_usage", "gauge",
           "Quota roots whose usage ratio (used/limit, the larger of storage and messages) is at "
           "most le.");
    uint64_t cum = 0;
    for (size_t j = 0; j <= METRICS_QUOTA_BUCKETS; j++) {
        cum += ld(&m->quota_bucket[j]);
        if (j < METRICS_QUOTA_BUCKETS)
            buf_printf(b, "coffer_quota_roots_usage{le=\"%g\"} %llu\n", metrics_quota_bounds[j],
                       (unsigned long long)cum);
        else
            buf_printf(b, "coffer_quota_roots_usage{le=\"+Inf\"} %llu\n", (unsigned long long)cum);
    }
}

static void render_maintenance(struct buf *b, const struct metrics_shm *m)
{
    family(b, "coffer_maintenance_runs_total", "counter", "Scheduled maintenance runs finished.");
    for (int t = 0; t < METRICS_TASKS; t++)
        buf_printf(b, "coffer_maintenance_runs_total{task=\"%s\"} %llu\n", metrics_task_names[t],
                   (unsigned long long)ld(&m->task_runs[t]));
    family(b, "coffer_maintenance_failures_total", "counter", "Scheduled maintenance runs that failed.");
    for (int t = 0; t < METRICS_TASKS; t++)
        buf_printf(b, "coffer_maintenance_failures_total{task=\"%s\"} %llu\n",
                   metrics_task_names[t], (unsigned long long)ld(&m->task_failures[t]));
    family(b, "coffer_maintenance_last_run_timestamp_seconds", "gauge",
           "When the last run of each task finished (0: never).");
    for (int t = 0; t < METRICS_TASKS; t++)
        buf_printf(b, "coffer_maintenance_last_run_timestamp_seconds{task=\"%s\"} %lld\n",
                   metrics_task_names[t],
                   (long long)__atomic_load_n(&m->task_last_end[t], __ATOMIC_RELAXED));
    const struct { const char *name, *help; const uint64_t *v; } sc[] = {
        { "coffer_scrub_messages_total", "Message files the scrubber re-read.", &m->scrub_messages },
        { "coffer_scrub_bytes_total", "Bytes the scrubber re-read.", &m->scrub_bytes },
        { "coffer_scrub_corrupt_messages_total",
          "Message files whose size or SHA-1 differs from the index (each logged).",
          &m->scrub_corrupt },
        { "coffer_scrub_corrupt_index_total",
          "Index files or records whose checksum failed (each logged).", &m->scrub_index_corrupt },
        { "coffer_scrub_passes_total", "Full passes of the scrubber over the store.",
          &m->scrub_passes },
    };
    for (size_t i = 0; i < sizeof sc / sizeof sc[0]; i++) {
        family(b, sc[i].name, "counter", sc[i].help);
        buf_printf(b, "%s %llu\n", sc[i].name, (unsigned long long)ld(sc[i].v));
    }
}

/* metrics_render: the whole text (Prometheus text format, version 0.0.4) into b. */
static void metrics_render(struct buf *b)
{
    struct metrics_shm *m = metrics_get();
    struct buf why = BUF_INIT;
    family(b, "coffer_ready", "gauge", "1 when /health answers 200 (ready for traffic).");
    buf_printf(b, "coffer_ready %d\n", health(&why));
    buf_fini(&why);
    family(b, "coffer_start_time_seconds", "gauge", "When cofferd started (seconds since the epoch).");
    buf_printf(b, "coffer_start_time_seconds %lld\n", (long long)g_started);
    render_services(b, m);
    if (!m) return;
    render_logins(b, m);
    render_commands(b, m);
    render_store(b, m);
    render_maintenance(b, m);
}

/* ---- HTTP ---- */

static void respond(struct mconn *c, int code, const char *reason, const char *ctype,
                    const struct buf *body, int head)
{
    buf_printf(&c->out, "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
               "Cache-Control: no-store\r\nConnection: close\r\n\r\n", code, reason, ctype,
               body->len);
    if (!head) buf_append(&c->out, body->s, body->len);
}

/* request: the complete request head in c->in: the response. */
static void request(struct mconn *c)
{
    struct buf body = BUF_INIT;
    const char *text = "text/plain; charset=utf-8";
    struct http_req req;
    http_req_parse(c->in, c->nin, &req);
    int code;
    const char *reason;
    switch (req.target) {
    case HTTP_METRICS:
        metrics_render(&body);
        code = 200;
        reason = "OK";
        text = "text/plain; version=0.0.4; charset=utf-8";
        break;
    case HTTP_HEALTH: {
        struct buf why = BUF_INIT;
        if (health(&why)) {
            code = 200;
            reason = "OK";
            buf_appends(&body, "ready\n");
        } else {
            code = 503;
            reason = "Service Unavailable";
            buf_printf(&body, "not ready: %s\n", buf_cstr(&why));
        }
        buf_fini(&why);
        break;
    }
    case HTTP_NOT_FOUND:
        code = 404;
        reason = "Not Found";
        break;
    case HTTP_BAD_METHOD:
        code = 405;
        reason = "Method Not Allowed";
        break;
    default:
        code = 400;
        reason = "Bad Request";
        break;
    }
    if (code >= 400 && code != 503) buf_printf(&body, "%d %s\n", code, reason);
    respond(c, code, reason, text, &body, req.head);
    buf_fini(&body);
}

static void conn_read(struct mconn *c)
{
    for (;;) {
        if (c->nin == sizeof c->in - 1) {
            struct buf body = BUF_INIT;
            buf_appends(&body, "431 Request Header Fields Too Large\n");
            respond(c, 431, "Request Header Fields Too Large", "text/plain; charset=utf-8",
                    &body, 0);
            buf_fini(&body);
            return;
        }
        ssize_t n = read(c->fd, c->in + c->nin, sizeof c->in - 1 - c->nin);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
        if (n <= 0) {
            conn_close(c);
            return;
        }
        c->nin += (size_t)n;
        c->in[c->nin] = '\0';
        if (memchr(c->in, '\0', c->nin)) {   /* a NUL is not HTTP */
            conn_close(c);
            return;
        }
        if (http_req_head_end(c->in, c->nin)) {
            request(c);
            return;
        }
    }
}

static void conn_write(struct mconn *c, long long now)
{
    while (c->sent < c->out.len) {
        ssize_t n = send(c->fd, c->out.s + c->sent, c->out.len - c->sent, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
        if (n <= 0) {
            conn_close(c);
            return;
        }
        c->sent += (size_t)n;
    }
    shutdown(c->fd, SHUT_WR);
    c->draining = 1;
    if (c->deadline > now + METRICS_DRAIN_MS) c->deadline = now + METRICS_DRAIN_MS;
}

/* conn_drain: drop what the peer still sends; close at its end */
static void conn_drain(struct mconn *c)
{
    char sink[4096];
    for (;;) {
        ssize_t n = read(c->fd, sink, sizeof sink);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
        if (n <= 0) break;
    }
    conn_close(c);
}

size_t metrics_poll_fill(struct pollfd *p)
{
    size_t n = 0;
    if (g_listen_fd >= 0) p[n++] = (struct pollfd){ g_listen_fd, POLLIN, 0 };
    for (size_t i = 0; i < METRICS_CONNS; i++)
        if (g_conns[i].fd >= 0)
            p[n++] = (struct pollfd){ g_conns[i].fd,
                                      g_conns[i].out.len && !g_conns[i].draining ? POLLOUT : POLLIN,
                                      0 };
    return n;
}

size_t metrics_poll_count(void)
{
    return 1 + METRICS_CONNS;
}

void metrics_run(long long now)
{
    for (size_t i = 0; i < METRICS_CONNS; i++) {
        struct mconn *c = &g_conns[i];
        if (c->fd < 0) continue;
        if (now >= c->deadline) {
            conn_close(c);
            continue;
        }
        if (c->draining) {
            conn_drain(c);
            continue;
        }
        if (!c->out.len) conn_read(c);
        if (c->fd >= 0 && c->out.len) conn_write(c, now);
    }
    if (g_listen_fd < 0) return;
    for (int k = 0; k < METRICS_CONNS; k++) {
        int fd = accept4(g_listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) break;
        struct mconn *c = NULL;
        for (size_t i = 0; i < METRICS_CONNS && !c; i++)
            if (g_conns[i].fd < 0) c = &g_conns[i];
        if (!c) {
            /* all taken: the oldest goes, so connections that send nothing cannot keep a
             * scraper out for METRICS_CONN_MS */
            c = &g_conns[0];
            for (size_t i = 1; i < METRICS_CONNS; i++)
                if (g_conns[i].deadline < c->deadline) c = &g_conns[i];
            conn_close(c);
        }
        memset(c, 0, sizeof *c);
        c->fd = fd;
        c->deadline = now + METRICS_CONN_MS;
        conn_read(c);
        if (c->fd >= 0 && c->out.len) conn_write(c, now);
    }
}

int metrics_deadline(long long now)
{
    long long next = -1;
    for (size_t i = 0; i < METRICS_CONNS; i++)
        if (g_conns[i].fd >= 0 && (next < 0 || g_conns[i].deadline < next))
            next = g_conns[i].deadline;
    if (next < 0) return -1;
    return next <= now ? 0 : (int)(next - now);
}
