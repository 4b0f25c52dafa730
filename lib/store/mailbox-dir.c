/* mailbox-dir.c: the mailbox directory: create, status, delete, rename. */
#include "store/mailbox-int.h"
#include "store/flaglog.h"
#include "store/mailbox.h"
#include "store/mbheader.h"
#include "store/partition.h"
#include "core/error.h"
#include "core/fileutil.h"
#include "core/log.h"
#include "core/xmalloc.h"
#include "mime/mime.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ---- create, status, delete, rename ---- */

/* write_new: a new file path holding data, not fsynced (mailbox_create_nosync). */
static int write_new(const char *path, const void *data, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0 || write_all(fd, data, len) < 0) {
        log_err("mailbox_io_error", "call=write path=%s errno=%s", log_quote(path), strerror(errno));
        if (fd >= 0) close(fd);
        return CF_E_IO;
    }
    if (close(fd) < 0) {
        log_err("mailbox_io_error", "call=close path=%s errno=%s", log_quote(path), strerror(errno));
        return CF_E_IO;
    }
    return 0;
}

static int create_dir(const char *partition, const char *name, const char *uniqueid,
                      const char *acl, uint32_t uidvalidity, int sync)
{
    if (!partition_uniqueid_valid(uniqueid) || !name || strpbrk(name, "\r\n") ||
        (acl && strpbrk(acl, "\r\n")))
        return CF_E_PARSE;
    if (!uidvalidity) uidvalidity = (uint32_t)time(NULL);
    char *dir = partition_mailbox_dir(partition, uniqueid);
    char *parent = xstrndup(dir, strlen(dir) - UNIQUEID_LEN - 1);
    char *path = NULL;
    unsigned char *idx = NULL;
    struct buf hb = BUF_INIT;
    int r = 0;
    /* xx/ is there for all but the first mailbox of 256 or so: making sure of every component
     * of its path first (mkdir_p) was four failing mkdir calls a mailbox in a bulk create */
    int made = mkdir(dir, 0700) == 0;
    if (!made && errno == ENOENT) {
        if ((r = mkdir_p(parent, 0700)) < 0) goto done;
        made = mkdir(dir, 0700) == 0;
    }
    if (!made) {
        if (errno == EEXIST) {
            r = CF_E_EXISTS;
        } else {
            log_err("mailbox_io_error", "call=mkdir path=%s errno=%s", log_quote(dir), strerror(errno));
            r = CF_E_IO;
        }
        goto done;
    }
    unsigned char chead[CACHE_HEADER_SIZE];
    cache_header_encode(chead);
    path = xasprintf("%s/%s", dir, CACHE_FILE);
    r = sync ? file_write_atomic(path, chead, sizeof chead, 0600) : write_new(path, chead, sizeof chead);
    if (r < 0) goto done;
    free(path);
    size_t ilen;
    idx = index_new_file(uidvalidity, 1, &ilen);
    path = xasprintf("%s/%s", dir, INDEX_FILE);
    r = sync ? file_write_atomic(path, idx, ilen, 0600) : write_new(path, idx, ilen);
    if (r < 0) goto done;
    /* the flag change log, empty: its name is made durable with the mailbox's (the directory
     * flush below, or the caller's for a batch), so that the first STORE need not flush the
     * directory for it (flaglog.h) */
    unsigned char lhead[FLAGLOG_HEADER_SIZE];
    flaglog_header_encode(1, lhead);
    free(path);
    path = xasprintf("%s/%s", dir, FLAGLOG_FILE);
    if ((r = write_new(path, lhead, sizeof lhead)) < 0) goto done;
    /* The header goes last: a directory without one is an unfinished create. */
    struct mbheader h = { (char *)name, (char *)uniqueid, (char *)(acl ? acl : ""), uidvalidity };
    if (sync) {
        if ((r = mbheader_write(dir, &h)) < 0) goto done;
        /* the new name in xx/, and xx/ itself in the partition when mkdir_p just made it */
        if ((r = fsync_dir(parent, 1)) < 0) goto done;
        r = fsync_dir(parent, 0);
    } else {
        if ((r = mbheader_encode(&h, &hb)) < 0) goto done;
        free(path);
        path = xasprintf("%s/%s", dir, MBHEADER_FILE);
        r = write_new(path, hb.s, hb.len);
    }
done:
    buf_fini(&hb);
    free(idx);
    free(path);
    free(parent);
    free(dir);
    return r;
}

int mailbox_create(const char *partition, const char *name, const char *uniqueid,
                   const char *acl, uint32_t uidvalidity)
{
    return create_dir(partition, name, uniqueid, acl, uidvalidity, 1);
}

int mailbox_create_nosync(const char *partition, const char *name, const char *uniqueid,
                          const char *acl, uint32_t uidvalidity)
{
    return create_dir(partition, name, uniqueid, acl, uidvalidity, 0);
}

int mailbox_status(const char *partition, const char *uniqueid, struct index_header *h)
{
    if (!partition_uniqueid_valid(uniqueid)) return CF_E_NOTFOUND;
    struct mailbox *mb = mbi_mailbox_alloc(partition, uniqueid, NULL);
    int r = mbi_open_lock_file(mb->dir, &mb->lock_fd);
    /* the counters of an index not vouched for in this boot are recounted, as an open does:
     * after a power loss the header flushed last may lack STOREs that the flag change log
     * made durable, which the recount replays (a verified index costs one marker check) */
    mb->check_counts = 1;
    if (r == 0) {
        int took = mbi_lock(mb, LOCK_SH);
        if (took < 0) r = took;
        else *h = mb->hdr;
        mbi_unlock(mb, took);
    }
    mailbox_close(&mb);
    return r;
}

