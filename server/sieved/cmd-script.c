/* cmd-script.c: the script commands (RFC 5804 sections 2.5-2.12) over the user's script store
 * (lib/sieve: the same one coffer sieve and coffer dump/restore use). Every command works on
 * the authenticated (authorized) user's own scripts: there is no syntax to name another's. */
#include "sieved.h"
#include "core/config.h"
#include "core/error.h"
#include "core/log.h"
#include "core/xmalloc.h"
#include "net/stream.h"
#include "sieve/sieve.h"
#include "store/mboxname.h"
#include "store/store.h"
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_WARNINGS 20

struct warn_rock {
    struct client *c;
    struct store *st;
    struct buf text;              /* the warning lines */
    int count;
};

/* warn_folder: a fileinto folder of the script that does not exist among the user's folders:
 * lmtpd would put the message into the INBOX instead (lmtpd(8)). */
static void warn_folder(void *rock, const char *folder, int line)
{
    struct warn_rock *w = rock;
    if (!strcasecmp(folder, "INBOX") || w->count >= MAX_WARNINGS) return;
    struct buf name = BUF_INIT;
    mboxname_user_inbox(w->c->user, &name);
    buf_printf(&name, "/%s", folder);
    int r = mboxname_valid(buf_cstr(&name)) < 0 ? 0 : store_lookup(w->st, buf_cstr(&name), NULL);
    if (r == 0) {
        buf_printf(&w->text, "%sline %d: fileinto \"%s\": there is no such folder; messages "
                   "would go to the INBOX", w->count ? "\n" : "", line, folder);
        w->count++;
    }
    buf_fini(&name);
}

/* script_ok: OK for a script that compiled, as OK (WARNINGS) with the lines of its fileinto
 * commands whose folders do not exist (RFC 5804 section 1.3). */
static void script_ok(struct client *c, const struct msieve_arg *script, const char *text)
{
    struct warn_rock w = { c, sieved_store(), BUF_INIT, 0 };
    if (w.st) sieve_scan_fileinto(script->s, script->len, warn_folder, &w);
    if (w.count) client_status(c, "OK", "WARNINGS", "%s", buf_cstr(&w.text));
    else client_status(c, "OK", NULL, "%s", text);
    buf_fini(&w.text);
}

/* name_arg: args[i] as a script name: its text when it is valid (and holds no NUL), else NULL
 * after answering NO. */
static const char *name_arg(struct client *c, const struct msieve_command *cmd, size_t i)
{
    const struct msieve_arg *a = &cmd->args[i];
    if (strlen(a->s) == a->len && sieve_name_valid(a->s)) return a->s;
    client_status(c, "NO", NULL, "Invalid script name: 1 to %d bytes of UTF-8 without control "
                  "characters, '/' or a leading '.'", SIEVE_MAX_NAME);
    return NULL;
}

/* compile_error: NO with libsieve's "line N: message" lines (section 2.6: the text says what
 * is wrong, so a client can show it). */
static void compile_error(struct client *c, struct buf *err)
{
    while (err->len && err->s[err->len - 1] == '\n') err->len--;
    client_status(c, "NO", NULL, "%s", err->len ? buf_cstr(err) : "The script is not valid");
}

void cmd_havespace(struct client *c, const struct msieve_command *cmd)
{
    const char *name = name_arg(c, cmd, 0);
    if (!name) return;
    int r = sieve_havespace(c->ws->cfg, c->user, name, (size_t)cmd->args[1].num);
    if (r < 0) client_error(c, r);
    else client_status(c, "OK", NULL, "Putscript would succeed");
}

void cmd_putscript(struct client *c, const struct msieve_command *cmd)
{
    const char *name = name_arg(c, cmd, 0);
    if (!name) return;
    const struct msieve_arg *a = &cmd->args[1];
    struct buf err = BUF_INIT;
    int r = sieve_put(c->ws->cfg, c->user, name, a->s, a->len, SIEVE_PUT_LIMITS, &err);
    if (r == CF_E_PARSE) {
        log_info("sieve_put_refused", "script=%s reason=invalid", log_quote(name));
        compile_error(c, &err);
    } else if (r < 0) {
        log_info("sieve_put_refused", "script=%s reason=%s", log_quote(name),
                 log_quote(cf_strerror(r)));
        client_error(c, r);
    } else {
        log_info("sieve_put", "script=%s size=%zu", log_quote(name), a->len);
        script_ok(c, a, "Script stored");
    }
    buf_fini(&err);
}

