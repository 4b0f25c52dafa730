/* dbjob.c: cofferd's database work, done in short-lived children (master-int.h "dbjob.c"):
 * the failchk after a worker dies, the periodic maintenance (checkpoint), the scheduled
 * maintenance of cofferd(8) MAINTENANCE (the statistics for the metrics endpoint, expire, the
 * scrubber's slices), and the recovery restart when a job finds the environment beyond
 * failchk. Every job touches the databases, so all are killed before a recovery.
 *
 * The master never calls into Berkeley DB while workers run. A process killed while it held a
 * mutex of the shared region (the lock table's, the region's) leaves that mutex held for
 * ever: every later caller, even one only joining the environment, waits on it. A master that
 * waited too could no longer notice, so a child asks, and a child that does not answer within
 * FAILCHK_MAX_MS is the answer: the environment needs recovery. */
#include "master-int.h"
#include "settle.h"
#include "core/error.h"
#include "core/fileutil.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/xmalloc.h"
#include "store/store-expire.h"
#include "store/store.h"
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* A failchk joins the environment and walks its thread table: milliseconds, even under a
 * sanitizer on a loaded machine. One still waiting after this is waiting on a dead mutex. */
#define FAILCHK_MAX_MS 5000
/* A checkpoint flushes the dirty pages of the cache and pruning deletes in batches: seconds
 * on a large store. Ten minutes is stuck. */
#define MAINTAIN_MAX_MS (600 * 1000)
/* How long db_recover_all waits for every child to be gone before recovering anyway. */
#define RECOVER_WAIT_MS 10000

#define EXIT_NEEDS_RECOVERY 3

enum job_kind { JOB_FAILCHK, JOB_MAINTAIN, JOB_STATS, JOB_EXPIRE, JOB_SCRUB, JOB_COUNT };

static const char *const job_name[JOB_COUNT] = { "failchk", "maintenance", "stats", "expire",
                                                 "scrub" };
/* statistics read a few database pages; an expire on a large store repacks many mailboxes;
 * a scrubber slice stops itself after a few seconds (scrub.c) */
static const long long job_max_ms[JOB_COUNT] = { FAILCHK_MAX_MS, MAINTAIN_MAX_MS, 60 * 1000,
                                                 3600 * 1000, 300 * 1000 };
/* the task each job counts as on the metrics endpoint and in coffer status, or -1 */
static const int job_task[JOB_COUNT] = { -1, METRICS_TASK_CHECKPOINT, -1, METRICS_TASK_EXPIRE,
                                         METRICS_TASK_SCRUB };

struct job {
    pid_t pid;            /* running child, 0 none */
    long long deadline;   /* when it counts as stuck */
    int wanted;           /* run (again) when the running one is done */
    long long next;       /* monotonic ms of the next scheduled run; 0: not scheduled */
    /* for coffer status (wall clock seconds; 0: never) */
    time_t last_start, last_end;
    const char *last_result;   /* "ok", "failed", "killed"; NULL: never ran */
    unsigned long long runs;
};

/* after a scrubber slice, the next one starts this much later */
#define SCRUB_PAUSE_MS 1000

static struct job g_jobs[JOB_COUNT];

static long long time_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
static int g_need_recovery;   /* a job said so; db_recover_all at the next dbjob_run */
int g_recovering;             /* db_recover_all is waiting for every child to go */

pid_t fork_helper(void)
{
    sigset_t all, old;
    sigfillset(&all);
    sigprocmask(SIG_BLOCK, &all, &old);
    pid_t pid = fork();
    if (pid == 0) {
        /* the master's handlers write to its signal pipe: not ours. Its listeners must not
         * stay open in us either (a restart could not bind them again while we run). */
        for (int sig = 1; sig < NSIG; sig++)
            if (sig != SIGKILL && sig != SIGSTOP) signal(sig, SIG_DFL);
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        close_range(3, ~0U, 0);
        return 0;
    }
    int e = errno;
    sigprocmask(SIG_SETMASK, &old, NULL);
    errno = e;
    return pid;
}

