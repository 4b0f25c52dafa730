/* dump-tar.c: the POSIX.1-1988 ustar writer of `coffer dump` (dump.h): 512-byte header
 * blocks for regular files, their data padded to the block, and the two zero blocks at the
 * end. The reader is dump-read.c. */
#include "dump.h"
#include "dump-read.h"
#include <string.h>

/* tar_header: one header block for a regular file. A name over 99 bytes is split at a '/'
 * into the ustar prefix (<= 154 bytes) and name fields, as POSIX.1-1988 allows (a Sieve
 * script's sieve/NAME.sieve); tar_put never gets a longer one (dump.h). */
static void tar_header(unsigned char *h, const char *name, uint64_t size, int64_t mtime)
{
    memset(h, 0, TAR_BLOCK);
    size_t len = strlen(name);
    const char *slash = len > 99 ? memchr(name, '/', len) : NULL;
    if (slash && (size_t)(slash - name) <= 154 && len - (size_t)(slash - name) - 1 <= 99) {
        memcpy(h + 345, name, (size_t)(slash - name));
        snprintf((char *)h, 100, "%s", slash + 1);
    } else {
        snprintf((char *)h, 100, "%s", name);
    }
    memcpy(h + 100, "0000600", 8);
    memcpy(h + 108, "0000000", 8);
    memcpy(h + 116, "0000000", 8);
    char oct[32];
    snprintf(oct, sizeof oct, "%011llo", (unsigned long long)size);   /* < 8 GiB: 11 digits */
    memcpy(h + 124, oct, 12);
    snprintf(oct, sizeof oct, "%011llo", (unsigned long long)(mtime > 0 && mtime < 077777777777LL ? mtime : 0));
    memcpy(h + 136, oct, 12);
    h[156] = '0';
    memcpy(h + 257, "ustar", 6);
    memcpy(h + 263, "00", 2);
    snprintf((char *)h + 265, 32, "coffer");
    snprintf((char *)h + 297, 32, "coffer");
    memset(h + 148, ' ', 8);
    unsigned sum = 0;
    for (int i = 0; i < TAR_BLOCK; i++) sum += h[i];
    snprintf((char *)h + 148, 8, "%06o", sum);
    h[155] = ' ';
}

static int tar_pad(FILE *f, uint64_t size)
{
    static const unsigned char zero[TAR_BLOCK];
    size_t pad = (size_t)((TAR_BLOCK - size % TAR_BLOCK) % TAR_BLOCK);
    return pad && fwrite(zero, 1, pad, f) != pad ? -1 : 0;
}

int tar_put(FILE *f, const char *name, const void *data, size_t len, int64_t mtime)
{
    unsigned char h[TAR_BLOCK];
    tar_header(h, name, len, mtime);
    if (fwrite(h, 1, TAR_BLOCK, f) != TAR_BLOCK) return -1;
    if (len && fwrite(data, 1, len, f) != len) return -1;
    return tar_pad(f, len);
}

int tar_end(FILE *f)
{
    static const unsigned char zero[2 * TAR_BLOCK];
    return fwrite(zero, 1, sizeof zero, f) != sizeof zero || fflush(f) != 0 ? -1 : 0;
}
