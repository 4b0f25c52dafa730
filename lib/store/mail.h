/* mail.h: a message handle (Dovecot's struct mail, Cyrus's msgdata): one message of an open
 * mailbox whose index record, cache entry and mapped message file are loaded on demand, each
 * at most once, and the rules for reading it ("the top header from the cache when it holds it
 * whole, else from the file"; a damaged cache record rebuilt from the file). FETCH, SEARCH,
 * POP3 RETR/TOP and the tools read messages through it, so none of them knows the cache
 * layout.
 *
 * Ownership and lifetimes:
 * - A handle is made for one struct mailbox (mail_new) and must be freed (mail_free) before
 *   that mailbox is closed. It is reusable: mail_set_uid / mail_set_record point it at
 *   another message, dropping what was loaded for the previous one (the mapping is unmapped,
 *   the cache entry's buffers are kept for reuse), so a loop over a whole mailbox allocates
 *   nothing per message.
 * - Every pointer handed out (record, cache texts, header, message bytes) is owned by the
 *   handle and stays valid until the next mail_set_uid, mail_set_record, mail_reset or
 *   mail_free on it. Message bytes are read-only: a message up to 1 MiB is read whole into
 *   a buffer the handle keeps from message to message (no mmap/munmap per message), a
 *   bigger one is a mapping of the file.
 * - No lock is held: the record is read as mailbox_record reads it (from the index mapping,
 *   checksum checked), the cache record from a read-ahead window of the cache file that the
 *   handle keeps (cache records are appended, never rewritten in place, so bytes read once
 *   stay right; a record failing its check there is read again before it is rebuilt), and a
 *   message file never changes once written. The loading functions block on disk reads, and on the shared lock only when a
 *   record's checksum fails (mailbox_record's retry).
 *
 * Errors: the loading functions return 0 (or 1 where said), CF_E_NOTFOUND when the message is
 * gone (no record, an expunged record, or its message file vanished), CF_E_CORRUPT (damaged
 * index record, logged) or CF_E_IO (logged). */
#ifndef COFFER_STORE_MAIL_H
#define COFFER_STORE_MAIL_H
#include <stddef.h>
#include <stdint.h>
#include "store/index.h"
#include "store/mailbox.h"
#include "mime/mime.h"

struct mail;

/* mail_new: a handle for messages of mb, pointing at none (mb is borrowed: it must outlive the
 * handle). Free with mail_free. Never fails. */
struct mail *mail_new(struct mailbox *mb);
/* mail_free: unmap, free and NULL *m (NULL is fine). */
void mail_free(struct mail **m);

/* mail_set_uid: point m at uid (drops the previous message's data); nothing is read yet. */
void mail_set_uid(struct mail *m, uint32_t uid);
/* mail_set_record: point m at rec->uid with the record the caller already read (copied), so
 * it is not read again. */
void mail_set_record(struct mail *m, const struct index_record *rec);
/* mail_reset: drop what was loaded (unmap the file) and point at no message. */
void mail_reset(struct mail *m);

/* mail_uid: the uid m points at (0 for none). */
uint32_t mail_uid(const struct mail *m);

/* mail_record: the index record (read at most once). 1 and *rec_r (owned by m) when the
 * message exists and is not expunged; 0 when it is gone (absent, or expunged but not yet
 * repacked); CF_E_CORRUPT. */
int mail_record(struct mail *m, const struct index_record **rec_r);

/* Getters of the record's fields; valid only after mail_record returned 1. */
uint64_t mail_size(const struct mail *m);           /* bytes of the message file */
int64_t mail_internaldate(const struct mail *m);    /* seconds since the epoch */
uint32_t mail_flags(const struct mail *m);          /* FLAG_*, as stored (no per-user \Seen) */
const uint8_t *mail_guid(const struct mail *m);     /* 20 bytes, SHA-1 of the message */
int64_t mail_savedate(const struct mail *m);        /* RFC 8514 save date; 0 = unknown */

/* mail_threadid: the RFC 8474 THREADID number (index_record.threadid); for a record written
 * before index version 3 it is computed from the header (mail_header) each time. 0 or an
 * error. */
int mail_threadid(struct mail *m, uint64_t *id_r);

/* mail_preview: the RFC 8970 preview text (UTF-8, at most 256 characters, possibly empty)
 * from the cache entry. A cache record written before the preview existed has none: with
 * lazy set, 1 is returned (the caller answers NIL); else the preview is computed from the
 * message file (mime_preview, kept in the handle only). 0, 1 or an error. */
int mail_preview(struct mail *m, int lazy, const char **p_r, size_t *len_r);

/* The IMAP texts the cache holds, computed at append by lib/mime. */
enum mail_field { MAIL_ENVELOPE, MAIL_BODYSTRUCTURE, MAIL_BODY };

/* mail_field: the IMAP text of field (from the cache entry, read and decoded at most once);
 * *len_r 0 (and *p_r "") when the cache has none. 0 or an error. */
int mail_field(struct mail *m, enum mail_field field, const char **p_r, size_t *len_r);

/* mail_header: the top-level header block with its empty line: from the cache entry when it
 * holds it whole (headers up to CACHE_HEADER_MAX, and only when the file is not mapped
 * already), else from the message file. 0 or an error. */
int mail_header(struct mail *m, const char **p_r, size_t *len_r);

/* mail_message: the whole message, read or mapped (at most once per message). An empty
 * file is "" with length 0. 0 or an error (CF_E_NOTFOUND: the file vanished). */
int mail_message(struct mail *m, const char **p_r, size_t *len_r);

/* mail_body: the message after its top-level header (mapped); empty when the record's header
 * size exceeds the file. 0 or an error. */
int mail_body(struct mail *m, const char **p_r, size_t *len_r);

/* mail_sections: the serialized section table of lib/mime/mime.h from the cache entry. 0,
 * CF_E_NOTFOUND when the cache has none (then build it from mail_message), or an error. */
int mail_sections(struct mail *m, const char **p_r, size_t *len_r);

/* mail_section_find: mime_section_find of part spec ("1", "2.1.3") over the cached section
 * table: 1 found with *out (offsets into mail_message: the table may be stale or damaged, so
 * check them against the mapped length), 0 no such part (or no table), or an error. */
int mail_section_find(struct mail *m, const char *spec, struct mime_section *out);

/* mail_binary_size: the decoded size of encoded part spec kept in the cache (RFC 3516
 * BINARY.SIZE: mime_binary_size_find over cache field 7). 1 with *size_r, 0 when the cache
 * does not list it (an identity, unknown or composite encoding, or a record written before
 * the field existed: then decode the part), or an error. */
int mail_binary_size(struct mail *m, const char *spec, uint64_t *size_r);

/* mail_stats: what handles loaded in this process, for tests and benchmarks: index records
 * read, cache records read, cache records rebuilt from the file, message files mapped. */
struct mail_stats {
    uint64_t records, caches, cache_rebuilds, maps;
};
extern struct mail_stats mail_stats;

#endif
