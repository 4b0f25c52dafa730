/* mbheader.c: reading and writing the per-mailbox `header` file. */
#include "store/mbheader.h"
#include "core/error.h"
#include "core/fileutil.h"
#include "core/log.h"
#include "core/xmalloc.h"
#include <stdlib.h>
#include <string.h>

void mbheader_init(struct mbheader *h)
{
    memset(h, 0, sizeof *h);
}

void mbheader_fini(struct mbheader *h)
{
    free(h->name);
    free(h->uniqueid);
    free(h->acl);
    memset(h, 0, sizeof *h);
}

static int one_line(const char *v)
{
    return v && !strpbrk(v, "\r\n");
}

int mbheader_encode(const struct mbheader *h, struct buf *out)
{
    const char *acl = h->acl ? h->acl : "";
    if (!one_line(h->name) || !one_line(h->uniqueid) || !one_line(acl)) return CF_E_PARSE;
    buf_printf(out, "%s %d\nname %s\nuniqueid %s\nuidvalidity %u\nacl %s\n", MBHEADER_MAGIC,
               MBHEADER_VERSION, h->name, h->uniqueid, (unsigned)h->uidvalidity, acl);
    return 0;
}

int mbheader_parse(const char *text, size_t len, struct mbheader *h)
{
    mbheader_fini(h);
    if (memchr(text, 0, len)) return CF_E_CORRUPT;
    int line = 0, have_uv = 0;
    const char *p = text, *end = text + len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        if (!nl) goto bad;  /* every line ends with LF: a missing one means a cut file */
        char *l = xstrndup(p, (size_t)(nl - p));
        p = nl + 1;
        char *sp = strchr(l, ' ');
        char *val = sp ? sp + 1 : NULL;
        if (sp) *sp = 0;
        int ok = val != NULL;
        if (ok && line++ == 0) {
            ok = !strcmp(l, MBHEADER_MAGIC) && atoi(val) == MBHEADER_VERSION;
        } else if (ok && !strcmp(l, "name") && !h->name) {
            h->name = xstrdup(val);
        } else if (ok && !strcmp(l, "uniqueid") && !h->uniqueid) {
            h->uniqueid = xstrdup(val);
        } else if (ok && !strcmp(l, "acl") && !h->acl) {
            h->acl = xstrdup(val);
        } else if (ok && !strcmp(l, "uidvalidity")) {
            char *e;
            unsigned long v = strtoul(val, &e, 10);
            ok = *val && !*e && v > 0 && v <= 0xffffffffUL;
            h->uidvalidity = (uint32_t)v;
            have_uv = 1;
        }
        /* other keys (from a later version) are ignored */
        free(l);
        if (!ok) goto bad;
    }
    if (!h->name || !h->uniqueid || !have_uv) goto bad;
    if (!h->acl) h->acl = xstrdup("");
    return 0;
bad:
    mbheader_fini(h);
    return CF_E_CORRUPT;
}

int mbheader_write(const char *dir, const struct mbheader *h)
{
    struct buf b = BUF_INIT;
    char *path = xasprintf("%s/%s", dir, MBHEADER_FILE);
    int r = mbheader_encode(h, &b);
    if (r < 0) {
        log_err("mbheader_invalid", "path=%s", log_quote(path));
        goto done;
    }
    r = file_write_atomic(path, b.s, b.len, 0600);
done:
    free(path);
    buf_fini(&b);
    return r;
}

int mbheader_read(const char *dir, struct mbheader *h)
{
    char *path = xasprintf("%s/%s", dir, MBHEADER_FILE);
    char *text = NULL;
    size_t len = 0;
    int r = file_read_all(path, 1 << 20, &text, &len);
    if (r < 0) goto done;
    r = mbheader_parse(text, len, h);
    if (r < 0) log_err("mbheader_corrupt", "path=%s", log_quote(path));
done:
    free(text);
    free(path);
    return r;
}
