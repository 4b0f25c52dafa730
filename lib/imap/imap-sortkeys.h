/* imap-sortkeys.h: the per-message keys of SORT and THREAD (RFC 5256, RFC 5957) computed once
 * from a header block, and their byte encoding (the blobs the store keeps in the mailbox's
 * sort key file, store/mailbox-sort.h; layout in man coffer-store(5)). Pure: no store, no
 * I/O. */
#ifndef COFFER_IMAP_IMAP_SORTKEYS_H
#define COFFER_IMAP_IMAP_SORTKEYS_H
#include "core/buf.h"
#include <stddef.h>
#include <stdint.h>

/* The blob format; a key file written with another one is rebuilt. */
#define IMAP_SORTKEYS_VERSION 1
#define IMAP_SORTKEYS_KEY_LEN 16

/* The string keys, each in its i;unicode-casemap canonical form (imap_casemap). */
enum imap_sortkey_str {
    ISK_SUBJECT,        /* base subject (RFC 5256 section 2.1) */
    ISK_FROM,           /* addr-mailbox of the first From address (section 3) */
    ISK_TO,
    ISK_CC,
    ISK_DISPLAYFROM,    /* display-name (RFC 2047 decoded) of the first From, else the addr-spec
                         * (RFC 5957 section 3) */
    ISK_DISPLAYTO,
    ISK_NSTR
};

/* One message's decoded keys; pointers into the blob. */
struct imap_sortkeys {
    int reply;                  /* the base subject came from a reply or forward */
    int has_msgid;              /* a valid msg-id in Message-ID */
    uint64_t msgid;             /* its keyed hash */
    uint32_t nparents;          /* the ids of step 1A of REFERENCES, keyed hashes */
    const unsigned char *parents;   /* nparents 8-byte little-endian values */
    const char *str[ISK_NSTR];
    uint32_t len[ISK_NSTR];
};

/* imap_sortkeys_hash: the keyed hash (SipHash-2-4 under the 16-byte key) of s[0,n). */
uint64_t imap_sortkeys_hash(const unsigned char *key, const char *s, size_t n);

/* imap_sortkeys_encode: append the blob of the keys of the header block hdr[0,hlen) to out.
 * The threading ids are what REFERENCES step 1A links: the valid ids of References, else the
 * first valid id of In-Reply-To, leaving out the message's own Message-ID; hashed under key
 * (IMAP_SORTKEYS_KEY_LEN bytes). Never fails. The signature fits
 * mailbox_sortkeys_ops.encode (rock unused). */
void imap_sortkeys_encode(void *rock, const unsigned char *key, const char *hdr, size_t hlen,
                          struct buf *out);

/* imap_sortkeys_decode: the keys of blob[0,len) into *k. 0, or -1 when the blob is malformed
 * (*k then holds empty keys). */
int imap_sortkeys_decode(const unsigned char *blob, size_t len, struct imap_sortkeys *k);

#endif
