/* search-column.h: the header search column: per message, the From, To, Cc, Bcc and Subject
 * fields RFC 2047 decoded and case-folded once, so that SEARCH FROM/TO/CC/BCC/SUBJECT (and
 * HEADER on those names) compares a needle with a few hundred bytes per message instead of
 * reading and decoding the cache record's header block every time. The blobs are kept in the
 * mailbox's "searchkeys" file by the store's key file code (store/mailbox-sort.h, the same
 * validation as the SORT keys: a blob is used only when its uid and GUID bytes match the
 * index and its checksum holds), layout in man coffer-store(5). Pure: no store, no I/O. */
#ifndef COFFER_IMAP_SEARCH_COLUMN_H
#define COFFER_IMAP_SEARCH_COLUMN_H
#include "core/buf.h"
#include <stddef.h>
#include <stdint.h>

/* The blob format; a file written with another one is rebuilt. */
#define SEARCH_COLUMN_VERSION 1

/* The fields, in blob order. */
enum search_column_field { SCOL_FROM, SCOL_TO, SCOL_CC, SCOL_BCC, SCOL_SUBJECT, SCOL_N };

/* Blob flag: the header holds a field whose match the column cannot decide the way the
 * header path does (an ASCII value with a CR or LF inside a line, where the header path's raw
 * byte scan and the decoded text differ): the caller reads the header instead. */
#define SCOL_UNSURE 1u

/* The most text one blob keeps: a header whose fields fold to more (a To: of thousands of
 * addresses) gets a blob flagged SCOL_UNSURE with empty fields, so the key file's records stay
 * far below its record limit and such a message is searched in its header as before. */
#define SEARCH_COLUMN_MAX (256u * 1024)

/* search_column_field: the column field of header field name (ASCII case ignored), or -1. */
int search_column_field(const char *name);

/* search_column_encode: append the blob of the header block hdr[0,hlen) to out. key is
 * unused (the signature fits mailbox_sortkeys_ops.encode). Never fails. */
void search_column_encode(void *rock, const unsigned char *key, const char *hdr, size_t hlen,
                          struct buf *out);

/* One field of a blob: how many times it occurs in the header, the folded decoded values
 * (joined by the byte 0xFF, which folded text never holds), and the folded texts of the
 * parsed addresses ("mailbox@domain" and decoded display names, also joined by 0xFF) of the
 * values whose address text can differ from their decoded text. */
struct search_column_value {
    uint32_t count;
    const char *val, *addr;
    size_t val_len, addr_len;
};

/* search_column_get: field f of blob[0,len) into *v. Returns the blob's flags (SCOL_*), or -1
 * when the blob is malformed. */
int search_column_get(const unsigned char *blob, size_t len, enum search_column_field f,
                      struct search_column_value *v);

#endif
