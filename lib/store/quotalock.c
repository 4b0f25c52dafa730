/* quotalock.c: per-quota-root flock; see quotalock.h. */
#include "store/quotalock.h"
#include "store/store-int.h"
#include "core/config.h"
#include "core/error.h"
#include "core/fileutil.h"
#include "core/log.h"
#include "core/strarr.h"
#include "core/xmalloc.h"
#include "store/store.h"
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

/* The roots this process holds (or is about to), by descriptor, for the note function. */
static quotalock_note_fn *g_note;
static struct strarr g_held = STRARR_INIT;
static int *g_held_fd;

void quotalock_set_note(quotalock_note_fn *fn)
{
    g_note = fn;
}

static void note(void)
{
    if (!g_note) return;
    struct buf b = BUF_INIT;
    for (size_t i = 0; i < g_held.count; i++) {
        buf_appends(&b, g_held.v[i]);
        buf_putc(&b, '\n');
    }
    g_note(buf_cstr(&b));
    buf_fini(&b);
}

static void held_add(const char *root)
{
    strarr_add(&g_held, root);
    g_held_fd = xreallocarray(g_held_fd, g_held.count, sizeof *g_held_fd);
    g_held_fd[g_held.count - 1] = -1;
    note();
}

/* held_drop: forget the entry of fd (or, fd -1, the last one added without a descriptor) */
static void held_drop(int fd)
{
    for (size_t i = g_held.count; i-- > 0;) {
        if (g_held_fd[i] != fd) continue;
        strarr_remove(&g_held, i);
        memmove(&g_held_fd[i], &g_held_fd[i + 1], (g_held.count - i) * sizeof *g_held_fd);
        note();
        return;
    }
}

int quotalock_acquire(struct store *st, const char *root, int *fd_r)
{
    *fd_r = -1;
    if (g_note) held_add(root);
    uint64_t h = 0xcbf29ce484222325ull;
    for (const unsigned char *p = (const unsigned char *)root; *p; p++) {
        h ^= *p;
        h *= 0x100000001b3ull;
    }
    const char *configdir = config_str(st->cfg, CFG_CONFIGDIR);
    char *dir = xasprintf("%s/lock/quota", configdir);
    char *path = xasprintf("%s/%016llx", dir, (unsigned long long)h);
    int r = 0;
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0 && errno == ENOENT && mkdir_p(dir, 0700) == 0)
        fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        log_err("quota_lock_failed", "root=%s path=%s errno=%d", log_quote(root), log_quote(path),
                errno);
        r = CF_E_IO;
        goto out;
    }
    while (flock(fd, LOCK_EX) < 0) {
        if (errno == EINTR) continue;
        log_err("quota_lock_failed", "root=%s path=%s errno=%d", log_quote(root),
                log_quote(path), errno);
        close(fd);
        r = CF_E_IO;
        goto out;
    }
    *fd_r = fd;
    if (g_note) g_held_fd[g_held.count - 1] = fd;
out:
    if (r < 0 && g_note) held_drop(-1);
    free(path);
    free(dir);
    return r;
}

void quotalock_release(int *fd)
{
    if (*fd < 0) return;
    close(*fd);     /* closing drops the flock */
    if (g_note) held_drop(*fd);
    *fd = -1;
}
