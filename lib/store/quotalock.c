/* quotalock.c: per-quota-root flock; see quotalock.h. */
#include "store/quotalock.h"
#include "store/store-int.h"
#include "core/config.h"
#include "core/error.h"
#include "core/fileutil.h"
#include "core/log.h"
#include "core/xmalloc.h"
#include "store/store.h"
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

int quotalock_acquire(struct store *st, const char *root, int *fd_r)
{
    *fd_r = -1;
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
out:
    free(path);
    free(dir);
    return r;
}

void quotalock_release(int *fd)
{
    if (*fd < 0) return;
    close(*fd);     /* closing drops the flock */
    *fd = -1;
}
