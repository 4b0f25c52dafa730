/* imap-parser-stream.c: the imap_source that reads commands from a struct stream. */
#include "imap/imap-parser.h"
#include "core/error.h"
#include "net/stream.h"

static int st_read_line(void *ctx, struct buf *line)
{
    return stream_read_line(ctx, line);
}

static int st_read_exact(void *ctx, size_t n, struct buf *out)
{
    return stream_read_exact(ctx, n, out);
}

/* st_skip: read n bytes in pieces, so a rejected literal never sits in memory whole. */
static int st_skip(void *ctx, size_t n)
{
    struct buf scratch = BUF_INIT;
    int r = 0;
    while (n > 0 && r == 0) {
        size_t chunk = n > 65536 ? 65536 : n;
        buf_reset(&scratch);
        r = stream_read_exact(ctx, chunk, &scratch);
        n -= chunk;
    }
    buf_fini(&scratch);
    return r;
}

static int st_go_ahead(void *ctx)
{
    int r = stream_puts(ctx, "+ Ready for literal data\r\n");
    return r < 0 ? r : stream_flush(ctx);
}

void imap_parser_source_stream(struct imap_source *src, struct stream *s)
{
    src->ctx = s;
    src->read_line = st_read_line;
    src->read_exact = st_read_exact;
    src->skip = st_skip;
    src->go_ahead = st_go_ahead;
}