void cmd_checkscript(struct client *c, const struct msieve_command *cmd)
{
    const struct msieve_arg *a = &cmd->args[0];
    struct buf err = BUF_INIT;
    if (a->len > sieve_max_size(c->ws->cfg)) client_error(c, SIEVE_E_MAXSIZE);
    else if (strlen(a->s) != a->len) client_status(c, "NO", NULL, "A script holds no NUL byte");
    else if (sieve_check(a->s, &err) < 0) compile_error(c, &err);
    else script_ok(c, a, "Script is valid");
    buf_fini(&err);
}

void cmd_listscripts(struct client *c, const struct msieve_command *cmd)
{
    (void)cmd;
    struct strarr names = STRARR_INIT;
    char *active = NULL;
    int r = sieve_list(c->ws->cfg, c->user, &names, &active);
    if (r < 0) {
        client_error(c, r);
    } else {
        for (size_t i = 0; i < names.count; i++) {
            client_string(c, names.v[i], strlen(names.v[i]));
            if (active && !strcmp(active, names.v[i])) stream_puts(c->stream, " ACTIVE");
            stream_write(c->stream, "\r\n", 2);
        }
        client_status(c, "OK", NULL, "Listscripts completed");
    }
    free(active);
    strarr_fini(&names);
}

void cmd_setactive(struct client *c, const struct msieve_command *cmd)
{
    const struct msieve_arg *a = &cmd->args[0];
    int r;
    if (!a->len) {
        /* section 2.8: the empty name deactivates; with none active that is already so */
        r = sieve_deactivate(c->ws->cfg, c->user);
        if (r == CF_E_NOTFOUND) r = 0;
        if (!r) log_info("sieve_deactivate", "script=\"\"");
    } else if (strlen(a->s) != a->len || !sieve_name_valid(a->s)) {
        r = CF_E_NOTFOUND;                       /* no script can have that name */
    } else {
        r = sieve_activate(c->ws->cfg, c->user, a->s);
        if (!r) log_info("sieve_activate", "script=%s", log_quote(a->s));
    }
    if (r < 0) client_error(c, r);
    else client_status(c, "OK", NULL, a->len ? "Script activated" : "No script is active");
}

void cmd_getscript(struct client *c, const struct msieve_command *cmd)
{
    const struct msieve_arg *a = &cmd->args[0];
    char *data = NULL;
    size_t len = 0;
    int r = strlen(a->s) != a->len || !sieve_name_valid(a->s) ? CF_E_NOTFOUND
            : sieve_get(c->ws->cfg, c->user, a->s, &data, &len);
    if (r < 0) {
        client_error(c, r);
    } else {
        /* section 2.9: always a literal, so the script comes back byte for byte */
        stream_printf(c->stream, "{%zu}\r\n", len);
        stream_write(c->stream, data, len);
        stream_write(c->stream, "\r\n", 2);
        client_status(c, "OK", NULL, "Getscript completed");
    }
    free(data);
}

void cmd_deletescript(struct client *c, const struct msieve_command *cmd)
{
    const struct msieve_arg *a = &cmd->args[0];
    int r = strlen(a->s) != a->len || !sieve_name_valid(a->s) ? CF_E_NOTFOUND
            : sieve_delete(c->ws->cfg, c->user, a->s);
    if (r < 0) {
        client_error(c, r);
    } else {
        log_info("sieve_delete", "script=%s", log_quote(a->s));
        client_status(c, "OK", NULL, "Script deleted");
    }
}

void cmd_renamescript(struct client *c, const struct msieve_command *cmd)
{
    const struct msieve_arg *a = &cmd->args[0];
    if (strlen(a->s) != a->len || !sieve_name_valid(a->s)) {
        client_error(c, CF_E_NOTFOUND);
        return;
    }
    const char *to = name_arg(c, cmd, 1);
    if (!to) return;
    int r = sieve_rename(c->ws->cfg, c->user, a->s, to);
    if (r < 0) {
        client_error(c, r);
    } else {
        log_info("sieve_rename", "script=%s to=%s", log_quote(a->s), log_quote(to));
        client_status(c, "OK", NULL, "Script renamed");
    }
}
