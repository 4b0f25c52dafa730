/* cmd-search.c: SEARCH and UID SEARCH (RFC 3501 sections 6.4.4, 6.4.8, 7.2.5): the search
 * program of lib/imap/search.h run over the selected view, reading index records first, the
 * cached header block when a header key needs it, and the message file only for BODY/TEXT. */
#include "imapd.h"
#include "selected.h"
#include "imap/search.h"
#include "core/buf.h"
#include "core/error.h"
#include "store/cache.h"
#include "store/index.h"
#include "store/mailbox.h"
#include <string.h>

/* The accessors' state: what has been loaded for the current message. */
struct search_ctx {
    struct selected *sel;
    uint32_t uid;
    struct index_record rec;
    struct cache_entry ce;
    int have_cache;
    const char *map;
    size_t map_len;
    int mapped;
};

static int sx_record(void *ctx, uint32_t msgno, struct search_record *r)
{
    struct search_ctx *x = ctx;
    int found;
    x->uid = selected_uid(x->sel, msgno);
    found = mailbox_record(x->sel->mb, x->uid, &x->rec);
    if (found == 1) selected_seen_apply(x->sel, &x->rec);   /* per-user \Seen (selected.h) */
    if (found < 0) return found;
    /* expunged by another session but still numbered here (RFC 2180 section 4.3): it
     * matches nothing; CF_E_NOTFOUND tells the loop to skip it */
    if (found == 0 || (x->rec.flags & FLAG_EXPUNGED)) return CF_E_NOTFOUND;
    memset(r, 0, sizeof(*r));
    r->uid = x->uid;
    r->flags = x->rec.flags & FLAG_SYSTEM_MASK;
    r->recent = selected_is_recent(x->sel, x->uid);
    r->internaldate = x->rec.internaldate;
    r->size = x->rec.size;
    r->user_flags = x->rec.user_flags;
    r->user_flags_len = sizeof(x->rec.user_flags);
    return 0;
}

static int sx_cache(struct search_ctx *x)
{
    int r;
    if (x->have_cache) return 0;
    if ((r = mailbox_cache_fetch(x->sel->mb, x->uid, &x->ce)) < 0) return r;
    x->have_cache = 1;
    return 0;
}

static int sx_message(void *ctx, uint32_t msgno, const char **p, size_t *len)
{
    struct search_ctx *x = ctx;
    int r;
    (void)msgno;
    if (!x->mapped) {
        if ((r = mailbox_message_map(x->sel->mb, x->uid, &x->map, &x->map_len)) < 0) return r;
        x->mapped = 1;
    }
    *p = x->map;
    *len = x->map_len;
    return 0;
}

static int sx_header(void *ctx, uint32_t msgno, const char **p, size_t *len)
{
    struct search_ctx *x = ctx;
    int r;
    if ((r = sx_cache(x)) < 0) return r;
    if (x->ce.present[CACHE_HEADER]) {
        *p = x->ce.f[CACHE_HEADER].s ? x->ce.f[CACHE_HEADER].s : "";
        *len = x->ce.f[CACHE_HEADER].len;
        return 0;
    }
    /* headers over CACHE_HEADER_MAX are not cached: read them from the message */
    if ((r = sx_message(ctx, msgno, p, len)) < 0) return r;
    if (x->rec.header_size < *len) *len = x->rec.header_size;
    return 0;
}

static int sx_sections(void *ctx, uint32_t msgno, const char **p, size_t *len)
{
    struct search_ctx *x = ctx;
    int r;
    (void)msgno;
    if ((r = sx_cache(x)) < 0) return r;
    if (!x->ce.present[CACHE_SECTIONS]) return CF_E_NOTFOUND;
    *p = x->ce.f[CACHE_SECTIONS].s ? x->ce.f[CACHE_SECTIONS].s : "";
    *len = x->ce.f[CACHE_SECTIONS].len;
    return 0;
}

static void sx_release(void *ctx, uint32_t msgno)
{
    struct search_ctx *x = ctx;
    (void)msgno;
    if (x->mapped) {
        mailbox_message_unmap(x->map, x->map_len);
        x->mapped = 0;
    }
    if (x->have_cache) {
        cache_entry_fini(&x->ce);
        cache_entry_init(&x->ce);
        x->have_cache = 0;
    }
}

static const struct search_msg_ops sx_ops = {
    sx_record, sx_header, sx_sections, sx_message, sx_release,
};

void cmd_search(struct client *c, const struct imap_command *cmd)
{
    struct selected *sel = c->sel;
    int uid_cmd = command_is_uid(cmd);
    struct search_program *prog = NULL;
    struct search_ctx x;
    struct buf out = BUF_INIT;
    const char *err = NULL;
    uint32_t n, msgno;
    int r;

    r = search_parse(cmd->args, cmd->nargs, &prog, &err);
    if (r == CF_E_NOTFOUND) {
        /* RFC 3501 section 6.4.4: NO with the charsets we do take */
        client_tagged(c, cmd->tag, "NO [BADCHARSET (UTF-8 US-ASCII)] %s", err);
        return;
    }
    if (r == CF_E_LIMIT) {
        client_tagged(c, cmd->tag, "NO [LIMIT] %s (limit %d bytes)", err, SEARCH_MAX_STRINGS);
        return;
    }
    if (r < 0) {
        client_tagged(c, cmd->tag, "BAD %s", err);
        return;
    }
    memset(&x, 0, sizeof(x));
    x.sel = sel;
    cache_entry_init(&x.ce);
    n = selected_count(sel);
    search_prepare(prog, n, n ? selected_uid(sel, n) : 0, mailbox_keywords(sel->mb));

    buf_appends(&out, "SEARCH");
    for (msgno = 1; msgno <= n; msgno++) {
        r = search_match(prog, &sx_ops, &x, msgno);
        if (r == CF_E_NOTFOUND) {       /* expunged meanwhile: not a match */
            sx_release(&x, msgno);
            continue;
        }
        if (r < 0) break;
        if (r) buf_printf(&out, " %u", uid_cmd ? x.uid : msgno);
    }
    sx_release(&x, 0);
    cache_entry_fini(&x.ce);
    search_free(&prog);
    if (r < 0 && r != CF_E_NOTFOUND) {
        imapd_reply_error(c, cmd->tag, r);
    } else {
        client_untagged(c, "%s", buf_cstr(&out));
        client_tagged(c, cmd->tag, "OK %s completed", cmd->name);
    }
    buf_fini(&out);
}
