/* reap.c: cofferd's worker bookkeeping (master-int.h): counts per service, retiring,
 * respawn rate limits, and reaping exited workers and zygotes (asking dbjob.c for the database
 * failchk a crashed worker calls for). */
#include "master-int.h"
#include "settle.h"
#include "core/error.h"
#include "core/log.h"
#include "core/xmalloc.h"
#include "net/conntab.h"
#include "store/store.h"
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

void count_children(const struct service *s, int *total, int *idle, int *ready, int *busy)
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
void record_abnormal(struct service *s, long long now)
{
    long long window = config_int(g_cfg, CFG_RESPAWN_WINDOW) * 1000;
    long long limit = config_int(g_cfg, CFG_RESPAWN_LIMIT);
    size_t keep = 0;
    for (size_t i = 0; i < s->nexits; i++)
        if (now - s->exits[i] < window) s->exits[keep++] = s->exits[i];
    s->exits = xreallocarray(s->exits, keep + 1, sizeof *s->exits);
    s->exits[keep++] = now;
    s->nexits = keep;
    metrics_note_respawn(s->name);
    if ((long long)s->nexits > limit && !s->paused_until && s->active && !g_stopping) {
        long long pause = config_int(g_cfg, CFG_RESPAWN_PAUSE);
        s->paused_until = now + (pause > 0 ? pause * 1000 : 1);
        log_err("respawn_paused", "service=%s exits=%zu window=%lld pause=%lld",
                log_quote(s->name), s->nexits, window / 1000, pause);
        s->nexits = 0;
    }
}

struct child *find_child(pid_t pid, struct child ***link_r)
{
    for (struct child **pp = &g_children; *pp; pp = &(*pp)->next)
        if ((*pp)->pid == pid) {
            if (link_r) *link_r = pp;
            return *pp;
        }
    return NULL;
}

void retire(struct child *c)
{
    if (c->retiring) return;
    c->retiring = 1;
    c->signaled = 1;
    kill(c->pid, SIGUSR2);
}

void describe_status(int st, char *out, size_t n)
{
    if (WIFEXITED(st)) snprintf(out, n, "exit:%d", WEXITSTATUS(st));
    else if (WIFSIGNALED(st)) snprintf(out, n, "signal:%s%s", sigabbrev_np(WTERMSIG(st)) ?
                                       sigabbrev_np(WTERMSIG(st)) : "?",
                                       WCOREDUMP(st) ? ":core" : "");
    else snprintf(out, n, "unknown:%d", st);
}

/* service_release: free a retired service once no worker or zygote refers to it. */
void service_release(struct service *s)
{
    if (s->active) return;
    for (struct child *o = g_children; o; o = o->next)
        if (o->svc == s) return;
    if (zygote_count_of(s)) return;
    struct service **pp = &g_services;
    while (*pp != s) pp = &(*pp)->next;
    *pp = s->next;
    service_free(s);
}

void reap(long long now)
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
        struct zygote *z = zygote_find(pid, &zlink);
        if (z) {
            *zlink = z->next;
            zygote_reap(z, st, now);
            continue;
        }
        if (dbjob_reaped(pid, st)) continue;
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
    if (need_failchk) dbjob_request_failchk();
}

int count_all_children(void)
{
    int n = 0;
    for (struct child *c = g_children; c; c = c->next) n++;
    return n;
}
