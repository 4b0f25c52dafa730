/* imap-arg.c: accessors and formatting for parsed IMAP arguments. */
#include "imap/imap-arg.h"
#include "core/error.h"
#include <string.h>
#include <strings.h>

const char *imap_arg_astring(const struct imap_arg *a)
{
    switch (a->type) {
    case IMAP_ARG_LITERAL:
        return a->literal8 ? NULL : a->s;
    case IMAP_ARG_ATOM: case IMAP_ARG_QUOTED: case IMAP_ARG_NIL:
        return a->s;
    default:
        return NULL;
    }
}

const char *imap_arg_string(const struct imap_arg *a)
{
    return (a->type == IMAP_ARG_QUOTED || (a->type == IMAP_ARG_LITERAL && !a->literal8))
               ? a->s : NULL;
}

int imap_arg_nstring(const struct imap_arg *a, const char **out)
{
    if (a->type == IMAP_ARG_NIL) { *out = NULL; return 1; }
    if (a->type == IMAP_ARG_QUOTED || (a->type == IMAP_ARG_LITERAL && !a->literal8)) {
        *out = a->s;
        return 1;
    }
    return 0;
}

const char *imap_arg_atom(const struct imap_arg *a)
{
    return (a->type == IMAP_ARG_ATOM || a->type == IMAP_ARG_NIL) ? a->s : NULL;
}

int imap_arg_atom_eq(const struct imap_arg *a, const char *word)
{
    const char *s = imap_arg_atom(a);
    return s && !strcasecmp(s, word);
}

int imap_arg_number(const struct imap_arg *a, uint32_t *out)
{
    if (a->type != IMAP_ARG_ATOM || a->len == 0 || a->len > 10) return CF_E_PARSE;
    uint64_t v = 0;
    for (size_t i = 0; i < a->len; i++) {
        if (a->s[i] < '0' || a->s[i] > '9') return CF_E_PARSE;
        v = v * 10 + (uint64_t)(a->s[i] - '0');
    }
    if (v > UINT32_MAX) return CF_E_PARSE;
    *out = (uint32_t)v;
    return 0;
}

/* ATOM-CHAR of RFC 3501 section 9 */
static int atom_char(unsigned char c)
{
    return c > 0x20 && c < 0x7f && !strchr("(){%*\"\\]", c);
}

void imap_string_append(struct buf *out, const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\0' || c == '\r' || c == '\n' || c >= 0x80) {
            buf_printf(out, "{%zu}\r\n", len);
            buf_append(out, s, len);
            return;
        }
    }
    buf_putc(out, '"');
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '"' || s[i] == '\\') buf_putc(out, '\\');
        buf_putc(out, s[i]);
    }
    buf_putc(out, '"');
}

void imap_astring_append(struct buf *out, const char *s, size_t len)
{
    int bare = len > 0 && !(len == 3 && !strncasecmp(s, "NIL", 3));
    for (size_t i = 0; bare && i < len; i++)
        if (!atom_char((unsigned char)s[i])) bare = 0;
    if (bare) buf_append(out, s, len);
    else imap_string_append(out, s, len);
}

void imap_section_format(const struct imap_section *sec, int for_response, struct buf *out)
{
    static const char *const texts[] = {
        [IMAP_SECTION_NONE] = "", [IMAP_SECTION_HEADER] = "HEADER",
        [IMAP_SECTION_HEADER_FIELDS] = "HEADER.FIELDS",
        [IMAP_SECTION_HEADER_FIELDS_NOT] = "HEADER.FIELDS.NOT",
        [IMAP_SECTION_TEXT] = "TEXT", [IMAP_SECTION_MIME] = "MIME",
    };
    size_t namelen = strlen(sec->name);
    if (for_response && namelen > 5 && !strcmp(sec->name + namelen - 5, ".PEEK")) namelen -= 5;
    buf_append(out, sec->name, namelen);
    buf_putc(out, '[');
    for (size_t i = 0; i < sec->nparts; i++)
        buf_printf(out, "%s%u", i ? "." : "", (unsigned)sec->parts[i]);
    if (sec->text != IMAP_SECTION_NONE) {
        if (sec->nparts) buf_putc(out, '.');
        buf_appends(out, texts[sec->text]);
        if (sec->text == IMAP_SECTION_HEADER_FIELDS || sec->text == IMAP_SECTION_HEADER_FIELDS_NOT) {
            buf_appends(out, " (");
            for (size_t i = 0; i < sec->nfields; i++) {
                if (i) buf_putc(out, ' ');
                imap_astring_append(out, sec->fields[i], strlen(sec->fields[i]));
            }
            buf_putc(out, ')');
        }
    }
    buf_putc(out, ']');
    if (sec->has_partial) {
        if (for_response) buf_printf(out, "<%u>", (unsigned)sec->partial_offset);
        else buf_printf(out, "<%u.%u>", (unsigned)sec->partial_offset,
                        (unsigned)sec->partial_count);
    }
}

void imap_arg_format(const struct imap_arg *a, struct buf *out)
{
    switch (a->type) {
    case IMAP_ARG_ATOM: case IMAP_ARG_NIL:
        buf_append(out, a->s, a->len);
        break;
    case IMAP_ARG_QUOTED: case IMAP_ARG_LITERAL:
        if (a->literal8) {
            buf_printf(out, "~{%zu}\r\n", a->len);
            buf_append(out, a->s, a->len);
        } else {
            imap_string_append(out, a->s, a->len);
        }
        break;
    case IMAP_ARG_LIST:
        buf_putc(out, '(');
        for (size_t i = 0; i < a->count; i++) {
            if (i) buf_putc(out, ' ');
            imap_arg_format(&a->list[i], out);
        }
        buf_putc(out, ')');
        break;
    case IMAP_ARG_SECTION:
        imap_section_format(a->section, 0, out);
        break;
    }
}
