/* fileutil.c: careful file writing and small helpers. */
#include "core/fileutil.h"
#include "core/error.h"
#include "core/log.h"
#include "core/xmalloc.h"
#include <errno.h>
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
    char *tmp = xasprintf("%s.tmp.%d", path, (int)getpid());
    int r = CF_E_IO;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    if (fd < 0) {
        log_err("write_failed", "path=%s errno=%s", log_quote(tmp), strerror(errno));
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

int pidfile_write(const char *path, pid_t pid)
{
    char line[32];
    int n = snprintf(line, sizeof line, "%d\n", (int)pid);
    return file_write_atomic(path, line, (size_t)n, 0644);
}

int pidfile_read(const char *path, pid_t *pid)
{
    char *s;
    int r = file_read_all(path, 64, &s, NULL);
    if (r == CF_E_NOTFOUND) return 0;
    if (r) return r;
    long v = strtol(s, NULL, 10);
    free(s);
    if (v <= 0) return 0;
    if (kill((pid_t)v, 0) < 0 && errno == ESRCH) return 0;
    *pid = (pid_t)v;
    return 1;
}
