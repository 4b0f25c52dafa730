/* base64.c: strict base64 for SASL exchanges. */
#include "core/base64.h"
#include "core/error.h"
#include <string.h>

static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

void base64_encode(const void *p, size_t n, struct buf *out)
{
    const unsigned char *in = p;
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned)in[i] << 16;
        if (i + 1 < n) v |= (unsigned)in[i + 1] << 8;
        if (i + 2 < n) v |= in[i + 2];
        buf_putc(out, alphabet[(v >> 18) & 63]);
        buf_putc(out, alphabet[(v >> 12) & 63]);
        buf_putc(out, i + 1 < n ? alphabet[(v >> 6) & 63] : '=');
        buf_putc(out, i + 2 < n ? alphabet[v & 63] : '=');
    }
}

int base64_decode(const char *s, size_t n, struct buf *out)
{
    buf_reset(out);
    if (n % 4) return CF_E_PARSE;
    for (size_t i = 0; i < n; i += 4) {
        unsigned v = 0;
        int pad = 0;
        for (size_t k = 0; k < 4; k++) {
            char ch = s[i + k];
            const char *at = ch ? strchr(alphabet, ch) : NULL;
            if (ch == '=' && i + 4 == n && k >= 2) {
                pad++;
                v <<= 6;
                continue;
            }
            if (!at || pad) return CF_E_PARSE;
            v = v << 6 | (unsigned)(at - alphabet);
        }
        buf_putc(out, (char)(v >> 16 & 0xff));
        if (pad < 2) buf_putc(out, (char)(v >> 8 & 0xff));
        if (pad < 1) buf_putc(out, (char)(v & 0xff));
    }
    return 0;
}