/* remove_dir: unlink every entry of dir (no subdirectories expected), then dir. */
static int remove_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) return errno == ENOENT ? CF_E_NOTFOUND : CF_E_IO;
    struct dirent *de;
    int r = 0;
    while ((de = readdir(d))) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) continue;
        char *p = xasprintf("%s/%s", dir, de->d_name);
        if (unlink(p) < 0 && errno != ENOENT) {
            log_err("mailbox_io_error", "call=unlink path=%s errno=%s", log_quote(p), strerror(errno));
            r = CF_E_IO;
        }
        free(p);
    }
    closedir(d);
    if (r == 0 && rmdir(dir) < 0) {
        log_err("mailbox_io_error", "call=rmdir path=%s errno=%s", log_quote(dir), strerror(errno));
        r = CF_E_IO;
    }
    if (r == 0) {
        char *parent = xstrndup(dir, strlen(dir) - UNIQUEID_LEN - 1);
        /* the xx directory goes too when this was its last mailbox */
        fsync_dir(parent, rmdir(parent) < 0);
        free(parent);
    }
    return r;
}

int mailbox_delete(const char *partition, const char *uniqueid)
{
    if (!partition_uniqueid_valid(uniqueid)) return CF_E_NOTFOUND;
    char *dir = partition_mailbox_dir(partition, uniqueid);
    int fd = -1;
    struct stat st;
    int r = stat(dir, &st) < 0 ? CF_E_NOTFOUND : mbi_open_lock_file(dir, &fd);
    if (r < 0) goto done;
    /* Wait for sessions in the middle of a change; they see the mailbox gone afterwards. */
    while (flock(fd, LOCK_EX) < 0 && errno == EINTR) {}
    r = remove_dir(dir);
done:
    if (fd >= 0) close(fd);
    free(dir);
    return r;
}

/* copy_file: copy src to a new file dst (O_EXCL) and fsync it. */
static int copy_file(const char *src, const char *dst)
{
    char *text = NULL;
    size_t len = 0;
    int r = file_read_all(src, (size_t)-1 / 2, &text, &len);
    if (r < 0) return r;
    int fd = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0 || write_all(fd, text, len) < 0 || fsync(fd) < 0) {
        log_err("mailbox_io_error", "call=write path=%s errno=%s", log_quote(dst), strerror(errno));
        r = CF_E_IO;
    }
    if (fd >= 0) close(fd);
    free(text);
    return r;
}

int mailbox_rename(const char *old_partition, const char *new_partition, const char *uniqueid,
                   const char *new_name)
{
    if (!partition_uniqueid_valid(uniqueid)) return CF_E_NOTFOUND;
    if (!new_name || strpbrk(new_name, "\r\n")) return CF_E_PARSE;
    char *odir = partition_mailbox_dir(old_partition, uniqueid);
    char *ndir = partition_mailbox_dir(new_partition, uniqueid);
    char *nparent = xstrndup(ndir, strlen(ndir) - UNIQUEID_LEN - 1);
    int fd = -1, made = 0;
    DIR *d = NULL;
    struct mbheader h;
    mbheader_init(&h);
    int r = mbheader_read(odir, &h);
    if (r < 0) goto done;
    if ((r = mbi_open_lock_file(odir, &fd)) < 0) goto done;
    while (flock(fd, LOCK_EX) < 0 && errno == EINTR) {}
    free(h.name);
    h.name = xstrdup(new_name);
    if (!strcmp(odir, ndir)) {
        r = mbheader_write(odir, &h);
        goto done;
    }
    if ((r = mkdir_p(nparent, 0700)) < 0) goto done;
    if (mkdir(ndir, 0700) < 0) {
        r = errno == EEXIST ? CF_E_EXISTS : CF_E_IO;
        goto done;
    }
    made = 1;
    if (!(d = opendir(odir))) {
        r = CF_E_IO;
        goto done;
    }
    struct dirent *de;
    while ((de = readdir(d))) {
        const char *fn = de->d_name;
        if (!strcmp(fn, ".") || !strcmp(fn, "..") || !strcmp(fn, LOCK_FILE) ||
            !strcmp(fn, MBHEADER_FILE) || strstr(fn, ".tmp."))
            continue;
        char *s = xasprintf("%s/%s", odir, fn), *t = xasprintf("%s/%s", ndir, fn);
        size_t fl = strlen(fn);
        int is_msg = fl > 1 && fn[fl - 1] == '.';
        /* Messages may share the inode (a link is atomic and durable with the directory);
         * index and cache are private copies, as they are written in place. */
        if (!is_msg || link(s, t) < 0) r = copy_file(s, t);
        free(s);
        free(t);
        if (r < 0) goto done;
    }
    if ((r = fsync_dir(ndir, 1)) < 0) goto done;
    if ((r = mbheader_write(ndir, &h)) < 0) goto done;   /* the new copy is now complete */
    if ((r = fsync_dir(nparent, 1)) < 0) goto done;
    if ((r = fsync_dir(nparent, 0)) < 0) goto done;   /* xx/ when mkdir_p just made it */
    made = 0;
    r = remove_dir(odir);
done:
    if (d) closedir(d);
    if (made) remove_dir(ndir);
    if (fd >= 0) close(fd);
    mbheader_fini(&h);
    free(odir);
    free(ndir);
    free(nparent);
    return r;
}