/* stats_child: Berkeley DB's counters and the quota roots by usage into the shared counters */
static void stats_child(void)
{
    struct metrics_shm *m = metrics_get();
    struct store *st = NULL;
    if (!m || store_open(g_cfg, &st)) _exit(1);
    struct store_db_stats s;
    int r = store_db_stats(st, metrics_quota_bounds, METRICS_QUOTA_BUCKETS, &s);
    store_close(&st);
    if (r) _exit(1);
    __atomic_store_n(&m->db_cache_hit, s.kv.cache_hit, __ATOMIC_RELAXED);
    __atomic_store_n(&m->db_cache_miss, s.kv.cache_miss, __ATOMIC_RELAXED);
    __atomic_store_n(&m->db_lock_wait, s.kv.lock_wait, __ATOMIC_RELAXED);
    __atomic_store_n(&m->db_lock_nowait, s.kv.lock_nowait, __ATOMIC_RELAXED);
    __atomic_store_n(&m->db_deadlocks, s.kv.deadlocks, __ATOMIC_RELAXED);
    __atomic_store_n(&m->db_log_flushes, s.kv.log_flushes, __ATOMIC_RELAXED);
    __atomic_store_n(&m->quota_roots, s.quota_roots, __ATOMIC_RELAXED);
    for (size_t i = 0; i <= METRICS_QUOTA_BUCKETS; i++)
        __atomic_store_n(&m->quota_bucket[i], s.quota_ratio_le[i], __ATOMIC_RELAXED);
    __atomic_store_n(&m->db_updated, (int64_t)time(NULL), __ATOMIC_RELEASE);
    _exit(0);
}

static void expire_error(void *rock, const char *msg)
{
    (void)rock;
    log_err("expire_failed", "error=%s", log_quote(msg));
}

/* expire_child: what coffer expire does, at a lower priority than service */
/* configdir/expire.stamp: rewritten after every good scheduled expire, so that a restart
 * does not put the next one a whole expire_interval off (its mtime is the time) */
static char *expire_stamp_path(void)
{
    return xasprintf("%s/expire.stamp", config_str(g_cfg, CFG_CONFIGDIR));
}

/* expire_first_ms: ms from now until the first scheduled expire: one interval after the last
 * good run (from the stamp), or after the start when there was none, but never sooner than
 * min(interval, a minute) after the start */
static long long expire_first_ms(long long interval_ms)
{
    long long floor = interval_ms < 60000 ? interval_ms : 60000;
    char *path = expire_stamp_path();
    struct stat sb;
    int have = stat(path, &sb) == 0;
    free(path);
    if (!have) return interval_ms;
    long long due = ((long long)sb.st_mtime - (long long)time(NULL)) * 1000 + interval_ms;
    return due < floor ? floor : due;
}

static void expire_child(void)
{
    setpriority(PRIO_PROCESS, 0, 10);
    struct store *st = NULL;
    if (store_open(g_cfg, &st)) _exit(1);
    struct store_expire_report rep;
    struct store_expire_hooks hooks = { expire_error, NULL, NULL };
    int r = store_expire(st, (int64_t)time(NULL), config_int(g_cfg, CFG_DUPLICATE_LIFETIME),
                         config_int(g_cfg, CFG_EXPIRE_VACATION_DAYS), 0, &rep, &hooks);
    store_close(&st);
    /* the stamp before the line that reports the run: whoever reads the line (an admin, the
     * tests) finds the schedule already carried */
    if (!r) {
        char *path = expire_stamp_path();
        if (file_write_atomic(path, "", 0, 0600))
            log_warn("expire_stamp_failed", "path=%s", log_quote(path));
        free(path);
    }
    log_info("expired", "duplicates=%lld vacation=%lld expunged=%lld mailboxes=%lld "
             "deleted=%lld result=%s", rep.duplicates, rep.vacation < 0 ? 0 : rep.vacation,
             rep.expunged, rep.expunged_boxes, rep.deleted, r ? "failed" : "ok");
    _exit(r ? 1 : 0);
}

/* job_child: in the forked child: do the job, then exit (EXIT_NEEDS_RECOVERY: failchk
 * found a process that died inside Berkeley DB). */
