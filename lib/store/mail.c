/* mail.c: the message handle of mail.h: a message's index record, cache entry and mapping,
 * each loaded on first use and kept until the handle moves to another message. */
#include "store/mail.h"
#include "store/mailbox-int.h"
#include "store/cache.h"
#include "core/error.h"
#include "core/xmalloc.h"
#include "mime/binsize.h"
#include "mime/preview.h"
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Messages up to this size are read into the handle's buffer (kept from message to message);
 * bigger ones are mapped. A FETCH 1:* or a POP3 session that mapped and unmapped every
 * message spent more than a quarter of its CPU in munmap's TLB shootdowns (inter-processor
 * interrupts, dear under a hypervisor) and page faults: one pread into a warm buffer costs a
 * copy that the first touch of a fresh mapping paid anyway (docs/perf/fetch-search.md). */
#define MAIL_READ_MAX (1u << 20)

/* The cache read-ahead window: a handle walking a mailbox in uid order (FETCH 1:* ENVELOPE
 * BODYSTRUCTURE, SEARCH on headers) finds the cache records one after the other in the file,
 * since appends write them in uid order. One pread per record (4 KiB, most of it the next
 * records) cost a system call and a copy of three times the record per message; the window
 * starts at CACHE_WINDOW_MIN (what a lone record read costs anyway) and doubles, up to
 * CACHE_WINDOW_MAX, each time the next record lies at or just past its end. */
#define CACHE_WINDOW_MIN (4u << 10)
#define CACHE_WINDOW_MAX (128u << 10)

struct mail_stats mail_stats;

enum rec_state { REC_UNREAD, REC_LIVE, REC_GONE };

struct mail {
    struct mailbox *mb;
    uint32_t uid;
    enum rec_state rec_state;
    struct index_record rec;
    int have_cache;
    struct cache_entry ce;      /* its buffers are kept from message to message */
    struct cache_view cv;       /* the loaded cache fields: into win (read ahead) or ce */
    int mapped;                 /* map/map_len are valid: mapped, or read into data */
    int is_map;                 /* map is an mmap of the file (else it points into data) */
    const char *map;
    size_t map_len;
    struct buf data;            /* a message read whole; kept from message to message */
    /* cache read-ahead (CACHE_WINDOW_*): win_len bytes of the cache file from win_off, as
     * they were when read. Cache records are appended and never rewritten in place, so the
     * bytes stay right for any record lying wholly inside; a record that fails its check
     * there is read again from the file before it is called damaged. */
    unsigned char *win;         /* win_cap bytes allocated (at most CACHE_WINDOW_MAX) */
    size_t win_len, win_cap;
    uint64_t win_off;
    size_t win_next;            /* size of the next window read */
};

struct mail *mail_new(struct mailbox *mb)
{
    struct mail *m = xzmalloc(sizeof *m);
    m->mb = mb;
    cache_entry_init(&m->ce);
    return m;
}

void mail_reset(struct mail *m)
{
    if (m->mapped && m->is_map) mailbox_message_unmap(m->map, m->map_len);
    m->mapped = m->is_map = 0;
    m->map = NULL;
    m->map_len = 0;
    m->have_cache = 0;
    m->rec_state = REC_UNREAD;
    m->uid = 0;
}

void mail_free(struct mail **mp)
{
    struct mail *m = *mp;
    if (!m) return;
    mail_reset(m);
    cache_entry_fini(&m->ce);
    buf_fini(&m->data);
    free(m->win);
    free(m);
    *mp = NULL;
}

void mail_set_uid(struct mail *m, uint32_t uid)
{
    mail_reset(m);
    m->uid = uid;
}

void mail_set_record(struct mail *m, const struct index_record *rec)
{
    mail_reset(m);
    m->uid = rec->uid;
    m->rec = *rec;
    m->rec_state = (rec->flags & FLAG_EXPUNGED) ? REC_GONE : REC_LIVE;
}

uint32_t mail_uid(const struct mail *m)
{
    return m->uid;
}

/* need_record: 0 when the record is loaded and live, CF_E_NOTFOUND when the message is gone,
 * or CF_E_CORRUPT. */
static int need_record(struct mail *m)
{
    if (m->rec_state == REC_UNREAD) {
        if (!m->uid) return CF_E_NOTFOUND;
        int found = mailbox_record(m->mb, m->uid, &m->rec);
        if (found < 0) return found;
        mail_stats.records++;
        m->rec_state = found && !(m->rec.flags & FLAG_EXPUNGED) ? REC_LIVE : REC_GONE;
    }
    return m->rec_state == REC_LIVE ? 0 : CF_E_NOTFOUND;
}

int mail_record(struct mail *m, const struct index_record **rec_r)
{
    int r = need_record(m);
    if (r == CF_E_NOTFOUND) return 0;
    if (r < 0) return r;
    *rec_r = &m->rec;
    return 1;
}

