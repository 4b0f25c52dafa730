/* msieve-parse.h: the ManageSieve command grammar (RFC 5804 section 4): a command name, then
 * quoted strings, literals ({n+} and {n}) and numbers, over one or more lines when literals
 * are used. Pure: the session feeds it lines and literal bytes (also test/fuzz/fuzz-msieve). */
#ifndef COFFER_SIEVED_MSIEVE_PARSE_H
#define COFFER_SIEVED_MSIEVE_PARSE_H
#include <stddef.h>

#define MSIEVE_MAX_ARGS 8              /* the most any command takes is 2; extra is an error */
#define MSIEVE_MAX_NUMBER 4294967295ULL /* RFC 5804 section 4: number = 0..4294967295 */

enum msieve_arg_type { MSIEVE_STRING, MSIEVE_NUMBER };

struct msieve_arg {
    enum msieve_arg_type type;
    char *s;                   /* MSIEVE_STRING: owned, NUL-terminated (may hold NULs: len) */
    size_t len;
    unsigned long long num;    /* MSIEVE_NUMBER */
};

struct msieve_command {
    char *name;                /* upper case; NULL in response mode or before the first line */
    struct msieve_arg args[MSIEVE_MAX_ARGS];
    size_t nargs;
};

struct msieve_parser {
    struct msieve_command cmd;
    int response;              /* parse a SASL response: strings only, no command name */
    int started;               /* the first line was fed */
    size_t literal;            /* the literal being waited for */
};

enum msieve_step {
    MSIEVE_DONE,               /* the command is complete in p->cmd */
    MSIEVE_LITERAL,            /* *literal_r bytes follow: msieve_parse_literal, then the
                                * next line goes to msieve_parse_line */
    MSIEVE_ERROR,              /* *err_r says why (static text); reset before the next one */
};

/* msieve_parser_init: ready for a command (response = 0) or a SASL client response
 * (response = 1: one string, quoted or literal). msieve_parser_reset frees the command and
 * starts again in the same mode. */
void msieve_parser_init(struct msieve_parser *p, int response);
void msieve_parser_reset(struct msieve_parser *p);

/* msieve_parse_line: the next line of the command (without CRLF; may hold NULs). */
enum msieve_step msieve_parse_line(struct msieve_parser *p, const char *line, size_t len,
                                   size_t *literal_r, const char **err_r);

/* msieve_parse_literal: the bytes of the literal MSIEVE_LITERAL asked for (a string argument;
 * data may be NULL when len is 0 or the caller refused it: then an empty string). */
void msieve_parse_literal(struct msieve_parser *p, const char *data, size_t len);

#endif
