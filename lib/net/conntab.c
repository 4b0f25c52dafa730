/* conntab.c: the connection table shared by cofferd and its workers (see conntab.h). */
#include "net/conntab.h"
#include "core/error.h"
#include "core/log.h"
#include "core/siphash.h"
#include "core/xmalloc.h"
#include <errno.h>
#include <signal.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define CONNTAB_MAGIC "CFCONNT2"   /* 2: the user key is SipHash under key (was SHA-256) */

struct conntab_hdr {
    char magic[8];
    uint32_t slots;               /* capacity */
    _Atomic uint32_t high;        /* slots [0, high) have ever been used: scans stop there */
    /* the key of user_digest: random, written by conntab_create before the table's fd goes
     * to any other process and never changed, so every process reads the same bytes without
     * a lock */
    unsigned char key[SIPHASH_KEY_LEN];
};

struct conntab_slot {
    _Atomic int32_t pid;          /* owner; 0: free. Stored last when claimed, after state */
    _Atomic uint32_t state;       /* enum conntab_state */
    uint64_t service;             /* FNV-1a of the service name */
    unsigned char addr[17];       /* struct conntab_addr */
    unsigned char user[16];       /* user_digest(user name), after login */
    char note[CONNTAB_NOTE_MAX];  /* what the owner is in the middle of (conntab_note) */
};

struct conntab {
    struct conntab_hdr *hdr;
    struct conntab_slot *slot;
    size_t size;                  /* bytes mapped */
    int fd;
};

static size_t map_size(size_t slots)
{
    return sizeof(struct conntab_hdr) + slots * sizeof(struct conntab_slot);
}

static int map(int fd, size_t size, struct conntab **out)
{
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) {
        log_err("conntab_failed", "op=mmap error=%s", log_quote(strerror(errno)));
        return CF_E_IO;
    }
    struct conntab *t = xzmalloc(sizeof *t);
    t->hdr = p;
    /* the slots start at a multiple of their alignment after the header */
    t->slot = (struct conntab_slot *)((char *)p + sizeof(struct conntab_hdr));
    t->size = size;
    t->fd = fd;
    *out = t;
    return 0;
}

int conntab_create(size_t slots, struct conntab **out, int *fd_r)
{
    *out = NULL;
    int fd = memfd_create("coffer-conntab", MFD_CLOEXEC);
    if (fd < 0) {
        log_err("conntab_failed", "op=memfd_create error=%s", log_quote(strerror(errno)));
        return CF_E_IO;
    }
    /* pages of a memfd are allocated when first touched, and scans stop at the high-water
     * mark, so a generous capacity costs nothing until it is used */
    size_t size = map_size(slots);
    if (ftruncate(fd, (off_t)size) < 0) {
        log_err("conntab_failed", "op=ftruncate error=%s", log_quote(strerror(errno)));
        close(fd);
        return CF_E_IO;
    }
    if (map(fd, size, out)) {
        close(fd);
        return CF_E_IO;
    }
    /* the key comes first: a table is usable only with its magic, and both are written
     * before any other process can see the file */
    unsigned char key[SIPHASH_KEY_LEN];
    ssize_t got;
    while ((got = getrandom(key, sizeof key, 0)) < 0 && errno == EINTR) {}
    if (got != (ssize_t)sizeof key) {
        log_err("conntab_failed", "op=getrandom error=%s",
                log_quote(got < 0 ? strerror(errno) : "short read"));
        conntab_free(out);
        close(fd);
        return CF_E_IO;
    }
    memcpy((*out)->hdr->key, key, sizeof key);
    memcpy((*out)->hdr->magic, CONNTAB_MAGIC, 8);
    (*out)->hdr->slots = (uint32_t)slots;
    atomic_store(&(*out)->hdr->high, 0);
    *fd_r = fd;
    return 0;
}

int conntab_attach(int fd, struct conntab **out)
{
    *out = NULL;
    struct conntab_hdr h;
    if (pread(fd, &h, sizeof h, 0) != (ssize_t)sizeof h || memcmp(h.magic, CONNTAB_MAGIC, 8)) {
        log_err("conntab_failed", "op=attach error=\"not a connection table\"");
        return CF_E_IO;
    }
    struct stat st;
    size_t size = map_size(h.slots);
    if (fstat(fd, &st) < 0 || (size_t)st.st_size < size) {
        log_err("conntab_failed", "op=attach error=\"table is short\"");
        return CF_E_IO;
    }
    return map(fd, size, out);
}

void conntab_free(struct conntab **t)
{
    if (!*t) return;
    munmap((*t)->hdr, (*t)->size);
    xfree_ptr(t);
}

