/* master-int.h: what the parts of cofferd's supervisor share (not for main.c, which uses
 * master.h): the service, zygote and worker records, the master's state, and the functions
 * each part offers the others. master.c: setup, services and listeners, signals, reload,
 * shutdown and the loop; zygote.c: starting the zygotes and talking to them; reap.c: worker
 * bookkeeping and reaping; status.c: the status pipe, line and file. */
#ifndef COFFER_COFFERD_MASTER_INT_H
#define COFFER_COFFERD_MASTER_INT_H
#include "master.h"
#include "core/strarr.h"
#include <stddef.h>
#include <sys/types.h>
#include <time.h>

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
    long long ready_since;      /* when it last said ready (retire_idle) */
    struct child *next;
};

/* The master's state (master.c). One master per process: these are its fields. */
extern struct config *g_cfg;
extern char *g_conf_path;
extern int g_debug;
extern struct service *g_services;
extern struct child *g_children;
extern struct zygote *g_zygotes;
extern int g_status_rd, g_status_wr;
extern int g_sig_rd, g_sig_wr;
extern int g_stopping, g_killed;
extern long long g_kill_deadline;
extern int g_status_dirty;
extern long long g_status_written, g_next_status_log;
extern time_t g_started;
extern struct conntab *g_conntab;   /* connections per address and user (net/conntab.h) */
extern int g_conntab_fd;
/* the signals the master handles (workers and zygotes get them back at their defaults) */
extern const int g_handled[];
extern const size_t g_nhandled;

/* ---- master.c ---- */

/* service_free: close s's listeners (UNIX paths stay) and free it. */
void service_free(struct service *s);

/* ---- zygote.c ---- */

int zygote_count_of(const struct service *s);
/* zygote_retire: z stops being its service's zygote and is sent sig. */
void zygote_retire(struct zygote *z, int sig);
/* proc_ppid: the parent pid of pid from /proc/PID/stat, or -1 when it is gone. */
pid_t proc_ppid(pid_t pid);
struct zygote *zygote_find(pid_t pid, struct zygote ***link_r);
/* zygote_read_all: take every record waiting on every zygote's control socket. */
void zygote_read_all(long long now);
/* spawn_needed: ask the zygotes for the idle workers each active service lacks. */
void spawn_needed(long long now);
/* retire_idle: retire workers above a service's prefork idle for worker_idle_timeout; the poll
 * timeout until the next one would be due, or -1. */
int retire_idle(long long now);
/* zygote_reap: z (already unlinked from g_zygotes) exited with wait status st; frees z. */
void zygote_reap(struct zygote *z, int st, long long now);
/* zygote_deadline: replace stuck zygotes; the poll timeout until the next deadline, or -1. */
int zygote_deadline(long long now);

/* ---- reap.c ---- */

void count_children(const struct service *s, int *total, int *idle, int *ready, int *busy);
int count_all_children(void);
/* record_abnormal: note a crash or failed start of s (may pause its spawning). */
void record_abnormal(struct service *s, long long now);
struct child *find_child(pid_t pid, struct child ***link_r);
/* retire: ask c to exit after its session (SIGUSR2), once. */
void retire(struct child *c);
/* describe_status: a wait status as "exit:N", "signal:NAME[:core]" into out. */
void describe_status(int st, char *out, size_t n);
/* service_release: free a retired service once no worker or zygote refers to it. */
void service_release(struct service *s);
/* reap: wait for every exited child (zygotes and workers), without blocking. */
void reap(long long now);

/* ---- dbjob.c ---- */

/* fork_helper: fork a child of the master that must not act as the master: default signal
 * handlers, nothing blocked, no descriptor above 2. 0 in the child, its pid in the master,
 * -1 (errno set) on failure. */
pid_t fork_helper(void);
/* dbjob_request_failchk: free what dead workers left in the database environment, soon, in
 * a child; one that cannot (a dead process inside Berkeley DB, or a failchk that does not
 * answer) makes cofferd stop every worker, recover and start the pools again. */
void dbjob_request_failchk(void);
/* dbjob_request_maintenance: a failchk, and a checkpoint plus duplicate pruning, in children. */
void dbjob_request_maintenance(void);
/* dbjob_reaped: 1 if pid was a job child (its exit st handled), else 0. */
int dbjob_reaped(pid_t pid, int st);
/* dbjob_run: after reaping: recover if a job said so or stuck, start the jobs wanted, and
 * the quota recount once the failchk before it is done. */
void dbjob_run(long long now);
/* dbjob_deadline: ms until a running job counts as stuck, or -1. */
int dbjob_deadline(long long now);
/* dbjob_stop: at the end of a shutdown: end every job child (SIGTERM, SIGKILL after a few
 * seconds) and reap it, so none is still attached to the databases when cofferd is started
 * again and recovers them. Blocks until they are gone. */
void dbjob_stop(void);
/* dbjob_status_lines: a "task=NAME runs=N last_start=T last_end=T result=R running=0|1
 * interval=S failures=N" line for each scheduled maintenance task (the status file). */
void dbjob_status_lines(struct strarr *out);
/* g_recovering: set while db_recover_all kills and reaps every child. */
extern int g_recovering;

/* ---- metrics.c ---- */

struct pollfd;
/* metrics_setup: the shared counters (core/metrics.h; without them the server still runs)
 * and, when metrics_listen is set, its listener. 0, or CF_E_IO / CF_E_PARSE with the reason
 * in err. */
int metrics_setup(const struct config *cfg, struct buf *err);
/* metrics_validate: metrics_listen is a HOST:PORT no service listens on (cofferd -t, reload).
 * 0, or CF_E_PARSE with the reason in err. */
int metrics_validate(const struct config *cfg, struct buf *err);
void metrics_fini(void);
/* metrics_shm_fd: the counters' memfd for the zygotes, or -1 */
int metrics_shm_fd(void);
/* metrics_note_respawn: a worker of service is replaced after a crash or failed start */
void metrics_note_respawn(const char *service);
/* metrics_poll_count: most pollfds metrics_poll_fill adds; metrics_poll_fill: add them to p,
 * returns how many */
size_t metrics_poll_count(void);
size_t metrics_poll_fill(struct pollfd *p);
/* metrics_run: accept, read, answer and time out the endpoint's connections; never blocks */
void metrics_run(long long now);
/* metrics_deadline: ms until a connection of the endpoint times out, or -1 */
int metrics_deadline(long long now);

/* ---- scrub.c ---- */

/* the exit codes of a scrubber slice besides 0 (the slice ran out of time; more to do) */
#define SCRUB_EXIT_PASS_DONE 10   /* a full pass ended */
#define SCRUB_EXIT_NOT_DUE 11     /* the last pass ended less than scrub_interval ago */
/* scrub_child: in a child made by fork_helper: one slice of the scrubber; never returns */
void scrub_child(const struct config *cfg) __attribute__((noreturn));

/* ---- status.c ---- */

/* status_read: take the workers' READY/BUSY reports from the status pipe. */
void status_read(long long now);
/* status_write_file: configdir/cofferd.status, now. */
void status_write_file(long long now);
/* status_log: a status line per service in the log, and the status file. */
void status_log(long long now);

#endif
