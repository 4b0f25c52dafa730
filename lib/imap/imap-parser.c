/* imap-parser.c: reads one IMAP command at a time: a line, then each literal it announces. */
#include "imap/imap-parser.h"
#include "core/arena.h"
#include "core/error.h"
#include "core/xmalloc.h"
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define LITERAL_MINUS_MAX 4096      /* RFC 7888 section 4 */

/* What is known about a literal announced at the end of the current line. */
enum tail_state {
    TAIL_PENDING,   /* not yet read: if the command is abandoned, resync() deals with it */
    TAIL_UNKNOWN,   /* the line was too long and its end was thrown away by the source */
};

struct argvec {
    struct imap_arg *v;
    size_t n, alloc;
};

struct imap_parser {
    struct imap_source src;
    struct imap_parser_limits lim;
    struct arena arena;             /* arguments and strings of the current command */
    struct buf line;                /* the current line, without CRLF */
    size_t pos;                     /* parse position in line */
    enum tail_state tail;
    char **lits;                    /* literal bytes of the current command (owned) */
    size_t nlits, alits;
    size_t size;                    /* bytes of the current command so far */
    size_t nargs;                   /* arguments of the current command so far, at any depth */
    unsigned literals;
    const char *tag, *name;
    char err[200];
    const char *err_code;
    int fatal;
    int refused_sync;               /* the error refused a {N} for its size, before any "+" */
    int literal8_ok;                /* APPEND, REPLACE or UID REPLACE: literal8 is allowed */
};

void imap_parser_limits_default(struct imap_parser_limits *lim)
{
    lim->max_line = 64 * 1024;
    lim->max_literal = 64 * 1024 * 1024;
    lim->max_command = lim->max_literal + 1024 * 1024;
    lim->max_depth = 16;
    lim->max_args = 0;
    lim->literal_minus = 0;
    lim->nonsync_too_big_fatal = 0;
}

struct imap_parser *imap_parser_new(const struct imap_source *src,
                                    const struct imap_parser_limits *lim)
{
    struct imap_parser *p = xzmalloc(sizeof *p);
    p->src = *src;
    if (lim) p->lim = *lim;
    else imap_parser_limits_default(&p->lim);
    arena_init(&p->arena, 4096);
    buf_init(&p->line);
    return p;
}

static void free_literals(struct imap_parser *p)
{
    for (size_t i = 0; i < p->nlits; i++) free(p->lits[i]);
    p->nlits = 0;
}

void imap_parser_free(struct imap_parser **pp)
{
    struct imap_parser *p = *pp;
    if (!p) return;
    free_literals(p);
    free(p->lits);
    arena_fini(&p->arena);
    buf_fini(&p->line);
    free(p);
    *pp = NULL;
}

void imap_parser_set_limits(struct imap_parser *p, const struct imap_parser_limits *lim)
{
    p->lim = *lim;
}

const char *imap_parser_error(const struct imap_parser *p) { return p->err; }
const char *imap_parser_error_code(const struct imap_parser *p) { return p->err_code; }
int imap_parser_fatal(const struct imap_parser *p) { return p->fatal; }
int imap_parser_refused_literal(const struct imap_parser *p) { return p->refused_sync; }

/* fail: record why the command is rejected; returns err (CF_E_PARSE or CF_E_LIMIT). */
static int fail(struct imap_parser *p, int err, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int fail(struct imap_parser *p, int err, const char *code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->err, sizeof p->err, fmt, ap);
    va_end(ap);
    p->err_code = code;
    return err;
}

/* ---- characters (RFC 3501 section 9) ---- */

/* ATOM-CHAR: any CHAR except atom-specials ( ) { SP CTL % * " \ ] */
static int is_atom_char(unsigned char c)
{
    if (c <= 0x20 || c >= 0x7f) return 0;
    return !strchr("(){%*\"\\]", c);
}

/* tag = 1*<any ASTRING-CHAR except "+">; ASTRING-CHAR = ATOM-CHAR / "]" */
static int is_tag_char(unsigned char c)
{
    return c != '+' && (is_atom_char(c) || c == ']');
}

/* What this parser accepts inside an atom argument: ATOM-CHAR plus the list wildcards % and *
 * (list-mailbox, sequence sets) and "]" (astring). A leading "\" (flags) is handled apart. */