static void job_child(enum job_kind kind)
{
    if (kind == JOB_FAILCHK) {
        int r = store_db_failchk(g_cfg);
        _exit(r == CF_E_CORRUPT ? EXIT_NEEDS_RECOVERY : r ? 1 : 0);
    }
    if (kind == JOB_STATS) stats_child();
    if (kind == JOB_EXPIRE) expire_child();
    if (kind == JOB_SCRUB) scrub_child(g_cfg);
    int n = store_db_maintain(g_cfg);
    if (n > 0) log_info("duplicates_pruned", "count=%d", n);
    _exit(n < 0 ? 1 : 0);
}

static void job_spawn(enum job_kind kind, long long now)
{
    struct job *j = &g_jobs[kind];
    pid_t pid = fork_helper();
    if (pid == 0) job_child(kind);
    if (pid < 0) {
        /* left wanted: the next round tries again */
        log_warn("db_job_failed", "job=%s error=\"fork: %s\"", job_name[kind], strerror(errno));
        return;
    }
    j->wanted = 0;
    j->pid = pid;
    j->deadline = now + job_max_ms[kind];
    if (kind == JOB_SCRUB) {
        /* a slice finishes the message it is in: the largest one may take max_literal /
         * scrub_rate seconds at the pace */
        long long rate = config_int(g_cfg, CFG_SCRUB_RATE);
        long long big = config_int(g_cfg, CFG_MAX_LITERAL);
        if (rate > 0) j->deadline += 2 * (big / rate) * 1000;
    }
    if (kind != JOB_SCRUB || !j->last_start) j->last_start = time(NULL);
}

/* job_done: the bookkeeping of a finished run of kind for coffer status and the metrics */
static void job_done(enum job_kind kind, const char *result)
{
    struct job *j = &g_jobs[kind];
    j->last_end = time(NULL);
    j->last_result = result;
    j->runs++;
    g_status_dirty = 1;
    struct metrics_shm *m = metrics_get();
    int t = job_task[kind];
    if (!m || t < 0) return;
    metrics_add(&m->task_runs[t], 1);
    if (strcmp(result, "ok")) metrics_add(&m->task_failures[t], 1);
    __atomic_store_n(&m->task_last_end[t], (int64_t)j->last_end, __ATOMIC_RELAXED);
}

void dbjob_request_failchk(void)
{
    g_jobs[JOB_FAILCHK].wanted = 1;
}

void dbjob_request_maintenance(void)
{
    g_jobs[JOB_FAILCHK].wanted = 1;
    g_jobs[JOB_MAINTAIN].wanted = 1;
}

int dbjob_reaped(pid_t pid, int st)
{
    enum job_kind kind;
    for (kind = 0; kind < JOB_COUNT; kind++)
        if (g_jobs[kind].pid == pid) break;
    if (kind == JOB_COUNT) return 0;
    g_jobs[kind].pid = 0;
    if (g_recovering) return 1;   /* killed by db_recover_all */
    if (kind == JOB_SCRUB && WIFEXITED(st)) {
        /* a slice: the next one soon; a whole pass: the next after scrub_interval; not due:
         * look again later (the state file knows when the last pass ended) */
        int code = WEXITSTATUS(st);
        long long now = time_ms();
        long long interval = config_int(g_cfg, CFG_SCRUB_INTERVAL) * 1000;
        if (code == 0) g_jobs[kind].next = now + SCRUB_PAUSE_MS;
        else if (code == SCRUB_EXIT_PASS_DONE) {
            job_done(kind, "ok");
            g_jobs[kind].last_start = 0;
            g_jobs[kind].next = now + (interval > 0 ? interval : SCRUB_PAUSE_MS);
        } else if (code == SCRUB_EXIT_NOT_DUE) {
            g_jobs[kind].last_start = 0;
            g_jobs[kind].next = now + (interval > 0 && interval < 600000 ? interval : 600000);
        }
        if (code == 0 || code == SCRUB_EXIT_PASS_DONE || code == SCRUB_EXIT_NOT_DUE) return 1;
    }
    if (WIFEXITED(st) && WEXITSTATUS(st) == 0) {
        if (kind != JOB_FAILCHK && kind != JOB_STATS) job_done(kind, "ok");
        return 1;
    }
    if (kind != JOB_FAILCHK && kind != JOB_STATS)
        job_done(kind, WIFSIGNALED(st) ? "killed" : "failed");
    if (kind == JOB_FAILCHK && WIFEXITED(st) && WEXITSTATUS(st) == EXIT_NEEDS_RECOVERY) {
        g_need_recovery = 1;   /* its own db_failchk_failed line says why */
        return 1;
    }
    char how[48];
    describe_status(st, how, sizeof how);
    log_warn("db_job_failed", "job=%s pid=%d status=%s", job_name[kind], (int)pid, how);
    /* a job child that died may have died inside the environment */
    if (kind != JOB_FAILCHK) g_jobs[JOB_FAILCHK].wanted = 1;
    return 1;
}

