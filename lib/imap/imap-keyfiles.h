/* imap-keyfiles.h: the store's key files that IMAP fills (store/mailbox-sort.h): the SORT
 * and THREAD keys ("sortkeys", imap-sortkeys.h) and the header search column ("searchkeys",
 * search-column.h), named once here for the commands that read them and for the programs
 * that append messages (imapd's APPEND, lmtpd's deliveries), which write the new messages'
 * records right after the commit. */
#ifndef COFFER_IMAP_IMAP_KEYFILES_H
#define COFFER_IMAP_IMAP_KEYFILES_H
#include "store/mailbox-sort.h"

extern const struct mailbox_sortkeys_ops imap_sortkeys_file_ops;
extern const struct mailbox_sortkeys_ops search_column_file_ops;

/* imap_keyfiles_fill_on_append: every mailbox_append of this process from now on also
 * writes both files' records of the new messages (mailbox_sortkeys_fill_on_append). */
void imap_keyfiles_fill_on_append(void);

#endif
