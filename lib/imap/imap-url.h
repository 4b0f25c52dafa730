/* imap-url.h: IMAP URLs naming one message or part of it (RFC 5092 imessagepart), as CATENATE
 * (RFC 4469) and URLAUTH (RFC 4467) take them: absolute, network-path, absolute-path or
 * relative to a mailbox, percent-decoded, with the URLAUTH rump and verifier located; and the
 * section text of such a URL turned into parts and a text kind. */
#ifndef COFFER_IMAP_IMAP_URL_H
#define COFFER_IMAP_IMAP_URL_H
#include "core/strarr.h"
#include "imap/imap-arg.h"   /* enum imap_section_text */
#include <stddef.h>
#include <stdint.h>

/* Longest URL accepted (bytes as sent). RFC 5092 sets no limit; a message part URL is a few
 * hundred bytes. */
#define IMAP_URL_MAX 8192

/* How a URL was written (RFC 3986 section 4.2 references, RFC 5092 section 7). */
enum imap_url_form {
    IMAP_URL_ABSOLUTE,      /* imap://server/mailbox... */
    IMAP_URL_NETWORK_PATH,  /* //server/mailbox... */
    IMAP_URL_ABSOLUTE_PATH, /* /mailbox... : the same server */
    IMAP_URL_RELATIVE,      /* ;UID=n...: the base mailbox (RFC 4469 section 3) */
};

/* The access identifier of a URLAUTH URL (RFC 4467 section 3). */
enum imap_url_access {
    IMAP_URL_ACCESS_NONE,       /* no ;URLAUTH= */
    IMAP_URL_ACCESS_ANONYMOUS,  /* "anonymous": anybody */
    IMAP_URL_ACCESS_AUTHUSER,   /* "authuser": any authenticated user */
    IMAP_URL_ACCESS_USER,       /* "user+" name: that user */
    IMAP_URL_ACCESS_SUBMIT,     /* "submit+" name: a submission server acting for name */
};

struct imap_url {
    enum imap_url_form form;
    char *user;                 /* iuserinfo's user, decoded; NULL when absent */
    char *auth;                 /* ;AUTH= type ("*" included), decoded; NULL when absent */
    char *host;                 /* as sent (lower-cased); NULL for the path forms */
    uint32_t port;              /* 0: none given */
    char *mailbox;              /* UTF-8, decoded; NULL for IMAP_URL_RELATIVE */
    uint32_t uidvalidity;       /* 0: none given */
    uint32_t uid;               /* always >= 1 */
    char *section;              /* decoded section text ("1.2.MIME"); NULL: whole message */
    int has_partial;
    uint32_t partial_offset;
    uint32_t partial_length;    /* 0 with has_partial: to the end */
    int has_expire;
    int64_t expire;             /* seconds since the epoch */
    enum imap_url_access access;
    char *access_user;          /* USER and SUBMIT: the name, decoded */
    char *mech;                 /* the verifier's mechanism as sent; NULL: none (a rump) */
    char *token;                /* the verifier's hex token; NULL: none */
    size_t rump_len;            /* with ;URLAUTH=: bytes of the text up to and including the
                                 * access identifier (RFC 4467 section 2: the "rump URL") */
};

/* imap_url_parse: parse s[0,len) (no NUL inside: CF_E_PARSE) into u, which is filled whole
 * (release it with imap_url_fini, also after a failure). Every form needs ;UID=; a bare
 * mailbox or server URL is CF_E_PARSE. 0, CF_E_PARSE (not a message part URL, bad
 * percent-escape, number out of range, bad date-time) or CF_E_LIMIT (over IMAP_URL_MAX).
 * Never blocks. */
int imap_url_parse(const char *s, size_t len, struct imap_url *u);

/* imap_url_fini: free what u holds and zero it. */
void imap_url_fini(struct imap_url *u);

/* A URL's section text (RFC 5092 enc-section, decoded: RFC 3501 section-spec without the
 * brackets): part numbers, then what follows them. */
struct imap_url_section {
    uint32_t parts[32];
    size_t nparts;
    enum imap_section_text text;
    struct strarr fields;       /* HEADER.FIELDS[.NOT] names, as sent */
};

/* imap_url_section_parse: parse section text s ("1.2", "HEADER", "2.MIME",
 * "HEADER.FIELDS (From To)", case-insensitive) into sec (release with
 * imap_url_section_fini, also after a failure). 0 or CF_E_PARSE (also for MIME without part
 * numbers, or more than 32 part numbers). */
int imap_url_section_parse(const char *s, struct imap_url_section *sec);
void imap_url_section_fini(struct imap_url_section *sec);

/* imap_url_printable: append s[0,len) to out fit for a [BADURL url] response code (RFC 4469
 * section 5, erratum 4046: a bare URL, any TEXT-CHAR but "]"): ']' and bytes outside
 * printable ASCII become '?', and at most 512 bytes are kept. */
void imap_url_printable(const char *s, size_t len, struct buf *out);

#endif
