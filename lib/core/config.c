/* config.c: parser for coffer.conf and partitions.conf. Every problem is reported with file and
 * line; unknown settings are errors, so a typo never silently becomes a default. */
#include "core/config.h"
#include "core/error.h"
#include "core/xmalloc.h"
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define X(id, name, type, def, doc) { name, CT_##type, def, doc },
static const struct config_def global_defs[CFG__COUNT] = { COFFER_GLOBAL_SETTINGS(X) };
static const struct config_def service_defs[SVC__COUNT] = { COFFER_SERVICE_SETTINGS(X) };
#undef X

const struct config_def *config_global_defs(size_t *n) { *n = CFG__COUNT; return global_defs; }
const struct config_def *config_service_defs(size_t *n) { *n = SVC__COUNT; return service_defs; }

int config_parse_size(const char *s, long long *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (end == s || errno || v < 0) return CF_E_PARSE;
    long long mul = 1;
    switch (toupper((unsigned char)*end)) {
    case '\0': break;
    case 'K': mul = 1024; end++; break;
    case 'M': mul = 1024LL * 1024; end++; break;
    case 'G': mul = 1024LL * 1024 * 1024; end++; break;
    default: return CF_E_PARSE;
    }
    if (*end == 'B' || *end == 'b') end++;
    if (*end) return CF_E_PARSE;
    if (v > LLONG_MAX / mul) return CF_E_PARSE;
    *out = v * mul;
    return 0;
}

int config_parse_duration(const char *s, long long *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (end == s || errno || v < 0) return CF_E_PARSE;
    long long mul = 1;
    switch (*end) {
    case '\0': case 's': break;
    case 'm': mul = 60; break;
    case 'h': mul = 3600; break;
    case 'd': mul = 86400; break;
    default: return CF_E_PARSE;
    }
    if (*end && end[1]) return CF_E_PARSE;
    if (v > LLONG_MAX / mul) return CF_E_PARSE;
    *out = v * mul;
    return 0;
}

static char *resolve_path(const struct config *c, const char *v)
{
    if (!*v || v[0] == '/') return xstrdup(v);
    return xasprintf("%s/%s", c->dir, v);
}

/* set_value: parse text as def->type into v; on error append a message to err. */
static int set_value(const struct config *c, const struct config_def *def, struct config_value *v,
                     const char *text, const char *file, int line, struct buf *err)
{
    free(v->s);
    strarr_fini(&v->list);
    v->s = NULL;
    v->i = 0;
    int r = 0;
    switch (def->type) {
    case CT_STR:
        v->s = xstrdup(text);
        break;
    case CT_PATH:
        v->s = resolve_path(c, text);
        break;
    case CT_INT: {
        char *end;
        errno = 0;
        v->i = strtoll(text, &end, 10);
        if (end == text || *end || errno || v->i < 0 || v->i > INT_MAX) r = CF_E_PARSE;
        break;
    }
    case CT_BOOL:
        if (!strcasecmp(text, "yes") || !strcasecmp(text, "on") || !strcasecmp(text, "true") ||
            !strcmp(text, "1")) v->i = 1;
        else if (!strcasecmp(text, "no") || !strcasecmp(text, "off") ||
                 !strcasecmp(text, "false") || !strcmp(text, "0")) v->i = 0;
        else r = CF_E_PARSE;
        break;
    case CT_SIZE:
        r = config_parse_size(text, &v->i);
        break;
    case CT_DURATION:
        r = config_parse_duration(text, &v->i);
        break;
    case CT_ENUM: {
        const char *colon = strchr(def->doc, ':');
        size_t n = colon ? (size_t)(colon - def->doc) : 0;
        char *allowed = xstrndup(def->doc, n);
        struct strarr vals = STRARR_INIT;
        strarr_split(&vals, allowed, "|", 1);
        if (strarr_find(&vals, text) < 0) {
            buf_printf(err, "%s:%d: %s must be one of %s, not '%s'\n", file, line, def->name,
                       allowed, text);
            r = CF_E_PARSE;
        }
        strarr_fini(&vals);
        free(allowed);
        v->s = xstrdup(text);
        return r;
    }
    case CT_LIST:
        strarr_split(&v->list, text, ", \t", 0);
        break;
    }
    if (r) {
        static const char *tn[] = { "a string", "a non-negative integer", "yes or no",
                                    "a size such as 512K or 64M", "a duration such as 30s or 10m",
                                    "", "a list", "a path" };
        buf_printf(err, "%s:%d: %s must be %s, not '%s'\n", file, line, def->name, tn[def->type],
                   text);
    }
    if (!v->s) v->s = xstrdup(text);
    return r;
}

static int find_def(const struct config_def *defs, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(defs[i].name, name)) return (int)i;
    return -1;
}

