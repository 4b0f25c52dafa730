/* binsize.c: the decoded sizes of a message's encoded parts for the cache (binsize.h). */
#include "mime/binsize.h"
#include "mime/decode.h"
#include "mime/mime.h"
#include <string.h>

/* num: a decimal number at p (before end) into *v; the byte after it, or NULL when there is
 * none or it overflows. */
static const char *num(const char *p, const char *end, uint64_t *v)
{
    uint64_t x = 0;
    const char *s = p;
    for (; p < end && *p >= '0' && *p <= '9'; p++) {
        if (x > (UINT64_MAX - 9) / 10) return NULL;
        x = x * 10 + (uint64_t)(*p - '0');
    }
    if (p == s) return NULL;
    *v = x;
    return p;
}

void mime_binary_sizes(const char *msg, size_t len, const char *sections, size_t slen,
                       struct buf *out)
{
    buf_reset(out);
    buf_appends(out, "B1\n");
    if (!sections || slen < 3 || memcmp(sections, "S1\n", 3)) goto done;
    const char *end = sections + slen;
    for (const char *p = sections + 3; p < end;) {
        const char *le = memchr(p, '\n', (size_t)(end - p));
        if (!le) break;
        const char *line = p;
        p = le + 1;
        /* PART HOFF HLEN BOFF BLEN FLAGS MHLEN */
        const char *sp = memchr(line, ' ', (size_t)(le - line));
        if (!sp || (sp - line == 1 && line[0] == '0')) continue;    /* "0": the message */
        uint64_t v[4];
        const char *q = sp + 1;
        int ok = 1;
        for (int i = 0; i < 4 && ok; i++) {
            q = num(q, le, &v[i]);
            if (!q || q >= le || *q != ' ') ok = 0;
            else q++;
        }
        if (!ok) continue;
        int leaf = 1;
        for (; q < le && *q != ' '; q++)
            if (*q == 'M' || *q == 'R') leaf = 0;
        /* FETCH BINARY checks the same bounds (the table may not fit a damaged message) */
        if (!leaf || v[0] > len || v[1] > len - v[0] || v[2] > len || v[3] > len - v[2])
            continue;
        enum mime_cte cte = mime_cte_of_header(msg + v[0], (size_t)v[1]);
        if (cte != MIME_CTE_BASE64 && cte != MIME_CTE_QP) continue;
        /* counted, not decoded: the counters share the decoders' rules (decode.h) */
        long long size = mime_cte_decoded_size(cte, msg + v[2], (size_t)v[3]);
        if (size < 0) continue;
        buf_append(out, line, (size_t)(sp - line));
        buf_printf(out, " %lld\n", size);
    }
done:
    buf_cstr(out);
}

int mime_binary_size_find(const char *table, size_t tlen, const char *part, uint64_t *size_r)
{
    size_t pl = strlen(part);
    if (!table || tlen < 3 || memcmp(table, "B1\n", 3) || !pl) return 0;
    const char *end = table + tlen;
    for (const char *p = table + 3; p < end;) {
        const char *le = memchr(p, '\n', (size_t)(end - p));
        if (!le) return 0;
        if ((size_t)(le - p) > pl + 1 && p[pl] == ' ' && !memcmp(p, part, pl)) {
            uint64_t v;
            const char *q = num(p + pl + 1, le, &v);
            if (!q || q != le) return 0;
            *size_r = v;
            return 1;
        }
        p = le + 1;
    }
    return 0;
}
