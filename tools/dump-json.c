/* dump-json.c: the manifest.json of `coffer dump` (dump.h), written piece by piece as the
 * mailboxes are read: the account's settings, then one object per mailbox with its messages.
 * The reader is dump-read.c; coffer-dump(8) describes every field. */
#include "dump.h"
#include "tool.h"
#include "core/base64.h"
#include "core/xmalloc.h"
#include "store/index.h"
#include "store/quotadb.h"
#include <stdlib.h>

const struct dump_sysflag dump_sysflags[] = {
    { FLAG_SEEN, "\\Seen" }, { FLAG_ANSWERED, "\\Answered" }, { FLAG_FLAGGED, "\\Flagged" },
    { FLAG_DELETED, "\\Deleted" }, { FLAG_DRAFT, "\\Draft" },
};
const size_t dump_nsysflags = sizeof dump_sysflags / sizeof dump_sysflags[0];

/* json_acl: the ACL text as [[ident, rights], ...]. */
static void json_acl(struct buf *m, const char *acl)
{
    struct strarr parts = STRARR_INIT;
    strarr_split(&parts, acl, "\t", 0);
    buf_putc(m, '[');
    for (size_t i = 0; i + 1 < parts.count; i += 2) {
        buf_appends(m, i ? ", [" : "[");
        json_str(m, parts.v[i]);
        buf_appends(m, ", ");
        json_str(m, parts.v[i + 1]);
        buf_putc(m, ']');
    }
    buf_putc(m, ']');
    strarr_fini(&parts);
}

void dump_json_head(struct buf *m, const char *user, long long created, const struct quota *q,
                    const struct strarr *subs, const char *active, const struct strarr *scripts)
{
    buf_printf(m, "{\"format\": \"%s\", \"version\": %d, \"user\": ", DUMP_FORMAT, DUMP_VERSION);
    json_str(m, user);
    buf_printf(m, ", \"created\": %lld,\n \"quota\": ", created);
    if (q) buf_printf(m, "{\"storage_kib\": %lld, \"messages\": %lld}", (long long)q->limit_storage_kib,
                      (long long)q->limit_messages);
    else buf_appends(m, "null");
    buf_appends(m, ",\n \"subscriptions\": [");
    for (size_t i = 0; i < subs->count; i++) {
        if (i) buf_appends(m, ", ");
        json_str(m, subs->v[i]);
    }
    buf_appends(m, "],\n \"sieve\": {\"active\": ");
    if (active) json_str(m, active);
    else buf_appends(m, "null");
    buf_appends(m, ", \"scripts\": [");
    for (size_t i = 0; i < scripts->count; i++) {
        if (i) buf_appends(m, ", ");
        buf_appends(m, "{\"name\": ");
        json_str(m, scripts->v[i]);
        buf_appends(m, ", \"file\": ");
        char *fn = xasprintf("sieve/%s.sieve", scripts->v[i]);
        json_str(m, fn);
        free(fn);
        buf_putc(m, '}');
    }
    buf_appends(m, "]},\n \"mailboxes\": [");
}

void dump_json_mailbox(struct buf *m, size_t idx, const char *name, const struct index_header *h,
                       const char *special_use, const char *acl, const char *urlauth_key)
{
    buf_appends(m, idx ? ",\n  {\"name\": " : "\n  {\"name\": ");
    json_str(m, name);
    buf_printf(m, ", \"dir\": \"mailboxes/%zu\", \"uidvalidity\": %u, \"uidnext\": %u, "
               "\"highestmodseq\": %llu, \"special_use\": ", idx, (unsigned)h->uidvalidity,
               (unsigned)h->uidnext, (unsigned long long)h->highestmodseq);
    json_str(m, special_use);
    buf_appends(m, ", \"acl\": ");
    json_acl(m, acl);
    if (urlauth_key) {
        buf_appends(m, ", \"urlauth_key\": ");
        json_str(m, urlauth_key);
    }
    buf_appends(m, ",\n   \"messages\": [");
}

void dump_json_message(struct buf *m, size_t nth, size_t idx, uint32_t uid,
                       const struct index_record *rec, const struct strarr *kw)
{
    buf_printf(m, "%s\n    {\"uid\": %u, \"file\": \"mailboxes/%zu/%u.eml\", \"size\": %llu, "
               "\"internaldate\": %lld, \"modseq\": %llu, \"flags\": [", nth ? "," : "",
               (unsigned)uid, idx, (unsigned)uid, (unsigned long long)rec->size,
               (long long)rec->internaldate, (unsigned long long)rec->modseq);
    int first = 1;
    for (size_t k = 0; k < dump_nsysflags; k++) {
        if (!(rec->flags & dump_sysflags[k].bit)) continue;
        if (!first) buf_appends(m, ", ");
        json_str(m, dump_sysflags[k].name);
        first = 0;
    }
    buf_appends(m, "], \"keywords\": [");
    first = 1;
    for (size_t k = 0; k < kw->count; k++) {
        if (!index_user_flag_get(rec, (unsigned)k)) continue;
        if (!first) buf_appends(m, ", ");
        json_str(m, kw->v[k]);
        first = 0;
    }
    buf_appends(m, "]}");
}

/* json_pairs: meta (entry, value alternating) as [[entry, value], ...] */
static void json_pairs(struct buf *m, const struct strarr *meta)
{
    buf_putc(m, '[');
    for (size_t i = 0; meta && i + 1 < meta->count; i += 2) {
        buf_appends(m, i ? ", [" : "[");
        json_str(m, meta->v[i]);
        buf_appends(m, ", ");
        json_str(m, meta->v[i + 1]);
        buf_putc(m, ']');
    }
    buf_putc(m, ']');
}

void dump_json_metadata_add(struct strarr *meta, const char *entry, const char *val, size_t len)
{
    struct buf b64 = BUF_INIT;
    base64_encode(val, len, &b64);
    strarr_add(meta, entry);
    strarr_add(meta, buf_cstr(&b64));
    buf_fini(&b64);
}

void dump_json_mailbox_end(struct buf *m, const struct strarr *meta)
{
    buf_appends(m, "],\n   \"metadata\": ");
    json_pairs(m, meta);
    buf_putc(m, '}');
}

void dump_json_end(struct buf *m, const struct strarr *server_meta)
{
    buf_appends(m, "\n ],\n \"server_metadata\": ");
    json_pairs(m, server_meta);
    buf_appends(m, "\n}\n");
}
