/* mailbox-sort.h: what SORT and THREAD (RFC 5256) read from a mailbox, without parsing a
 * message per command: the numeric keys straight from the mapped index, and the per-mailbox
 * sort key file "sortkeys" (man coffer-store(5)) that keeps, per message, the string and
 * threading keys a caller-supplied encoder computed once from the header block.
 *
 * The key file is a cache: it follows the index (every record carries its uid and the first
 * bytes of the message's GUID, and a record counts only when both match the index), is filled
 * at append by the programs that ask for it (mailbox_sortkeys_fill_on_append) and lazily by
 * the commands that need it (messages it lacks are computed from their header and appended),
 * is rewritten without the records of expunged messages when those outnumber the live ones,
 * and can be deleted at any time (reconstruct does): it is then rebuilt. */
#ifndef COFFER_STORE_MAILBOX_SORT_H
#define COFFER_STORE_MAILBOX_SORT_H
#include <stddef.h>
#include <stdint.h>
#include "core/buf.h"
#include "store/mailbox.h"

#define SORTKEYS_FILE "sortkeys"
#define SEARCHKEYS_FILE "searchkeys"    /* the header search column, same format */
#define SORTKEYS_MAGIC "COFFERSK"
#define SORTKEYS_VERSION 1
#define SORTKEYS_HEADER_SIZE 64
#define SORTKEYS_KEY_LEN 16            /* the file's random hash key */
#define SORTKEYS_MAX_RECORD (16u << 20) /* a bigger length field is damage */
#define SORTKEYS_GUID_LEN 8            /* GUID bytes a record carries */

/* The index fields of one message that sorting uses. */
struct mailbox_sortrec {
    int64_t internaldate;
    int64_t sentdate;           /* as in the index: the Date: field in UTC, 0 if none */
    uint64_t size;
    uint8_t guid[SORTKEYS_GUID_LEN];
    int found;                  /* 0: no index record for the uid (fields zero) */
    int expunged;               /* found, but expunged (FLAG_EXPUNGED), not yet repacked */
};

/* mailbox_sort_records: the fields of the index records of uids[0,n) (ascending) into
 * out[0,n), in one walk of the mapped index (the fields are written once by the append and
 * never change in place, so no lock and no checksum is needed: the session view reads the
 * records the same way). An expunged record not yet repacked is still found. Never fails,
 * never blocks (page faults aside). */
void mailbox_sort_records(struct mailbox *mb, const uint32_t *uids, size_t n,
                          struct mailbox_sortrec *out);

/* The keys a caller keeps in the key file: encode computes the blob of one message from its
 * top-level header block (hdr[0,hlen), with the empty line) and appends it to out; key is the
 * file's SORTKEYS_KEY_LEN-byte random key, for keyed hashes. version names the blob format:
 * a file written with another version is rebuilt. file names the key file in the mailbox
 * directory (NULL: SORTKEYS_FILE; SEARCHKEYS_FILE keeps the header search column, one file
 * per kind of blob so that neither command reads the other's bytes). */
struct mailbox_sortkeys_ops {
    uint32_t version;
    void (*encode)(void *rock, const unsigned char *key, const char *hdr, size_t hlen,
                   struct buf *out);
    void *rock;
    const char *file;
};

/* The blobs of one mailbox_sortkeys_get: blob[i], len[i] for uids[i]; they point into a
 * mapping of the key file or into memory owned by this struct, valid until
 * mailbox_sortkeys_fini. */
struct mailbox_sortkeys {
    const unsigned char **blob;
    uint32_t *len;
    unsigned char key[SORTKEYS_KEY_LEN];
    /* private */
    size_t n;                       /* blob and len hold n (xbig_alloc'd) */
    unsigned char *map;
    size_t map_len;
    struct buf extra;
};

/* mailbox_sortkeys_sum: the checksum that ends each record of the key file: a 64-bit
 * multiply-xor hash of p[0,n) taken 8 bytes (little-endian) at a time, folded to 32 bits
 * (coffer-store(5)). Cheaper than CRC-32 by an order of magnitude: a THREAD checks every
 * record it uses. */
uint32_t mailbox_sortkeys_sum(const void *p, size_t n);

/* Counters for tests and benchmarks: blobs served from the file, computed from headers, and
 * key file appends and rewrites made by this process; records written at append, and the
 * key file opens those needed (a handle keeps its files open between appends). */
struct mailbox_sortkeys_stats {
    uint64_t hits, computed, appends, rewrites;
    uint64_t filled, fill_opens;
};
extern struct mailbox_sortkeys_stats mailbox_sortkeys_stats;

/* mailbox_sortkeys_get: the key blobs of uids[0,n) (ascending; recs from
 * mailbox_sort_records for the same uids) into *k (released with mailbox_sortkeys_fini, also
 * after an error). Blobs the file does not hold (or holds for another GUID, or damaged) are
 * computed from the header (read through a message handle: the cache, else the file); then
 * the file is brought up to date under its own lock (appended, or rewritten when it is
 * damaged, of another version, or mostly expunged records). A message that is gone gets the
 * blob of an empty header. Writing the file is best effort: failures are logged, never
 * returned. 0, CF_E_CORRUPT or CF_E_IO (reading a message). Blocks on disk I/O. */
int mailbox_sortkeys_get(struct mailbox *mb, const struct mailbox_sortkeys_ops *ops,
                         const uint32_t *uids, const struct mailbox_sortrec *recs, size_t n,
                         struct mailbox_sortkeys *k);
void mailbox_sortkeys_fini(struct mailbox_sortkeys *k);

/* mailbox_sortkeys_fill_on_append: from now on, every mailbox_append of this process also
 * appends the new messages' records to the key file ops names (ops must stay valid), right
 * after the commit, from the header the append has in hand: a SORT or SEARCH that follows a
 * batch of deliveries finds them there instead of encoding the batch. Best effort and only
 * when cheap: nothing is written when the file is missing while older live messages exist,
 * is damaged or of another format, or ends below the live message just below the new ones
 * (a gap: the next command that reads the file fills or rewrites it as before). A file of
 * expunged messages' records only (the mailbox was emptied) is replaced by the new records. At most
 * SORTKEYS_FILL_MAX kinds; more are ignored. The records are the ones mailbox_sortkeys_get
 * would write (same uid, GUID bytes and checksum validation on reading). The handle keeps
 * each file it wrote open until mailbox_close, with its inode and the size it left; the next
 * append through it writes without opening or reading the file again when, under the
 * file's lock, the path still names that inode at that size (a rewrite renames a new file
 * over it, reconstruct removes it, another writer makes it grow: any of these sends the
 * append the long way, as the first one). */
#define SORTKEYS_FILL_MAX 4
void mailbox_sortkeys_fill_on_append(const struct mailbox_sortkeys_ops *ops);

#endif
