/* siphash.h: SipHash-2-4 with a 128-bit output (Aumasson and Bernstein, "SipHash: a fast
 * short-input PRF", 2012), a keyed hash for short strings such as user names. Without the
 * 16-byte key nobody can predict its output or make two inputs collide, which a plain hash
 * (FNV, CRC) cannot promise and a cryptographic digest from libcrypto would cost a process
 * its first-use initialisation of OpenSSL (2 MB of touched pages: docs/perf/idle.md). */
#ifndef COFFER_CORE_SIPHASH_H
#define COFFER_CORE_SIPHASH_H
#include <stddef.h>

#define SIPHASH_KEY_LEN 16
#define SIPHASH128_LEN 16

/* siphash128: out = SipHash-2-4-128 of the len bytes at in under key, in the byte order of
 * the reference implementation (its test vectors). Pure; never fails. */
void siphash128(const unsigned char key[SIPHASH_KEY_LEN], const void *in, size_t len,
                unsigned char out[SIPHASH128_LEN]);

#endif
