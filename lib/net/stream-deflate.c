/* stream-deflate.c: the DEFLATE layer of a stream (RFC 4978 COMPRESS=DEFLATE over zlib). */
#include "net/stream-deflate.h"
#include "core/error.h"
#include "core/xmalloc.h"
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#define ZLAYER_IN_INITIAL (16 * 1024)   /* compressed input buffer; grows only for a push */
#define ZLAYER_IN_MIN_ROOM 4096
#define ZLAYER_OUT_SIZE (16 * 1024)     /* compressed output goes to the sink in these */
#define ZLAYER_LEVEL 6                  /* zlib's default: ~4x on mail text, cheap enough */
#define ZLAYER_CHUNK (1u << 30)         /* zlib counts in uInt */

struct zlayer {
    z_stream in, out;
    char *ibuf;                 /* compressed input: ibuf[ipos, ilen) not yet inflated */
    size_t icap, ipos, ilen;
    char *obuf;
    int ended;                  /* the peer sent a final block */
    int ierr;                   /* sticky inflate error */
    int unflushed;
    char error[128];
    struct zlayer_stats st;
};

struct zlayer *zlayer_new(void)
{
    struct zlayer *z = xzmalloc(sizeof *z);
    /* RFC 4978 section 3: DEFLATE as in RFC 1951, i.e. raw (negative windowBits): no zlib
     * header or checksum in either direction */
    if (inflateInit2(&z->in, -15) != Z_OK) {
        free(z);
        return NULL;
    }
    if (deflateInit2(&z->out, ZLAYER_LEVEL, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
        inflateEnd(&z->in);
        free(z);
        return NULL;
    }
    z->icap = ZLAYER_IN_INITIAL;
    z->ibuf = xmalloc(z->icap);
    z->obuf = xmalloc(ZLAYER_OUT_SIZE);
    return z;
}

void zlayer_free(struct zlayer **zp)
{
    struct zlayer *z = *zp;
    if (!z) return;
    inflateEnd(&z->in);
    deflateEnd(&z->out);
    free(z->ibuf);
    free(z->obuf);
    free(z);
    *zp = NULL;
}

/* ---- input ---- */

static void in_make_room(struct zlayer *z, size_t want)
{
    if (z->ipos == z->ilen) z->ipos = z->ilen = 0;
    if (z->icap - z->ilen >= want) return;
    if (z->ipos) {
        memmove(z->ibuf, z->ibuf + z->ipos, z->ilen - z->ipos);
        z->ilen -= z->ipos;
        z->ipos = 0;
    }
    if (z->icap - z->ilen >= want) return;
    z->icap = z->ilen + want;
    z->ibuf = xrealloc(z->ibuf, z->icap);
}

size_t zlayer_in_room(struct zlayer *z, char **p)
{
    in_make_room(z, ZLAYER_IN_MIN_ROOM);
    *p = z->ibuf + z->ilen;
    return z->icap - z->ilen;
}

void zlayer_in_added(struct zlayer *z, size_t n) { z->ilen += n; }

void zlayer_in_push(struct zlayer *z, const char *p, size_t n)
{
    if (!n) return;
    in_make_room(z, n);
    memcpy(z->ibuf + z->ilen, p, n);
    z->ilen += n;
}

size_t zlayer_in_pending(const struct zlayer *z) { return z->ilen - z->ipos; }

int zlayer_inflate(struct zlayer *z, char *out, size_t room)
{
    if (z->ierr) return z->ierr;
    if (z->ended) return CF_E_EOF;
    if (room > ZLAYER_CHUNK) room = ZLAYER_CHUNK;
    size_t produced = 0;
    for (;;) {
        size_t avail = z->ilen - z->ipos;
        if (avail > ZLAYER_CHUNK) avail = ZLAYER_CHUNK;
        z->in.next_in = (Bytef *)(z->ibuf + z->ipos);
        z->in.avail_in = (uInt)avail;
        z->in.next_out = (Bytef *)(out + produced);
        z->in.avail_out = (uInt)(room - produced);
        int r = inflate(&z->in, Z_SYNC_FLUSH);
        size_t used = avail - z->in.avail_in;
        size_t made = (room - produced) - z->in.avail_out;
        z->ipos += used;
        produced += made;
        z->st.wire_in += used;
        z->st.plain_in += made;
        if (r == Z_STREAM_END) {
            z->ended = 1;
            return produced ? (int)produced : CF_E_EOF;
        }
        if (r != Z_OK && r != Z_BUF_ERROR) {
            snprintf(z->error, sizeof z->error, "%s",
                     z->in.msg ? z->in.msg : r == Z_NEED_DICT ? "dictionary requested"
                                                              : "inflate failed");
            z->ierr = CF_E_CORRUPT;
            /* what came out before the damage is good data: hand it over first */
            return produced ? (int)produced : z->ierr;
        }
        /* inflate stops when the output is full or the input is used up; progress without
         * output (block headers only) with input left is not expected, but loop on it rather
         * than make the caller wait for bytes it already has */
        if (produced || !used || z->ipos == z->ilen) return (int)produced;
    }
}

const char *zlayer_error(const struct zlayer *z) { return z->error; }

/* ---- output ---- */

int zlayer_deflate(struct zlayer *z, const void *p, size_t n, int flush, zlayer_sink sink,
                   void *arg)
{
    if (!n && !(flush && z->unflushed)) return 0;
    const char *src = p;
    for (;;) {
        size_t chunk = n > ZLAYER_CHUNK ? ZLAYER_CHUNK : n;
        int last = chunk == n;
        int mode = last && flush ? Z_SYNC_FLUSH : Z_NO_FLUSH;
        z->out.next_in = (Bytef *)(uintptr_t)src;
        z->out.avail_in = (uInt)chunk;
        do {
            z->out.next_out = (Bytef *)z->obuf;
            z->out.avail_out = ZLAYER_OUT_SIZE;
            int r = deflate(&z->out, mode);
            if (r == Z_STREAM_ERROR) return CF_E_INTERNAL;
            size_t have = ZLAYER_OUT_SIZE - z->out.avail_out;
            if (have) {
                z->st.wire_out += have;
                int k = sink(arg, z->obuf, have);
                if (k < 0) return k;
            }
        } while (z->out.avail_out == 0 || z->out.avail_in > 0);
        z->st.plain_out += chunk;
        src += chunk;
        n -= chunk;
        if (last) break;
    }
    z->unflushed = !flush;
    return 0;
}

int zlayer_unflushed(const struct zlayer *z) { return z->unflushed; }

void zlayer_stats(const struct zlayer *z, struct zlayer_stats *st) { *st = z->st; }