static int is_arg_atom_char(unsigned char c)
{
    return is_atom_char(c) || c == '%' || c == '*' || c == ']';
}

static int is_digit(int c) { return c >= '0' && c <= '9'; }

static int at_end(const struct imap_parser *p) { return p->pos >= p->line.len; }
static int peek(const struct imap_parser *p)
{
    return at_end(p) ? -1 : (unsigned char)p->line.s[p->pos];
}

/* describe: a printable name for the character c, for error messages. */
static const char *describe(int c, char *tmp, size_t n)
{
    if (c < 0) return "end of line";
    if (c == ' ') return "space";
    if (c > 0x20 && c < 0x7f) snprintf(tmp, n, "'%c'", c);
    else snprintf(tmp, n, "0x%02x", c);
    return tmp;
}

/* ---- argument vectors: grown in the heap, copied into the arena when complete ---- */

/* count_arg: one more argument (at any depth, header field names included); CF_E_LIMIT past
 * max_args. Each argument costs about 80 bytes whatever its size on the wire ("" is 3 bytes),
 * so the count is capped apart from the command's size (review M3). */
static int count_arg(struct imap_parser *p)
{
    if (p->lim.max_args && ++p->nargs > p->lim.max_args)
        return fail(p, CF_E_LIMIT, "LIMIT", "Too many arguments (limit %zu)", p->lim.max_args);
    return 0;
}

static struct imap_arg *argvec_push(struct argvec *a)
{
    if (a->n == a->alloc) {
        a->alloc = a->alloc ? a->alloc * 2 : 8;
        a->v = xreallocarray(a->v, a->alloc, sizeof *a->v);
    }
    memset(&a->v[a->n], 0, sizeof a->v[0]);
    return &a->v[a->n++];
}

static const struct imap_arg *argvec_finish(struct imap_parser *p, struct argvec *a,
                                            size_t *count)
{
    struct imap_arg *out = NULL;
    *count = a->n;
    if (a->n) {
        out = arena_alloc(&p->arena, a->n * sizeof *out);
        memcpy(out, a->v, a->n * sizeof *out);
    }
    free(a->v);
    memset(a, 0, sizeof *a);
    return out;
}

/* ---- lines ---- */

/* take_line: account for a freshly read line and check it. */
static int take_line(struct imap_parser *p)
{
    p->pos = 0;
    p->tail = TAIL_PENDING;
    p->size += p->line.len + 2;
    if (p->size > p->lim.max_command)
        return fail(p, CF_E_LIMIT, "TOOBIG", "Command too long");
    if (p->line.len && memchr(p->line.s, '\0', p->line.len))
        return fail(p, CF_E_PARSE, NULL, "NUL character in command line");
    return 0;
}

/* next_line: read the line that continues the command after a literal. */
static int next_line(struct imap_parser *p)
{
    buf_reset(&p->line);
    int r = p->src.read_line(p->src.ctx, &p->line);
    if (r == CF_E_LIMIT) {
        p->tail = TAIL_UNKNOWN;
        return fail(p, CF_E_LIMIT, NULL, "Line too long");
    }
    if (r < 0) return r;
    return take_line(p);
}

/* tail_literal: 1 when line ends with {N} or {N+} (also literal8 ~{N}: *n, *nonsync set), 0 when not, -1 when
 * it does but N does not fit in 64 bits. */
