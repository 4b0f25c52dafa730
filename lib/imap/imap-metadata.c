/* imap-metadata.c: GETMETADATA and SETMETADATA arguments and entry names (RFC 5464). */
#include "imap/imap-metadata.h"
#include "core/error.h"
#include "core/xmalloc.h"
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* utf8_char: the length of the valid UTF-8 sequence (2 to 4 bytes, no overlong form, no
 * surrogate) at p[0,n), or 0 */
static size_t utf8_char(const unsigned char *p, size_t n)
{
    size_t len;
    uint32_t cp;
    if (p[0] >= 0xc2 && p[0] <= 0xdf) { len = 2; cp = p[0] & 0x1f; }
    else if (p[0] >= 0xe0 && p[0] <= 0xef) { len = 3; cp = p[0] & 0x0f; }
    else if (p[0] >= 0xf0 && p[0] <= 0xf4) { len = 4; cp = p[0] & 0x07; }
    else return 0;
    if (n < len) return 0;
    for (size_t i = 1; i < len; i++) {
        if ((p[i] & 0xc0) != 0x80) return 0;
        cp = cp << 6 | (p[i] & 0x3f);
    }
    if ((len == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
        (len == 4 && (cp < 0x10000 || cp > 0x10ffff)))
        return 0;
    return len;
}

int imap_metadata_entry_valid(const char *s, size_t len, int for_set)
{
    size_t scope;
    if (!s || len > IMAP_METADATA_ENTRY_MAX) return 0;
    if (len >= 7 && !strncasecmp(s, "/shared", 7)) scope = 7;
    else if (len >= 8 && !strncasecmp(s, "/private", 8)) scope = 8;
    else return 0;
    if (len == scope) return !for_set;
    if (s[scope] != '/' || s[len - 1] == '/') return 0;
    const unsigned char *p = (const unsigned char *)s;
    for (size_t i = scope; i < len;) {
        unsigned char ch = p[i];
        if (ch == '/') {
            if (p[i + 1] == '/') return 0;   /* empty part: len - 1 is not '/', so i + 1 < len */
            i++;
        } else if (ch >= 0x80) {
            size_t k = utf8_char(p + i, len - i);
            if (!k) return 0;
            i += k;
        } else if (ch <= 0x20 || ch == 0x7f || ch == '*' || ch == '%') {
            return 0;   /* section 3.2: no wildcards; no controls or spaces in names */
        } else {
            i++;
        }
    }
    return 1;
}

/* entry_arg: the entry name of a, or NULL when a is no astring or no valid name */
static const char *entry_arg(const struct imap_arg *a, int for_set)
{
    const char *s = imap_arg_astring(a);
    if (!s || a->type == IMAP_ARG_NIL || strlen(s) != a->len) return NULL;
    return imap_metadata_entry_valid(s, a->len, for_set) ? s : NULL;
}

/* mailbox_arg: the mailbox astring of a (NIL is a name too), or NULL */
static const char *mailbox_arg(const struct imap_arg *a)
{
    const char *s = imap_arg_astring(a);
    return s && strlen(s) == a->len ? s : NULL;
}

/* is_options: a list that reads as GETMETADATA options (starts with an atom that is no entry) */
static int is_options(const struct imap_arg *a)
{
    return a->type == IMAP_ARG_LIST && a->count > 0 && a->list[0].type == IMAP_ARG_ATOM &&
           a->list[0].s[0] != '/';
}

static int parse_options(const struct imap_arg *list, struct imap_metadata_get *g, const char **why)
{
    int have_depth = 0, have_max = 0;
    if (list->count == 0 || list->count % 2) {
        *why = "Options come in pairs: MAXSIZE n, DEPTH 0|1|infinity";
        return CF_E_PARSE;
    }
    for (size_t i = 0; i < list->count; i += 2) {
        const struct imap_arg *name = &list->list[i], *val = &list->list[i + 1];
        if (imap_arg_atom_eq(name, "MAXSIZE") && !have_max) {
            uint32_t n;
            if (imap_arg_number(val, &n)) {
                *why = "MAXSIZE needs a number";
                return CF_E_PARSE;
            }
            g->maxsize = n;
            have_max = 1;
        } else if (imap_arg_atom_eq(name, "DEPTH") && !have_depth) {
            if (imap_arg_atom_eq(val, "0")) g->depth = 0;
            else if (imap_arg_atom_eq(val, "1")) g->depth = 1;
            else if (imap_arg_atom_eq(val, "infinity")) g->depth = -1;
            else {
                *why = "DEPTH is 0, 1 or infinity";
                return CF_E_PARSE;
            }
            have_depth = 1;
        } else {
            *why = "Unknown or repeated GETMETADATA option";
            return CF_E_PARSE;
        }
    }
    return 0;
}

static int add_entry(struct imap_metadata_get *g, const struct imap_arg *a, const char **why)
{
    const char *e = entry_arg(a, 0);
    if (!e) {
        *why = "Invalid entry name";
        return CF_E_PARSE;
    }
    if (strarr_find_case(&g->entries, e) < 0) strarr_add(&g->entries, e);
    return 0;
}

int imap_metadata_parse_get(const struct imap_arg *args, size_t nargs, struct imap_metadata_get *g,
                            const char **why)
{
    memset(g, 0, sizeof *g);
    strarr_init(&g->entries);
    g->maxsize = -1;
    *why = "GETMETADATA needs [options] mailbox entries";
    size_t i = 0;
    const struct imap_arg *opts = NULL;
    if (nargs == 3 && is_options(&args[0])) opts = &args[i++];
    else if (nargs == 3 && is_options(&args[1])) opts = &args[1];
    else if (nargs != 2) return CF_E_PARSE;
    g->mailbox = mailbox_arg(&args[i]);
    if (!g->mailbox) {
        *why = "Invalid mailbox name";
        return CF_E_PARSE;
    }
    if (opts && parse_options(opts, g, why)) return CF_E_PARSE;
    const struct imap_arg *ents = &args[nargs - 1];
    if (ents->type == IMAP_ARG_LIST) {
        if (ents->count == 0) {
            *why = "GETMETADATA needs at least one entry";
            return CF_E_PARSE;
        }
        for (size_t k = 0; k < ents->count; k++)
            if (add_entry(g, &ents->list[k], why)) return CF_E_PARSE;
        return 0;
    }
    return add_entry(g, ents, why);
}

void imap_metadata_get_fini(struct imap_metadata_get *g)
{
    strarr_fini(&g->entries);
}

int imap_metadata_parse_set(const struct imap_arg *args, size_t nargs, struct imap_metadata_set *s,
                            const char **why)
{
    memset(s, 0, sizeof *s);
    *why = "SETMETADATA needs mailbox (entry value ...)";
    if (nargs != 2 || args[1].type != IMAP_ARG_LIST || args[1].count == 0 ||
        args[1].count % 2)
        return CF_E_PARSE;
    s->mailbox = mailbox_arg(&args[0]);
    if (!s->mailbox) {
        *why = "Invalid mailbox name";
        return CF_E_PARSE;
    }
    const struct imap_arg *l = &args[1];
    s->items = xreallocarray(NULL, l->count / 2, sizeof *s->items);
    for (size_t i = 0; i < l->count; i += 2) {
        struct imap_metadata_item *it = &s->items[s->n];
        const struct imap_arg *v = &l->list[i + 1];
        it->entry = entry_arg(&l->list[i], 1);
        if (!it->entry) {
            *why = "Invalid entry name";
            return CF_E_PARSE;
        }
        if (v->type == IMAP_ARG_LITERAL && v->literal8) {
            it->value = v->s;      /* section 5: value = nstring / literal8 */
        } else if (!imap_arg_nstring(v, &it->value)) {
            *why = "An entry's value is a string, a literal8 or NIL";
            return CF_E_PARSE;
        }
        it->len = it->value ? v->len : 0;
        s->n++;
    }
    return 0;
}

void imap_metadata_set_fini(struct imap_metadata_set *s)
{
    free(s->items);
    s->items = NULL;
    s->n = 0;
}

void imap_metadata_value_append(struct buf *out, const char *v, size_t len)
{
    if (!v) {
        buf_appends(out, "NIL");
    } else if (memchr(v, '\0', len)) {
        buf_printf(out, "~{%zu}\r\n", len);
        buf_append(out, v, len);
    } else {
        imap_string_append(out, v, len);
    }
}
