/* priv.c: dropping root for the service account. */
#include "core/priv.h"
#include "core/error.h"
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <string.h>
#include <unistd.h>

int priv_drop(const char *user, struct buf *err)
{
    if (geteuid() != 0 || !user || !*user) return 0;
    struct passwd *pw = getpwnam(user);
    if (!pw) {
        if (err) buf_printf(err, "user '%s': no such account", user);
        return CF_E_NOTFOUND;
    }
    if (initgroups(pw->pw_name, pw->pw_gid) < 0 || setgid(pw->pw_gid) < 0 ||
        setuid(pw->pw_uid) < 0) {
        if (err) buf_printf(err, "cannot switch to user %s: %s", user, strerror(errno));
        return CF_E_PERM;
    }
    if (setuid(0) == 0) {
        if (err) buf_printf(err, "could regain root after switching to %s", user);
        return CF_E_PERM;
    }
    return 0;
}
