/* dump-read.h: reading what `coffer dump` writes: the POSIX ustar stream and the manifest's
 * JSON. Apart from cmd-restore.c so that the fuzz targets test/fuzz/fuzz-dump-tar.c and
 * fuzz-dump-manifest.c reach the same code. Nothing here touches the store. */
#ifndef COFFER_TOOLS_DUMP_READ_H
#define COFFER_TOOLS_DUMP_READ_H
#include "core/buf.h"
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define TAR_BLOCK 512

/* One entry read from a tar stream. */
struct tar_entry {
    char name[300];
    uint64_t size;
    char type;
};

/* tar_next: the next header. 1 found, 0 end of archive, -1 malformed. */
int tar_next(FILE *f, struct tar_entry *e);

/* tar_read: the entry's data into out (at most max bytes), padding skipped. 0 or -1. */
int tar_read(FILE *f, const struct tar_entry *e, struct buf *out, size_t max);

/* tar_copy: the entry's data into fd (-1: skip it), padding skipped. 0 or -1. */
int tar_copy(FILE *f, const struct tar_entry *e, int fd);

/* A JSON value as the manifest reader keeps it. */
enum jtype { J_NULL, J_BOOL, J_NUM, J_STR, J_ARR, J_OBJ };
struct jval {
    enum jtype t;
    long long num;
    char *str;
    struct jval *v;     /* array items or object values */
    char **keys;        /* object keys */
    size_t n;
};

/* The bytes [p, end) being parsed, and the nesting depth (at most 32). */
struct jparser { const char *p, *end; int depth; };

/* jvalue: parse one value at jp->p into j (which the caller jfree's, also on failure); 0 or -1.
 * Strings hold no NUL; numbers are integers. */
int jvalue(struct jparser *jp, struct jval *j);
void jfree(struct jval *j);

/* jget: the member key of object o (NULL when o is not an object or has none); jnum and jstr
 * its value when it is a number or a string, else def or NULL. */
const struct jval *jget(const struct jval *o, const char *key);
long long jnum(const struct jval *o, const char *key, long long def);
const char *jstr(const struct jval *o, const char *key);

#endif
