/* maildrop.c: a POP3 session's maildrop: the user's INBOX locked against other POP3 sessions,
 * its message list frozen at login, deletion marks, and the dot-stuffed sending of messages. */
#include "pop3d.h"
#include "core/error.h"
#include "core/fileutil.h"
#include "core/log.h"
#include "core/xmalloc.h"
#include "net/stream.h"
#include "core/config.h"
#include "store/acl.h"
#include "store/mail.h"
#include "store/mboxname.h"
#include "store/store-mail.h"
#include <errno.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif
#include <fcntl.h>
#include <time.h>
#include <sys/stat.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <unistd.h>

struct maildrop {
    struct store *st;               /* the worker's store, outlives the maildrop */
    char *name;                     /* the INBOX's internal name */
    unsigned rights;                /* the user's rights on it at login (acl_right_bit) */
    struct mailbox *mb;
    int lockfd;
    uint32_t uidvalidity;
    uint32_t n;                     /* messages in the snapshot */
    uint32_t *uids;
    uint64_t *sizes;
    uint8_t *state;                 /* MD_* bits per message */
    struct mail *mail;              /* RETR/TOP's handle, kept: its read buffer is reused */
};

/* zarray: n zeroed elements of size bytes (at least one, so n = 0 needs no special case) */
static void *zarray(size_t n, size_t size)
{
    void *p = xreallocarray(NULL, n ? n : 1, size);
    memset(p, 0, (n ? n : 1) * size);
    return p;
}

#define MD_DELETED 0x1              /* DELE'd in this session */
#define MD_WAS_SEEN 0x2             /* had \Seen at login */
#define MD_SEEN 0x4                 /* RETR'd: \Seen to be set when the session ends */

/* lock_path: configdir/lock/pop3/USER with bytes outside [A-Za-z0-9._@+-] (and a leading
 * dot) written as %XX, so any user name is one safe file name. */
static void lock_path(const struct config *cfg, const char *user, struct buf *dir,
                      struct buf *path)
{
    buf_reset(dir);
    buf_printf(dir, "%s/lock/pop3", config_str(cfg, CFG_CONFIGDIR));
    buf_reset(path);
    buf_printf(path, "%s/", buf_cstr(dir));
    for (const unsigned char *p = (const unsigned char *)user; *p; p++) {
        int ok = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                 (*p >= '0' && *p <= '9') || strchr("_@+-", *p) ||
                 (*p == '.' && p != (const unsigned char *)user);
        if (ok) buf_putc(path, (char)*p);
        else buf_printf(path, "%%%02X", *p);
    }
}

/* maildrop_lock: 0 with *fd_r holding the lock, CF_E_LOCKED, or CF_E_IO (logged). */
static int maildrop_lock(const struct config *cfg, const char *user, int *fd_r)
{
    struct buf dir = BUF_INIT, path = BUF_INIT;
    int r = 0;
    lock_path(cfg, user, &dir, &path);
    if (mkdir_p(buf_cstr(&dir), 0700) < 0) {
        log_err("pop3_lock_failed", "call=mkdir path=%s errno=%s", log_quote(buf_cstr(&dir)),
                log_quote(strerror(errno)));
        r = CF_E_IO;
        goto done;
    }
    int fresh = 1;
    int fd = open(buf_cstr(&path), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0 && errno == EEXIST) {
        fresh = 0;
        fd = open(buf_cstr(&path), O_RDWR | O_CLOEXEC);
    }
    if (fd < 0) {
        log_err("pop3_lock_failed", "call=open path=%s errno=%s", log_quote(buf_cstr(&path)),
                log_quote(strerror(errno)));
        r = CF_E_IO;
        goto done;
    }
    /* flock, not fcntl: the lock belongs to this open file, so it cannot be lost when some
     * library closes another descriptor of the same file */
    if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
        int e = errno;
        close(fd);
        if (e == EWOULDBLOCK) {
            r = CF_E_LOCKED;
        } else {
            log_err("pop3_lock_failed", "call=flock path=%s errno=%s",
                    log_quote(buf_cstr(&path)), log_quote(strerror(e)));
            r = CF_E_IO;
        }
        goto done;
    }
    /* RFC 2449 section 6.8 LOGIN-DELAY: the lock file's mtime is the last successful login */
    long long delay = config_int(cfg, CFG_POP3_LOGIN_DELAY);
    struct stat sb;
    if (delay > 0 && !fresh && fstat(fd, &sb) == 0 && time(NULL) - sb.st_mtime < delay) {
        close(fd);
        r = CF_E_AGAIN;
        goto done;
    }
    *fd_r = fd;