/* db_recover_all: the environment needs recovery (a process died inside Berkeley DB where
 * failchk cannot undo it, and every database call would now fail or hang). Recovery must run
 * with nobody attached, so every worker, zygote, recount and job child is killed and reaped
 * (at most RECOVER_WAIT_MS), recovery runs, and the pools start again through the main loop.
 * Sessions in progress are cut; nothing acknowledged is lost (commits are durable before
 * their replies, and the quota roots of the killed are recounted). */
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
    for (int k = 0; k < JOB_COUNT; k++)
        if (g_jobs[k].pid > 0) kill(g_jobs[k].pid, SIGKILL);
    pid_t spid = (pid_t)settle_kill();
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        reap(0);
        int jobs = 0;
        for (int k = 0; k < JOB_COUNT; k++) jobs += g_jobs[k].pid > 0;
        if (!g_children && !g_zygotes && !jobs && (spid <= 0 || kill(spid, 0) < 0)) break;
        struct timespec t1, pause = { 0, 10 * 1000 * 1000 };
        clock_gettime(CLOCK_MONOTONIC, &t1);
        if ((t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000 > RECOVER_WAIT_MS) {
            log_err("db_recovery_wait", "hint=\"a child did not die; recovering anyway\"");
            break;
        }
        nanosleep(&pause, NULL);
    }
    for (int k = 0; k < JOB_COUNT; k++) g_jobs[k].pid = 0;
    /* recovery recreates the shared region: nobody is attached, no dead mutex survives it */
    int r = store_db_recover(g_cfg);
    if (r) log_err("db_recovery_failed", "error=%s hint=\"stop cofferd and start it again\"",
                   log_quote(cf_strerror(r)));
    else log_notice("db_recovered", "workers=restarting");
    g_jobs[JOB_FAILCHK].wanted = 0;   /* recovery freed everything failchk would */
    g_need_recovery = 0;
    g_status_dirty = 1;
    g_recovering = 0;
}

/* schedule_one: ask for kind every interval_ms (0: never), the first time first_ms from now */
static void schedule_one(enum job_kind kind, long long interval_ms, long long first_ms,
                         long long now)
{
    struct job *j = &g_jobs[kind];
    if (interval_ms <= 0) {
        j->next = 0;
        return;
    }
    if (!j->next || j->next > now + interval_ms)
        j->next = now + (first_ms < interval_ms ? first_ms : interval_ms);
    if (now < j->next || j->pid) return;
    j->wanted = 1;
    j->next = now + interval_ms;
}

/* schedule: the scheduled maintenance of cofferd(8): statistics, expire, the scrubber (whose
 * own exits set its next start: dbjob_reaped; the interval here is the retry after a failed
 * slice) */
static void schedule(long long now)
{
    schedule_one(JOB_STATS, config_int(g_cfg, CFG_DB_STATS_INTERVAL) * 1000, 1000, now);
    long long ex = config_int(g_cfg, CFG_EXPIRE_INTERVAL) * 1000;
    schedule_one(JOB_EXPIRE, ex, ex > 0 && !g_jobs[JOB_EXPIRE].next ? expire_first_ms(ex) : ex,
                 now);
    schedule_one(JOB_SCRUB, config_int(g_cfg, CFG_SCRUB_RATE) > 0 ? 60000 : 0, 2000, now);
}

