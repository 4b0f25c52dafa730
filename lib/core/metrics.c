/* metrics.c: the shared counters of cofferd's metrics endpoint (metrics.h). */
#include "core/metrics.h"
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

const double metrics_latency_bounds[METRICS_LATENCY_BUCKETS] = {
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5
};
const double metrics_quota_bounds[METRICS_QUOTA_BUCKETS] = { 0.5, 0.75, 0.9, 0.95, 0.99, 1.0 };
const char *const metrics_lmtp_names[METRICS_LMTP_RESULTS] = {
    "delivered", "rejected", "overquota_permanent", "overquota_deferred", "deferred"
};
const char *const metrics_task_names[METRICS_TASKS] = { "checkpoint", "expire", "scrub" };

static struct metrics_shm *g_shm;

struct metrics_shm *metrics_get(void) { return g_shm; }

static int map_fd(int fd)
{
    struct stat sb;
    if (fstat(fd, &sb) < 0 || (size_t)sb.st_size != sizeof(struct metrics_shm)) return -1;
    void *p = mmap(NULL, sizeof(struct metrics_shm), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) return -1;
    struct metrics_shm *m = p;
    if (m->magic != METRICS_MAGIC || m->version != METRICS_VERSION ||
        m->size != sizeof(struct metrics_shm)) {
        munmap(p, sizeof *m);
        return -1;
    }
    g_shm = m;
    return 0;
}

int metrics_create(int *fd_r)
{
    int fd = memfd_create("coffer-metrics", MFD_CLOEXEC);
    if (fd < 0) return -1;
    if (ftruncate(fd, sizeof(struct metrics_shm)) < 0) goto fail;
    struct metrics_shm hdr;
    memset(&hdr, 0, sizeof hdr);
    hdr.magic = METRICS_MAGIC;
    hdr.version = METRICS_VERSION;
    hdr.size = sizeof hdr;
    /* only the header: the rest of a fresh memfd reads as zeros */
    if (pwrite(fd, &hdr, offsetof(struct metrics_shm, services), 0) !=
        (ssize_t)offsetof(struct metrics_shm, services))
        goto fail;
    if (map_fd(fd) < 0) goto fail;
    *fd_r = fd;
    return 0;
fail:;
    int e = errno;
    close(fd);
    errno = e;
    return -1;
}

int metrics_attach(int fd)
{
    return map_fd(fd);
}

int metrics_attach_env(void)
{
    const char *v = getenv(METRICS_ENV_FD);
    if (!v || !*v) return 0;
    char *end;
    long fd = strtol(v, &end, 10);
    if (*end || fd < 0 || fd > 65535) return -1;
    fcntl((int)fd, F_SETFD, FD_CLOEXEC);
    return metrics_attach((int)fd);
}

void metrics_add(uint64_t *counter, uint64_t n)
{
    __atomic_fetch_add(counter, n, __ATOMIC_RELAXED);
}

int metrics_slot_find(void *slots, size_t n, size_t stride, const char *name, int claim)
{
    char key[METRICS_NAME_MAX];
    size_t len = strlen(name);
    if (len >= sizeof key) len = sizeof key - 1;
    memcpy(key, name, len);
    memset(key + len, 0, sizeof key - len);
    unsigned char *base = slots;
    for (size_t i = 0; i < n; i++) {
        struct metrics_slot_name *s = (struct metrics_slot_name *)(base + i * stride);
        uint32_t st = __atomic_load_n(&s->state, __ATOMIC_ACQUIRE);
        if (st == 2 && !memcmp(s->name, key, sizeof key)) return (int)i;
        if (st == 0) {
            if (!claim) return -1;
            uint32_t expect = 0;
            if (__atomic_compare_exchange_n(&s->state, &expect, 1, 0, __ATOMIC_ACQ_REL,
                                            __ATOMIC_ACQUIRE)) {
                memcpy(s->name, key, sizeof key);
                __atomic_store_n(&s->state, 2, __ATOMIC_RELEASE);
                return (int)i;
            }
            /* lost the race: look at what the winner wrote once it is named */
            if (expect == 2 && !memcmp(s->name, key, sizeof key)) return (int)i;
        }
    }
    return -1;
}

/* slot_of: the slot for name among the first n - 1; when they are all taken, the last, which
 * is kept for "other" (so an event is never lost) */
