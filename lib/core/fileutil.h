/* fileutil.h: careful file writing (temp file, fsync, rename, fsync directory) and small helpers. */
#ifndef COFFER_CORE_FILEUTIL_H
#define COFFER_CORE_FILEUTIL_H
#include "core/buf.h"
#include <stddef.h>
#include <sys/types.h>

/* file_write_atomic: replace path with data: write a new path.tmp.XXXXXX (random name,
 * O_EXCL) in the same directory, fsync, rename over path, fsync the directory. mode applies to the new file. 0 or CF_E_IO (logged). */
int file_write_atomic(const char *path, const void *data, size_t len, mode_t mode);
/* file_write_atomic_paged: file_write_atomic through write_all_paged, for a file that is
 * then changed in place a record at a time (a mailbox's index). */
int file_write_atomic_paged(const char *path, const void *data, size_t len, mode_t mode);

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
/* write_all_paged: write_all in pieces of one page (4 KiB) at most, at page-aligned file
 * offsets when the file offset starts aligned. For files later changed in place a few bytes
 * at a time (index, uid column): the page cache keeps a file in the folio sizes it was
 * written in, and one write of megabytes makes folios of up to 2 MiB, after which every small
 * pwrite or first store through a mapping walks the whole folio (its buffer heads) and dirties
 * it whole for writeback: a 272-byte pwrite cost 6.9 us in an 8.5 MB file written at once,
 * 1.4 us when it was written a page at a time (docs/perf/big-mailbox.md). */
int write_all_paged(int fd, const void *p, size_t n);
/* pwrite_all_paged: the same at file offset off (pieces end at page boundaries). */
int pwrite_all_paged(int fd, const void *p, size_t n, off_t off);
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

/* Who a permission check is for: the running process (path_who_self) or the service account
 * cofferd and the tools switch to (path_who_user), with its supplementary groups. */
struct path_who {
    uid_t uid;
    gid_t gid;
    gid_t groups[64];
    int ngroups;
    char name[64];
};
void path_who_self(struct path_who *w);
/* path_who_user: the account named user (as initgroups would set it up). 0, or CF_E_NOTFOUND. */
int path_who_user(struct path_who *w, const char *user);

/* path_check_access: can who reach path? Every directory above path needs search (x)
 * permission; path itself, when it exists, needs want (R_OK, W_OK, X_OK or'ed; 0: reaching it
 * is enough); when it does not exist and create is set, its nearest existing ancestor needs
 * write and search (to create it); a missing path without create is fine (the caller reports
 * its absence its own way). Only mode bits count (no ACLs); uid 0 passes. Returns 0 when who
 * can; 1 with one sentence appended to why that names the file or directory, the missing
 * permission, its mode and owner (e.g. "user nobody (uid 65534) has no search (x) permission
 * on directory /srv/x (mode 0700, owner root:root)"); CF_E_IO with the stat error in why. Does
 * not block beyond stat(2). */
int path_check_access(const char *path, int want, int create, const struct path_who *who,
                      struct buf *why);

#endif