static void set_defaults(const struct config *c, const struct config_def *defs, size_t n,
                         struct config_value *vals)
{
    struct buf ignore = BUF_INIT;
    for (size_t i = 0; i < n; i++) {
        set_value(c, &defs[i], &vals[i], defs[i].def, "(default)", 0, &ignore);
        vals[i].set = 0;
    }
    buf_fini(&ignore);
}

static char *trim(char *s)
{
    while (isspace((unsigned char)*s)) s++;
    char *e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1])) *--e = '\0';
    return s;
}

/* strip_comment: a '#' at the start of a line or after whitespace starts a comment. */
static void strip_comment(char *s)
{
    for (char *p = s; *p; p++)
        if (*p == '#' && (p == s || isspace((unsigned char)p[-1]))) { *p = '\0'; return; }
}

/* load_partitions: read the partitions file from pf, or (pf NULL) from the file the
 * partitions setting names. */
static int load_partitions(struct config *c, FILE *pf, struct buf *err)
{
    const char *file = c->v[CFG_PARTITIONS].s;
    FILE *f = pf ? pf : fopen(file, "r");
    if (!f) {
        buf_printf(err, "%s: cannot open partitions file: %s\n", file, strerror(errno));
        return CF_E_IO;
    }
    int r = 0, lineno = 0;
    char *line = NULL;
    size_t cap = 0;
    while (getline(&line, &cap, f) >= 0) {
        lineno++;
        strip_comment(line);
        char *s = trim(line);
        if (!*s) continue;
        char *sp = s + strcspn(s, " \t");
        if (!*sp) {
            buf_printf(err, "%s:%d: expected 'NAME DIRECTORY'\n", file, lineno);
            r = CF_E_PARSE;
            continue;
        }
        *sp++ = '\0';
        char *dir = trim(sp);
        int bad = 0;
        for (char *p = s; *p; p++)
            if (!isalnum((unsigned char)*p) && *p != '-' && *p != '_') bad = 1;
        if (bad) {
            buf_printf(err, "%s:%d: partition name '%s' may hold only letters, digits, - and _\n",
                       file, lineno, s);
            r = CF_E_PARSE;
            continue;
        }
        if (dir[0] != '/') {
            char *abs = resolve_path(c, dir);
            dir = abs;
        } else {
            dir = xstrdup(dir);
        }
        if (config_partition(c, s)) {
            buf_printf(err, "%s:%d: partition '%s' is defined twice\n", file, lineno, s);
            free(dir);
            r = CF_E_PARSE;
            continue;
        }
        c->partitions = xreallocarray(c->partitions, c->npartitions + 1, sizeof *c->partitions);
        c->partitions[c->npartitions].name = xstrdup(s);
        c->partitions[c->npartitions].path = dir;
        c->npartitions++;
    }
    free(line);
    if (!pf) fclose(f);
    if (!r && c->npartitions == 0) {
        buf_printf(err, "%s: no partitions defined\n", file);
        r = CF_E_PARSE;
    }
    if (!r && !config_partition(c, c->v[CFG_DEFAULTPARTITION].s)) {
        buf_printf(err, "%s: defaultpartition '%s' is not defined in %s\n", c->path,
                   c->v[CFG_DEFAULTPARTITION].s, file);
        r = CF_E_PARSE;
    }
    return r;
}

