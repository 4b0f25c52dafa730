/* sieve.h: Coffer's glue over libsieve (sieve2.h): per-user script storage, validation, and
 * running a script on one message to get the list of actions (RFC 5228).
 *
 * Storage: configdir/sieve/USER/NAME.sieve, one file per script, and "active", a symbolic link
 * to the active script's file (no link: no active script). Names are 1..128 bytes of
 * printable ASCII without '/' and not starting with '.'. Files are replaced atomically. */
#ifndef COFFER_SIEVE_SIEVE_H
#define COFFER_SIEVE_SIEVE_H
#include "core/buf.h"
#include "core/error.h"
#include "core/config.h"
#include "core/strarr.h"
#include <stddef.h>

#define SIEVE_MAX_SCRIPT (1024 * 1024)

/* Counters for tests: active-link lookups made, and "none" answered from what the process
 * remembered (sieve_active_script). */
struct sieve_stats {
    unsigned long lookups, none_remembered;
};
extern struct sieve_stats sieve_stats;

/* The message a script looks at. msg is the whole message (header section used for header,
 * address and exists tests); env_from / env_to are the envelope (RFC 5228 section 5.4). */
struct sieve_input {
    const char *msg;
    size_t len;
    const char *env_from;     /* "" for the null sender */
    const char *env_to;
    int max_redirects;        /* redirects allowed in one run (0: no limit); one more is a
                               * runtime error (RFC 5804 MAXREDIRECTS) */
};

struct sieve_fileinto {
    char *mailbox;            /* as the script wrote it (a folder of the user, '/' separated) */
    struct strarr flags;      /* RFC 5232 flags ("\\Seen", "$label") */
};

/* A notify action (draft-martin-sieve-notify-01, libsieve's "notify"): method mailto only. */
struct sieve_notify {
    struct strarr to;         /* the addresses of :options */
    char *priority;           /* "low", "normal" or "high" */
    char *message;            /* :message with $from$, $env-from$, $subject$ and $text[n]$
                               * filled in from the message (one line, no controls) */
};

/* What a script decided. With nothing at all decided, keep is set (implicit keep). */
struct sieve_result {
    int keep;
    struct strarr keep_flags;
    struct sieve_fileinto *fileinto;
    size_t nfileinto;
    int discard;
    char *reject;             /* reason, or NULL */
    struct strarr redirect;   /* addresses */
    int vacation;
    char *vac_address;        /* whom to answer */
    char *vac_from;           /* :from, or NULL */
    char *vac_subject;        /* :subject, or NULL */
    char *vac_message;
    int vac_days;
    int vac_mime;
    struct sieve_notify *notify;
    size_t nnotify;
    int error;                /* the script failed: keep was forced (errors says why) */
    struct buf errors;
};
void sieve_result_init(struct sieve_result *r);
void sieve_result_fini(struct sieve_result *r);

/* sieve_extensions: libsieve's sieve2_listextensions() for our callbacks (static text). */
const char *sieve_extensions(void);

/* sieve_check: compile script; 0, or CF_E_PARSE with "line N: message" lines in err. Besides
 * what libsieve refuses, a notify :method other than "mailto" is refused here (libsieve would
 * take it, and every run would then fail). */
int sieve_check(const char *script, struct buf *err);

/* sieve_scan_fileinto: call cb with each folder a fileinto command of script names (as a
 * string literal: decoded) and the line it is on, by a lexical walk (sieve-scan.c) that
 * never fails and never judges the script. For warnings about folders that do not exist. */
typedef void sieve_fileinto_cb(void *rock, const char *folder, int line);
void sieve_scan_fileinto(const char *script, size_t len, sieve_fileinto_cb *cb, void *rock);
/* sieve_scan_notify: the same for the :method string of each notify command. */
void sieve_scan_notify(const char *script, size_t len, sieve_fileinto_cb *cb, void *rock);

/* sieve_run: run script on in. Always fills r (on any error: keep, r->error set, and the
 * reason in r->errors) and returns 0 or CF_E_PARSE / CF_E_INTERNAL for the error case. */
