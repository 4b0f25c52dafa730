/* mime-int.h: what the files of lib/mime share and nobody else uses: the part tree built by one
 * pass over a message, header field slices, and the RFC 2045 value lexer. */
#ifndef COFFER_MIME_MIME_INT_H
#define COFFER_MIME_MIME_INT_H
#include <stddef.h>
#include <stdint.h>
#include "core/buf.h"

/* The header fields the parser keeps (first occurrence wins, RFC 5322 section 3.6 allows only
 * one of each; a later duplicate is ignored). */
enum mime_hdr {
    MH_CONTENT_TYPE, MH_CONTENT_TRANSFER_ENCODING, MH_CONTENT_ID, MH_CONTENT_DESCRIPTION,
    MH_CONTENT_DISPOSITION, MH_CONTENT_LANGUAGE, MH_CONTENT_LOCATION, MH_CONTENT_MD5,
    MH_DATE, MH_SUBJECT, MH_FROM, MH_SENDER, MH_REPLY_TO, MH_TO, MH_CC, MH_BCC,
    MH_IN_REPLY_TO, MH_MESSAGE_ID,
    MH_COUNT
};

/* A header value as stored: the bytes after the colon up to the end of its last line, folding
 * line breaks included. p == NULL: the field is absent. */
struct mime_field { const char *p; size_t n; };

enum mime_kind { MIME_LEAF, MIME_MULTIPART, MIME_MESSAGE };
enum mime_params { MIME_PARAMS_HEADER, MIME_PARAMS_USASCII, MIME_PARAMS_NONE };

/* One entity: the whole message, a body part, or the message inside a message/rfc822 part (the
 * single child of that part). Offsets are from the start of the message. */
struct mime_node {
    size_t hoff, hlen, boff, blen;
    uint64_t lines;                 /* lines of the body (an unterminated last line counts) */
    enum mime_kind kind;
    enum mime_params params;        /* where body-fld-param comes from */
    const char *type, *subtype;     /* media type as written (or a static default) */
    size_t type_len, subtype_len;
    int parent, first_child, last_child, next, nchildren;  /* node indices, -1 = none */
    struct mime_field hdr[MH_COUNT];
};

/* The nodes in depth-first pre-order; node 0 is the whole message. */
struct mime_tree {
    struct mime_node *nodes;
    int count, alloc;
    int limited;                    /* a depth or part-count limit cut the descent */
};

/* mime_tree_parse: build the tree of msg (never fails; returns 0, or CF_E_LIMIT when a limit
 * cut the descent). t must be zeroed or fini'd; its nodes point into msg. */
int mime_tree_parse(const char *msg, size_t len, struct mime_tree *t);
void mime_tree_fini(struct mime_tree *t);

/* mime_node_is_text: 1 if the node's effective media type is text/<anything>. */
int mime_node_is_text(const struct mime_node *n);

/* ---- RFC 2045 / RFC 5322 value helpers ---- */

/* mime_skip_cfws: skip whitespace (including folding CR LF) and comments (nested, with
 * quoted-pairs); returns the first other byte or end. */
const char *mime_skip_cfws(const char *p, const char *end);

/* mime_token: the RFC 2045 token at p (8-bit bytes tolerated); returns its end (== p if none). */
const char *mime_token(const char *p, const char *end);

/* mime_parse_ctype: parse "type/subtype" at the start of a Content-Type value; returns 1 with
 * slices and *params_r at the first byte after the subtype, 0 when malformed. */
int mime_parse_ctype(const char *p, size_t n, const char **type, size_t *type_len,
                     const char **subtype, size_t *subtype_len, const char **params_r);

/* One parameter: name and the raw value (quotes removed from the ends, but quoted-pairs and
 * folding still inside when quoted is set). */
struct mime_param { const char *name; size_t name_len; const char *value; size_t value_len;
                    int quoted; };

/* mime_param_next: read the next ";name=value" from *pp (skipping junk up to the next ';');
 * returns 1 with *out, or 0 at end. */
int mime_param_next(const char **pp, const char *end, struct mime_param *out);

/* mime_param_value: append the parameter's value, unquoted and unfolded, to out. */
void mime_param_value(const struct mime_param *prm, struct buf *out);

/* mime_find_param: the first parameter called name (ASCII case-insensitive) in the params
 * text; returns 1 with its unquoted value appended to out, 0 if absent. */
int mime_find_param(const char *p, const char *end, const char *name, struct buf *out);

/* mime_ieq: 1 if the n bytes at p equal the NUL-terminated ASCII s, ignoring ASCII case. */
int mime_ieq(const char *p, size_t n, const char *s);

/* ---- preview (preview.c) ---- */

/* The preview first converts this much of the chosen part, then 8 times as much, before all
 * of its MIME_PREVIEW_SCAN_MAX bytes. */
#define MIME_PREVIEW_FIRST_SCAN 4096

/* mime_preview_tree: mime_preview from a tree already parsed from msg (t's nodes point into
 * msg). whole != 0 converts all of the part's MIME_PREVIEW_SCAN_MAX bytes at once, as
 * mime_preview did before it tried the start first: the tests' reference. Appends to out;
 * returns the bytes appended. */
size_t mime_preview_tree(const char *msg, const struct mime_tree *t, int whole, struct buf *out);

#endif
