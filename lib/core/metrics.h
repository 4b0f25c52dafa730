/* metrics.h: the counters cofferd serves on its metrics endpoint (cofferd(8) METRICS), kept in
 * one shared memory file that the master makes and every zygote, worker and helper maps.
 *
 * Workers count events with relaxed atomic adds into the mapping: no system call and no lock
 * per event, and nothing is lost when a worker dies (what it added stays). Labelled counters
 * (per service, per mechanism, per IMAP command) live in fixed arrays of slots found by name;
 * a slot is claimed once with a compare-and-swap, and two processes that claim the same name
 * at once only make two slots that the reader adds up. When the slots run out, the event goes
 * to the "other" slot of its kind (the last one, kept for it), so a hostile client that sends
 * many names cannot grow anything. The master reads and sums the slots when it is scraped (server/cofferd/metrics.c).
 *
 * The file's fd reaches the programs in $COFFER_METRICS_FD (net/worker.h); without it (inetd
 * mode, the tools) every metrics_* call does nothing. */
#ifndef COFFER_CORE_METRICS_H
#define COFFER_CORE_METRICS_H
#include <stddef.h>
#include <stdint.h>

#define METRICS_ENV_FD "COFFER_METRICS_FD"
#define METRICS_MAGIC 0x4346544dU   /* "MTFC" */
#define METRICS_VERSION 1

#define METRICS_NAME_MAX 32          /* label values, NUL included; longer ones are cut */
#define METRICS_SERVICES 32
#define METRICS_LOGINS 64            /* (service, mechanism) pairs */
#define METRICS_COMMANDS 96          /* IMAP command names */
#define METRICS_OTHER "other"

/* upper bounds (seconds) of the IMAP command latency histogram buckets; +Inf is implied */
#define METRICS_LATENCY_BUCKETS 12
extern const double metrics_latency_bounds[METRICS_LATENCY_BUCKETS];

/* upper bounds of the quota usage ratio buckets (used / limit, the larger of storage and
 * messages); +Inf (over quota) is implied */
#define METRICS_QUOTA_BUCKETS 6
extern const double metrics_quota_bounds[METRICS_QUOTA_BUCKETS];

/* LMTP per-recipient outcomes (the reply each recipient got after DATA/BDAT) */
enum metrics_lmtp { METRICS_LMTP_DELIVERED, METRICS_LMTP_REJECTED, METRICS_LMTP_OVERQUOTA_PERM,
                    METRICS_LMTP_OVERQUOTA_TEMP, METRICS_LMTP_TEMPFAIL, METRICS_LMTP_RESULTS };
extern const char *const metrics_lmtp_names[METRICS_LMTP_RESULTS];

/* maintenance tasks whose runs are counted (the scheduler is in cofferd) */
enum metrics_task { METRICS_TASK_CHECKPOINT, METRICS_TASK_EXPIRE, METRICS_TASK_SCRUB,
                    METRICS_TASKS };
extern const char *const metrics_task_names[METRICS_TASKS];

/* slot states: 0 free, 1 being named, 2 named (readers skip anything but 2) */
struct metrics_slot_name {
    uint32_t state;
    char name[METRICS_NAME_MAX];
};

struct metrics_service {
    struct metrics_slot_name n;
    uint64_t connections;            /* accepted */
    uint64_t bytes_in, bytes_out;    /* of closed connections (added at disconnect) */
};

struct metrics_login {
    struct metrics_slot_name n;      /* "SERVICE/MECHANISM" */
    uint64_t ok, failed;
};

struct metrics_command {
    struct metrics_slot_name n;
    uint64_t count;
    uint64_t sum_us;                 /* total latency, microseconds */
    uint64_t bucket[METRICS_LATENCY_BUCKETS + 1];   /* not cumulative; the last is +Inf */
};

/* The shared file. Counters only grow; the gauges of the db section are replaced as a whole
 * by the stats job (db_updated last, so a reader that sees a new time sees its values). */
struct metrics_shm {
    uint32_t magic, version;
    uint64_t size;                   /* sizeof(struct metrics_shm) of the writer */
    struct metrics_service services[METRICS_SERVICES];
    struct metrics_login logins[METRICS_LOGINS];
    struct metrics_command commands[METRICS_COMMANDS];
    uint64_t lmtp[METRICS_LMTP_RESULTS];
    uint64_t fsyncs;                 /* fsync and fdatasync calls by workers and helpers */
    /* maintenance (cofferd's helpers) */
    uint64_t task_runs[METRICS_TASKS], task_failures[METRICS_TASKS];
    int64_t task_last_end[METRICS_TASKS];      /* wall clock seconds of the last finished run */
    uint64_t scrub_messages, scrub_bytes, scrub_corrupt, scrub_index_corrupt, scrub_passes;
    /* the stats job (cofferd, db_stats_interval) */
    uint64_t db_cache_hit, db_cache_miss, db_lock_wait, db_lock_nowait, db_deadlocks,
             db_log_flushes;
    uint64_t quota_roots, quota_bucket[METRICS_QUOTA_BUCKETS + 1];   /* not cumulative */
    int64_t db_updated;              /* wall clock seconds; 0: never */
};

/* metrics_create: the master's file: a memfd of one struct metrics_shm, mapped, zeroed but
 * for the header. 0 with *fd_r (close-on-exec) and the mapping installed as this process's
 * (metrics_get), or -1 (errno set). */
int metrics_create(int *fd_r);

/* metrics_attach: map the file from an inherited fd and use it for this process's counts
 * (a zygote before it forks workers: the mapping is inherited). 0 or -1 (wrong size or
 * magic, mmap failure). */
int metrics_attach(int fd);

/* metrics_attach_env: metrics_attach on $METRICS_ENV_FD when it is set (the fd is made
 * close-on-exec). 0 when mapped or not set, -1 on failure. */
int metrics_attach_env(void);

/* metrics_get: this process's mapping, or NULL. */
struct metrics_shm *metrics_get(void);

/* Event counters; each is a no-op without a mapping and never blocks. */
void metrics_connection(const char *service);
void metrics_bytes(const char *service, uint64_t in, uint64_t out);
/* metrics_login: a login of service with mechanism mech (anything outside the known
 * mechanisms counts as "other") that succeeded (ok 1) or failed */
void metrics_login(const char *service, const char *mech, int ok);
/* metrics_command: one IMAP command name (a known command: the caller checks) that took
 * usec microseconds */
void metrics_command(const char *name, uint64_t usec);
void metrics_lmtp(enum metrics_lmtp result);
void metrics_add(uint64_t *counter, uint64_t n);
void metrics_fsync(void);

/* metrics_slot_find: the index of the named slot for name among n slots of stride bytes
 * (each starting with struct metrics_slot_name), claiming a free one when claim is set; -1
 * when none. For the counters above and for tests. */
int metrics_slot_find(void *slots, size_t n, size_t stride, const char *name, int claim);

#endif
