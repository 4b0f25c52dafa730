/* imap-parser.h: an incremental reader of IMAP commands (RFC 3501 section 9, RFC 7888
 * LITERAL+ and LITERAL-, RFC 3516 literal8 ~{N} in APPEND and REPLACE only): it reads a line,
 * then each literal the line announces, asking the session to send "+ Ready for literal data"
 * before a synchronizing literal, and returns the tag, the command name and the arguments as
 * typed tokens.
 *
 * The bytes come from a struct imap_source: imap_parser_source_stream() wraps a struct stream
 * (imap-parser-stream.c, needs coffer_net), imap_memsource (imap-memsource.h) wraps a buffer
 * for unit tests and fuzzing. */
#ifndef COFFER_IMAP_IMAP_PARSER_H
#define COFFER_IMAP_IMAP_PARSER_H
#include "core/buf.h"
#include "imap/imap-arg.h"
#include <stddef.h>

/* Where the command bytes come from. Every function blocks until it is done and returns 0 or
 * a negative CF_E_* code; CF_E_EOF, CF_E_TIMEOUT, CF_E_SHUTDOWN, CF_E_IO and CF_E_TLS end the
 * session and are passed through unchanged to imap_parser_read's caller. */
struct imap_source {
    void *ctx;
    /* The next line without CRLF replaces line's contents. CF_E_LIMIT when the line is
     * longer than the limit: the rest of it is discarded, and line may hold its start. */
    int (*read_line)(void *ctx, struct buf *line);
    /* Append exactly n bytes to out. */
    int (*read_exact)(void *ctx, size_t n, struct buf *out);
    /* Read and throw away exactly n bytes (a rejected non-synchronizing literal). */
    int (*skip)(void *ctx, size_t n);
    /* Send "+ Ready for literal data" CRLF (RFC 3501 section 7.5) and flush. */
    int (*go_ahead)(void *ctx);
};

struct imap_parser_limits {
    size_t max_line;        /* longest line, CRLF excluded; the source enforces it */
    size_t max_literal;     /* largest literal */
    size_t max_command;     /* all lines (with CRLF) and literals of one command together */
    unsigned max_depth;     /* deepest nesting of parenthesized lists */
    size_t max_args;        /* arguments of one command at any depth (list items and
                             * HEADER.FIELDS names count); 0: no limit */
    int literal_minus;      /* RFC 7888 LITERAL- instead of LITERAL+: {N+} only up to 4096 */
    int nonsync_too_big_fatal;  /* a non-synchronizing literal over max_literal or
                             * max_command is not read: the error is fatal (RFC 7888 section 4
                             * allows BAD and closing); 0: it is read and thrown away */
};

/* imap_parser_limits_default: 64 KiB lines, 64 MiB literals, max_command = max_literal plus
 * 1 MiB, depth 16, no argument limit, LITERAL+, oversized non-synchronizing literals skipped. */
void imap_parser_limits_default(struct imap_parser_limits *lim);

struct imap_command {
    const char *tag;            /* NULL when no tag could be read */
    const char *name;           /* upper case; NULL when it could not be read */
    const struct imap_arg *args;
    size_t nargs;
    size_t size;                /* bytes of lines (with CRLF) and literals */
    unsigned literals;          /* how many literals it carried */
};

struct imap_parser;

/* imap_parser_new: a parser reading from src (copied; src->ctx is not owned). */
struct imap_parser *imap_parser_new(const struct imap_source *src,
                                    const struct imap_parser_limits *lim);
void imap_parser_free(struct imap_parser **p);

/* imap_parser_read: block until one command has been read.
 * Returns 0 with *cmd filled in; its strings and arguments belong to the parser and stay
 * valid until the next imap_parser_read or imap_parser_free.
 * On malformed input returns CF_E_PARSE, on a size limit CF_E_LIMIT: cmd->tag is the tag
 * when it could be read (answer "TAG BAD ..."), else NULL (answer "* BAD ..."), and
 * imap_parser_error() says why. The rest of the bad command has been consumed (a
 * non-synchronizing literal is read and thrown away; no "+" is sent for a rejected
 * synchronizing one), so the next call starts on the next command, unless
 * imap_parser_fatal() is set: then the input cannot be resynchronized and the session must
 * say BYE and close.
 * Empty lines between commands are skipped. Source errors (CF_E_EOF, ...) are returned
 * unchanged. */
int imap_parser_read(struct imap_parser *p, struct imap_command *cmd);

/* imap_parser_error: a short English reason for the last CF_E_PARSE/CF_E_LIMIT, fit to
 * follow "BAD " ("Line too long", "Unterminated quoted string"). Never NULL. */
const char *imap_parser_error(const struct imap_parser *p);

/* imap_parser_error_code: the response code for the last error without brackets ("TOOBIG"
 * for a literal or command over its limit, RFC 7888 section 4 / RFC 4469; "LIMIT" for too
 * many arguments, RFC 5530 section 3), or NULL. */
const char *imap_parser_error_code(const struct imap_parser *p);

/* imap_parser_fatal: 1 when the last error left the input unsynchronized. */
int imap_parser_fatal(const struct imap_parser *p);

/* imap_parser_refused_literal: 1 when the last error (CF_E_LIMIT, "TOOBIG") refused a
 * synchronizing literal for its size (over max_literal, or the command over max_command)
 * before the go-ahead, so none of its bytes were sent: the command was understood and can
 * be answered NO [TOOBIG] rather than BAD (APPEND: RFC 7889 section 4, RFC 4469). 0 for
 * every other error, including an oversized non-synchronizing literal. */
int imap_parser_refused_literal(const struct imap_parser *p);

/* imap_parser_set_limits: change the limits from the next command on. */
void imap_parser_set_limits(struct imap_parser *p, const struct imap_parser_limits *lim);

struct stream;
/* imap_parser_source_stream: fill src to read from stream s (imap-parser-stream.c). The
 * caller sets the stream's max line to the same max_line. */
void imap_parser_source_stream(struct imap_source *src, struct stream *s);

#endif
