/* userfence.c: the per-user fence files of a backend (userfence.h). */
#include "store/userfence.h"
#include "core/buf.h"
#include "core/error.h"
#include "core/fileutil.h"
#include "core/log.h"
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

/* fence_path: configdir/fence/HEX into out, the directory's length into *dirlen */
static void fence_path(const struct config *cfg, const char *user, struct buf *out, size_t *dirlen)
{
    static const char hex[] = "0123456789abcdef";
    buf_printf(out, "%s/%s", config_str(cfg, CFG_CONFIGDIR), USERFENCE_DIR);
    *dirlen = out->len;
    buf_putc(out, '/');
    for (const unsigned char *p = (const unsigned char *)user; *p; p++) {
        buf_putc(out, hex[*p >> 4]);
        buf_putc(out, hex[*p & 15]);
    }
}

int userfence_check(const struct config *cfg, const char *user)
{
    struct buf path = BUF_INIT;
    size_t dl;
    fence_path(cfg, user, &path, &dl);
    struct stat st;
    int r = 1;
    if (stat(buf_cstr(&path), &st) < 0) {
        r = errno == ENOENT ? 0 : CF_E_IO;
        if (r) log_err("fence_check_failed", "path=%s error=%s", log_quote(buf_cstr(&path)),
                       log_quote(strerror(errno)));
    }
    buf_fini(&path);
    return r;
}

/* lock_open: configdir/fence/.lock, made (with its directory) when missing; fd or -1
 * (logged). The directory is made only when the open says it is missing: every delivery
 * comes here, and mkdir_p costs a system call per path component. */
static int lock_open(const struct config *cfg)
{
    struct buf path = BUF_INIT;
    buf_printf(&path, "%s/%s", config_str(cfg, CFG_CONFIGDIR), USERFENCE_DIR);
    size_t dl = path.len;
    buf_appends(&path, "/.lock");
    int fd = open(buf_cstr(&path), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0 && errno == ENOENT) {
        path.s[dl] = '\0';
        int made = mkdir_p(path.s, 0700);
        path.s[dl] = '/';
        if (made == 0) fd = open(buf_cstr(&path), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    }
    if (fd < 0) log_err("fence_lock_failed", "path=%s error=%s", log_quote(buf_cstr(&path)),
                        log_quote(strerror(errno)));
    buf_fini(&path);
    return fd;
}

int userfence_hold(const struct config *cfg)
{
    int fd = lock_open(cfg);
    if (fd < 0) return -1;
    while (flock(fd, LOCK_SH) < 0) {
        if (errno == EINTR) continue;
        log_err("fence_lock_failed", "op=shared error=%s", log_quote(strerror(errno)));
        close(fd);
        return -1;
    }
    return fd;
}

void userfence_release(int fd)
{
    if (fd >= 0) close(fd);     /* drops the lock */
}

int userfence_set(const struct config *cfg, const char *user)
{
    struct buf path = BUF_INIT;
    size_t dl;
    fence_path(cfg, user, &path, &dl);
    int r = 0;
    path.s[dl] = '\0';
    if (mkdir_p(path.s, 0700) < 0) {
        r = CF_E_IO;
    } else {
        path.s[dl] = '/';
        int fd = open(buf_cstr(&path), O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
        if (fd < 0 || fsync(fd) < 0) r = CF_E_IO;
        if (fd >= 0) close(fd);
        if (!r && fsync_dir(buf_cstr(&path), 0) < 0) r = CF_E_IO;
    }
    if (r) log_err("fence_set_failed", "path=%s error=%s", log_quote(buf_cstr(&path)),
                   log_quote(strerror(errno)));
    buf_fini(&path);
    if (r) return r;
    /* the exclusive lock is granted once every delivery that checked before the fence file
     * existed has committed and let go of its shared one */
    int fd = lock_open(cfg);
    if (fd < 0) return CF_E_IO;
    while (flock(fd, LOCK_EX) < 0) {
        if (errno == EINTR) continue;
        log_err("fence_lock_failed", "op=exclusive error=%s", log_quote(strerror(errno)));
        r = CF_E_IO;
        break;
    }
    close(fd);
    return r;
}

int userfence_clear(const struct config *cfg, const char *user)
{
    struct buf path = BUF_INIT;
    size_t dl;
    fence_path(cfg, user, &path, &dl);
    int r = 0;
    if (unlink(buf_cstr(&path)) < 0) {
        if (errno != ENOENT) r = CF_E_IO;
    } else if (fsync_dir(buf_cstr(&path), 0) < 0) {
        r = CF_E_IO;
    }
    if (r) log_err("fence_clear_failed", "path=%s error=%s", log_quote(buf_cstr(&path)),
                   log_quote(strerror(errno)));
    buf_fini(&path);
    return r;
}