/* valid_hostport: "HOST:PORT" or "[IPv6]:PORT" with a port of 1..65535 and a host of
 * letters, digits, '.', '-' (or, in brackets, hex digits, ':' and '.'). */
static int valid_hostport(const char *s)
{
    const char *colon;
    if (*s == '[') {
        const char *end = strchr(s, ']');
        if (!end || end == s + 1 || end[1] != ':') return 0;
        for (const char *p = s + 1; p < end; p++)
            if (!isxdigit((unsigned char)*p) && *p != ':' && *p != '.') return 0;
        colon = end + 1;
    } else {
        colon = strrchr(s, ':');
        if (!colon || colon == s) return 0;
        for (const char *p = s; p < colon; p++)
            if (!isalnum((unsigned char)*p) && *p != '.' && *p != '-') return 0;
    }
    const char *port = colon + 1;
    if (!*port || strlen(port) > 5) return 0;
    for (const char *p = port; *p; p++)
        if (!isdigit((unsigned char)*p)) return 0;
    long n = strtol(port, NULL, 10);
    return n >= 1 && n <= 65535;
}

/* derive_defaults: settings whose default depends on others or on the system. */
static void derive_defaults(struct config *c)
{
    if (!*c->v[CFG_HOSTNAME].s) {
        char host[256] = "localhost";
        if (gethostname(host, sizeof host - 1) < 0) strcpy(host, "localhost");
        host[sizeof host - 1] = '\0';
        free(c->v[CFG_HOSTNAME].s);
        c->v[CFG_HOSTNAME].s = xstrdup(host);
    }
    if (!*c->v[CFG_PIDFILE].s) {
        free(c->v[CFG_PIDFILE].s);
        c->v[CFG_PIDFILE].s = xasprintf("%s/cofferd.pid", c->v[CFG_CONFIGDIR].s);
    }
    if (!*c->v[CFG_SASL_DBPATH].s) {
        free(c->v[CFG_SASL_DBPATH].s);
        c->v[CFG_SASL_DBPATH].s = xasprintf("%s/sasldb2", c->v[CFG_CONFIGDIR].s);
    }
    if (!*c->v[CFG_SASL_REALM].s) {
        free(c->v[CFG_SASL_REALM].s);
        c->v[CFG_SASL_REALM].s = xstrdup(c->v[CFG_HOSTNAME].s);
    }
}

int config_load(const char *path, struct config **out, struct buf *err)
{
    *out = NULL;
    FILE *f = fopen(path, "r");
    if (!f) {
        buf_printf(err, "%s: cannot open: %s\n", path, strerror(errno));
        return CF_E_IO;
    }
    int r = config_load_streams(f, path, NULL, out, err);
    fclose(f);
    return r;
}

int config_load_streams(FILE *f, const char *path, FILE *pf, struct config **out,
                        struct buf *err)
{
    *out = NULL;
    struct config *c = xzmalloc(sizeof *c);
    c->path = xstrdup(path);
    const char *slash = strrchr(path, '/');
    c->dir = slash ? xstrndup(path, (size_t)(slash - path) + (slash == path)) : xstrdup(".");
    set_defaults(c, global_defs, CFG__COUNT, c->v);

