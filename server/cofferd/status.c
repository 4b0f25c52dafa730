/* status.c: what cofferd knows of its workers' state (master-int.h): the READY/BUSY reports
 * on the status pipe, the periodic status log line and configdir/cofferd.status. */
#include "master-int.h"
#include "notify.h"
#include "core/log.h"
#include "core/xmalloc.h"
#include "net/conntab.h"
#include "net/worker.h"
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* a report cut by the end of a read, completed by the next */
static unsigned char g_status_carry[sizeof(struct worker_status)];
static size_t g_status_ncarry;

void status_read(long long now)
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
                zygote_read_all(now);
                drained = 1;
                c = find_child((pid_t)m.pid, NULL);
            }
            if (!c) {
                /* one of ours that we do not know (its pid record was lost) must not serve
                 * unsupervised: retire it */
                if (m.state == WORKER_READY && m.pid > 0 && !zygote_find((pid_t)m.pid, NULL) &&
                    proc_ppid((pid_t)m.pid) == getpid()) {
                    log_warn("worker_unknown", "pid=%d", (int)m.pid);
                    kill((pid_t)m.pid, SIGUSR2);
                }
                continue;
            }
            if (m.state == WORKER_READY) {
                c->state = CH_READY;
                c->ready_since = now;
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

/* status_write_file: configdir/cofferd.status, replaced with rename so a reader never sees a
 * half-written file. No fsync: it describes the running process only and is worthless after a
 * crash, and an fsync a second would stall the supervisor on a busy disk. */
void status_write_file(long long now)
{
    struct strarr lines = STRARR_INIT;
    struct buf b = BUF_INIT;
    status_lines(&lines, 1);
    buf_printf(&b, "pid=%d started=%lld updated=%lld state=%s\n", (int)getpid(),
               (long long)g_started, (long long)time(NULL), g_stopping ? "stopping" : "running");
    for (size_t i = 0; i < lines.count; i++) buf_printf(&b, "%s\n", lines.v[i]);
    strarr_fini(&lines);
    dbjob_status_lines(&lines);   /* scheduled maintenance (dbjob.c) */
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
    notify_status();
}

void status_log(long long now)
{
    struct strarr lines = STRARR_INIT;
    status_lines(&lines, 0);
    for (size_t i = 0; i < lines.count; i++) log_info("status", "%s", lines.v[i]);
    strarr_fini(&lines);
    status_write_file(now);
}
