/* tool.c: the plumbing every `coffer` subcommand shares (tool.h): exit codes, error lines,
 * result tables and JSON strings, opening the store, progress lines, and the quota recount of
 * `quota fix` and `check`. */
#include "tool.h"
#include "core/error.h"
#include "core/xmalloc.h"
#include "store/store.h"
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- exit codes and messages ---- */

int tool_exit_for(int err)
{
    switch (err) {
    case 0: return EXIT_OK;
    case CF_E_NOTFOUND: return EXIT_NOTFOUND;
    case CF_E_EXISTS: return EXIT_EXISTS;
    case CF_E_AGAIN: case CF_E_LOCKED: return EXIT_TEMPFAIL;
    case CF_E_PARSE: return EXIT_USAGE;
    case CF_E_QUOTA: return EXIT_QUOTA;
    default: return EXIT_FAIL;
    }
}

void json_str(struct buf *b, const char *s)
{
    buf_putc(b, '"');
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\') { buf_putc(b, '\\'); buf_putc(b, (char)*p); }
        else if (*p < 0x20) buf_printf(b, "\\u%04x", *p);
        else buf_putc(b, (char)*p);
    }
    buf_putc(b, '"');
}

void tool_error(const struct tool *t, const char *fmt, ...)
{
    struct buf msg = BUF_INIT;
    va_list ap;
    va_start(ap, fmt);
    buf_vprintf(&msg, fmt, ap);
    va_end(ap);
    if (t && t->json) {
        struct buf out = BUF_INIT;
        buf_appends(&out, "{\"error\": ");
        json_str(&out, buf_cstr(&msg));
        buf_appends(&out, "}\n");
        fputs(buf_cstr(&out), stdout);
        buf_fini(&out);
    }
    const char *sub = t && t->sub ? t->sub : "";
    fprintf(stderr, "coffer%s%s: %s\n", *sub ? " " : "", sub, buf_cstr(&msg));
    buf_fini(&msg);
}

/* ---- result tables ---- */

void table_init(struct table *t, const char *const *cols)
{
    strarr_init(&t->cols);
    strarr_init(&t->cells);
    for (; *cols; cols++) strarr_add(&t->cols, *cols);
}

void table_add(struct table *t, const char *const *row)
{
    for (size_t i = 0; i < t->cols.count; i++) strarr_add(&t->cells, row[i] ? row[i] : "");
}

void table_fini(struct table *t)
{
    strarr_fini(&t->cols);
    strarr_fini(&t->cells);
}

static int is_number(const char *s)
{
    if (*s == '-') s++;
    if (!*s) return 0;
    for (; *s; s++)
        if (*s < '0' || *s > '9') return 0;
    return 1;
}

void table_print(const struct table *t, int json)
{
    size_t ncol = t->cols.count, nrow = ncol ? t->cells.count / ncol : 0;
    struct buf out = BUF_INIT;
    if (json) {
        buf_putc(&out, '[');
        for (size_t r = 0; r < nrow; r++) {
            buf_appends(&out, r ? ",\n {" : "\n {");
            for (size_t c = 0; c < ncol; c++) {
                const char *name = t->cols.v[c], *cell = t->cells.v[r * ncol + c];
                size_t nl = strlen(name);
                int numeric = nl && name[nl - 1] == '#';
                char *key = xstrndup(name, numeric ? nl - 1 : nl);
                if (c) buf_appends(&out, ", ");
                json_str(&out, key);
                buf_appends(&out, ": ");
                if (numeric && is_number(cell)) buf_appends(&out, cell);
                else json_str(&out, cell);
                free(key);
            }
            buf_putc(&out, '}');
        }
        buf_appends(&out, nrow ? "\n]\n" : "]\n");
    } else {
        size_t *w = xzmalloc(ncol * sizeof *w);
        for (size_t c = 0; c < ncol; c++) {
            size_t nl = strlen(t->cols.v[c]);
            w[c] = nl && t->cols.v[c][nl - 1] == '#' ? nl - 1 : nl;
            for (size_t r = 0; r < nrow; r++) {
                size_t l = strlen(t->cells.v[r * ncol + c]);
                if (l > w[c]) w[c] = l;
            }
        }
        for (size_t r = 0; r <= nrow; r++) {
            for (size_t c = 0; c < ncol; c++) {
                const char *cell = r == 0 ? t->cols.v[c] : t->cells.v[(r - 1) * ncol + c];
                size_t l = strlen(cell);
                if (r == 0 && l && cell[l - 1] == '#') l--;
                int last = c + 1 == ncol;
                buf_printf(&out, "%.*s", (int)l, cell);
                if (!last) buf_printf(&out, "%*s", (int)(w[c] - l + 2), "");
            }
            buf_putc(&out, '\n');
            if (r == 0) {
                for (size_t c = 0; c < ncol; c++) {
                    for (size_t i = 0; i < w[c]; i++) buf_putc(&out, '-');
                    if (c + 1 < ncol) buf_appends(&out, "  ");
                }
                buf_putc(&out, '\n');
            }
        }
        free(w);
    }
    fputs(buf_cstr(&out), stdout);
    buf_fini(&out);
}

