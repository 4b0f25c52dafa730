/* reap.c: cofferd's worker bookkeeping (master-int.h): counts per service, retiring,
 * respawn rate limits, and reaping exited workers and zygotes (with the database failchk a
 * crashed worker calls for). */
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

/* db_failchk: free the database locks and transactions of dead workers (store_db_failchk),
 * so a worker killed in the middle of a transaction cannot make the others wait forever. */
static int g_recovering;   /* db_recover_all is waiting for every child to go */

/* db_recover_all: the environment needs recovery (kv_failchk said so: a process died inside
 * Berkeley DB where failchk cannot undo it, and every database call would now fail or hang).
 * Recovery must run with nobody attached, so every worker, zygote and recount child is killed
 * and reaped (at most RECOVER_WAIT_MS), recovery runs, and the pools start again through the
 * main loop. Sessions in progress are cut; nothing acknowledged is lost (commits are durable
 * before their replies, and the quota roots of the killed are recounted). */
#define RECOVER_WAIT_MS 10000
static void db_recover_all(void)
{
    g_recovering = 1;
    log_err("db_recovery_restart", "reason=\"a process died inside Berkeley DB\" "
            "action=\"stop every worker, recover, start again\"");
    for (struct child *c = g_children; c; c = c->next) {
        c->signaled = 1;
        kill(c->pid, SIGKILL);
    }
    for (struct zygote *z = g_zygotes; z; z = z->next) {
        z->signaled = 1;
        kill(z->pid, SIGKILL);
    }
    pid_t spid = (pid_t)settle_kill();
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        reap(0);
        if (!g_children && !g_zygotes && (spid <= 0 || kill(spid, 0) < 0)) break;
        struct timespec t1, pause = { 0, 10 * 1000 * 1000 };
        clock_gettime(CLOCK_MONOTONIC, &t1);
        if ((t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000 > RECOVER_WAIT_MS) {
            log_err("db_recovery_wait", "hint=\"a child did not die; recovering anyway\"");
            break;
        }
        nanosleep(&pause, NULL);
    }
    int r = store_db_recover(g_cfg);
    if (r) log_err("db_recovery_failed", "error=%s hint=\"stop cofferd and start it again\"",
                   log_quote(cf_strerror(r)));
    else log_notice("db_recovered", "workers=restarting");
    g_status_dirty = 1;
    g_recovering = 0;
}

void db_failchk(void)
{
    if (g_recovering) return;
    if (store_db_failchk(g_cfg) == CF_E_CORRUPT) db_recover_all();
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
    if (settle_pending() && !g_recovering) settle_spawn(g_cfg);
}

int count_all_children(void)
{
    int n = 0;
    for (struct child *c = g_children; c; c = c->next) n++;
    return n;
}