uint64_t mail_size(const struct mail *m) { return m->rec.size; }
int64_t mail_internaldate(const struct mail *m) { return m->rec.internaldate; }
uint32_t mail_flags(const struct mail *m) { return m->rec.flags; }
const uint8_t *mail_guid(const struct mail *m) { return m->rec.guid; }
int64_t mail_savedate(const struct mail *m) { return m->rec.savedate; }

int mail_threadid(struct mail *m, uint64_t *id_r)
{
    int r = need_record(m);
    if (r < 0) return r;
    if (!m->rec.threadid) {
        const char *h;
        size_t hl;
        if ((r = mail_header(m, &h, &hl)) < 0) return r;
        m->rec.threadid = mailbox_threadid(h, hl, m->rec.guid);
    }
    *id_r = m->rec.threadid;
    return 0;
}

/* read_whole: the file open as fd, size bytes by its fstat, into m->data (m->map points at
 * it). A file found shorter (it never should be: message files are not changed once written)
 * gives what it holds, as a mapping would up to its end. 0 or CF_E_IO (logged). */
static int read_whole(struct mail *m, int fd, size_t size)
{
    buf_reset(&m->data);
    buf_ensure(&m->data, size);
    size_t got = 0;
    while (got < size) {
        ssize_t n = pread(fd, m->data.s + got, size - got, (off_t)got);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            char *path = mailbox_message_path(m->mb, m->uid);
            int r = mbi_io_error(m->mb, "read", path);
            free(path);
            return r;
        }
        if (n == 0) break;
        got += (size_t)n;
    }
    m->data.len = got;
    m->map = got ? m->data.s : "";
    m->map_len = got;
    return 0;
}

int mail_message(struct mail *m, const char **p_r, size_t *len_r)
{
    if (!m->mapped) {
        if (!m->uid) return CF_E_NOTFOUND;
        int fd;
        uint64_t size;
        int r = mailbox_message_open(m->mb, m->uid, &fd, &size);
        if (r < 0) return r;
        if (size > MAIL_READ_MAX) {
            close(fd);
            if ((r = mailbox_message_map(m->mb, m->uid, &m->map, &m->map_len)) < 0) return r;
            m->is_map = 1;
        } else {
            r = read_whole(m, fd, (size_t)size);
            close(fd);
            if (r < 0) return r;
        }
        mail_stats.maps++;
        m->mapped = 1;
    }
    *p_r = m->map;
    *len_r = m->map_len;
    return 0;
}

/* cache_from_window: decode the record at rec.cache_offset from the read-ahead window,
 * reading a new window when the record does not lie wholly in the current one. 0, or -1 when
 * it could not be had this way (a read error, a record longer than the window, the end of the
 * file, a failed check): the caller then reads it the ordinary way (mbi_cache_read), which
 * decides whether it is damaged. */
static int cache_from_window(struct mail *m)
{
    uint64_t off = m->rec.cache_offset;
    if (off < CACHE_HEADER_SIZE || m->mb->cache_fd < 0) return -1;
    for (int pass = 0; pass < 2; pass++) {
        if (off >= m->win_off && off - m->win_off + 4 <= m->win_len) {
            const unsigned char *p = m->win + (off - m->win_off);
            size_t avail = m->win_len - (size_t)(off - m->win_off);
            size_t n = cache_record_len(p);
            if (n && n <= avail) return cache_record_parse(p, n, m->uid, &m->cv) == 0 ? 0 : -1;
            if (!n || pass) return -1;
        }
        if (pass) return -1;
        /* a miss: grow the window when the walk is sequential (this record starts at or just
         * past the window's end), else start small again */
        size_t want = CACHE_WINDOW_MIN;
        if (m->win_len && off >= m->win_off && off - m->win_off <= m->win_len + CACHE_WINDOW_MIN)
            want = m->win_next ? m->win_next : CACHE_WINDOW_MIN;
        m->win_next = want * 2 <= CACHE_WINDOW_MAX ? want * 2 : CACHE_WINDOW_MAX;
        if (want > m->win_cap) {
            free(m->win);               /* nothing in it is needed: no realloc copy */
            m->win = xmalloc(want);
            m->win_cap = want;
        }
        m->win_len = 0;
        ssize_t got;
        do got = pread(m->mb->cache_fd, m->win, want, (off_t)off);
        while (got < 0 && errno == EINTR);
        if (got < 0) return -1;
        m->win_len = (size_t)got;
        m->win_off = off;
    }
    return -1;
}

/* need_cache: the cache entry, read once (without reading the record again); a damaged or
 * missing cache record is rebuilt from the message file, which then stays mapped. */
