/* dbjob.c: cofferd's database work, done in short-lived children (master-int.h "dbjob.c"):
 * the failchk after a worker dies, the periodic maintenance, and the recovery restart when
 * either finds the environment beyond failchk.
 *
 * The master never calls into Berkeley DB while workers run. A process killed while it held a
 * mutex of the shared region (the lock table's, the region's) leaves that mutex held for
 * ever: every later caller, even one only joining the environment, waits on it. A master that
 * waited too could no longer notice, so a child asks, and a child that does not answer within
 * FAILCHK_MAX_MS is the answer: the environment needs recovery. */
#include "master-int.h"
#include "settle.h"
#include "core/error.h"
#include "core/log.h"
#include "store/store.h"
#include <errno.h>
#include <signal.h>
#include <string.h>
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

enum job_kind { JOB_FAILCHK, JOB_MAINTAIN, JOB_COUNT };

static const char *const job_name[JOB_COUNT] = { "failchk", "maintenance" };
static const long long job_max_ms[JOB_COUNT] = { FAILCHK_MAX_MS, MAINTAIN_MAX_MS };

struct job {
    pid_t pid;            /* running child, 0 none */
    long long deadline;   /* when it counts as stuck */
    int wanted;           /* run (again) when the running one is done */
};

static struct job g_jobs[JOB_COUNT];
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

/* job_child: in the forked child: do the job, then exit (EXIT_NEEDS_RECOVERY: failchk
 * found a process that died inside Berkeley DB). */
static void job_child(enum job_kind kind)
{
    if (kind == JOB_FAILCHK) {
        int r = store_db_failchk(g_cfg);
        _exit(r == CF_E_CORRUPT ? EXIT_NEEDS_RECOVERY : r ? 1 : 0);
    }
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
    if (WIFEXITED(st) && WEXITSTATUS(st) == 0) return 1;
    if (kind == JOB_FAILCHK && WIFEXITED(st) && WEXITSTATUS(st) == EXIT_NEEDS_RECOVERY) {
        g_need_recovery = 1;   /* its own db_failchk_failed line says why */
        return 1;
    }
    char how[48];
    describe_status(st, how, sizeof how);
    log_warn("db_job_failed", "job=%s pid=%d status=%s", job_name[kind], (int)pid, how);
    /* a maintenance child that died may have died inside the environment */
    if (kind == JOB_MAINTAIN) g_jobs[JOB_FAILCHK].wanted = 1;
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

void dbjob_run(long long now)
{
    struct job *f = &g_jobs[JOB_FAILCHK];
    if (f->pid > 0 && now >= f->deadline) {
        log_err("db_failchk_stuck", "pid=%d seconds=%lld hint=\"a process died holding a "
                "Berkeley DB mutex: every database call waits on it\"", (int)f->pid,
                job_max_ms[JOB_FAILCHK] / 1000);
        g_need_recovery = 1;
    }
    struct job *m = &g_jobs[JOB_MAINTAIN];
    if (m->pid > 0 && now >= m->deadline) {
        log_warn("db_maintenance_stuck", "pid=%d seconds=%lld", (int)m->pid,
                 job_max_ms[JOB_MAINTAIN] / 1000);
        kill(m->pid, SIGKILL);   /* reaped as a failed job: a failchk follows */
        m->deadline = now + job_max_ms[JOB_MAINTAIN];
    }
    if (g_need_recovery) db_recover_all();
    if (g_stopping) return;
    for (enum job_kind k = 0; k < JOB_COUNT; k++)
        if (g_jobs[k].wanted && !g_jobs[k].pid) job_spawn(k, now);
    /* the recount must not wait on database locks of the dead: only after their failchk */
    if (settle_pending() && !f->wanted && !f->pid) settle_spawn(g_cfg);
}

int dbjob_deadline(long long now)
{
    long long next = -1;
    for (int k = 0; k < JOB_COUNT; k++) {
        if (g_jobs[k].pid <= 0) continue;
        if (next < 0 || g_jobs[k].deadline < next) next = g_jobs[k].deadline;
    }
    if (next < 0) return -1;
    return next <= now ? 0 : (int)(next - now > 60000 ? 60000 : next - now);
}
