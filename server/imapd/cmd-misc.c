/* cmd-misc.c: the small extensions: ID (RFC 2971) and ENABLE (RFC 5161). */
#include "imapd.h"
#include "core/buf.h"
#include "core/log.h"
#include "core/version.h"
#include <string.h>

/* RFC 2971 section 3.3: at most 30 field-value pairs, fields at most 30 octets, values at
 * most 1024. */
#define ID_MAX_PAIRS 30
#define ID_MAX_FIELD 30
#define ID_MAX_VALUE 1024

/* RFC 2971 section 3.1: ID ( "field" "value" ... ) or ID NIL, in any state. The client's
 * fields are logged (one line); the answer names the server and its version. */
void cmd_id(struct client *c, const struct imap_command *cmd)
{
    if (cmd->nargs != 1 ||
        (cmd->args[0].type != IMAP_ARG_NIL && cmd->args[0].type != IMAP_ARG_LIST)) {
        client_tagged(c, cmd->tag, "BAD ID needs a parenthesized list or NIL");
        return;
    }
    const struct imap_arg *a = &cmd->args[0];
    struct buf logline = BUF_INIT;
    if (a->type == IMAP_ARG_LIST) {
        if (a->count % 2 || a->count / 2 > ID_MAX_PAIRS) {
            client_tagged(c, cmd->tag, "BAD ID needs field-value pairs (at most %d)", ID_MAX_PAIRS);
            goto done;
        }
        for (size_t i = 0; i < a->count; i += 2) {
            const char *field = imap_arg_string(&a->list[i]);
            const char *value = NULL;
            if (!field || a->list[i].len > ID_MAX_FIELD ||
                !imap_arg_nstring(&a->list[i + 1], &value) ||
                (value && a->list[i + 1].len > ID_MAX_VALUE)) {
                client_tagged(c, cmd->tag, "BAD Invalid ID field or value");
                goto done;
            }
            /* log keys are the field names lower-cased, restricted to safe characters */
            buf_appends(&logline, i ? " id_" : "id_");
            for (const char *p = field; *p; p++) {
                char ch = *p;
                if (ch >= 'A' && ch <= 'Z') ch = (char)(ch - 'A' + 'a');
                if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9'))) ch = '_';
                buf_putc(&logline, ch);
            }
            buf_putc(&logline, '=');
            buf_appends(&logline, log_quote(value ? value : "NIL"));
        }
    }
    log_info("client_id", "%s", logline.len ? buf_cstr(&logline) : "id=NIL");
    /* RFC 2971 section 3.3: name and version only (COFFER_VERSION, from project() in
     * CMakeLists.txt); nothing of the host, the OS, the build or the configuration, which
     * section 7 warns would help an attacker */
    client_untagged(c, "ID (\"name\" \"Coffer\" \"version\" \"%s\")", COFFER_VERSION);
    client_tagged(c, cmd->tag, "OK ID completed");
done:
    buf_fini(&logline);
}

/* RFC 5161 section 3.1: ENABLE capability... in authenticated state. CONDSTORE and QRESYNC
 * (RFC 7162 section 3.2.3; QRESYNC brings CONDSTORE) are really turned on; `* ENABLED` lists
 * those this command enabled (not ones already on); unknown names are ignored. */
void cmd_enable(struct client *c, const struct imap_command *cmd)
{
    if (cmd->nargs == 0) {
        client_tagged(c, cmd->tag, "BAD ENABLE needs at least one capability name");
        return;
    }
    for (size_t i = 0; i < cmd->nargs; i++) {
        if (!imap_arg_atom(&cmd->args[i]) || cmd->args[i].type == IMAP_ARG_NIL) {
            client_tagged(c, cmd->tag, "BAD ENABLE takes capability names (atoms)");
            return;
        }
    }
    struct buf list = BUF_INIT;
    for (size_t i = 0; i < cmd->nargs; i++) {
        /* rev2.c: IMAP4rev2 (RFC 9051), UTF8=ACCEPT (RFC 6855) */
        if (rev2_enable(c, &cmd->args[i], &list)) continue;
        /* condstore.c: RFC 7162 */
        unsigned bit = imap_arg_atom_eq(&cmd->args[i], "CONDSTORE") ? CLIENT_ENABLED_CONDSTORE
                       : imap_arg_atom_eq(&cmd->args[i], "QRESYNC") ? CLIENT_ENABLED_QRESYNC
                                                                     : 0;
        if (!bit || (c->enabled & bit)) continue;
        condstore_enable(c, bit);
        buf_appends(&list, bit == CLIENT_ENABLED_QRESYNC ? " QRESYNC" : " CONDSTORE");
    }
    client_untagged(c, "ENABLED%s", buf_cstr(&list));
    buf_fini(&list);
    client_tagged(c, cmd->tag, "OK ENABLE completed");
}
