/* mbheader.h: the small text file `header` in each mailbox directory: the mailbox's internal
 * name, uniqueid, uidvalidity and ACL, so that the mailbox list can be rebuilt from partitions. */
#ifndef COFFER_STORE_MBHEADER_H
#define COFFER_STORE_MBHEADER_H
#include <stdint.h>
#include "core/buf.h"

#define MBHEADER_MAGIC "coffer-mailbox-header"
#define MBHEADER_VERSION 1
#define MBHEADER_FILE "header"

struct mbheader {
    char *name;          /* internal mailbox name */
    char *uniqueid;
    char *acl;           /* ACL text as the ACL module writes it; "" when none */
    uint32_t uidvalidity;
};

void mbheader_init(struct mbheader *h);
void mbheader_fini(struct mbheader *h);   /* frees the strings */

/* mbheader_encode: append the file's text to out. CF_E_PARSE if a value holds CR, LF or NUL
 * (the format is one line per value), else 0. */
int mbheader_encode(const struct mbheader *h, struct buf *out);

/* mbheader_parse: parse the file's text (len bytes) into h (fresh strings, h must be inited
 * or fini'd). 0 or CF_E_CORRUPT. */
int mbheader_parse(const char *text, size_t len, struct mbheader *h);

/* mbheader_write: replace DIR/header atomically (temp file, fsync, rename, fsync dir).
 * 0, CF_E_PARSE or CF_E_IO (logged). Blocks on disk. */
int mbheader_write(const char *dir, const struct mbheader *h);

/* mbheader_read: read and parse DIR/header. 0, CF_E_NOTFOUND, CF_E_CORRUPT (logged) or
 * CF_E_IO. */
int mbheader_read(const char *dir, struct mbheader *h);

#endif