static int tail_literal(const char *s, size_t len, uint64_t *n, int *nonsync)
{
    if (len < 3 || s[len - 1] != '}') return 0;
    size_t end = len - 1;
    *nonsync = 0;
    if (s[end - 1] == '+') { *nonsync = 1; end--; }
    size_t start = end;
    while (start > 0 && is_digit(s[start - 1])) start--;
    if (start == end || start == 0 || s[start - 1] != '{') return 0;
    uint64_t v = 0;
    for (size_t i = start; i < end; i++) {
        if (v > (UINT64_MAX - 9) / 10) return -1;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    *n = v;
    return 1;
}

/* resync: after a rejected command, consume what the client will still send of it: every
 * non-synchronizing literal and the line after it. A synchronizing literal ends it, since
 * the client waits for a "+" that never comes (RFC 3501 section 7.5). */
static int resync(struct imap_parser *p)
{
    if (p->tail == TAIL_UNKNOWN || p->fatal) return 0;
    for (;;) {
        uint64_t n;
        int nonsync;
        int t = tail_literal(p->line.s, p->line.len, &n, &nonsync);
        if (t == 0 || (t > 0 && !nonsync)) return 0;
        if (t < 0 || n > UINT32_MAX) {
            /* not a size any IMAP client can send (RFC 3501 number is 32 bits): we cannot
             * know where the command ends */
            if (nonsync) p->fatal = 1;
            return 0;
        }
        if (n > p->lim.max_literal && p->lim.nonsync_too_big_fatal) {
            p->fatal = 1;               /* as in parse_literal: not worth reading */
            return 0;
        }
        int r = p->src.skip(p->src.ctx, (size_t)n);
        if (r < 0) return r;
        buf_reset(&p->line);
        r = p->src.read_line(p->src.ctx, &p->line);
        if (r == CF_E_LIMIT) return 0;
        if (r < 0) return r;
    }
}

/* ---- tokens ---- */

/* parse_number: RFC 3501 number (32 bits); with nz, nz-number (no leading zero, not 0). */
static int parse_number(struct imap_parser *p, int nz, uint32_t *out, const char *what)
{
    size_t start = p->pos;
    uint64_t v = 0;
    while (is_digit(peek(p))) {
        v = v * 10 + (uint64_t)(p->line.s[p->pos] - '0');
        if (v > UINT32_MAX) return fail(p, CF_E_PARSE, NULL, "%s is too large", what);
        p->pos++;
    }
    if (p->pos == start) return fail(p, CF_E_PARSE, NULL, "Invalid %s", what);
    if (nz && p->line.s[start] == '0') return fail(p, CF_E_PARSE, NULL, "Invalid %s", what);
    *out = (uint32_t)v;
    return 0;
}

/* parse_quoted: at the opening quote. The string is measured first and then copied into a
 * block of exactly its size: reserving the rest of the line for each string made a line of
 * many short strings cost memory quadratic in its length (review H1). */
static int parse_quoted(struct imap_parser *p, struct imap_arg *arg)
{
    size_t start = ++p->pos, i = start, n = 0;  /* after the opening quote */
    const char *s = p->line.s;
    for (;;) {
        if (i >= p->line.len) {
            p->pos = i;
            return fail(p, CF_E_PARSE, NULL, "Unterminated quoted string");
        }
        if (s[i] == '"') break;
        if (s[i] == '\\') {
            if (++i >= p->line.len) continue;          /* unterminated: reported above */
            if (s[i] != '"' && s[i] != '\\') {
                p->pos = i + 1;
                return fail(p, CF_E_PARSE, NULL, "Invalid escape in quoted string");
            }
        }
        i++;
        n++;
    }
    char *out = arena_alloc(&p->arena, n + 1);
    size_t k = 0;
    for (size_t j = start; j < i; j++) {
        if (s[j] == '\\') j++;
        out[k++] = s[j];
    }
    out[k] = '\0';
    p->pos = i + 1;                             /* past the closing quote */
    arg->type = IMAP_ARG_QUOTED;
    arg->s = out;
    arg->len = n;
    return 0;
}

static void keep_literal(struct imap_parser *p, char *bytes)
{
    if (p->nlits == p->alits) {
        p->alits = p->alits ? p->alits * 2 : 4;
        p->lits = xreallocarray(p->lits, p->alits, sizeof *p->lits);
    }
    p->lits[p->nlits++] = bytes;
}

/* parse_literal: at "{" (or at "~{" with literal8: RFC 3516 section 4.4, whose bytes may
 * include NUL). The announcement must end the line; then the bytes are read (after a go-ahead
 * for a synchronizing literal) and the next line becomes current. */
static int parse_literal(struct imap_parser *p, struct imap_arg *arg, int literal8)
{
    if (literal8) p->pos++;                     /* "~" */
    p->pos++;
    uint64_t n = 0;
    size_t start = p->pos;
    while (is_digit(peek(p))) {
        if (n > (UINT64_MAX - 9) / 10) return fail(p, CF_E_LIMIT, "TOOBIG", "Literal too large");
        n = n * 10 + (uint64_t)(p->line.s[p->pos++] - '0');
    }
    if (p->pos == start) return fail(p, CF_E_PARSE, NULL, "Invalid literal size");
    int nonsync = 0;
    if (peek(p) == '+') { nonsync = 1; p->pos++; }
    if (peek(p) != '}') return fail(p, CF_E_PARSE, NULL, "Invalid literal size");
    p->pos++;
    if (!at_end(p)) return fail(p, CF_E_PARSE, NULL, "Literal size must end the line");
    if (nonsync && p->lim.literal_minus && n > LITERAL_MINUS_MAX)
        return fail(p, CF_E_LIMIT, "TOOBIG",
                    "Non-synchronizing literal larger than %d bytes", LITERAL_MINUS_MAX);
    if (n > p->lim.max_literal || n > UINT32_MAX || p->size + n > p->lim.max_command) {
        /* RFC 7888 section 4 lets a server answer a non-synchronizing literal over its limit
         * with BAD and close the connection instead of reading it: done when the limits ask
         * (before login, where reading megabytes only to throw them away helps nobody) */
        if (nonsync && p->lim.nonsync_too_big_fatal) p->fatal = 1;
        /* a synchronizing one was never sent: APPEND may say NO [TOOBIG] (RFC 7889 section 4) */
        if (!nonsync) p->refused_sync = 1;
        if (n > p->lim.max_literal || n > UINT32_MAX)
            return fail(p, CF_E_LIMIT, "TOOBIG", "Literal too large (limit %zu bytes)",
                        p->lim.max_literal);
        return fail(p, CF_E_LIMIT, "TOOBIG", "Command too long");
    }
    int r;
    if (!nonsync && (r = p->src.go_ahead(p->src.ctx)) < 0) return r;
    struct buf b = BUF_INIT;
    buf_ensure(&b, (size_t)n);      /* exactly n (+1): growing by doubling would peak at 2n */
    r = p->src.read_exact(p->src.ctx, (size_t)n, &b);
    if (r < 0) {
        buf_fini(&b);
        return r;
    }
    size_t len = b.len;
    char *bytes = buf_release(&b);
    keep_literal(p, bytes);
    p->size += len;
    p->literals++;
    arg->type = IMAP_ARG_LITERAL;
    arg->s = bytes;
    arg->len = len;
    arg->nonsync = nonsync;
    arg->literal8 = literal8;
    r = next_line(p);
    if (r < 0) return r;
    /* RFC 3501 section 9: literal is *CHAR8, and CHAR8 excludes NUL (literal8 is *OCTET) */
    if (!literal8 && len && memchr(bytes, '\0', len))
        return fail(p, CF_E_PARSE, NULL, "NUL character in literal");
    return 0;
}

static int parse_arg(struct imap_parser *p, unsigned depth, struct imap_arg *arg);

/* is_section_name: the fetch attributes that take a [section] (RFC 3501 section 6.4.5,
 * RFC 3516 section 4.1). */
static int is_section_name(const char *s, size_t n)
{
    static const char *const names[] = { "BODY", "BODY.PEEK", "BINARY", "BINARY.PEEK",
                                         "BINARY.SIZE" };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strlen(names[i]) == n && !strncasecmp(s, names[i], n)) return 1;
    return 0;
}

