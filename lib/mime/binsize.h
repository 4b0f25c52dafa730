/* binsize.h: the decoded sizes of a message's encoded parts (RFC 3516 BINARY.SIZE), computed
 * once at append and kept in the cache file (field 7, coffer-store(5)) so that FETCH
 * BINARY.SIZE does not decode the part again. */
#ifndef COFFER_MIME_BINSIZE_H
#define COFFER_MIME_BINSIZE_H
#include "core/buf.h"
#include <stddef.h>
#include <stdint.h>

/* The table is text, like the section table (mime.h):
 *
 *   "B1\n" then one line per leaf part whose Content-Transfer-Encoding is base64 or
 *   quoted-printable, in section table order:  PART SP SIZE LF
 *
 * PART is the IMAP part spec ("1", "1.2"); SIZE the decimal length of the part's body with
 * the encoding removed by mime_cte_decode, i.e. exactly what FETCH BINARY[PART] sends. Parts
 * in other encodings (identity, whose size is the body length, or unknown ones, which FETCH
 * refuses) and multipart or message/rfc822 parts (sent as they are) are not listed. */

/* mime_binary_sizes: the table for msg[0,len) with section table sections[0,slen) (as
 * mime_summarize made it) into out (reset first). A section table that is not "S1" gives an
 * empty table ("B1\n"). Counts each encoded part's decoded size without decoding it
 * (mime_cte_decoded_size: no scratch memory); does not block. */
void mime_binary_sizes(const char *msg, size_t len, const char *sections, size_t slen,
                       struct buf *out);

/* mime_binary_size_find: the size table[0,tlen) lists for part (a spec such as "1.2"). 1
 * found (*size_r set), 0 not listed or not a "B1" table. */
int mime_binary_size_find(const char *table, size_t tlen, const char *part, uint64_t *size_r);

#endif