/* ---- the store ---- */

int tool_store_open(struct tool *t, struct store **st_r)
{
    int r = store_open(t->cfg, st_r);
    if (r) {
        tool_error(t, "cannot open the databases in %s/db: %s", config_str(t->cfg, CFG_CONFIGDIR),
                   cf_strerror(r));
        return tool_exit_for(r);
    }
    /* cofferd stops its own workers before it recovers the databases; a tool it cannot stop
     * leaves instead of waiting on the old environment or writing through it */
    r = store_db_guard(*st_r, EXIT_TEMPFAIL);
    if (r) {
        store_close(st_r);
        tool_error(t, "cannot watch the databases in %s/db: %s", config_str(t->cfg, CFG_CONFIGDIR),
                   cf_strerror(r));
        return tool_exit_for(r);
    }
    return 0;
}

void tool_progress(struct tool *t, size_t done, size_t total, const char *what)
{
    static time_t start, last;
    static int printed;
    time_t now = time(NULL);
    if (!start) start = last = now;
    /* quiet for runs shorter than a second; then a line a second and one at the end */
    if (done == total ? !printed : now == last || now == start) return;
    last = now;
    printed = 1;
    (void)t;
    fprintf(stderr, "coffer: %zu/%zu %s\n", done, total, what);
}

/* ---- quota recount ---- */

void tool_quota_usage_fini(struct tool_quota_usage *u)
{
    strarr_fini(&u->roots);
    free(u->bytes);
    free(u->msgs);
    memset(u, 0, sizeof *u);
}

static int add_root(const char *root, const struct quota *qt, void *rock)
{
    (void)qt;
    strarr_add(rock, root);
    return 0;
}

static int add_name(const char *name, const struct mboxlist_entry *e, void *rock)
{
    (void)e;
    strarr_add(rock, name);
    return 0;
}

int tool_quota_recount(struct tool *t, struct store *st, struct tool_quota_usage *u)
{
    memset(u, 0, sizeof *u);
    strarr_init(&u->roots);
    struct strarr names = STRARR_INIT;
    int r = store_quota_foreach(st, "", add_root, &u->roots);
    if (!r) r = store_mailbox_foreach(st, "", add_name, &names);
    if (r < 0) goto out;
    r = 0;
    strarr_sort(&u->roots);
    size_t n = u->roots.count ? u->roots.count : 1;
    u->bytes = xzmalloc(n * sizeof *u->bytes);
    u->msgs = xzmalloc(n * sizeof *u->msgs);
    struct buf root = BUF_INIT;
    for (size_t i = 0; i < names.count && u->roots.count; i++) {
        tool_progress(t, i + 1, names.count, "mailboxes counted");
        int f = store_quota_root(st, names.v[i], &root);
        if (f < 0) { r = f; break; }
        if (!f) continue;
        int k = strarr_find(&u->roots, buf_cstr(&root));
        if (k < 0) continue;
        struct index_header h;
        int sr = store_status(st, names.v[i], &h);
        if (sr == CF_E_NOTFOUND) continue;   /* deleted meanwhile */
        if (sr < 0) {
            tool_error(t, "%s: cannot read its index (%s); run coffer reconstruct", names.v[i],
                       cf_strerror(sr));
            r = sr;
            break;
        }
        u->bytes[k] += (long long)h.quota_used;
        u->msgs[k] += h.exists;
    }
    buf_fini(&root);
out:
    strarr_fini(&names);
    if (r < 0) tool_quota_usage_fini(u);
    return r;
}
