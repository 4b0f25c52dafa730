/* error.c: texts for Coffer's error codes. */
#include "core/error.h"

const char *cf_strerror(int err)
{
    switch (err) {
    case CF_OK: return "success";
    case CF_E_IO: return "I/O error";
    case CF_E_NOMEM: return "out of memory";
    case CF_E_LIMIT: return "limit exceeded";
    case CF_E_PARSE: return "parse error";
    case CF_E_NOTFOUND: return "not found";
    case CF_E_EXISTS: return "already exists";
    case CF_E_PERM: return "permission denied";
    case CF_E_TIMEOUT: return "timed out";
    case CF_E_EOF: return "connection closed";
    case CF_E_TLS: return "TLS error";
    case CF_E_CORRUPT: return "corrupt data";
    case CF_E_QUOTA: return "over quota";
    case CF_E_LOCKED: return "in use";
    case CF_E_SHUTDOWN: return "server shutting down";
    case CF_E_AGAIN: return "temporary failure";
    case CF_E_INTERNAL: return "internal error";
    }
    return "unknown error";
}
