/* pop3-parse.h: splitting a POP3 command line, apart from the session so that the fuzz target
 * test/fuzz/fuzz-pop3.c can reach it. */
#ifndef COFFER_POP3D_POP3_PARSE_H
#define COFFER_POP3D_POP3_PARSE_H
#include "core/strarr.h"

/* A command line split at single spaces (RFC 1939 section 3, RFC 2449 section 3). */
struct pop3_command {
    char *name;                     /* the keyword in upper case */
    struct strarr args;
    const char *rest;               /* the line after the keyword and its space ("" if none);
                                     * PASS takes it whole, spaces included (RFC 1939
                                     * section 7) */
};

/* pop3_parse_line: split line into cmd: keyword (owned, upper-cased) and arguments, separated
 * by single spaces; cmd->rest points into line. The caller frees cmd->name and fini's
 * cmd->args. */
void pop3_parse_line(const char *line, struct pop3_command *cmd);

#endif