/* parse_header_list: at "(" of HEADER.FIELDS (name ...); names are astrings. */
static int parse_header_list(struct imap_parser *p, unsigned depth, struct imap_section *sec)
{
    if (depth + 1 > p->lim.max_depth) return fail(p, CF_E_PARSE, NULL, "Lists nested too deeply");
    p->pos++;
    const char **names = NULL;
    size_t n = 0, alloc = 0;
    int r;
    for (;;) {
        if (peek(p) == ')' || peek(p) == ' ' || at_end(p)) {
            r = fail(p, CF_E_PARSE, NULL, n ? "Invalid header field list" : "Empty header field list");
            goto out;
        }
        struct imap_arg a;
        memset(&a, 0, sizeof a);
        if ((r = count_arg(p))) goto out;
        r = parse_arg(p, depth + 1, &a);
        if (r) goto out;
        const char *s = imap_arg_astring(&a);
        if (!s) {
            r = fail(p, CF_E_PARSE, NULL, "Invalid header field name");
            goto out;
        }
        if (n == alloc) {
            alloc = alloc ? alloc * 2 : 4;
            names = xreallocarray(names, alloc, sizeof *names);
        }
        names[n++] = s;
        int c = peek(p);
        if (c == ')') { p->pos++; break; }
        if (c != ' ') {
            r = fail(p, CF_E_PARSE, NULL, c < 0 ? "Missing ')' in header field list"
                                                : "Invalid header field list");
            goto out;
        }
        p->pos++;
    }
    const char **copy = arena_alloc(&p->arena, n * sizeof *copy);
    memcpy(copy, names, n * sizeof *copy);
    sec->fields = copy;
    sec->nfields = n;
    r = 0;
out:
    free(names);
    return r;
}

