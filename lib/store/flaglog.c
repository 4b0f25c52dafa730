/* flaglog.c: encoding of the flag change log's header and entries, and the flag rule its
 * replay shares with the store (flaglog.h, coffer-store(5)). */
#include "store/flaglog.h"
#include "core/error.h"
#include <string.h>

uint32_t flaglog_max = 256u * 1024;

/* Entry layout: byte offsets. */
enum {
    E_LEN = 0, E_EPOCH = 4, E_GENERATION = 12, E_COMMIT = 20, E_MODSEQ = 28, E_OP = 36,
    E_SYS = 40, E_KEYWORDS = 44, E_RECORD_COUNT = 60, E_NRANGES = 64, E_RANGES = FLAGLOG_ENTRY_FIXED
};

void flaglog_header_encode(uint64_t epoch, unsigned char *out)
{
    memset(out, 0, FLAGLOG_HEADER_SIZE);
    memcpy(out, FLAGLOG_MAGIC, 8);
    le_put32(out + 8, FLAGLOG_VERSION);
    le_put32(out + 12, FLAGLOG_HEADER_SIZE);
    le_put64(out + 16, epoch);
    le_put32(out + 60, index_crc32(out, 60));
}

int flaglog_header_decode(const unsigned char *in, uint64_t *epoch_r)
{
    if (memcmp(in, FLAGLOG_MAGIC, 8) != 0 || le_get32(in + 8) != FLAGLOG_VERSION ||
        le_get32(in + 12) != FLAGLOG_HEADER_SIZE || le_get32(in + 60) != index_crc32(in, 60))
        return CF_E_CORRUPT;
    *epoch_r = le_get64(in + 16);
    return 0;
}

void flaglog_entry_encode(const struct flaglog_entry *e, unsigned char *out)
{
    size_t len = flaglog_entry_size(e->nranges);
    le_put32(out + E_LEN, (uint32_t)len);
    le_put64(out + E_EPOCH, e->epoch);
    le_put64(out + E_GENERATION, e->generation);
    le_put64(out + E_COMMIT, e->commit);
    le_put64(out + E_MODSEQ, e->modseq);
    le_put32(out + E_OP, e->op);
    le_put32(out + E_SYS, e->sys);
    memcpy(out + E_KEYWORDS, e->keywords, sizeof e->keywords);
    le_put32(out + E_RECORD_COUNT, e->record_count);
    le_put32(out + E_NRANGES, e->nranges);
    if (e->nranges) memmove(out + E_RANGES, e->ranges, (size_t)e->nranges * 8);
    le_put32(out + len - 4, index_crc32(out, len - 4));
}

int flaglog_entry_next(const unsigned char *buf, size_t len, size_t *off, uint64_t epoch,
                       struct flaglog_entry *e)
{
    size_t o = *off;
    if (o > len || len - o < flaglog_entry_size(0)) return 0;
    const unsigned char *p = buf + o;
    uint32_t elen = le_get32(p + E_LEN), nranges = le_get32(p + E_NRANGES);
    /* the length must be the one the range count gives, and fit */
    if (nranges > (len - o) / 8 || elen != flaglog_entry_size(nranges) || elen > len - o)
        return 0;
    if (le_get64(p + E_EPOCH) != epoch || le_get32(p + elen - 4) != index_crc32(p, elen - 4))
        return 0;
    e->epoch = epoch;
    e->generation = le_get64(p + E_GENERATION);
    e->commit = le_get64(p + E_COMMIT);
    e->modseq = le_get64(p + E_MODSEQ);
    e->op = le_get32(p + E_OP);
    e->sys = le_get32(p + E_SYS);
    memcpy(e->keywords, p + E_KEYWORDS, sizeof e->keywords);
    e->record_count = le_get32(p + E_RECORD_COUNT);
    e->nranges = nranges;
    e->ranges = p + E_RANGES;
    *off = o + elen;
    return 1;
}

int flaglog_change(uint32_t op, uint32_t sys, const uint8_t *keywords,
                   const struct index_record *r, uint32_t *flags_r, uint8_t *kw_r)
{
    const size_t nkw = INDEX_MAX_KEYWORDS / 8;
    sys &= FLAG_SYSTEM_MASK;
    uint32_t f = r->flags;
    if (op == FLAGLOG_SET) {
        f = (f & ~FLAG_SYSTEM_MASK) | sys;
        memcpy(kw_r, keywords, nkw);
    } else if (op == FLAGLOG_ADD) {
        f |= sys;
        for (size_t i = 0; i < nkw; i++) kw_r[i] = r->user_flags[i] | keywords[i];
    } else {
        f &= ~sys;
        for (size_t i = 0; i < nkw; i++) kw_r[i] = r->user_flags[i] & (uint8_t)~keywords[i];
    }
    *flags_r = f;
    return f != r->flags || memcmp(kw_r, r->user_flags, nkw) != 0;
}

int flaglog_apply(const struct flaglog_entry *e, struct index_record *r)
{
    if ((r->flags & FLAG_EXPUNGED) || r->modseq >= e->modseq) return 0;
    uint32_t f;
    uint8_t kw[INDEX_MAX_KEYWORDS / 8];
    if (!flaglog_change(e->op, e->sys, e->keywords, r, &f, kw)) return 0;
    r->flags = f;
    memcpy(r->user_flags, kw, sizeof kw);
    r->modseq = e->modseq;
    return 1;
}