done:
    buf_fini(&dir);
    buf_fini(&path);
    return r;
}

int maildrop_open(struct store *st, const struct config *cfg, const char *user,
                  struct maildrop **out)
{
    *out = NULL;
    int fd = -1;
    struct buf name = BUF_INIT;
    struct maildrop *d = NULL;
    int r = maildrop_lock(cfg, user, &fd);
    if (r) goto fail;
    r = store_ensure_inbox(st, user);
    if (r < 0) goto fail;
    mboxname_user_inbox(user, &name);
    /* RFC 4314 section 4 (and issue 7): POP3 needs the 'r' right on the INBOX */
    struct mboxlist_entry e;
    mboxlist_entry_init(&e);
    unsigned rights = 0;
    r = store_lookup(st, buf_cstr(&name), &e);
    if (r == 1) {
        int admin = strarr_find(config_list(cfg, CFG_ADMINS), user) >= 0;
        rights = acl_user_rights(e.acl, buf_cstr(&name), user, admin);
        r = rights & acl_right_bit('r') ? 0 : CF_E_PERM;
    } else if (r == 0) {
        r = CF_E_NOTFOUND;
    }
    mboxlist_entry_fini(&e);
    if (r) goto fail;
    d = xzmalloc(sizeof *d);
    d->st = st;
    d->name = xstrdup(buf_cstr(&name));
    d->rights = rights;
    d->lockfd = fd;
    fd = -1;
    r = store_open_mailbox(st, buf_cstr(&name), NULL, &d->mb);
    if (r) goto fail;

    /* The snapshot: the session view as opened, read under one shared lock. The view is never
     * synced afterwards, so later deliveries stay invisible (RFC 1939 section 5 numbering). */
    r = mailbox_lock_shared(d->mb);
    if (r) goto fail;
    d->uidvalidity = mailbox_header(d->mb)->uidvalidity;
    uint32_t count = mailbox_count(d->mb);
    d->uids = zarray(count, sizeof *d->uids);
    d->sizes = zarray(count, sizeof *d->sizes);
    d->state = zarray(count, 1);
    for (uint32_t i = 1; i <= count; i++) {
        struct index_record rec;
        uint32_t uid = mailbox_uid(d->mb, i);
        int f = mailbox_record(d->mb, uid, &rec);
        if (f < 0) {
            mailbox_unlock(d->mb);
            r = f;
            goto fail;
        }
        if (f == 0 || (rec.flags & FLAG_EXPUNGED)) continue;   /* gone since the open */
        d->uids[d->n] = uid;
        d->sizes[d->n] = rec.size;
        d->state[d->n] = (rec.flags & FLAG_SEEN) ? MD_WAS_SEEN : 0;
        d->n++;
    }
    mailbox_unlock(d->mb);
    buf_fini(&name);
    futimens(d->lockfd, NULL);    /* this login is the last one now (LOGIN-DELAY) */
    *out = d;
    return 0;

fail:
    if (fd >= 0) close(fd);
    if (d) maildrop_close(&d);
    buf_fini(&name);
    return r;
}

/* apply_seen: one commit that adds \Seen to every message RETR'd in this session. RETR itself
 * writes nothing, so a client fetching many messages pays for one index commit, not one each. */