    int r = 0, lineno = 0;
    struct config_service *svc = NULL;
    long be = -1;                       /* index of the [backend] section being read */
    char *line = NULL;
    size_t cap = 0;
    while (getline(&line, &cap, f) >= 0) {
        lineno++;
        strip_comment(line);
        char *s = trim(line);
        if (!*s) continue;
        if (*s == '[') {
            char *close = strchr(s, ']');
            char *name;
            int is_backend = close && !strncmp(s, "[backend", 8) && isspace((unsigned char)s[8]);
            if (!close || close[1] || (!is_backend && (strncmp(s, "[service", 8) ||
                                                      !isspace((unsigned char)s[8])))) {
                buf_printf(err, "%s:%d: expected a section header '[service NAME]' or "
                           "'[backend NAME]'\n", path, lineno);
                r = CF_E_PARSE;
                svc = NULL;
                be = -1;
                continue;
            }
            *close = '\0';
            name = trim(s + 8);
            int bad = !*name;
            for (char *p = name; *p; p++)
                if (!isalnum((unsigned char)*p) && *p != '-' && *p != '_') bad = 1;
            const char *what = is_backend ? "backend" : "service";
            svc = NULL;
            be = -1;
            if (bad) {
                buf_printf(err, "%s:%d: bad %s name '%s'\n", path, lineno, what, name);
                r = CF_E_PARSE;
                continue;
            }
            if (is_backend ? config_backend(c, name) != NULL : config_service(c, name) != NULL) {
                buf_printf(err, "%s:%d: %s '%s' is defined twice\n", path, lineno, what, name);
                r = CF_E_PARSE;
                continue;
            }
            if (is_backend) {
                c->backends = xreallocarray(c->backends, c->nbackends + 1, sizeof *c->backends);
                be = (long)c->nbackends++;
                struct config_backend *b = &c->backends[be];
                b->name = xstrdup(name);
                b->line = lineno;
                b->imap = xstrdup("");
                b->pop3 = xstrdup("");
                b->lmtp = xstrdup("");
                b->admin = xstrdup("");
                continue;
            }
            c->services = xreallocarray(c->services, c->nservices + 1, sizeof *c->services);
            svc = &c->services[c->nservices++];
            memset(svc, 0, sizeof *svc);
            svc->name = xstrdup(name);
            svc->line = lineno;
            set_defaults(c, service_defs, SVC__COUNT, svc->v);
            continue;
        }
        char *eq = strchr(s, '=');
        if (!eq) {
            buf_printf(err, "%s:%d: expected 'name = value'\n", path, lineno);
            r = CF_E_PARSE;
            continue;
        }
        *eq = '\0';
        char *key = trim(s), *val = trim(eq + 1);
        if (be >= 0) {
            struct config_backend *b = &c->backends[be];
            char **slot = !strcmp(key, "imap") ? &b->imap : !strcmp(key, "pop3") ? &b->pop3
                        : !strcmp(key, "lmtp") ? &b->lmtp : !strcmp(key, "admin") ? &b->admin
                        : NULL;
            if (!slot) {
                buf_printf(err, "%s:%d: unknown backend setting '%s' (imap, pop3, lmtp or admin)\n",
                           path, lineno, key);
                r = CF_E_PARSE;
            } else if (!valid_hostport(val)) {
                buf_printf(err, "%s:%d: backend %s: '%s' is not HOST:PORT\n", path, lineno,
                           key, val);
                r = CF_E_PARSE;
            } else {
                free(*slot);
                *slot = xstrdup(val);
            }
        } else if (svc) {
            int i = find_def(service_defs, SVC__COUNT, key);
            if (i < 0) {
                buf_printf(err, "%s:%d: unknown service setting '%s'\n", path, lineno, key);
                r = CF_E_PARSE;
                continue;
            }
            if (set_value(c, &service_defs[i], &svc->v[i], val, path, lineno, err)) r = CF_E_PARSE;
            svc->v[i].set = 1;
        } else {
            int i = find_def(global_defs, CFG__COUNT, key);
            if (i < 0) {
                buf_printf(err, "%s:%d: unknown setting '%s'\n", path, lineno, key);
                r = CF_E_PARSE;
                continue;
            }
            if (set_value(c, &global_defs[i], &c->v[i], val, path, lineno, err)) r = CF_E_PARSE;
            c->v[i].set = 1;
        }
    }
    free(line);