int sieve_run(const char *script, const struct sieve_input *in, struct sieve_result *r);

/* Script storage. All return 0 or a CF_E_* code: CF_E_PARSE (bad user or script name, or a
 * script that does not compile: err gets the lines), CF_E_NOTFOUND, CF_E_IO (logged).
 * Changes take an exclusive flock on the user's directory; readers need none, since every
 * change is one rename (of a script file, or of the "active" link). */
/* bytes of a script name: sieve/NAME.sieve in a dump must fit a ustar name field (99) */
#define SIEVE_MAX_NAME 93
#define SIEVE_E_MAXSCRIPTS CF_E_QUOTA             /* sieve_max_scripts reached */
#define SIEVE_E_MAXSIZE CF_E_LIMIT                /* over sieve_max_script_size */

/* sieve_name_valid: 1 or 0. A name is 1..SIEVE_MAX_NAME bytes of UTF-8 without control
 * characters or U+2028/U+2029 (RFC 5804 section 1.6), without '/', not starting with '.' and
 * not "active". */
int sieve_name_valid(const char *name);

/* sieve_max_size: the largest script a user may store (sieve_max_script_size, at most
 * SIEVE_MAX_SCRIPT). */
size_t sieve_max_size(const struct config *cfg);

/* sieve_havespace: whether user could store size bytes as name now: 0, SIEVE_E_MAXSIZE,
 * SIEVE_E_MAXSCRIPTS (a new name past sieve_max_scripts; replacing a script is always fine),
 * CF_E_PARSE (bad name). */
int sieve_havespace(const struct config *cfg, const char *user, const char *name, size_t size);

/* sieve_put: validate data (libsieve; err gets "line N: message" lines) and store it as name,
 * replacing a script of that name atomically (a delivery running meanwhile reads the old text
 * or the new, never a mix; an active script stays active). With SIEVE_PUT_LIMITS the user's
 * limits apply (SIEVE_E_MAXSIZE, SIEVE_E_MAXSCRIPTS), checked under the lock. */
#define SIEVE_PUT_LIMITS 1u
int sieve_put(const struct config *cfg, const char *user, const char *name, const char *data,
              size_t len, unsigned flags, struct buf *err);
int sieve_get(const struct config *cfg, const char *user, const char *name, char **data_r,
              size_t *len_r);
/* sieve_list: script names (sorted) into names; *active_r (caller frees, may be NULL) the
 * active one's name or NULL. */
int sieve_list(const struct config *cfg, const char *user, struct strarr *names,
               char **active_r);
/* sieve_activate: make name the active script (CF_E_NOTFOUND when there is none by that name).
 * sieve_deactivate: no active script (CF_E_NOTFOUND when there was none). Both atomic. */
int sieve_activate(const struct config *cfg, const char *user, const char *name);
int sieve_deactivate(const struct config *cfg, const char *user);
/* sieve_delete: CF_E_PERM when name is the active script (deactivate it first). */
int sieve_delete(const struct config *cfg, const char *user, const char *name);
/* sieve_rename: CF_E_NOTFOUND (no oldname), CF_E_EXISTS (newname exists: never replaced). An
 * active script stays active under the new name, and deliveries meanwhile find it. */
int sieve_rename(const struct config *cfg, const char *user, const char *oldname,
                 const char *newname);
/* sieve_notify_allowed: whether user may be sent a notification now: 1 when the last one was
 * at least sieve_notify_interval ago (and the time of now is recorded), 0 when not yet, or
 * CF_E_IO. The record is the hidden file .notify in the user's script directory. */
int sieve_notify_allowed(const struct config *cfg, const char *user, long long now);

/* sieve_active_script: the active script's text (*data_r, caller frees) read through one open
 * of the link, and its name (*name_r, caller frees; name_r may be NULL). 1 found, 0 none, or
 * an error. A user found without one is remembered by the process until a link of any user
 * changes (configdir/sieve/.changes, which every change through this API increments after
 * it) or for 60 seconds: no lookup per delivery for such a user. */
int sieve_active_script(const struct config *cfg, const char *user, char **data_r,
                        char **name_r);

#endif