static void apply_seen(struct maildrop *d)
{
    uint32_t *uids = NULL;
    size_t n = 0;
    for (uint32_t i = 0; i < d->n; i++) {
        if ((d->state[i] & (MD_SEEN | MD_WAS_SEEN)) != MD_SEEN) continue;
        if (!uids) uids = zarray(d->n, sizeof *uids);
        uids[n++] = d->uids[i];
    }
    if (!n) return;
    struct mailbox_store op = { .op = STORE_ADD, .flags = FLAG_SEEN };
    int r = store_set_flags(d->st, d->mb, uids, n, &op, NULL, NULL);
    if (r) log_err("pop3_seen_failed", "messages=%zu error=%s", n, log_quote(cf_strerror(r)));
    for (uint32_t i = 0; i < d->n; i++)
        if (d->state[i] & MD_SEEN) d->state[i] |= MD_WAS_SEEN;
    free(uids);
}

void maildrop_close(struct maildrop **dp)
{
    struct maildrop *d = *dp;
    if (!d) return;
    mail_free(&d->mail);            /* before its mailbox is closed */
    if (d->mb) {
        if (d->state) apply_seen(d);
        mailbox_close(&d->mb);
    }
    if (d->lockfd >= 0) close(d->lockfd);   /* releases the flock */
    free(d->name);
    free(d->uids);
    free(d->sizes);
    free(d->state);
    free(d);
    *dp = NULL;
}

int maildrop_may(const struct maildrop *d, char right)
{
    return (d->rights & acl_right_bit(right)) != 0;
}

uint32_t maildrop_count(const struct maildrop *d) { return d->n; }
uint32_t maildrop_uidvalidity(const struct maildrop *d) { return d->uidvalidity; }

int maildrop_get(const struct maildrop *d, uint32_t n, uint32_t *uid_r, uint64_t *size_r)
{
    if (n < 1 || n > d->n) return 0;
    if (d->state[n - 1] & MD_DELETED) return -1;
    if (uid_r) *uid_r = d->uids[n - 1];
    if (size_r) *size_r = d->sizes[n - 1];
    return 1;
}

void maildrop_stat(const struct maildrop *d, uint32_t *count_r, uint64_t *octets_r)
{
    uint32_t n = 0;
    uint64_t octets = 0;
    for (uint32_t i = 0; i < d->n; i++) {
        if (d->state[i] & MD_DELETED) continue;
        n++;
        octets += d->sizes[i];
    }
    *count_r = n;
    *octets_r = octets;
}

void maildrop_delete(struct maildrop *d, uint32_t n)
{
    if (n >= 1 && n <= d->n) d->state[n - 1] |= MD_DELETED;
}

void maildrop_reset(struct maildrop *d)
{
    for (uint32_t i = 0; i < d->n; i++) d->state[i] &= (uint8_t)~MD_DELETED;
}

/* dot_line: the first LF in p[0, len) that is followed by a "." (a line that needs a stuffed
 * dot), or NULL. glibc's memmem for this two-byte needle went about one byte per cycle and was
 * over a third of pop3d's CPU on a RETR of 5,000 messages; SSE2 (every x86-64 has it) looks at
 * 16 positions per step. */