void dbjob_status_lines(struct strarr *out)
{
    static const enum job_kind shown[] = { JOB_MAINTAIN, JOB_EXPIRE, JOB_SCRUB };
    static const enum config_id every[] = { CFG_DB_CHECKPOINT_INTERVAL, CFG_EXPIRE_INTERVAL,
                                            CFG_SCRUB_INTERVAL };
    for (size_t i = 0; i < sizeof shown / sizeof shown[0]; i++) {
        const struct job *j = &g_jobs[shown[i]];
        struct metrics_shm *m = metrics_get();
        int t = job_task[shown[i]];
        char *line = xasprintf("task=%s runs=%llu last_start=%lld last_end=%lld result=%s "
                               "running=%d interval=%lld failures=%llu",
                               metrics_task_names[t], j->runs, (long long)j->last_start,
                               (long long)j->last_end, j->last_result ? j->last_result : "never",
                               j->pid > 0, config_int(g_cfg, every[i]),
                               m ? (unsigned long long)m->task_failures[t] : 0ULL);
        strarr_take(out, line);
    }
}

void dbjob_run(long long now)
{
    if (!g_stopping && !g_recovering) schedule(now);
    struct job *f = &g_jobs[JOB_FAILCHK];
    if (f->pid > 0 && now >= f->deadline) {
        log_err("db_failchk_stuck", "pid=%d seconds=%lld hint=\"a process died holding a "
                "Berkeley DB mutex: every database call waits on it\"", (int)f->pid,
                job_max_ms[JOB_FAILCHK] / 1000);
        g_need_recovery = 1;
    }
    for (enum job_kind k = JOB_MAINTAIN; k < JOB_COUNT; k++) {
        struct job *m = &g_jobs[k];
        if (m->pid > 0 && now >= m->deadline) {
            log_warn(k == JOB_MAINTAIN ? "db_maintenance_stuck" : "db_job_stuck",
                     "job=%s pid=%d seconds=%lld", job_name[k], (int)m->pid,
                     job_max_ms[k] / 1000);
            kill(m->pid, SIGKILL);   /* reaped as a failed job: a failchk follows */
            m->deadline = now + job_max_ms[k];
        }
    }
    if (g_need_recovery) db_recover_all();
    if (g_stopping) return;
    for (enum job_kind k = 0; k < JOB_COUNT; k++)
        if (g_jobs[k].wanted && !g_jobs[k].pid) job_spawn(k, now);
    /* the recount must not wait on database locks of the dead: only after their failchk */
    if (settle_pending() && !f->wanted && !f->pid) settle_spawn(g_cfg);
}

void dbjob_stop(void)
{
    int left = 0;
    for (int k = 0; k < JOB_COUNT; k++)
        if (g_jobs[k].pid > 0) {
            kill(g_jobs[k].pid, SIGTERM);
            left++;
        }
    long long until = time_ms() + RECOVER_WAIT_MS / 2;
    while (left) {
        int st;
        for (int k = 0; k < JOB_COUNT; k++)
            if (g_jobs[k].pid > 0 && waitpid(g_jobs[k].pid, &st, WNOHANG) != 0) {
                g_jobs[k].pid = 0;   /* reaped, or not ours to wait for any more */
                left--;
            }
        if (!left) break;
        if (time_ms() >= until) {
            for (int k = 0; k < JOB_COUNT; k++)
                if (g_jobs[k].pid > 0) {
                    kill(g_jobs[k].pid, SIGKILL);
                    waitpid(g_jobs[k].pid, &st, 0);
                    g_jobs[k].pid = 0;
                }
            break;
        }
        struct timespec pause = { 0, 10 * 1000 * 1000 };
        nanosleep(&pause, NULL);
    }
}

int dbjob_deadline(long long now)
{
    long long next = -1;
    for (int k = 0; k < JOB_COUNT; k++) {
        if (g_jobs[k].pid <= 0 && g_jobs[k].next > 0 && !g_stopping &&
            (next < 0 || g_jobs[k].next < next))
            next = g_jobs[k].next;
        if (g_jobs[k].pid <= 0) continue;
        if (next < 0 || g_jobs[k].deadline < next) next = g_jobs[k].deadline;
    }
    if (next < 0) return -1;
    return next <= now ? 0 : (int)(next - now > 60000 ? 60000 : next - now);
}
