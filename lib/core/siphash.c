/* siphash.c: SipHash-2-4-128 (see siphash.h). Two compression rounds per 8-byte word, four
 * finalisation rounds, little-endian words, as the specification defines. */
#include "core/siphash.h"
#include <stdint.h>

static uint64_t rotl(uint64_t x, int b) { return (x << b) | (x >> (64 - b)); }

static uint64_t load_le64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}

static void store_le64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++, v >>= 8) p[i] = (unsigned char)v;
}

struct sip { uint64_t v0, v1, v2, v3; };

static void round1(struct sip *s)
{
    s->v0 += s->v1; s->v1 = rotl(s->v1, 13); s->v1 ^= s->v0; s->v0 = rotl(s->v0, 32);
    s->v2 += s->v3; s->v3 = rotl(s->v3, 16); s->v3 ^= s->v2;
    s->v0 += s->v3; s->v3 = rotl(s->v3, 21); s->v3 ^= s->v0;
    s->v2 += s->v1; s->v1 = rotl(s->v1, 17); s->v1 ^= s->v2; s->v2 = rotl(s->v2, 32);
}

static void absorb(struct sip *s, uint64_t m)
{
    s->v3 ^= m;
    round1(s);
    round1(s);
    s->v0 ^= m;
}

void siphash128(const unsigned char key[SIPHASH_KEY_LEN], const void *in, size_t len,
                unsigned char out[SIPHASH128_LEN])
{
    const unsigned char *p = in;
    uint64_t k0 = load_le64(key), k1 = load_le64(key + 8);
    struct sip s = { k0 ^ 0x736f6d6570736575ULL, k1 ^ 0x646f72616e646f6dULL,
                     k0 ^ 0x6c7967656e657261ULL, k1 ^ 0x7465646279746573ULL };
    s.v1 ^= 0xee;                           /* the 128-bit variant */
    size_t whole = len - len % 8;
    for (size_t i = 0; i < whole; i += 8) absorb(&s, load_le64(p + i));
    /* the last word: the remaining bytes, then the length's low byte in the top byte */
    uint64_t last = (uint64_t)(len & 0xff) << 56;
    for (size_t i = len % 8; i > 0; i--) last |= (uint64_t)p[whole + i - 1] << (8 * (i - 1));
    absorb(&s, last);
    s.v2 ^= 0xee;
    for (int i = 0; i < 4; i++) round1(&s);
    store_le64(out, s.v0 ^ s.v1 ^ s.v2 ^ s.v3);
    s.v1 ^= 0xdd;
    for (int i = 0; i < 4; i++) round1(&s);
    store_le64(out + 8, s.v0 ^ s.v1 ^ s.v2 ^ s.v3);
}