static const char *dot_line(const char *p, size_t len)
{
    size_t i = 0;
#if defined(__SSE2__)
    const __m128i lf = _mm_set1_epi8('\n'), dot = _mm_set1_epi8('.');
    for (; i + 33 <= len; i += 32) {     /* the +1 loads reach p[i + 32] at most */
        __m128i a0 = _mm_loadu_si128((const __m128i *)(const void *)(p + i));
        __m128i b0 = _mm_loadu_si128((const __m128i *)(const void *)(p + i + 1));
        __m128i a1 = _mm_loadu_si128((const __m128i *)(const void *)(p + i + 16));
        __m128i b1 = _mm_loadu_si128((const __m128i *)(const void *)(p + i + 17));
        unsigned m0 = (unsigned)_mm_movemask_epi8(
            _mm_and_si128(_mm_cmpeq_epi8(a0, lf), _mm_cmpeq_epi8(b0, dot)));
        unsigned m1 = (unsigned)_mm_movemask_epi8(
            _mm_and_si128(_mm_cmpeq_epi8(a1, lf), _mm_cmpeq_epi8(b1, dot)));
        if (m0 | m1) return p + i + (m0 ? __builtin_ctz(m0) : 16 + __builtin_ctz(m1));
    }
#endif
    for (; i + 1 < len; i++)
        if (p[i] == '\n' && p[i + 1] == '.') return p + i;
    return NULL;
}

/* struct pieces: the parts of one response (status line, stretches of the message, stuffed
 * dots, the terminator) handed to the stream together, so a large message goes out in one
 * sendmsg instead of being copied through the stream's buffer. */
#define PIECES_MAX 64
struct pieces {
    struct stream *s;
    struct iovec v[PIECES_MAX];
    int n;
    int r;                          /* the first stream error */
};

static void pieces_add(struct pieces *pc, const void *p, size_t len)
{
    if (pc->r || !len) return;
    if (pc->n == PIECES_MAX) {
        pc->r = stream_writev(pc->s, pc->v, pc->n);
        pc->n = 0;
        if (pc->r) return;
    }
    pc->v[pc->n++] = (struct iovec){ (void *)p, len };
}

static int pieces_end(struct pieces *pc)
{
    if (!pc->r && pc->n) pc->r = stream_writev(pc->s, pc->v, pc->n);
    pc->n = 0;
    return pc->r;
}

/* add_stuffed: p[0,len) as multi-line response data, starting at the beginning of a line:
 * a "." is put before every line that starts with "." (RFC 1939 section 3). */
static void add_stuffed(struct pieces *pc, const char *p, size_t len)
{
    if (len && p[0] == '.') pieces_add(pc, ".", 1);
    while (len) {
        const char *q = dot_line(p, len);
        size_t chunk = q ? (size_t)(q - p) + 1 : len;
        pieces_add(pc, p, chunk);
        if (q) pieces_add(pc, ".", 1);
        p += chunk;
        len -= chunk;
    }
}

/* top_length: the bytes of the header, the blank line and the first `lines` body lines. */
static size_t top_length(const char *p, size_t len, long lines)
{
    size_t pos = 0;
    while (pos < len) {                          /* the header, through its blank line */
        const char *eol = memchr(p + pos, '\n', len - pos);
        size_t end = eol ? (size_t)(eol - p) + 1 : len;
        size_t linelen = end - pos;
        pos = end;
        if (linelen == 1 || (linelen == 2 && p[end - 2] == '\r')) break;
    }
    for (long i = 0; i < lines && pos < len; i++) {
        const char *eol = memchr(p + pos, '\n', len - pos);
        pos = eol ? (size_t)(eol - p) + 1 : len;
    }
    return pos;
}

/* add_body: the status line, p[0, want) stuffed, a line end if it lacks one, the terminator */
static int add_body(struct stream *s, const char *ok, const char *p, size_t want)
{
    struct pieces pc = { .s = s };
    pieces_add(&pc, ok, strlen(ok));
    pieces_add(&pc, "\r\n", 2);
    add_stuffed(&pc, p, want);
    /* the terminating line must start a line of its own */
    if (want && p[want - 1] != '\n') pieces_add(&pc, "\r\n", 2);
    pieces_add(&pc, ".\r\n", 3);
    return pieces_end(&pc);
}

/* Messages larger than this go to a plaintext client straight from the page cache */
#define MD_SENDFILE_MIN (64u << 10)

/* send_mapped: the message file mapped (its pages are not copied: the scan reads them where
 * they are) and, when no line needs a dot and it ends in a line end, sent with sendfile;
 * otherwise in pieces from the map. Same returns as maildrop_send. */
