/* priv.h: giving up root for the service account (coffer.conf `user`), the same way in the
 * master, the tools and the test helpers. */
#ifndef COFFER_CORE_PRIV_H
#define COFFER_CORE_PRIV_H
#include "core/buf.h"

/* priv_drop: when the process runs as root and user is not empty, become that account for
 * good: its supplementary groups (initgroups), its group, its user; then make sure root
 * cannot be regained (setuid(0) must fail, which also refuses an account of uid 0). 0 when
 * done or when there was nothing to do (not root, or no user); CF_E_NOTFOUND when there is no
 * such account, CF_E_PERM when a switch failed or root could be regained; the reason is
 * then appended to err (may be NULL) as one line without a newline. */
int priv_drop(const char *user, struct buf *err);

#endif