void conntab_addr_of(int fd, const struct sockaddr *sa, socklen_t len, struct conntab_addr *out)
{
    memset(out, 0, sizeof *out);
    if (!sa || len < (socklen_t)sizeof(sa_family_t)) return;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        out->b[0] = 4;
        memcpy(out->b + 1, &in->sin_addr, 4);
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        const unsigned char *a = in6->sin6_addr.s6_addr;
        static const unsigned char mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
        if (!memcmp(a, mapped, 12)) {
            out->b[0] = 4;          /* an IPv4 client on a dual-stack socket is that client */
            memcpy(out->b + 1, a + 12, 4);
        } else {
            out->b[0] = 6;
            memcpy(out->b + 1, a, 8);
        }
    } else if (sa->sa_family == AF_UNIX) {
        /* every local client has the same (empty) address: count them per user instead, so
         * one local account cannot shut out another (the MTA's) */
        struct ucred cred;
        socklen_t cl = sizeof cred;
        if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &cl) == 0) {
            out->b[0] = 1;
            memcpy(out->b + 1, &cred.uid, sizeof cred.uid);
        }
    }
}

static uint64_t fnv1a(const char *s)
{
    uint64_t h = 14695981039346656037ULL;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

/* user_digest: the fixed-size key of a user name in the table: SipHash-2-4-128 under the
 * table's random key, so a crafted user name cannot be made to count against another user
 * (nobody outside can compute a collision without the key, which never leaves the server's
 * memory). Not a digest from libcrypto: OpenSSL 3 loads its default provider and
 * configuration at the first EVP call, which cost every logged-in worker 2.2 MB of touched
 * pages (docs/perf/idle.md). */
static void user_digest(const struct conntab *t, const char *user, unsigned char out[16])
{
    siphash128(t->hdr->key, user, strlen(user), out);
}

static int lock(struct conntab *t, short type)
{
    struct flock fl = { .l_type = type, .l_whence = SEEK_SET, .l_start = 0, .l_len = 1 };
    while (fcntl(t->fd, F_SETLKW, &fl) < 0) {
        if (errno == EINTR) continue;
        log_err("conntab_failed", "op=lock error=%s", log_quote(strerror(errno)));
        return CF_E_IO;
    }
    return 0;
}

static void unlock(struct conntab *t) { lock(t, F_UNLCK); }

static uint32_t high(const struct conntab *t)
{
    uint32_t h = atomic_load(&t->hdr->high);
    return h < t->hdr->slots ? h : t->hdr->slots;
}

int conntab_enter(struct conntab *t, int pid, const char *service, const struct conntab_addr *addr,
                  long long limit, int *count_r)
{
    uint64_t svc = fnv1a(service);
    int count = 0, free_i = -1;
    *count_r = 0;
    if (lock(t, F_WRLCK)) return CF_E_IO;
    uint32_t h = high(t);
    for (uint32_t i = 0; i < h; i++) {
        struct conntab_slot *s = &t->slot[i];
        if (atomic_load(&s->pid) == 0) {
            if (free_i < 0) free_i = (int)i;
            continue;
        }
        if (addr->b[0] && atomic_load(&s->state) == CONNTAB_PREAUTH && s->service == svc &&
            !memcmp(s->addr, addr->b, sizeof s->addr))
            count++;
    }
    *count_r = count;
    if (addr->b[0] && limit > 0 && count >= limit) {
        unlock(t);
        return 0;
    }
    if (free_i < 0) {
        if (h >= t->hdr->slots) {
            unlock(t);
            return CF_E_AGAIN;
        }
        free_i = (int)h;
        atomic_store(&t->hdr->high, h + 1);
    }
    struct conntab_slot *s = &t->slot[free_i];
    s->service = svc;
    memcpy(s->addr, addr->b, sizeof s->addr);
    memset(s->user, 0, sizeof s->user);
    s->note[0] = '\0';
    atomic_store(&s->state, CONNTAB_PREAUTH);
    atomic_store(&s->pid, pid);         /* last: the slot is taken from here on */
    unlock(t);
    return free_i + 1;
}

int conntab_login(struct conntab *t, int slot, const char *user, long long limit, int *count_r)
{
    *count_r = 0;
    if (slot <= 0 || (uint32_t)slot > t->hdr->slots) return CF_E_INTERNAL;
    struct conntab_slot *me = &t->slot[slot - 1];
    if (!user) {
        atomic_store(&me->state, CONNTAB_AUTH);
        return 0;
    }
    unsigned char ud[16];
    user_digest(t, user, ud);
    int count = 0;
    if (lock(t, F_WRLCK)) return CF_E_IO;
    uint32_t h = high(t);
    for (uint32_t i = 0; i < h; i++) {
        struct conntab_slot *s = &t->slot[i];
        if (s == me || atomic_load(&s->pid) == 0) continue;
        if (me->addr[0] && atomic_load(&s->state) == CONNTAB_AUTH &&
            s->service == me->service && !memcmp(s->addr, me->addr, sizeof s->addr) &&
            !memcmp(s->user, ud, sizeof ud))
            count++;
    }
    *count_r = count;
    if (me->addr[0] && limit > 0 && count >= limit) {
        unlock(t);
        return CF_E_LIMIT;
    }
    memcpy(me->user, ud, sizeof ud);
    atomic_store(&me->state, CONNTAB_AUTH);
    unlock(t);
    return 0;
}

void conntab_logout(struct conntab *t, int slot)
{
    if (slot <= 0 || (uint32_t)slot > t->hdr->slots) return;
    struct conntab_slot *me = &t->slot[slot - 1];
    /* under the lock, as conntab_login writes: a counting login never sees half a change */
    int locked = lock(t, F_WRLCK) == 0;
    atomic_store(&me->state, CONNTAB_PREAUTH);
    memset(me->user, 0, sizeof me->user);
    if (locked) unlock(t);
}

int conntab_signal_user(struct conntab *t, const char *user, int sig)
{
    unsigned char ud[16];
    user_digest(t, user, ud);
    int n = 0, self = (int)getpid();
    if (lock(t, F_WRLCK)) return CF_E_IO;
    uint32_t h = high(t);
    for (uint32_t i = 0; i < h; i++) {
        struct conntab_slot *s = &t->slot[i];
        int pid = atomic_load(&s->pid);
        if (pid <= 0 || pid == self || atomic_load(&s->state) != CONNTAB_AUTH ||
            memcmp(s->user, ud, sizeof ud))
            continue;
        if (kill(pid, sig) == 0) n++;
    }
    unlock(t);
    return n;
}

void conntab_leave(struct conntab *t, int slot)
{
    if (slot <= 0 || (uint32_t)slot > t->hdr->slots) return;
    struct conntab_slot *s = &t->slot[slot - 1];
    atomic_store(&s->state, CONNTAB_FREE);
    atomic_store(&s->pid, 0);
}

void conntab_note(struct conntab *t, int slot, const char *text)
{
    if (slot <= 0 || (uint32_t)slot > t->hdr->slots) return;
    struct conntab_slot *s = &t->slot[slot - 1];
    size_t n = strlen(text);
    if (n >= sizeof s->note) {
        memcpy(s->note, CONNTAB_NOTE_OVERFLOW, sizeof CONNTAB_NOTE_OVERFLOW);
        return;
    }
    memcpy(s->note, text, n + 1);
}

void conntab_notes_of(const struct conntab *t, int pid, struct strarr *out)
{
    uint32_t h = high(t);
    for (uint32_t i = 0; i < h; i++) {
        const struct conntab_slot *s = &t->slot[i];
        if (atomic_load(&s->pid) != pid || !s->note[0]) continue;
        /* the owner is dead: nobody writes the note any more; copy at most its size */
        char tmp[CONNTAB_NOTE_MAX];
        memcpy(tmp, s->note, sizeof tmp);
        tmp[sizeof tmp - 1] = '\0';
        strarr_add(out, tmp);
    }
}

int conntab_clear_pid(struct conntab *t, int pid)
{
    /* No lock: a stopped worker holding it must never stall the master. A slot of pid is not
     * free, so no worker can claim it while we clear it; the state goes first, as in
     * conntab_leave. The master calls this right after waitpid; only a new worker that a
     * zygote forked in that instant and that got the same pid back and already accepted a
     * connection could lose its slot here, which at worst undercounts one connection. */
    int n = 0;
    uint32_t h = high(t);
    for (uint32_t i = 0; i < h; i++) {
        struct conntab_slot *s = &t->slot[i];
        if (atomic_load(&s->pid) != pid) continue;
        atomic_store(&s->state, CONNTAB_FREE);
        int32_t expect = pid;
        if (atomic_compare_exchange_strong(&s->pid, &expect, 0)) n++;
    }
    return n;
}

int conntab_count(const struct conntab *t, const char *service, enum conntab_state state)
{
    uint64_t svc = service ? fnv1a(service) : 0;
    int n = 0;
    uint32_t h = high(t);
    for (uint32_t i = 0; i < h; i++) {
        const struct conntab_slot *s = &t->slot[i];
        if (atomic_load(&s->pid) == 0) continue;
        if (atomic_load(&s->state) != (uint32_t)state) continue;
        if (!service || s->service == svc) n++;
    }
    return n;
}