static int send_mapped(struct maildrop *d, struct stream *s, uint32_t n, long lines,
                       const char *ok)
{
    int fd;
    uint64_t size;
    int r = mailbox_message_open(d->mb, d->uids[n - 1], &fd, &size);
    if (r) return r == CF_E_NOTFOUND ? r : CF_E_AGAIN;
    const char *p = NULL;
    if (size) {
        /* MAP_POPULATE: the page-cache pages mapped in one call rather than fault by fault */
        void *map = mmap(NULL, (size_t)size, PROT_READ, MAP_SHARED | MAP_POPULATE, fd, 0);
        if (map == MAP_FAILED) {
            log_err("pop3_map_failed", "uid=%u errno=%s", d->uids[n - 1],
                    log_quote(strerror(errno)));
            close(fd);
            return CF_E_AGAIN;
        }
        p = map;
    }
    size_t len = (size_t)size;
    size_t want = lines < 0 ? len : top_length(p, len, lines);
    if (want >= MD_SENDFILE_MIN && p[0] != '.' && p[want - 1] == '\n' && !dot_line(p, want)) {
        r = stream_puts(s, ok);
        if (!r) r = stream_write(s, "\r\n", 2);
        if (!r) r = stream_sendfile(s, fd, 0, want);
        if (!r) r = stream_write(s, ".\r\n", 3);
    } else {
        r = add_body(s, ok, p, want);
    }
    if (size) munmap((void *)p, (size_t)size);
    close(fd);
    return r;
}

int maildrop_send(struct maildrop *d, struct stream *s, uint32_t n, long lines, int seen,
                  const char *ok)
{
    const char *p;
    size_t len;
    if (n < 1 || n > d->n) return CF_E_NOTFOUND;
    if (d->sizes[n - 1] >= MD_SENDFILE_MIN && stream_can_sendfile(s)) {
        int r = send_mapped(d, s, n, lines, ok);
        if (!r && seen && maildrop_may(d, 's')) d->state[n - 1] |= MD_SEEN;
        return r;
    }
    if (!d->mail) d->mail = mail_new(d->mb);
    struct mail *m = d->mail;
    mail_set_uid(m, d->uids[n - 1]);
    int r = mail_message(m, &p, &len);
    if (r) {
        mail_reset(m);
        return r == CF_E_NOTFOUND ? r : CF_E_AGAIN;   /* never a stream error code */
    }
    size_t want = lines < 0 ? len : top_length(p, len, lines);
    r = add_body(s, ok, p, want);
    mail_reset(m);
    /* RFC 4314 section 4: \Seen needs 's' (without it RETR still reads, as FETCH does) */
    if (!r && seen && maildrop_may(d, 's')) d->state[n - 1] |= MD_SEEN;
    return r;
}

int maildrop_commit(struct maildrop *d, uint32_t *expunged_r)
{
    *expunged_r = 0;
    uint32_t *uids = zarray(d->n, sizeof *uids);
    size_t n = 0;
    for (uint32_t i = 0; i < d->n; i++)
        if (d->state[i] & MD_DELETED) uids[n++] = d->uids[i];
    int r = 0;
    if (n) {
        /* \Deleted then expunge, both limited to these uids: messages an IMAP client marked
         * \Deleted are left for that client to expunge. The store gives the quota root back
         * what went (M8: this called mailbox_expunge and kept the bytes charged). */
        struct mailbox_store op = { .op = STORE_ADD, .flags = FLAG_DELETED };
        r = store_set_flags(d->st, d->mb, uids, n, &op, NULL, NULL);
        if (!r) r = store_expunge(d->st, d->mb, d->name, uids, n, expunged_r);
        if (r) log_err("pop3_expunge_failed", "messages=%zu error=%s", n,
                       log_quote(cf_strerror(r)));
    }
    free(uids);
    return r;
}
