/* fuzz-deflate.c: fuzz target for the COMPRESS=DEFLATE input path (lib/net/stream-deflate.c
 * and its hook in stream.c). The first byte picks the piece and output sizes; the rest is the
 * compressed input a client would send. Properties: the layer never writes more than the room
 * it is given, its counters add up, an error is sticky; through a real stream (socketpair,
 * max line 200) every line returned fits the limit, and reading ends in EOF or CF_E_CORRUPT,
 * never anything else. */
#include "fuzz-util.h"
#include "core/buf.h"
#include "core/error.h"
#include "net/stream.h"
#include "net/stream-deflate.h"
#include <sys/socket.h>
#include <unistd.h>

#define FUZZ_MAX_INPUT (64 * 1024)   /* stays below a socketpair's buffer: one write, no peer */

static void layer_alone(const uint8_t *data, size_t size, size_t piece, size_t room)
{
    struct zlayer *z = zlayer_new();
    FUZZ_ASSERT(z);
    char *out = malloc(room + 16);
    FUZZ_ASSERT(out);
    memset(out + room, 0x5a, 16);
    size_t fed = 0, produced = 0;
    int r = 0;
    for (;;) {
        r = zlayer_inflate(z, out, room);
        FUZZ_ASSERT(r <= (int)room);
        for (int i = 0; i < 16; i++) FUZZ_ASSERT(out[room + i] == 0x5a);
        if (r > 0) {
            produced += (size_t)r;
            continue;
        }
        if (r < 0) break;
        if (fed == size) break;
        size_t k = size - fed < piece ? size - fed : piece;
        zlayer_in_push(z, (const char *)data + fed, k);
        fed += k;
    }
    struct zlayer_stats st;
    zlayer_stats(z, &st);
    FUZZ_ASSERT(st.plain_in == produced);
    FUZZ_ASSERT(st.wire_in <= fed);
    if (r == CF_E_CORRUPT) {
        FUZZ_ASSERT(zlayer_error(z)[0]);
        FUZZ_ASSERT(zlayer_inflate(z, out, room) == CF_E_CORRUPT);
    } else {
        FUZZ_ASSERT(r == 0 || r == CF_E_EOF);
    }
    free(out);
    zlayer_free(&z);
}

static void through_stream(const uint8_t *data, size_t size)
{
    int sv[2];
    FUZZ_ASSERT(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    FUZZ_ASSERT(write(sv[1], data, size) == (ssize_t)size);
    shutdown(sv[1], SHUT_WR);
    struct stream *s = stream_new(sv[0]);
    stream_set_timeout(s, 5);
    stream_set_max_line(s, 200);
    FUZZ_ASSERT(stream_start_deflate(s) == 0);
    struct buf line = BUF_INIT;
    int r;
    while ((r = stream_read_line(s, &line)) == 0 || r == CF_E_LIMIT)
        FUZZ_ASSERT(r == CF_E_LIMIT || line.len <= 200);
    FUZZ_ASSERT(r == CF_E_EOF || r == CF_E_CORRUPT);
    /* literal-style reads hit the same sticky end */
    FUZZ_ASSERT(stream_skip(s, 1) == r);
    buf_fini(&line);
    stream_free(&s);
    close(sv[1]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > FUZZ_MAX_INPUT) return 0;
    size_t piece = (size_t)(data[0] & 0x0f) * 97 + 1;
    size_t room = (size_t)(data[0] >> 4) * 301 + 1;
    layer_alone(data + 1, size - 1, piece, room);
    through_stream(data + 1, size - 1);
    return 0;
}
