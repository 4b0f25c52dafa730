/* imap-keyfiles.c: the key file kinds of imap-keyfiles.h. */
#include "imap/imap-keyfiles.h"
#include "imap/imap-sortkeys.h"
#include "imap/search-column.h"

const struct mailbox_sortkeys_ops imap_sortkeys_file_ops = {
    IMAP_SORTKEYS_VERSION, imap_sortkeys_encode, NULL, SORTKEYS_FILE,
};

const struct mailbox_sortkeys_ops search_column_file_ops = {
    SEARCH_COLUMN_VERSION, search_column_encode, NULL, SEARCHKEYS_FILE,
};

void imap_keyfiles_fill_on_append(void)
{
    mailbox_sortkeys_fill_on_append(&search_column_file_ops);
    mailbox_sortkeys_fill_on_append(&imap_sortkeys_file_ops);
}
