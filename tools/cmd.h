/* cmd.h: the subcommands of `coffer`, one file each, dispatched from coffer.c. Each returns
 * an exit code (enum tool_exit in tool.h unless said otherwise). */
#ifndef COFFER_TOOLS_CMD_H
#define COFFER_TOOLS_CMD_H
struct tool;

int cmd_user(struct tool *t);          /* cmd-user.c */
int cmd_status(struct tool *t);        /* cmd-status.c */
int cmd_deliver(struct tool *t);       /* cmd-deliver.c; exit codes: sysexits(3), not enum tool_exit */
int cmd_sieve(struct tool *t);         /* cmd-sieve.c */
int cmd_mailbox(struct tool *t);       /* cmd-mailbox.c */
int cmd_mailbox_metadata(struct tool *t);   /* cmd-mailbox-metadata.c: `mailbox metadata` */
int cmd_quota(struct tool *t);         /* cmd-quota.c */
int cmd_acl(struct tool *t);           /* cmd-acl.c */
int cmd_reconstruct(struct tool *t);   /* cmd-reconstruct.c */
int cmd_check(struct tool *t);         /* cmd-check.c */
int cmd_dump(struct tool *t);          /* cmd-dump.c */
int cmd_restore(struct tool *t);       /* cmd-restore.c */
int cmd_expire(struct tool *t);        /* cmd-expire.c */
int cmd_unexpunge(struct tool *t);     /* cmd-unexpunge.c */
int cmd_undelete(struct tool *t);      /* cmd-unexpunge.c */
int cmd_db(struct tool *t);            /* cmd-db.c */
int cmd_route(struct tool *t);         /* cmd-route.c */
int cmd_user_move(struct tool *t);     /* cmd-move.c: `user move` */

#endif
