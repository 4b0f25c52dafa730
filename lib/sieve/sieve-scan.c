/* sieve-scan.c: a lexical walk over a Sieve script (RFC 5228 section 8.1) that finds the
 * folders its fileinto commands name, for ManageSieve's warnings, and the methods of its
 * notify commands, which libsieve parses whatever they are. libsieve compiles the script;
 * this only reads tokens, so it never decides whether a script is valid. */
#include "sieve/sieve.h"
#include "core/buf.h"
#include <string.h>
#include <strings.h>

enum tok { T_EOF, T_IDENT, T_TAG, T_STRING, T_PUNCT };

struct lex {
    const char *p, *end;
    int line;
};

static int is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
static int is_alnum(char c) { return is_alpha(c) || (c >= '0' && c <= '9'); }

/* skip_space: white space and both kinds of comment. */
static void skip_space(struct lex *l)
{
    while (l->p < l->end) {
        char c = *l->p;
        if (c == '\n') {
            l->line++;
            l->p++;
        } else if (c == ' ' || c == '\t' || c == '\r') {
            l->p++;
        } else if (c == '#') {
            while (l->p < l->end && *l->p != '\n') l->p++;
        } else if (c == '/' && l->p + 1 < l->end && l->p[1] == '*') {
            l->p += 2;
            while (l->p < l->end && !(*l->p == '*' && l->p + 1 < l->end && l->p[1] == '/')) {
                if (*l->p == '\n') l->line++;
                l->p++;
            }
            l->p = l->p < l->end ? l->p + 2 : l->end;
        } else {
            break;
        }
    }
}

/* multiline: the body of "text:" (after the keyword) up to the line holding a lone ".", with
 * dot-stuffing undone (RFC 5228 section 2.4.2). */
static void multiline(struct lex *l, struct buf *text)
{
    while (l->p < l->end && *l->p != '\n') l->p++;        /* the rest of the text: line */
    if (l->p < l->end) {
        l->p++;
        l->line++;
    }
    while (l->p < l->end) {
        const char *eol = memchr(l->p, '\n', (size_t)(l->end - l->p));
        const char *stop = eol ? eol : l->end;
        size_t n = (size_t)(stop - l->p);
        if (n && l->p[n - 1] == '\r') n--;
        const char *s = l->p;
        l->p = eol ? eol + 1 : l->end;
        l->line++;
        if (n == 1 && s[0] == '.') return;
        if (n && s[0] == '.') {
            s++;
            n--;
        }
        buf_append(text, s, n);
        buf_appends(text, "\n");
    }
}

/* next: the next token; identifiers, tags and strings into text (reset first), a punctuation
 * character as *punct. *line_r is the line the token starts on. */
static enum tok next(struct lex *l, struct buf *text, char *punct, int *line_r)
{
    buf_reset(text);
    skip_space(l);
    *line_r = l->line;
    if (l->p >= l->end) return T_EOF;
    char c = *l->p;
    if (c == '"') {
        for (l->p++; l->p < l->end && *l->p != '"'; l->p++) {
            if (*l->p == '\\' && l->p + 1 < l->end) l->p++;
            if (*l->p == '\n') l->line++;
            buf_putc(text, *l->p);
        }
        if (l->p < l->end) l->p++;
        return T_STRING;
    }
    if (is_alpha(c) || (c == ':' && l->p + 1 < l->end && is_alpha(l->p[1]))) {
        const char *s = l->p++;
        while (l->p < l->end && is_alnum(*l->p)) l->p++;
        buf_append(text, s, (size_t)(l->p - s));
        if (c != ':' && l->p < l->end && *l->p == ':' && !strcasecmp(buf_cstr(text), "text")) {
            l->p++;
            buf_reset(text);
            multiline(l, text);
            return T_STRING;
        }
        return c == ':' ? T_TAG : T_IDENT;
    }
    *punct = c;
    l->p++;
    return T_PUNCT;
}

void sieve_scan_fileinto(const char *script, size_t len, sieve_fileinto_cb *cb, void *rock)
{
    struct lex l = { script, script + len, 1 };
    struct buf text = BUF_INIT;
    char punct = 0;
    int line;
    enum tok t;
    while ((t = next(&l, &text, &punct, &line)) != T_EOF) {
        if (t != T_IDENT || strcasecmp(buf_cstr(&text), "fileinto")) continue;
        /* fileinto [:copy] [:create] [:flags <string-list>] <folder: string> */
        int flags_arg = 0;
        for (;;) {
            t = next(&l, &text, &punct, &line);
            if (t == T_TAG) {
                flags_arg = !strcasecmp(buf_cstr(&text), ":flags");
            } else if (t == T_STRING && flags_arg) {
                flags_arg = 0;
            } else if (t == T_STRING) {
                cb(rock, buf_cstr(&text), line);
                break;
            } else if (t == T_PUNCT && punct == '[') {
                while ((t = next(&l, &text, &punct, &line)) != T_EOF &&
                       !(t == T_PUNCT && punct == ']')) {}
                flags_arg = 0;
            } else {
                break;
            }
        }
    }
    buf_fini(&text);
}

void sieve_scan_notify(const char *script, size_t len, sieve_fileinto_cb *cb, void *rock)
{
    struct lex l = { script, script + len, 1 };
    struct buf text = BUF_INIT;
    char punct = 0;
    int line;
    enum tok t;
    while ((t = next(&l, &text, &punct, &line)) != T_EOF) {
        if (t != T_IDENT || strcasecmp(buf_cstr(&text), "notify")) continue;
        /* notify [:method string] [:id string] [:options string-list] [:low / :normal /
         * :high] [:message string]: up to the ';' that ends it */
        while ((t = next(&l, &text, &punct, &line)) != T_EOF && !(t == T_PUNCT && punct == ';')) {
            if (t != T_TAG || strcasecmp(buf_cstr(&text), ":method")) continue;
            if ((t = next(&l, &text, &punct, &line)) == T_STRING) cb(rock, buf_cstr(&text), line);
            if (t == T_EOF || (t == T_PUNCT && punct == ';')) break;
        }
    }
    buf_fini(&text);
}