static int is_section_word_char(char c)
{
    return c == '.' || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

/* parse_section: at "[" after one of the section names at line[start..pos). */
static int parse_section(struct imap_parser *p, unsigned depth, size_t start,
                         struct imap_arg *arg)
{
    struct imap_section *sec = arena_zalloc(&p->arena, sizeof *sec);
    size_t namelen = p->pos - start;
    char *name = arena_strndup(&p->arena, p->line.s + start, namelen);
    for (char *c = name; *c; c++) if (*c >= 'a' && *c <= 'z') *c = (char)(*c - 32);
    sec->name = name;
    int binary = !strncmp(name, "BINARY", 6);
    p->pos++;                                       /* "[" */

    uint32_t *parts = NULL;
    size_t nparts = 0;
    int r, need_text = 0;
    while (is_digit(peek(p))) {
        uint32_t v;
        if ((r = parse_number(p, 1, &v, "section part number"))) goto out;
        parts = xreallocarray(parts, nparts + 1, sizeof *parts);
        parts[nparts++] = v;
        if (peek(p) != '.') break;
        p->pos++;
        if (!is_digit(peek(p))) { need_text = 1; break; }
    }
    if (nparts) {
        uint32_t *copy = arena_alloc(&p->arena, nparts * sizeof *copy);
        memcpy(copy, parts, nparts * sizeof *copy);
        sec->parts = copy;
        sec->nparts = nparts;
    }
    if (need_text || (!nparts && peek(p) != ']' && !at_end(p))) {
        size_t w = p->pos;
        while (!at_end(p) && is_section_word_char(p->line.s[p->pos])) p->pos++;
        const char *word = p->line.s + w;
        size_t wl = p->pos - w;
#define IS(lit) (wl == sizeof(lit) - 1 && !strncasecmp(word, lit, wl))
        if (binary) r = fail(p, CF_E_PARSE, NULL, "Invalid %s section", name);
        else if (IS("HEADER")) { sec->text = IMAP_SECTION_HEADER; r = 0; }
        else if (IS("TEXT")) { sec->text = IMAP_SECTION_TEXT; r = 0; }
        else if (IS("MIME") && nparts) { sec->text = IMAP_SECTION_MIME; r = 0; }
        else if (IS("HEADER.FIELDS") || IS("HEADER.FIELDS.NOT")) {
            sec->text = wl == 13 ? IMAP_SECTION_HEADER_FIELDS : IMAP_SECTION_HEADER_FIELDS_NOT;
            if (peek(p) != ' ') r = fail(p, CF_E_PARSE, NULL, "Missing header field list");
            else {
                p->pos++;
                if (peek(p) != '(') r = fail(p, CF_E_PARSE, NULL, "Missing header field list");
                else r = parse_header_list(p, depth, sec);
            }
        } else r = fail(p, CF_E_PARSE, NULL, "Invalid section");
#undef IS
        if (r) goto out;
    }
    if (peek(p) != ']') {
        r = fail(p, CF_E_PARSE, NULL, at_end(p) ? "Missing ']' after section" : "Invalid section");
        goto out;
    }
    p->pos++;
    if (peek(p) == '<') {
        if (!strcmp(name, "BINARY.SIZE")) {
            r = fail(p, CF_E_PARSE, NULL, "BINARY.SIZE takes no partial range");
            goto out;
        }
        p->pos++;
        if ((r = parse_number(p, 0, &sec->partial_offset, "partial offset"))) goto out;
        if (peek(p) != '.') { r = fail(p, CF_E_PARSE, NULL, "Invalid partial range"); goto out; }
        p->pos++;
        if ((r = parse_number(p, 1, &sec->partial_count, "partial length"))) goto out;
        if (peek(p) != '>') { r = fail(p, CF_E_PARSE, NULL, "Invalid partial range"); goto out; }
        p->pos++;
        sec->has_partial = 1;
    }
    if (!at_end(p) && peek(p) != ' ' && peek(p) != ')') {
        r = fail(p, CF_E_PARSE, NULL, "Invalid characters after section");
        goto out;
    }
    arg->type = IMAP_ARG_SECTION;
    arg->s = sec->name;
    arg->len = namelen;
    arg->section = sec;
    r = 0;
out:
    free(parts);
    return r;
}

static int parse_atom(struct imap_parser *p, unsigned depth, struct imap_arg *arg)
{
    size_t start = p->pos;
    char tmp[8];
    if (peek(p) == '\\') p->pos++;                 /* a flag: \Seen */
    while (!at_end(p)) {
        int c = peek(p);
        if (c == ' ' || c == ')') break;
        if (c == '[' && is_section_name(p->line.s + start, p->pos - start))
            return parse_section(p, depth, start, arg);
        if (c != '[' && !is_arg_atom_char((unsigned char)c))
            return fail(p, CF_E_PARSE, NULL, "Invalid character %s in atom",
                        describe(c, tmp, sizeof tmp));
        p->pos++;
    }
    size_t n = p->pos - start;
    if (n == 0 || (n == 1 && p->line.s[start] == '\\'))
        return fail(p, CF_E_PARSE, NULL, "Invalid flag");
    arg->s = arena_strndup(&p->arena, p->line.s + start, n);
    arg->len = n;
    arg->type = (n == 3 && !strncasecmp(arg->s, "NIL", 3)) ? IMAP_ARG_NIL : IMAP_ARG_ATOM;
    return 0;
}

/* parse_items: arguments separated by single spaces, up to the end of the command (top) or
 * up to and including ")" (a list, after its "("). */
static int parse_items(struct imap_parser *p, unsigned depth, int top, struct argvec *vec)
{
    char tmp[8];
    if (!top && peek(p) == ')') { p->pos++; return 0; }
    for (;;) {
        int c = peek(p);
        if (c == ' ') return fail(p, CF_E_PARSE, NULL, "Unexpected extra space");
        if (c < 0) return fail(p, CF_E_PARSE, NULL, top ? "Unexpected space at end of line"
                                                         : "Missing ')'");
        int r = count_arg(p);
        if (r) return r;
        r = parse_arg(p, depth, argvec_push(vec));
        if (r) return r;
        c = peek(p);
        if (c < 0) {
            if (top) return 0;
            return fail(p, CF_E_PARSE, NULL, "Missing ')'");
        }
        if (c == ')') {
            if (top) return fail(p, CF_E_PARSE, NULL, "Unexpected ')'");
            p->pos++;
            return 0;
        }
        if (c != ' ')
            return fail(p, CF_E_PARSE, NULL, "Expected space, not %s", describe(c, tmp, sizeof tmp));
        p->pos++;
    }
}

static int parse_arg(struct imap_parser *p, unsigned depth, struct imap_arg *arg)
{
    switch (peek(p)) {
    case '(': {
        if (depth + 1 > p->lim.max_depth)
            return fail(p, CF_E_PARSE, NULL, "Lists nested too deeply");
        p->pos++;
        struct argvec vec = { NULL, 0, 0 };
        int r = parse_items(p, depth + 1, 0, &vec);
        arg->type = IMAP_ARG_LIST;
        arg->list = argvec_finish(p, &vec, &arg->count);
        return r;
    }
    case ')':
        return fail(p, CF_E_PARSE, NULL, "Unexpected ')'");
    case '"':
        return parse_quoted(p, arg);
    case '{':
        return parse_literal(p, arg, 0);
    case '~':
        if (p->pos + 1 < p->line.len && p->line.s[p->pos + 1] == '{') {
            /* RFC 3516 section 4.4: literal8 is only for the message data of APPEND (and
             * its CATENATE parts, RFC 4469); the command checks the position (the string
             * accessors of imap-arg.h refuse literal8). Refused before the go-ahead, so a
             * synchronizing literal8 is never sent. */
            if (!p->literal8_ok)
                return fail(p, CF_E_PARSE, NULL, "literal8 is only allowed in APPEND");
            return parse_literal(p, arg, 1);
        }
        return parse_atom(p, depth, arg);
    default:
        return parse_atom(p, depth, arg);
    }
}

/* parse_command: tag SP name [SP arguments] on the current (first) line. */
static int parse_command(struct imap_parser *p, struct imap_command *cmd)
{
    char tmp[8];
    size_t n = 0;
    while (n < p->line.len && is_tag_char((unsigned char)p->line.s[n])) n++;
    if (n == 0) return fail(p, CF_E_PARSE, NULL, "Missing or invalid tag");
    if (n < p->line.len && p->line.s[n] != ' ')
        return fail(p, CF_E_PARSE, NULL, "Invalid character %s in tag",
                    describe((unsigned char)p->line.s[n], tmp, sizeof tmp));
    p->tag = arena_strndup(&p->arena, p->line.s, n);
    int r = take_line(p);
    if (r) return r;
    p->pos = n;
    if (at_end(p)) return fail(p, CF_E_PARSE, NULL, "Missing command");
    p->pos++;
    size_t start = p->pos;
    while (!at_end(p) && is_atom_char((unsigned char)p->line.s[p->pos])) p->pos++;
    if (p->pos == start) return fail(p, CF_E_PARSE, NULL, "Missing or invalid command name");
    char *name = arena_strndup(&p->arena, p->line.s + start, p->pos - start);
    for (char *c = name; *c; c++) if (*c >= 'a' && *c <= 'z') *c = (char)(*c - 32);
    p->name = name;
    if (!at_end(p) && peek(p) != ' ')
        return fail(p, CF_E_PARSE, NULL, "Invalid character %s in command name",
                    describe(peek(p), tmp, sizeof tmp));
    /* RFC 8508 section 3.4: REPLACE takes APPEND's append-message, literal8 included (RFC
     * 4466 append-data); UID REPLACE is told by the atom after UID. RFC 5464 section 5:
     * SETMETADATA values may be literal8 too. */
    p->literal8_ok = !strcmp(name, "APPEND") || !strcmp(name, "REPLACE") ||
                     !strcmp(name, "SETMETADATA") ||
                     (!strcmp(name, "UID") && p->line.len - p->pos >= 9 &&
                      !strncasecmp(p->line.s + p->pos, " REPLACE ", 9));
    struct argvec vec = { NULL, 0, 0 };
    if (!at_end(p)) {
        p->pos++;
        r = parse_items(p, 0, 1, &vec);
    }
    cmd->args = argvec_finish(p, &vec, &cmd->nargs);
    return r;
}

int imap_parser_read(struct imap_parser *p, struct imap_command *cmd)
{
    arena_reset(&p->arena);
    free_literals(p);
    memset(cmd, 0, sizeof *cmd);
    p->size = 0;
    p->nargs = 0;
    p->literals = 0;
    p->tag = p->name = NULL;
    p->err[0] = '\0';
    p->err_code = NULL;
    p->fatal = 0;
    p->refused_sync = 0;
    p->literal8_ok = 0;
    int r;
    do {
        buf_reset(&p->line);        /* a source may leave line untouched on CF_E_LIMIT */
        r = p->src.read_line(p->src.ctx, &p->line);
        if (r == CF_E_LIMIT) {
            /* answer with the tag when the part the source kept shows one */
            size_t n = 0;
            while (n < p->line.len && is_tag_char((unsigned char)p->line.s[n])) n++;
            if (n && n < p->line.len && p->line.s[n] == ' ')
                cmd->tag = arena_strndup(&p->arena, p->line.s, n);
            return fail(p, CF_E_LIMIT, NULL, "Line too long");
        }
        if (r < 0) return r;
    } while (p->line.len == 0);     /* stray empty lines between commands are harmless */

    p->pos = 0;
    p->tail = TAIL_PENDING;
    r = parse_command(p, cmd);
    cmd->size = p->size;
    cmd->literals = p->literals;
    cmd->tag = p->tag;
    cmd->name = p->name;
    if (r == 0) return 0;
    if (r != CF_E_PARSE && r != CF_E_LIMIT) return r;
    int r2 = resync(p);
    return r2 < 0 ? r2 : r;
}
