/* partition.h: mail partitions: choosing one for a new mailbox, and where a mailbox lives in it. */
#ifndef COFFER_STORE_PARTITION_H
#define COFFER_STORE_PARTITION_H
#include "core/config.h"

#define UNIQUEID_LEN 32   /* hex characters of a mailbox uniqueid */

/* partition_select: the partition for a new mailbox per partition_select in cfg: "default"
 * takes defaultpartition, "mostfree" the one whose file system has most bytes free for us
 * (statvfs; an unreadable partition is skipped and logged). Sets *out (owned by cfg); returns 0,
 * CF_E_NOTFOUND (no such partition / none configured) or CF_E_IO. Blocks on statvfs. */
int partition_select(const struct config *cfg, const struct partition **out);

/* partition_prepare: create the partition directory (and parents) mode 0700 if missing.
 * 0 or CF_E_IO (logged). */
int partition_prepare(const char *partition_path);

/* partition_uniqueid_valid: 1 if id is exactly UNIQUEID_LEN lower-case hex characters. */
int partition_uniqueid_valid(const char *id);

/* partition_new_uniqueid: fill out[UNIQUEID_LEN + 1] with a fresh random uniqueid. */
void partition_new_uniqueid(char *out);

/* partition_mailbox_dir: "PARTITION/<first 2 chars>/<uniqueid>" (caller frees). uniqueid must
 * be valid. */
char *partition_mailbox_dir(const char *partition_path, const char *uniqueid);

#endif
