/* dump.h: what `coffer dump` (cmd-dump.c) and `coffer restore` (cmd-restore.c) share: the
 * format's name, version and flag names, and the writer side of the stream: the ustar writer
 * (dump-tar.c) and the manifest's JSON (dump-json.c). The reader is dump-read.h. The format
 * is documented in coffer-dump(8). */
#ifndef COFFER_TOOLS_DUMP_H
#define COFFER_TOOLS_DUMP_H
#include "core/buf.h"
#include "core/config.h"
#include "core/strarr.h"
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define DUMP_FORMAT "coffer-dump"
#define DUMP_VERSION 1
#define MANIFEST_MAX (512u << 20)

/* The system flags by their manifest names (dump-json.c). */
struct dump_sysflag { uint32_t bit; const char *name; };
extern const struct dump_sysflag dump_sysflags[];
extern const size_t dump_nsysflags;


/* ---- dump-tar.c: writing POSIX.1-1988 ustar; all return 0, or -1 on a write error ---- */

/* tar_put: one regular file entry name (<= 99 bytes, or DIR/NAME with DIR <= 154 and NAME
 * <= 99 bytes) holding data. */
int tar_put(FILE *f, const char *name, const void *data, size_t len, int64_t mtime);
/* tar_end: the two zero blocks that end the archive, then flush f. */
int tar_end(FILE *f);

/* ---- dump-json.c: the manifest, appended to m piece by piece ---- */

struct quota;
struct index_header;
struct index_record;

/* dump_json_head: the manifest up to its mailbox list: format, user, creation time, the
 * quota limits (q NULL: none), subscriptions and Sieve scripts (active NULL: none active). */
void dump_json_head(struct buf *m, const char *user, long long created, const struct quota *q,
                    const struct strarr *subs, const char *active, const struct strarr *scripts);
/* dump_json_mailbox: the idx'th mailbox's object up to its message list; acl is the ACL text
 * (acl.h), special_use the mailbox list's flags, urlauth_key the user's URLAUTH access key
 * as hex digits (NULL: none). End it with dump_json_mailbox_end. */
void dump_json_mailbox(struct buf *m, size_t idx, const char *name, const struct index_header *h,
                       const char *special_use, const char *acl, const char *urlauth_key);
/* dump_json_message: the nth message (0-based) of the idx'th mailbox; kw its keyword names. */
void dump_json_message(struct buf *m, size_t nth, size_t idx, uint32_t uid,
                       const struct index_record *rec, const struct strarr *kw);
/* dump_json_mailbox_end: close the message list, then the mailbox's RFC 5464 annotations as
 * "metadata": [[ENTRY, BASE64-VALUE], ...] (meta: entry and base64 value alternating: the
 * shared ones and the dumped user's private ones), and the object. */
void dump_json_mailbox_end(struct buf *m, const struct strarr *meta);
/* dump_json_end: close the mailbox list, add the user's private annotations of the server
 * ("server_metadata", as "metadata" above), and close the manifest. */
void dump_json_end(struct buf *m, const struct strarr *server_meta);
/* dump_json_metadata_add: one annotation for the meta lists above (the value base64-encoded). */
void dump_json_metadata_add(struct strarr *meta, const char *entry, const char *val, size_t len);

#endif
