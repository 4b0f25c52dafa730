/* imap-memsource.h: an imap_source over bytes in memory, for unit tests and the fuzz target.
 * It behaves like a stream whose peer sent exactly these bytes and then closed: a line is
 * complete only with its LF, and anything after the last LF reads as end of file. */
#ifndef COFFER_IMAP_IMAP_MEMSOURCE_H
#define COFFER_IMAP_IMAP_MEMSOURCE_H
#include "core/buf.h"
#include "imap/imap-parser.h"
#include <stddef.h>

struct imap_memsource {
    const char *data;       /* not owned */
    size_t len, pos;
    size_t max_line;        /* lines longer than this give CF_E_LIMIT (0: no limit) */
    unsigned go_aheads;     /* how many "+ Ready for literal data" were requested */
    struct buf *transcript; /* when set, "+\n" is appended at each go-ahead */
};

/* imap_memsource_init: ms reads data[0..len); src is filled to read from ms. */
void imap_memsource_init(struct imap_memsource *ms, const void *data, size_t len,
                         size_t max_line, struct imap_source *src);

#endif
