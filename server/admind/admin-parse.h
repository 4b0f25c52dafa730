/* admin-parse.h: the command lines of the admin endpoint's line protocol (admind, man/admind.8):
 * "VERB [ARG]" with VERB one of AUTH, FENCE, UNFENCE, DUMP, RESTORE, VERIFY, REMOVE, QUIT, and
 * the data chunk header "+ LEN" of RESTORE's upload (and DUMP's download). No I/O and no
 * session state: also built into test/fuzz/fuzz-admin and tools/ (the client side of
 * `coffer user move`). */
#ifndef COFFER_ADMIN_PARSE_H
#define COFFER_ADMIN_PARSE_H
#include <stddef.h>

#define ADMIN_MAX_LINE 1024             /* longest command line, CRLF excluded */
#define ADMIN_MAX_CHUNK (1u << 20)      /* largest data chunk */
#define ADMIN_MAX_USER 255              /* longest user name argument */

enum admin_verb {
    ADMIN_AUTH = 1, ADMIN_FENCE, ADMIN_UNFENCE, ADMIN_DUMP, ADMIN_RESTORE, ADMIN_VERIFY,
    ADMIN_REMOVE, ADMIN_QUIT,
};

struct admin_cmd {
    enum admin_verb verb;
    char arg[ADMIN_MAX_LINE + 1];       /* AUTH: "PLAIN BASE64"; the others: a user name */
};

/* admin_parse: one command line (CRLF removed) of len bytes into cmd. 0, or CF_E_PARSE with a
 * short reason in *why: an unknown verb (case-insensitive), a missing or extra argument, a
 * control character or non-ASCII byte, a user name that is not 1..ADMIN_MAX_USER bytes of
 * printable ASCII without '/', '@', '%', '*' or space, or AUTH not "PLAIN" and one base64
 * word. */
int admin_parse(const char *line, size_t len, struct admin_cmd *cmd, const char **why);

/* admin_parse_chunk: a chunk header "+ LEN" (LEN decimal, no sign or leading zero, at most
 * ADMIN_MAX_CHUNK) into *n. 1 for a chunk header (LEN 0 ends the data), 0 when the line is not
 * one (the caller reads it as a command or status line), CF_E_PARSE for a "+ " line with a
 * bad length, CF_E_LIMIT for one over ADMIN_MAX_CHUNK. */
int admin_parse_chunk(const char *line, size_t len, size_t *n);

/* admin_user_valid: 1 when s is a user name the protocol accepts (as admin_parse). */
int admin_user_valid(const char *s);

#endif
