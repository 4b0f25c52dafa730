/* error.h: Coffer's error codes. Functions return 0 on success and a negative CF_E_* on failure;
 * lookups return 1 found, 0 not found, <0 error. */
#ifndef COFFER_CORE_ERROR_H
#define COFFER_CORE_ERROR_H

enum cf_error {
    CF_OK = 0,
    CF_E_IO = -1,         /* an I/O or system call failed (errno logged where it happened) */
    CF_E_NOMEM = -2,      /* reserved: allocation wrappers abort instead */
    CF_E_LIMIT = -3,      /* a configured size or count limit was exceeded */
    CF_E_PARSE = -4,      /* malformed input (config, protocol, file format) */
    CF_E_NOTFOUND = -5,   /* no such mailbox, user, key, ... */
    CF_E_EXISTS = -6,     /* already exists */
    CF_E_PERM = -7,       /* not allowed (ACL, state, configuration) */
    CF_E_TIMEOUT = -8,    /* peer idle longer than the configured timeout */
    CF_E_EOF = -9,        /* peer closed the connection */
    CF_E_TLS = -10,       /* TLS handshake or record failure */
    CF_E_CORRUPT = -11,   /* a stored file failed a magic, size or checksum check; or a
                           * corrupt compressed stream from a peer (stream_start_deflate) */
    CF_E_QUOTA = -12,     /* over quota */
    CF_E_LOCKED = -13,    /* in use by another session */
    CF_E_SHUTDOWN = -14,  /* the server is shutting down */
    CF_E_AGAIN = -15,     /* temporary failure: try again */
    CF_E_INTERNAL = -16,  /* a bug or an impossible state */
};

/* cf_strerror: a short static English text for an error code. */
const char *cf_strerror(int err);

#endif