static int slot_of(void *slots, size_t n, size_t stride, const char *name)
{
    int i = metrics_slot_find(slots, n - 1, stride, name, 1);
    if (i >= 0) return i;
    i = metrics_slot_find((unsigned char *)slots + (n - 1) * stride, 1, stride, METRICS_OTHER, 1);
    return i < 0 ? -1 : (int)(n - 1);
}

static struct metrics_service *service_slot(const char *service)
{
    if (!g_shm) return NULL;
    int i = slot_of(g_shm->services, METRICS_SERVICES, sizeof g_shm->services[0], service);
    return i < 0 ? NULL : &g_shm->services[i];
}

void metrics_connection(const char *service)
{
    struct metrics_service *s = service_slot(service);
    if (s) metrics_add(&s->connections, 1);
}

void metrics_bytes(const char *service, uint64_t in, uint64_t out)
{
    struct metrics_service *s = service_slot(service);
    if (!s) return;
    metrics_add(&s->bytes_in, in);
    metrics_add(&s->bytes_out, out);
}

/* the mechanisms that get a label of their own: what the services offer (lib/auth), the
 * IMAP LOGIN command and POP3 USER/PASS; a client's made-up name is "other" */
static const char *const known_mechs[] = {
    "PLAIN", "LOGIN", "CRAM-MD5", "DIGEST-MD5", "SCRAM-SHA-1", "SCRAM-SHA-256", "EXTERNAL",
    "XOAUTH2", "OAUTHBEARER", "ANONYMOUS", "USER", "APOP", NULL
};

void metrics_login(const char *service, const char *mech, int ok)
{
    if (!g_shm) return;
    const char *m = METRICS_OTHER;
    for (size_t i = 0; known_mechs[i]; i++)
        if (mech && !strcasecmp(mech, known_mechs[i])) m = known_mechs[i];
    char key[METRICS_NAME_MAX * 2];
    size_t sl = strlen(service);
    if (sl > 15) sl = 15;   /* "SERVICE/MECH" must fit one name */
    memcpy(key, service, sl);
    key[sl] = '/';
    strcpy(key + sl + 1, m);
    int i = slot_of(g_shm->logins, METRICS_LOGINS, sizeof g_shm->logins[0], key);
    if (i < 0) return;
    metrics_add(ok ? &g_shm->logins[i].ok : &g_shm->logins[i].failed, 1);
}

void metrics_command(const char *name, uint64_t usec)
{
    if (!g_shm) return;
    char up[METRICS_NAME_MAX];
    size_t k = 0;
    for (; name[k] && k + 1 < sizeof up; k++) up[k] = (char)toupper((unsigned char)name[k]);
    up[k] = '\0';
    int i = slot_of(g_shm->commands, METRICS_COMMANDS, sizeof g_shm->commands[0], up);
    if (i < 0) return;
    struct metrics_command *c = &g_shm->commands[i];
    size_t b = 0;
    double secs = (double)usec / 1e6;
    while (b < METRICS_LATENCY_BUCKETS && secs > metrics_latency_bounds[b]) b++;
    metrics_add(&c->bucket[b], 1);
    metrics_add(&c->sum_us, usec);
    metrics_add(&c->count, 1);
}

void metrics_lmtp(enum metrics_lmtp result)
{
    if (g_shm && result < METRICS_LMTP_RESULTS) metrics_add(&g_shm->lmtp[result], 1);
}

void metrics_fsync(void)
{
    if (g_shm) metrics_add(&g_shm->fsyncs, 1);
}

/* Every fsync and fdatasync in the programs is counted here: the link puts these in place of
 * the libc calls (-Wl,--wrap in lib/core/CMakeLists.txt), so the 80-odd call sites of the
 * store need no change and none can be missed. Berkeley DB's own log flushes go through its
 * shared library and are reported apart (coffer_db_log_flushes_total). */
int __real_fsync(int fd);
int __real_fdatasync(int fd);
int __wrap_fsync(int fd);
int __wrap_fdatasync(int fd);

int __wrap_fsync(int fd)
{
    metrics_fsync();
    return __real_fsync(fd);
}

int __wrap_fdatasync(int fd)
{
    metrics_fsync();
    return __real_fdatasync(fd);
}
