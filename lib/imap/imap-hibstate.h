/* imap-hibstate.h: the state of an IMAP session in IDLE, serialized so that imapd can hand the
 * connection to imap-hibernate and take it back in another worker process, answering exactly
 * as if it had never left (man/imap-hibernate.8 describes the format).
 *
 * The text is a list of lines "KEY VALUE\n" in any order, each key at most once, beginning
 * with "v 1". Values are decimal numbers, IMAP sequence sets ("" for an empty set) or strings
 * without NUL, CR or LF. It travels only between cofferd's own children over a UNIX socket
 * whose peer is checked, but the parser still treats it as untrusted bytes: every field is
 * checked for form and range, so a damaged or forged text is refused, never half-applied. */
#ifndef COFFER_IMAP_IMAP_HIBSTATE_H
#define COFFER_IMAP_IMAP_HIBSTATE_H
#include "core/buf.h"
#include "imap/imap-seqset.h"
#include <stddef.h>
#include <stdint.h>

#define IMAP_HIBSTATE_VERSION 1
/* the largest text accepted (a view of a mailbox with many gaps in its uids is the big part) */
#define IMAP_HIBSTATE_MAX (16u << 20)

struct imap_hibstate {
    char session[32];           /* the log session id, kept across the hand-offs */
    char *user;                 /* the authorized user (required) */
    char *authid;               /* the authenticated identity (required) */
    int is_admin;
    unsigned enabled;           /* imapd's CLIENT_ENABLED_* bits */
    char *tag;                  /* the tag of the IDLE command in progress (required) */
    int64_t deadline_ms;        /* CLOCK_MONOTONIC ms at which the IDLE times out */
    int64_t started_ms;         /* CLOCK_MONOTONIC ms at which the connection was accepted */
    /* the selected mailbox: mailbox NULL in authenticated state, and the rest unset */
    char *mailbox;              /* internal name */
    char uniqueid[33];
    char *partition_path;       /* the partition's directory */
    uint32_t uidvalidity;
    int readonly, no_recent;
    char rights[16];
    /* the client's view: the uids it knows (message number = rank), the highest uid the view
     * ever held and the mod-sequence up to which it was told about flag changes */
    struct imap_seqset uids;
    uint32_t maxuid;
    uint64_t modseq;
    /* \Recent: claimed uids (read-write) or the first unclaimed uid (read-only); what the
     * client was last told */
    struct imap_seqset recent;
    uint32_t recent_from;
    uint32_t told_exists, told_recent, told_keywords;
    struct imap_seqset saved;   /* SEARCHRES (RFC 5182) */
};

/* imap_hibstate_init / _fini: an empty state; _fini frees what it holds (reusable after). */
void imap_hibstate_init(struct imap_hibstate *s);
void imap_hibstate_fini(struct imap_hibstate *s);

/* imap_hibstate_format: s as text appended to out. 0, or CF_E_PARSE when a string holds NUL,
 * CR or LF or a required field is missing (nothing useful appended: the session is then not
 * hibernated). */
int imap_hibstate_format(const struct imap_hibstate *s, struct buf *out);

/* imap_hibstate_parse: text[0, len) into s (fini'd first). 0, or CF_E_PARSE with the reason
 * (static text) in *err; on failure s is empty. Never blocks. */
int imap_hibstate_parse(struct imap_hibstate *s, const char *text, size_t len, const char **err);

/* imap_hibstate_field: the value of key in text[0, len) as a NUL-terminated copy into out
 * (at most outlen - 1 bytes), for log lines of a process that keeps the text without parsing
 * it all (imap-hibernate). 1 found, 0 not. */
int imap_hibstate_field(const char *text, size_t len, const char *key, char *out, size_t outlen);

/* The hand-off kinds (net/handoff.h) of a session going to imap-hibernate and coming back,
 * shared by imapd and imap-hibernate. */
#define HIBERNATE_KIND_SLEEP 1    /* imapd -> imap-hibernate */
#define HIBERNATE_KIND_INPUT 2    /* back: the client sent something (or closed) */
#define HIBERNATE_KIND_CHANGE 3   /* back: the selected mailbox changed */
#define HIBERNATE_KIND_RETIRE 4   /* back: imap-hibernate is stopping for a reload */
#define HIBERNATE_KIND_TIMEOUT 5  /* back: the IDLE reached its deadline */

/* hibernate_kind_name: the kind as logs name it ("input", "change", ...). */
const char *hibernate_kind_name(uint32_t kind);

#endif
