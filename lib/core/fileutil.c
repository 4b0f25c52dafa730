/* fileutil.c: careful file writing and small helpers. */
#include "core/fileutil.h"
#include "core/error.h"
#include "core/log.h"
#include "core/xmalloc.h"
#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int write_all(int fd, const void *p, size_t n)
{
    const char *s = p;
    while (n) {
        ssize_t w = write(fd, s, n);
        if (w < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        s += w;
        n -= (size_t)w;
    }
    return 0;
}

ssize_t read_full(int fd, void *p, size_t n)
{
    char *s = p;
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, s + got, n - got);
        if (r < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        if (r == 0) break;
        got += (size_t)r;
    }
    return (ssize_t)got;
}

int fsync_dir(const char *path, int is_dir)
{
    char *dir;
    if (is_dir) {
        dir = xstrdup(path);
    } else {
        const char *slash = strrchr(path, '/');
        dir = slash ? xstrndup(path, (size_t)(slash - path) + (slash == path)) : xstrdup(".");
    }
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int r = 0;
    if (fd < 0 || fsync(fd) < 0) {
        log_err("fsync_failed", "path=%s errno=%s", log_quote(dir), strerror(errno));
        r = CF_E_IO;
    }
    if (fd >= 0) close(fd);
    free(dir);
    return r;
}

int file_write_atomic(const char *path, const void *data, size_t len, mode_t mode)
{
    /* A random name made with O_EXCL (mkostemp): a predictable path.tmp.PID opened without
     * O_EXCL followed a symlink planted by whoever can write the directory, and truncated its
     * target (review M4). */
    char *tmp = xasprintf("%s.tmp.XXXXXX", path);
    int r = CF_E_IO;
    int fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0) {
        log_err("write_failed", "path=%s errno=%s", log_quote(tmp), strerror(errno));
        goto done;
    }
    /* mkostemp makes 0600; open(2) would have applied the umask to mode */
    mode_t um = umask(0);
    umask(um);
    if ((mode & ~um) != 0600 && fchmod(fd, mode & ~um) < 0) {
        log_err("write_failed", "path=%s errno=%s", log_quote(tmp), strerror(errno));
        close(fd);
        unlink(tmp);
        goto done;
    }
    if (write_all(fd, data, len) < 0 || fsync(fd) < 0) {
        log_err("write_failed", "path=%s errno=%s", log_quote(tmp), strerror(errno));
        close(fd);
        unlink(tmp);
        goto done;
    }
    close(fd);
    if (rename(tmp, path) < 0) {
        log_err("rename_failed", "path=%s errno=%s", log_quote(path), strerror(errno));
        unlink(tmp);
        goto done;
    }
    r = fsync_dir(path, 0);
done:
    free(tmp);
    return r;
}

int file_read_all(const char *path, size_t max, char **out, size_t *len_r)
{
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return errno == ENOENT ? CF_E_NOTFOUND : CF_E_IO;
    struct stat st;
    if (fstat(fd, &st) < 0) { close(fd); return CF_E_IO; }
    if ((size_t)st.st_size > max) { close(fd); return CF_E_LIMIT; }
    char *p = xmalloc((size_t)st.st_size + 1);
    ssize_t n = read_full(fd, p, (size_t)st.st_size);
    close(fd);
    if (n < 0) { free(p); return CF_E_IO; }
    p[n] = '\0';
    *out = p;
    if (len_r) *len_r = (size_t)n;
    return 0;
}

int mkdir_p(const char *dir, mode_t mode)
{
    char *p = xstrdup(dir);
    int r = 0;
    for (char *s = p + 1; ; s++) {
        if (*s == '/' || *s == '\0') {
            char c = *s;
            *s = '\0';
            if (mkdir(p, mode) < 0 && errno != EEXIST) {
                log_err("mkdir_failed", "path=%s errno=%s", log_quote(p), strerror(errno));
                r = CF_E_IO;
                break;
            }
            *s = c;
            if (!c) break;
        }
    }
    free(p);
    return r;
}

