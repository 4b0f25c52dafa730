/* imap-memsource.c: an imap_source reading from a buffer (tests and fuzzing). */
#include "imap/imap-memsource.h"
#include "core/error.h"
#include <string.h>

static int mem_read_line(void *ctx, struct buf *line)
{
    struct imap_memsource *ms = ctx;
    buf_reset(line);
    if (ms->pos >= ms->len) return CF_E_EOF;
    const char *start = ms->data + ms->pos;
    const char *lf = memchr(start, '\n', ms->len - ms->pos);
    if (!lf) {                      /* a stream would wait for the LF; the peer has closed */
        ms->pos = ms->len;
        return CF_E_EOF;
    }
    size_t n = (size_t)(lf - start);
    ms->pos += n + 1;
    if (n && start[n - 1] == '\r') n--;
    if (ms->max_line && n > ms->max_line) {
        buf_append(line, start, ms->max_line);   /* like a stream: the start is kept */
        return CF_E_LIMIT;
    }
    buf_append(line, start, n);
    return 0;
}

static int mem_read_exact(void *ctx, size_t n, struct buf *out)
{
    struct imap_memsource *ms = ctx;
    size_t avail = ms->len - ms->pos;
    if (avail < n) {
        ms->pos = ms->len;
        return CF_E_EOF;
    }
    int r = buf_append(out, ms->data + ms->pos, n);
    ms->pos += n;
    return r;
}

static int mem_skip(void *ctx, size_t n)
{
    struct imap_memsource *ms = ctx;
    if (ms->len - ms->pos < n) {
        ms->pos = ms->len;
        return CF_E_EOF;
    }
    ms->pos += n;
    return 0;
}

static int mem_go_ahead(void *ctx)
{
    struct imap_memsource *ms = ctx;
    ms->go_aheads++;
    if (ms->transcript) buf_appends(ms->transcript, "+\n");
    return 0;
}

void imap_memsource_init(struct imap_memsource *ms, const void *data, size_t len,
                         size_t max_line, struct imap_source *src)
{
    memset(ms, 0, sizeof *ms);
    ms->data = data;
    ms->len = len;
    ms->max_line = max_line;
    src->ctx = ms;
    src->read_line = mem_read_line;
    src->read_exact = mem_read_exact;
    src->skip = mem_skip;
    src->go_ahead = mem_go_ahead;
}
