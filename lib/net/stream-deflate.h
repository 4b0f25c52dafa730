/* stream-deflate.h: the DEFLATE layer of a stream (IMAP COMPRESS=DEFLATE, RFC 4978): raw
 * deflate (RFC 1951, no zlib or gzip wrapper) in both directions, with its own compressed
 * input buffer and byte counters. Used by stream.c, which sits it between its line buffers and
 * the transport (TLS or the plain socket); the fuzz target and unit test drive it directly.
 * Not thread-safe; one layer belongs to one stream. */
#ifndef COFFER_NET_STREAM_DEFLATE_H
#define COFFER_NET_STREAM_DEFLATE_H
#include <stddef.h>

struct zlayer;

/* zlayer_new: a new layer (compression level 6, 32 KiB window both ways). Returns NULL only
 * when zlib cannot allocate its state (the caller refuses compression). zlayer_free NULLs. */
struct zlayer *zlayer_new(void);
void zlayer_free(struct zlayer **z);

/* Input: compressed bytes from the transport are put with zlayer_in_room + zlayer_in_added
 * (read straight into the layer's buffer) or zlayer_in_push (bytes already read). */
size_t zlayer_in_room(struct zlayer *z, char **p);   /* >= 4 KiB of room at *p */
void zlayer_in_added(struct zlayer *z, size_t n);
void zlayer_in_push(struct zlayer *z, const char *p, size_t n);
size_t zlayer_in_pending(const struct zlayer *z);    /* compressed bytes not yet inflated */

/* zlayer_inflate: decompress into out[0, room) (room > 0): at most room bytes, however much
 * the input would expand, so a decompression bomb costs one bounded buffer per call. Returns
 * the number of bytes written (> 0); 0 when more compressed input is needed; CF_E_EOF once the
 * peer ended the deflate stream (a final block: nothing can follow it); CF_E_CORRUPT for a
 * corrupt stream (sticky; zlayer_error says why; bytes decoded before the damage are returned
 * first). */
int zlayer_inflate(struct zlayer *z, char *out, size_t room);
const char *zlayer_error(const struct zlayer *z);    /* "" when none */

/* zlayer_deflate: compress p[0, n) and hand the output to sink in pieces (sink returns 0 or a
 * CF_E_* that stops the call and is returned). flush 0 keeps what zlib buffers (more follows);
 * flush 1 ends with a sync flush (RFC 1951 empty stored block), so the peer can decompress
 * everything written so far at once: done for every stream_flush (RFC 4978 section 4). */
typedef int (*zlayer_sink)(void *arg, const char *p, size_t n);
int zlayer_deflate(struct zlayer *z, const void *p, size_t n, int flush, zlayer_sink sink,
                   void *arg);
int zlayer_unflushed(const struct zlayer *z);   /* 1 when input went in since the last flush */

/* Counters since the layer started: plain (uncompressed) and wire (compressed) bytes. */
struct zlayer_stats {
    unsigned long long plain_in, wire_in, plain_out, wire_out;
};
void zlayer_stats(const struct zlayer *z, struct zlayer_stats *st);

#endif
