/* config.h: coffer.conf (global settings, [service NAME] and [backend NAME] sections) and
 * partitions.conf. */
#ifndef COFFER_CORE_CONFIG_H
#define COFFER_CORE_CONFIG_H
#include "core/buf.h"
#include "core/config-settings.h"
#include "core/strarr.h"
#include <stdio.h>

#define X(id, name, type, def, doc) id,
enum config_id { COFFER_GLOBAL_SETTINGS(X) CFG__COUNT };
enum service_id { COFFER_SERVICE_SETTINGS(X) SVC__COUNT };
#undef X

enum config_type { CT_STR, CT_INT, CT_BOOL, CT_SIZE, CT_DURATION, CT_ENUM, CT_LIST, CT_PATH };

struct config_value {
    char *s;              /* STR, ENUM, PATH: the text; others: the text as written */
    long long i;          /* INT, BOOL, SIZE, DURATION */
    struct strarr list;   /* LIST */
    int set;              /* given in the file (not the default) */
};

struct config_service {
    char *name;
    int line;                           /* where its section starts */
    struct config_value v[SVC__COUNT];
};

/* A [backend NAME] section: the addresses ("host:port") of one backend Coffer server of a
 * scale-out setup, for the router service (man/router.8); "" when not given. */
struct config_backend {
    char *name;
    int line;
    char *imap, *pop3, *lmtp;
    char *admin;                        /* its admin endpoint (admind), for coffer user move */
};

struct partition {
    char *name;
    char *path;
};

struct config {
    char *path;                         /* coffer.conf as given */
    char *dir;                          /* its directory, for relative paths */
    struct config_value v[CFG__COUNT];
    struct config_service *services;
    size_t nservices;
    struct config_backend *backends;
    size_t nbackends;
    struct partition *partitions;
    size_t npartitions;
};

/* config_load: parse path and the partitions file it names. On error returns CF_E_PARSE (or
 * CF_E_IO) with one "file:line: message" line per problem in err, and *out NULL. */
int config_load(const char *path, struct config **out, struct buf *err);
/* config_load_streams: config_load over open streams: f holds path's text (path names it in
 * messages and anchors relative paths), pf the partitions file's (NULL: open the file the
 * partitions setting names). Neither stream is closed. For tests and the fuzz targets. */
int config_load_streams(FILE *f, const char *path, FILE *pf, struct config **out,
                        struct buf *err);
void config_free(struct config **c);

const char *config_str(const struct config *c, enum config_id id);   /* never NULL */
long long config_int(const struct config *c, enum config_id id);    /* INT/BOOL/SIZE/DURATION */
const struct strarr *config_list(const struct config *c, enum config_id id);

const struct config_service *config_service(const struct config *c, const char *name);
const char *service_str(const struct config_service *s, enum service_id id);
long long service_int(const struct config_service *s, enum service_id id);
const struct strarr *service_list(const struct config_service *s, enum service_id id);

const struct config_backend *config_backend(const struct config *c, const char *name);
/* backend_addr: the backend's address for protocol "imap", "pop3", "lmtp" or "admin" ("" when not
 * configured, NULL for another protocol name). */
const char *backend_addr(const struct config_backend *b, const char *protocol);

const struct partition *config_partition(const struct config *c, const char *name);

/* config_pidfile: the pid file path (pidfile, or configdir/cofferd.pid); caller frees. */
char *config_pidfile(const struct config *c);

/* Table access for documentation checks and `coffer config`. */
struct config_def { const char *name; enum config_type type; const char *def; const char *doc; };
const struct config_def *config_global_defs(size_t *n);
const struct config_def *config_service_defs(size_t *n);

/* config_parse_size / config_parse_duration: "64K" -> 65536, "30m" -> 1800; 0 or CF_E_PARSE. */
int config_parse_size(const char *s, long long *out);
int config_parse_duration(const char *s, long long *out);

#endif