    for (size_t i = 0; i < c->nservices; i++) {
        struct config_service *sv = &c->services[i];
        if (!*sv->v[SVC_PROGRAM].s) {
            buf_printf(err, "%s:%d: service '%s' has no program\n", path, sv->line, sv->name);
            r = CF_E_PARSE;
        }
        if (sv->v[SVC_LISTEN].list.count == 0) {
            buf_printf(err, "%s:%d: service '%s' has no listen address\n", path, sv->line, sv->name);
            r = CF_E_PARSE;
        }
        if (sv->v[SVC_MAXCHILD].i < 1 || sv->v[SVC_PREFORK].i > sv->v[SVC_MAXCHILD].i) {
            buf_printf(err, "%s:%d: service '%s' needs 1 <= maxchild and prefork <= maxchild\n",
                       path, sv->line, sv->name);
            r = CF_E_PARSE;
        }
    }
    const char *defbe = c->v[CFG_ROUTER_DEFAULT_BACKEND].s;
    if (*defbe && !config_backend(c, defbe)) {
        buf_printf(err, "%s: router_default_backend '%s' names no [backend] section\n", path,
                   defbe);
        r = CF_E_PARSE;
    }
    derive_defaults(c);
    if (!r) r = load_partitions(c, pf, err);
    if (r) {
        config_free(&c);
        return r;
    }
    *out = c;
    return 0;
}

static void free_values(struct config_value *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(v[i].s);
        strarr_fini(&v[i].list);
    }
}

void config_free(struct config **cp)
{
    struct config *c = *cp;
    if (!c) return;
    free_values(c->v, CFG__COUNT);
    for (size_t i = 0; i < c->nservices; i++) {
        free(c->services[i].name);
        free_values(c->services[i].v, SVC__COUNT);
    }
    free(c->services);
    for (size_t i = 0; i < c->nbackends; i++) {
        free(c->backends[i].name);
        free(c->backends[i].imap);
        free(c->backends[i].pop3);
        free(c->backends[i].lmtp);
        free(c->backends[i].admin);
    }
    free(c->backends);
    for (size_t i = 0; i < c->npartitions; i++) {
        free(c->partitions[i].name);
        free(c->partitions[i].path);
    }
    free(c->partitions);
    free(c->path);
    free(c->dir);
    free(c);
    *cp = NULL;
}

const char *config_str(const struct config *c, enum config_id id) { return c->v[id].s ? c->v[id].s : ""; }
long long config_int(const struct config *c, enum config_id id) { return c->v[id].i; }
const struct strarr *config_list(const struct config *c, enum config_id id) { return &c->v[id].list; }

const struct config_service *config_service(const struct config *c, const char *name)
{
    for (size_t i = 0; i < c->nservices; i++)
        if (!strcmp(c->services[i].name, name)) return &c->services[i];
    return NULL;
}

const char *service_str(const struct config_service *s, enum service_id id) { return s->v[id].s ? s->v[id].s : ""; }
long long service_int(const struct config_service *s, enum service_id id) { return s->v[id].i; }
const struct strarr *service_list(const struct config_service *s, enum service_id id) { return &s->v[id].list; }

const struct config_backend *config_backend(const struct config *c, const char *name)
{
    for (size_t i = 0; i < c->nbackends; i++)
        if (!strcmp(c->backends[i].name, name)) return &c->backends[i];
    return NULL;
}

const char *backend_addr(const struct config_backend *b, const char *protocol)
{
    if (!strcmp(protocol, "imap")) return b->imap;
    if (!strcmp(protocol, "pop3")) return b->pop3;
    if (!strcmp(protocol, "lmtp")) return b->lmtp;
    if (!strcmp(protocol, "admin")) return b->admin;
    return NULL;
}

const struct partition *config_partition(const struct config *c, const char *name)
{
    for (size_t i = 0; i < c->npartitions; i++)
        if (!strcmp(c->partitions[i].name, name)) return &c->partitions[i];
    return NULL;
}

char *config_pidfile(const struct config *c)
{
    if (*config_str(c, CFG_PIDFILE)) return xstrdup(config_str(c, CFG_PIDFILE));
    return xasprintf("%s/cofferd.pid", config_str(c, CFG_CONFIGDIR));
}
