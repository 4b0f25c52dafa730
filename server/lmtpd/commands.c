/* commands.c: the one table of LMTP commands; any other verb gets "500 5.5.2 Unknown
 * command". */
#include "lmtpd.h"
#include <string.h>

static const struct command commands[] = {
    { "LHLO", cmd_lhlo },           /* RFC 2033 section 4.1 */
    { "HELO", cmd_helo },           /* refused: RFC 2033 section 4.1 */
    { "EHLO", cmd_helo },
    { "NOOP", cmd_noop },           /* RFC 5321 section 4.1.1.9 */
    { "RSET", cmd_rset },           /* RFC 5321 section 4.1.1.5 */
    { "QUIT", cmd_quit },           /* RFC 5321 section 4.1.1.10 */
    { "STARTTLS", cmd_starttls },   /* RFC 3207 */
    { "AUTH", cmd_auth },           /* RFC 4954 */
    { "MAIL", cmd_mail },           /* RFC 5321 section 4.1.1.2 */
    { "RCPT", cmd_rcpt },           /* RFC 5321 section 4.1.1.3 */
    { "DATA", cmd_data },           /* RFC 2033 section 4.2 */
    { "BDAT", cmd_bdat },           /* RFC 3030 section 2 */
};

const struct command *command_find(const char *verb)
{
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(commands[i].verb, verb)) return &commands[i];
    return NULL;
}

void command_dispatch(struct client *c, const struct lmtp_command *cmd)
{
    const struct command *def = command_find(cmd->verb);
    if (!def) {
        client_reply(c, "500 5.5.2 Unknown command");
        return;
    }
    def->handler(c, cmd);
}