static int need_cache(struct mail *m)
{
    if (m->have_cache) return 0;
    int r = need_record(m);
    if (r < 0) return r;
    if (cache_from_window(m) == 0) {
        mail_stats.caches++;            /* the fields stay in the window, not copied */
    } else if (mbi_cache_read(m->mb, &m->rec, &m->ce) == 0) {
        cache_view_of(&m->ce, &m->cv);
        mail_stats.caches++;
    } else {
        const char *p;
        size_t len;
        if ((r = mail_message(m, &p, &len)) < 0) return r;
        mailbox_summarize(p, len, m->uid, &m->ce, NULL);
        cache_view_of(&m->ce, &m->cv);
        mail_stats.cache_rebuilds++;
    }
    m->have_cache = 1;
    return 0;
}

int mail_field(struct mail *m, enum mail_field field, const char **p_r, size_t *len_r)
{
    static const int ids[] = { [MAIL_ENVELOPE] = CACHE_ENVELOPE,
                               [MAIL_BODYSTRUCTURE] = CACHE_BODYSTRUCTURE,
                               [MAIL_BODY] = CACHE_BODY };
    int r = need_cache(m);
    if (r < 0) return r;
    int id = ids[field];
    if (m->cv.present[id] && m->cv.len[id]) {
        *p_r = m->cv.p[id];
        *len_r = m->cv.len[id];
    } else {
        *p_r = "";
        *len_r = 0;
    }
    return 0;
}

int mail_header(struct mail *m, const char **p_r, size_t *len_r)
{
    int r = need_record(m);
    if (r < 0) return r;
    /* read the cache for the header only when the file is not mapped anyway and the cache can
     * hold it (it keeps headers up to CACHE_HEADER_MAX) */
    if (!m->have_cache && !m->mapped && m->rec.header_size <= CACHE_HEADER_MAX &&
        (r = need_cache(m)) < 0)
        return r;
    if (m->have_cache && m->cv.present[CACHE_HEADER] &&
        m->cv.len[CACHE_HEADER] == m->rec.header_size) {
        *p_r = m->cv.p[CACHE_HEADER] ? m->cv.p[CACHE_HEADER] : "";
        *len_r = m->cv.len[CACHE_HEADER];
        return 0;
    }
    const char *p;
    size_t len;
    if ((r = mail_message(m, &p, &len)) < 0) return r;
    *p_r = p;
    *len_r = m->rec.header_size <= len ? m->rec.header_size : len;
    return 0;
}

int mail_body(struct mail *m, const char **p_r, size_t *len_r)
{
    int r = need_record(m);
    if (r < 0) return r;
    const char *p;
    size_t len;
    if ((r = mail_message(m, &p, &len)) < 0) return r;
    size_t hs = m->rec.header_size <= len ? m->rec.header_size : len;
    *p_r = p + hs;
    *len_r = len - hs;
    return 0;
}

int mail_preview(struct mail *m, int lazy, const char **p_r, size_t *len_r)
{
    int r = need_cache(m);
    if (r < 0) return r;
    if (!m->cv.present[CACHE_PREVIEW]) {
        if (lazy) return 1;
        const char *p;
        size_t len;
        if ((r = mail_message(m, &p, &len)) < 0) return r;
        buf_reset(&m->ce.f[CACHE_PREVIEW]);
        mime_preview(p, len, &m->ce.f[CACHE_PREVIEW]);
        m->ce.present[CACHE_PREVIEW] = 1;
        m->cv.p[CACHE_PREVIEW] = m->ce.f[CACHE_PREVIEW].s;
        m->cv.len[CACHE_PREVIEW] = m->ce.f[CACHE_PREVIEW].len;
        m->cv.present[CACHE_PREVIEW] = 1;
    }
    *p_r = m->cv.p[CACHE_PREVIEW] ? m->cv.p[CACHE_PREVIEW] : "";
    *len_r = m->cv.len[CACHE_PREVIEW];
    return 0;
}

int mail_sections(struct mail *m, const char **p_r, size_t *len_r)
{
    int r = need_cache(m);
    if (r < 0) return r;
    if (!m->cv.present[CACHE_SECTIONS]) return CF_E_NOTFOUND;
    *p_r = m->cv.p[CACHE_SECTIONS] ? m->cv.p[CACHE_SECTIONS] : "";
    *len_r = m->cv.len[CACHE_SECTIONS];
    return 0;
}

int mail_binary_size(struct mail *m, const char *spec, uint64_t *size_r)
{
    int r = need_cache(m);
    if (r < 0) return r;
    if (!m->cv.present[CACHE_BINSIZE]) return 0;
    const char *tab = m->cv.p[CACHE_BINSIZE];
    return mime_binary_size_find(tab ? tab : "", m->cv.len[CACHE_BINSIZE], spec, size_r);
}

int mail_section_find(struct mail *m, const char *spec, struct mime_section *out)
{
    int r = need_cache(m);
    if (r < 0) return r;
    if (!m->cv.present[CACHE_SECTIONS]) return 0;
    const char *tab = m->cv.p[CACHE_SECTIONS];
    return mime_section_find(tab ? tab : "", m->cv.len[CACHE_SECTIONS], spec, out);
}
