/* fileutil.h: careful file writing (temp file, fsync, rename, fsync directory) and small helpers. */
#ifndef COFFER_CORE_FILEUTIL_H
#define COFFER_CORE_FILEUTIL_H
#include <stddef.h>
#include <sys/types.h>

/* file_write_atomic: replace path with data: write a new path.tmp.XXXXXX (random name,
 * O_EXCL) in the same directory, fsync, rename over path, fsync the directory. mode applies to the new file. 0 or CF_E_IO (logged). */
int file_write_atomic(const char *path, const void *data, size_t len, mode_t mode);

/* file_read_all: the whole file into a new NUL-terminated buffer (*out, caller frees).
 * 0, CF_E_NOTFOUND, CF_E_LIMIT (bigger than max), or CF_E_IO. */
int file_read_all(const char *path, size_t max, char **out, size_t *len_r);

/* fsync_dir: fsync the directory that holds path (or path itself when is_dir). */
int fsync_dir(const char *path, int is_dir);

/* mkdir_p: create dir and its parents with mode; existing directories are fine. */
int mkdir_p(const char *dir, mode_t mode);

/* write_all / read_full: loop over short writes/reads and EINTR. read_full returns bytes read
 * (less than n only at end of file) or -1. */
int write_all(int fd, const void *p, size_t n);
ssize_t read_full(int fd, void *p, size_t n);

/* pidfile_lock: open (create 0644, never through a symlink; only a plain file with one link)
 * and lock path for the life of this process, which must keep *fd_r open (close-on-exec) and
 * then write its pid with pidfile_update. The lock is dropped by the kernel when the process
 * dies. 0; CF_E_LOCKED with *holder_r (0 if unknown) when another process holds it; CF_E_IO
 * with errno otherwise. Does not block. */
int pidfile_lock(const char *path, int *fd_r, pid_t *holder_r);
int pidfile_update(int fd, pid_t pid);

/* pidfile_write: write "PID\n" atomically (no lock: for tests). pidfile_read: 1 and *pid if a
 * live process holds the pid file's lock (see pidfile_lock), 0 if absent or not locked (a
 * stale file), <0 on error. Takes no lock itself. */
int pidfile_write(const char *path, pid_t pid);
int pidfile_read(const char *path, pid_t *pid);

#endif
