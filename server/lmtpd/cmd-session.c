/* cmd-session.c: LHLO, NOOP, RSET, QUIT, and the refusal of HELO/EHLO (RFC 2033, RFC 5321). */
#include "lmtpd.h"
#include "core/config.h"
#include "core/strarr.h"
#include "core/xmalloc.h"
#include <stdlib.h>
#include <string.h>

/* LHLO domain: the extensions follow the greeting line (RFC 2033 section 4.1, RFC 5321
 * section 4.1.1.1); the last line has a space after the code instead of "-". */
void cmd_lhlo(struct client *c, const struct lmtp_command *cmd)
{
    if (!*cmd->args || strchr(cmd->args, ' ')) {
        client_reply(c, "501 5.5.4 Syntax: LHLO hostname");
        return;
    }
    client_reset(c);
    free(c->lhlo_name);
    c->lhlo_name = xstrdup(cmd->args);
    c->greeted = 1;
    /* H2: LMTP has no login; an accepted LHLO ends the pre-login phase (login_timeout, and
     * the count against max_preauth_per_ip), unless AUTH is still required, which ends it */
    if (!auth_required(c)) worker_note_login(c->ws, NULL);
    struct strarr lines = STRARR_INIT;
    strarr_add(&lines, lmtpd_hostname());
    strarr_add(&lines, "PIPELINING");               /* RFC 2920 */
    strarr_add(&lines, "ENHANCEDSTATUSCODES");      /* RFC 2034 */
    strarr_add(&lines, "8BITMIME");                 /* RFC 6152 */
    strarr_add(&lines, "CHUNKING");                 /* RFC 3030 */
    char *size = xasprintf("SIZE %lld", config_int(c->ws->cfg, CFG_MAX_LITERAL));  /* RFC 1870 */
    strarr_take(&lines, size);
    if (worker_tls_available(c->ws)) strarr_add(&lines, "STARTTLS");   /* RFC 3207 */
    auth_lhlo_line(c, &lines);
    for (size_t i = 0; i < lines.count; i++)
        client_reply(c, "250%c%s", i + 1 < lines.count ? '-' : ' ', lines.v[i]);
    strarr_fini(&lines);
}

/* RFC 2033 section 4.1: an LMTP server must answer HELO and EHLO with 500. */
void cmd_helo(struct client *c, const struct lmtp_command *cmd)
{
    client_reply(c, "500 5.5.1 This is an LMTP server: use LHLO, not %s", cmd->verb);
}

void cmd_noop(struct client *c, const struct lmtp_command *cmd)
{
    client_reply(c, "250 2.0.0 OK");
}

void cmd_rset(struct client *c, const struct lmtp_command *cmd)
{
    if (*cmd->args) {
        client_reply(c, "501 5.5.4 Syntax: RSET takes no parameters");
        return;
    }
    client_reset(c);
    client_reply(c, "250 2.0.0 OK");
}

void cmd_quit(struct client *c, const struct lmtp_command *cmd)
{
    if (*cmd->args) {
        client_reply(c, "501 5.5.4 Syntax: QUIT takes no parameters");
        return;
    }
    client_reply(c, "221 2.0.0 %s closing connection", lmtpd_hostname());
    c->end_reason = "quit";
}
