/* fileutil.c: careful file writing and small helpers. */
#include "core/fileutil.h"
#include "core/error.h"
#include "core/log.h"
#include "core/xmalloc.h"
#include <errno.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
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

#define PAGED_WRITE 4096u

int write_all_paged(int fd, const void *p, size_t n)
{
    const char *s = p;
    while (n) {
        size_t k = n < PAGED_WRITE ? n : PAGED_WRITE;
        if (write_all(fd, s, k) < 0) return -1;
        s += k;
        n -= k;
    }
    return 0;
}

int pwrite_all_paged(int fd, const void *p, size_t n, off_t off)
{
    const char *s = p;
    while (n) {
        size_t k = PAGED_WRITE - (size_t)(off % PAGED_WRITE);
        if (k > n) k = n;
        ssize_t w = pwrite(fd, s, k, off);
        if (w < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        s += w;
        n -= (size_t)w;
        off += w;
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

static int write_atomic(const char *path, const void *data, size_t len, mode_t mode,
                        int (*writer)(int, const void *, size_t));

int file_write_atomic(const char *path, const void *data, size_t len, mode_t mode)
{
    return write_atomic(path, data, len, mode, write_all);
}

int file_write_atomic_paged(const char *path, const void *data, size_t len, mode_t mode)
{
    return write_atomic(path, data, len, mode, write_all_paged);
}

static int write_atomic(const char *path, const void *data, size_t len, mode_t mode,
                        int (*writer)(int, const void *, size_t))
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
    if (writer(fd, data, len) < 0 || fsync(fd) < 0) {
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

/* ---- whether a user can reach a path ---- */

void path_who_self(struct path_who *w)
{
    memset(w, 0, sizeof *w);
    w->uid = geteuid();
    w->gid = getegid();
    int n = getgroups((int)(sizeof w->groups / sizeof w->groups[0]), w->groups);
    w->ngroups = n < 0 ? 0 : n;
    struct passwd *pw = getpwuid(w->uid);
    snprintf(w->name, sizeof w->name, "%s", pw ? pw->pw_name : "?");
}

int path_who_user(struct path_who *w, const char *user)
{
    /* user may point into getpwnam's own static record: copy it before the lookup */
    char name[sizeof w->name];
    snprintf(name, sizeof name, "%s", user);
    memset(w, 0, sizeof *w);
    struct passwd *pw = getpwnam(name);
    if (!pw) return CF_E_NOTFOUND;
    w->uid = pw->pw_uid;
    w->gid = pw->pw_gid;
    snprintf(w->name, sizeof w->name, "%s", pw->pw_name);
    int n = (int)(sizeof w->groups / sizeof w->groups[0]);
    /* more groups than fit: the first 64 (a false "no permission" at worst, never a false yes) */
    if (getgrouplist(pw->pw_name, pw->pw_gid, w->groups, &n) < 0)
        n = (int)(sizeof w->groups / sizeof w->groups[0]);
    w->ngroups = n;
    return 0;
}

static int who_in_group(const struct path_who *w, gid_t g)
{
    if (w->gid == g) return 1;
    for (int i = 0; i < w->ngroups; i++)
        if (w->groups[i] == g) return 1;
    return 0;
}

/* missing_perm: the bits of want (R_OK|W_OK|X_OK) the mode of st does not grant who. */
static int missing_perm(const struct stat *st, int want, const struct path_who *w)
{
    if (w->uid == 0) return 0;
    int shift = st->st_uid == w->uid ? 6 : who_in_group(w, st->st_gid) ? 3 : 0;
    int have = (int)(st->st_mode >> shift) & 7;   /* R_OK 4, W_OK 2, X_OK 1: the same bits */
    return want & ~have;
}

static void perm_words(struct buf *b, int bits, int is_dir)
{
    const char *sep = "";
    if (bits & R_OK) { buf_printf(b, "%sread (r)", sep); sep = " and "; }
    if (bits & W_OK) { buf_printf(b, "%swrite (w)", sep); sep = " and "; }
    if (bits & X_OK) buf_printf(b, "%s%s", sep, is_dir ? "search (x)" : "execute (x)");
}

static void explain(struct buf *why, const struct path_who *w, int bits, const char *path,
                    const struct stat *st, const char *purpose)
{
    struct passwd *pw = getpwuid(st->st_uid);
    struct group *gr = getgrgid(st->st_gid);
    int is_dir = S_ISDIR(st->st_mode);
    buf_printf(why, "user %s (uid %d) has no ", w->name, (int)w->uid);
    perm_words(why, bits, is_dir);
    size_t plen = strlen(path);
    if (plen > 1 && path[plen - 1] == '/') plen--;   /* "/srv/" was stat'ed as a directory */
    buf_printf(why, " permission on %s %.*s (mode %04o, owner %s:%s)%s",
               is_dir ? "directory" : "file", (int)plen, path, (unsigned)(st->st_mode & 07777), pw ? pw->pw_name : "?",
               gr ? gr->gr_name : "?", purpose);
}

/* check_one: who needs want on the existing path (stat in st): 0, or 1 with why. */
static int check_one(const char *path, const struct stat *st, int want, const struct path_who *w,
                     const char *purpose, const char *target, struct buf *why)
{
    int miss = missing_perm(st, want, w);
    if (!miss) return 0;
    explain(why, w, miss, path, st, purpose);
    buf_appends(why, target);
    return 1;
}

int path_check_access(const char *path, int want, int create, const struct path_who *who,
                      struct buf *why)
{
    char *p = xstrdup(path);
    size_t len = strlen(p);
    struct stat st;
    int r = 0;
    /* every ancestor, from the root down ("/", "/srv", "/srv/coffer"), needs search */
    for (size_t i = 0; i < len && !r; i++) {
        if (p[i] != '/' || i + 1 == len) continue;
        char keep = p[i + 1];
        p[i + 1] = '\0';   /* keeps the slash: "/" for the root, "/srv/" for the others */
        if (stat(p, &st) < 0) {
            p[i + 1] = keep;
            if (errno == ENOENT) break;   /* missing from here on: below */
            goto stat_failed;
        }
        r = check_one(p, &st, X_OK, who, ", which is on the way to ", path, why);
        p[i + 1] = keep;
    }
    if (r) goto out;
    if (stat(path, &st) == 0) {
        r = check_one(path, &st, want, who, "", "", why);
        goto out;
    }
    if (errno != ENOENT) goto stat_failed;
    if (!create) goto out;
    /* the nearest existing ancestor must let who create what is missing */
    for (char *cut; (cut = strrchr(p, '/')); ) {
        cut[cut == p] = '\0';   /* "/srv/x" -> "/srv", "/srv" -> "/" */
        if (stat(p, &st) == 0) {
            r = check_one(p, &st, W_OK | X_OK, who, ", needed to create ", path, why);
            goto out;
        }
        if (errno != ENOENT) goto stat_failed;
        if (cut == p) break;
    }
    goto out;
stat_failed:
    buf_printf(why, "cannot stat %s: %s", path, strerror(errno));
    r = CF_E_IO;
out:
    free(p);
    return r;
}