/* pidfile_open: path opened read-write without following a symlink, created 0644 if absent.
 * Refuses anything but a plain file with one link: root opens it, and the directory may belong
 * to the service user, who must not make root truncate another file through a link. */
static int pidfile_open(const char *path, int *fd_r)
{
    int fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY, 0644);
    if (fd < 0) return CF_E_IO;
    struct stat st;
    if (fstat(fd, &st) < 0) {
        int e = errno;
        close(fd);
        errno = e;
        return CF_E_IO;
    }
    if (!S_ISREG(st.st_mode) || st.st_nlink != 1) {
        close(fd);
        errno = S_ISREG(st.st_mode) ? EMLINK : EINVAL;
        return CF_E_IO;
    }
    *fd_r = fd;
    return 0;
}

/* pidfile_pid: the pid written in the open pid file, or 0. */
static pid_t pidfile_pid(int fd)
{
    char line[32];
    ssize_t n = pread(fd, line, sizeof line - 1, 0);
    if (n <= 0) return 0;
    line[n] = '\0';
    long v = strtol(line, NULL, 10);
    return v > 0 && v <= INT_MAX ? (pid_t)v : 0;
}

/* The lock is an open-file-description lock (F_OFD_SETLK) on the whole file: the kernel drops
 * it when the last descriptor of that open file is closed, which for cofferd is when the
 * master exits, however it dies. It survives the daemonizing fork (the descriptor is shared),
 * and children never hold it: the descriptor is close-on-exec and the workers are exec'd. A
 * pid file without the lock is stale whatever pid it names, so no /proc lookup is needed and a
 * crashed master can be restarted at once, even before it has been reaped. */
int pidfile_lock(const char *path, int *fd_r, pid_t *holder_r)
{
    *holder_r = 0;
    for (int attempt = 0; attempt < 10; attempt++) {
        int fd, r = pidfile_open(path, &fd);
        if (r) return r;
        struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
        if (fcntl(fd, F_OFD_SETLK, &fl) < 0) {
            int e = errno;
            if (e == EAGAIN || e == EACCES) {
                *holder_r = pidfile_pid(fd);
                close(fd);
                return CF_E_LOCKED;
            }
            close(fd);
            errno = e;
            return CF_E_IO;
        }
        /* a stopping master unlinks its pid file: a lock on the unlinked file means nothing */
        struct stat a, b;
        if (fstat(fd, &a) == 0 && lstat(path, &b) == 0 && a.st_dev == b.st_dev &&
            a.st_ino == b.st_ino) {
            *fd_r = fd;
            return 0;
        }
        close(fd);
    }
    errno = EAGAIN;
    return CF_E_IO;
}

int pidfile_update(int fd, pid_t pid)
{
    char line[32];
    int n = snprintf(line, sizeof line, "%d\n", (int)pid);
    if (ftruncate(fd, 0) < 0 || pwrite(fd, line, (size_t)n, 0) != n || fsync(fd) < 0)
        return CF_E_IO;
    return 0;
}

int pidfile_write(const char *path, pid_t pid)
{
    char line[32];
    int n = snprintf(line, sizeof line, "%d\n", (int)pid);
    return file_write_atomic(path, line, (size_t)n, 0644);
}

int pidfile_read(const char *path, pid_t *pid)
{
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) return errno == ENOENT ? 0 : CF_E_IO;
    /* F_OFD_GETLK only tests: taking even a shared lock here could make a cofferd starting
     * at that moment believe another one runs */
    struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
    int r = 0;
    if (fcntl(fd, F_OFD_GETLK, &fl) < 0) {
        r = CF_E_IO;
    } else if (fl.l_type != F_UNLCK) {
        /* locked: a cofferd holds it (a pid file from before the lock existed is unlocked) */
        pid_t v = pidfile_pid(fd);
        if (v > 0) {
            *pid = v;
            r = 1;
        }
    }
    close(fd);
    return r;
}
