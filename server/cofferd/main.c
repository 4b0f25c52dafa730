/* main.c: cofferd's command line and start-up: config check, pid file, binding, directories,
 * daemonizing, dropping root, database recovery; then the supervisor loop of master.c. */
#include "master.h"
#include "notify.h"
#include "core/config.h"
#include "core/error.h"
#include "core/fileutil.h"
#include "core/log.h"
#include "core/paths.h"
#include "core/priv.h"
#include "core/xmalloc.h"
#include "store/store.h"
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>


/* Exit codes, documented in cofferd(8). */
enum { EXIT_CLEAN = 0, EXIT_OTHER = 1, EXIT_CONFIG = 2, EXIT_BIND = 3, EXIT_RUNNING = 4 };

/* g_notify: while daemonizing, the pipe to the waiting parent, which exits with the byte we
 * send (so `cofferd -C ...` in a script still gets the start-up exit code); -1 otherwise. */
static int g_notify = -1;

/* g_pidfile/g_pidfd: once the pid file is ours, a failed start removes it again (die). */
static const char *g_pidfile;
static int g_pidfd = -1;
static void pidfile_remove(const char *pidfile, int pidfd);

static void notify_parent(int code)
{
    if (g_notify < 0) return;
    unsigned char c = (unsigned char)code;
    if (write(g_notify, &c, 1) < 0) {
        /* the parent is gone: nobody to tell */
    }
    close(g_notify);
    g_notify = -1;
}

/* die: print "cofferd: MESSAGE" to stderr (each line of a multi-line message prefixed), tell a
 * waiting parent, exit with code. */
static void die(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3), noreturn));
static void die(int code, const char *fmt, ...)
{
    va_list ap;
    struct buf b = BUF_INIT;
    va_start(ap, fmt);
    buf_vprintf(&b, fmt, ap);
    va_end(ap);
    const char *s = buf_cstr(&b);
    while (*s) {
        size_t n = strcspn(s, "\n");
        fprintf(stderr, "cofferd: %.*s\n", (int)n, s);
        s += n;
        if (*s == '\n') s++;
    }
    fflush(stderr);
    buf_fini(&b);
    if (g_pidfd >= 0) pidfile_remove(g_pidfile, g_pidfd);
    notify_parent(code);
    exit(code);
}

/* usage: to stdout and exit 0 when asked for (-h, --help), else to stderr and exit 1. Never
 * reads the configuration. */
static void usage(int asked)
{
    fprintf(asked ? stdout : stderr, "usage: cofferd [-C coffer.conf] [-f] [-d] [-t]\n"
                    "  -C FILE  configuration (default " COFFER_DEFAULT_CONF ")\n"
                    "  -f       stay in the foreground\n"
                    "  -d       log to stderr at debug level\n"
                    "  -t       check the configuration and exit (0 ok, 2 bad)\n"
                    "  -h       this help\n"
                    "See cofferd(8).\n");
    exit(asked ? EXIT_CLEAN : EXIT_OTHER);
}

/* user_check: the rules for `user`. Returns the account to switch to (NULL: stay as we are). */
static const struct passwd *user_check(const struct config *cfg)
{
    const char *user = config_str(cfg, CFG_USER);
    if (geteuid() == 0 && !*user)
        die(EXIT_CONFIG, "%s: started as root but no user is set: set user = NAME in "
            "coffer.conf to the unprivileged account cofferd switches to after binding",
            cfg->path);
    /* as coffer.conf(5) says, user only matters to a cofferd started as root */
    if (!*user || geteuid() != 0) return NULL;
    struct passwd *pw = getpwnam(user);
    if (!pw) die(EXIT_CONFIG, "%s: user '%s': no such account", cfg->path, user);
    if (pw->pw_uid == 0) die(EXIT_CONFIG, "%s: user '%s' is root: pick an unprivileged account",
                             cfg->path, user);
    return pw;
}

/* access_check: can the account the workers run as (pw, or ourselves) reach what they need:
 * configdir and every partition (cofferd creates and chowns them at start when root, so only
 * the directories above need search permission then; otherwise the directories themselves
 * need rwx, or their nearest existing parent must let us create them), and read coffer.conf,
 * the partitions file and the TLS files. Dies with one line per problem naming the path and
 * the missing permission (a 0700 parent directory otherwise surfaces much later as an "I/O
 * error" from whichever tool or worker meets it first). Run by -t and by every start. */
static int access_one(const char *path, int want, int create, const struct path_who *who,
                      struct buf *all)
{
    struct buf one = BUF_INIT;
    int r = path_check_access(path, want, create, who, &one);
    if (r) buf_printf(all, "%s%s", all->len ? "\n" : "", buf_cstr(&one));
    buf_fini(&one);
    return r != 0;
}

static void access_check(const struct config *cfg, const char *conf, const struct passwd *pw)
{
    struct path_who who;
    if (!pw || path_who_user(&who, pw->pw_name)) path_who_self(&who);
    /* as root, cofferd makes the missing directories itself and gives them to `user` */
    int root = geteuid() == 0, dir_want = root ? 0 : R_OK | W_OK | X_OK;
    struct buf why = BUF_INIT;
    int bad = access_one(config_str(cfg, CFG_CONFIGDIR), dir_want, !root, &who, &why);
    for (size_t i = 0; i < cfg->npartitions; i++)
        bad |= access_one(cfg->partitions[i].path, dir_want, !root, &who, &why);
    const char *files[] = { conf, config_str(cfg, CFG_PARTITIONS), config_str(cfg, CFG_TLS_CERT),
                            config_str(cfg, CFG_TLS_KEY) };
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++)
        if (*files[i]) bad |= access_one(files[i], R_OK, 0, &who, &why);
    if (bad)
        die(EXIT_CONFIG, "%s\nthe workers run as %s: give that account the permission named "
            "(see FILES in cofferd(8))", buf_cstr(&why), who.name);
    buf_fini(&why);
}

/* dir_trusted: may root follow a symbolic link found in the open directory dfd? Only when the
 * directory belongs to root and nobody else can write it: in a directory the service user can
 * write, that user could have replaced a partition with a link to /etc, and root would then
 * make /etc private to the service user (review M4). */
static int dir_trusted(int dfd)
{
    struct stat st;
    if (fstat(dfd, &st) < 0) return 0;
    return st.st_uid == 0 && !(st.st_mode & (S_IWGRP | S_IWOTH));
}

/* make_dir: create dir and any missing parents (mode 0700); every directory created here,
 * not only the last, belongs to the service user, or it could not reach its own files. The walk
 * is done one component at a time with openat and O_NOFOLLOW, and the modes and owners are set
 * on descriptors (fchmod, fchown), so nothing the service user renames or links while cofferd
 * runs as root can redirect them. A symbolic link is followed only in a directory dir_trusted
 * accepts (so /var/run -> /run still works); any other is fatal. Not root: no privilege to
 * misuse, and links are followed as before. */
static void make_dir(const char *dir, const struct passwd *pw)
{
    int strict = geteuid() == 0;
    int dfd = open(dir[0] == '/' ? "/" : ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0) die(EXIT_OTHER, "cannot open directory %s: %s", dir, strerror(errno));
    char *p = xstrdup(dir), *save = NULL;
    struct buf sofar = BUF_INIT;
    if (dir[0] == '/') buf_putc(&sofar, '/');
    for (char *name = strtok_r(p, "/", &save); name; name = strtok_r(NULL, "/", &save)) {
        if (sofar.len && sofar.s[sofar.len - 1] != '/') buf_putc(&sofar, '/');
        buf_appends(&sofar, name);
        const char *here = buf_cstr(&sofar);
        int created = mkdirat(dfd, name, 0700) == 0;
        if (!created && errno != EEXIST)
            die(EXIT_OTHER, "cannot create directory %s: %s", here, strerror(errno));
        int fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0 && (errno == ELOOP || errno == ENOTDIR)) {
            struct stat lst;
            if (fstatat(dfd, name, &lst, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(lst.st_mode)) {
                if (strict && !dir_trusted(dfd))
                    die(EXIT_OTHER, "%s is a symbolic link in a directory that is not owned by "
                        "root or that others can write: refusing to follow it as root (the "
                        "directories above configdir and the partitions must belong to root; "
                        "see SECURITY in cofferd(8))", here);
                fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
            } else {
                errno = ENOTDIR;
            }
        }
        if (fd < 0) die(EXIT_OTHER, "cannot open directory %s: %s", here, strerror(errno));
        if (created && pw && fchown(fd, pw->pw_uid, pw->pw_gid) < 0)
            die(EXIT_OTHER, "cannot chown %s to %s: %s", here, pw->pw_name, strerror(errno));
        close(dfd);
        dfd = fd;
    }
    /* private to Coffer, even when it existed with a looser mode */
    if (fchmod(dfd, 0700) < 0)
        die(EXIT_OTHER, "cannot chmod %s: %s", dir, strerror(errno));
    if (pw && fchown(dfd, pw->pw_uid, pw->pw_gid) < 0)
        die(EXIT_OTHER, "cannot chown %s to %s: %s", dir, pw->pw_name, strerror(errno));
    close(dfd);
    buf_fini(&sofar);
    free(p);
}

/* warn_owner: as root, say when a file that decides what root does (coffer.conf, the
 * partitions file) can be changed by someone other than root. */
static void warn_owner(const char *path)
{
    struct stat st;
    if (geteuid() != 0 || stat(path, &st) < 0) return;
    if (st.st_uid != 0 || (st.st_mode & (S_IWGRP | S_IWOTH)))
        log_warn("insecure_owner", "path=%s uid=%d mode=%04o hint=%s", log_quote(path),
                 (int)st.st_uid, (unsigned)(st.st_mode & 07777),
                 log_quote("cofferd starts as root: this file should belong to root and be "
                           "writable by root only (SECURITY in cofferd(8))"));
}

/* daemonize: fork; the parent waits for the child's start-up verdict and exits with it. The
 * child starts a new session and leaves the directory it was started in. */
static void daemonize(void)
{
    int p[2];
    if (pipe2(p, O_CLOEXEC) < 0) die(EXIT_OTHER, "pipe: %s", strerror(errno));
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) die(EXIT_OTHER, "fork: %s", strerror(errno));
    if (pid > 0) {
        close(p[1]);
        unsigned char c;
        ssize_t n;
        do n = read(p[0], &c, 1);
        while (n < 0 && errno == EINTR);
        _exit(n == 1 ? c : EXIT_OTHER);
    }
    close(p[0]);
    g_notify = p[1];
    if (setsid() < 0) die(EXIT_OTHER, "setsid: %s", strerror(errno));
    if (chdir("/") < 0) die(EXIT_OTHER, "chdir /: %s", strerror(errno));
}

static void stdio_to_null(int keep_stderr)
{
    int fd = open("/dev/null", O_RDWR);
    if (fd < 0) return;
    dup2(fd, 0);
    dup2(fd, 1);
    if (!keep_stderr) dup2(fd, 2);
    if (fd > 2) close(fd);
}

/* pidfile_remove: unlink our pid file if the path still names the file we locked (and that
 * we may: in a root-owned directory the service user cannot, and a stale unlocked file does no
 * harm). The lock goes with the descriptor, closed at exit. */
static void pidfile_remove(const char *pidfile, int pidfd)
{
    struct stat a, b;
    if (fstat(pidfd, &a) == 0 && lstat(pidfile, &b) == 0 && a.st_dev == b.st_dev &&
        a.st_ino == b.st_ino)
        unlink(pidfile);
}

/* absolute_conf: the configuration path made absolute (caller frees): workers get -C, and
 * SIGHUP re-reads it after chdir("/"). */
static char *absolute_conf(const char *conf_arg)
{
    if (conf_arg[0] == '/') return xstrdup(conf_arg);
    char cwd[PATH_MAX];
    if (!getcwd(cwd, sizeof cwd)) die(EXIT_OTHER, "getcwd: %s", strerror(errno));
    return xasprintf("%s/%s", cwd, conf_arg);
}

/* pidfile_take: lock the pid file and write our pid in it; dies when another cofferd holds
 * it. The lock, not the pid in the file, says whether a cofferd runs: the kernel drops it the
 * moment the master dies, so a crashed server restarts at once (fileutil.h). Returns the
 * descriptor, which holds the lock. */
static int pidfile_take(const char *pidfile)
{
    int pidfd = -1;
    pid_t other = 0;
    int pr = pidfile_lock(pidfile, &pidfd, &other);
    if (pr == CF_E_LOCKED) {
        if (other > 0)
            die(EXIT_RUNNING, "already running as pid %d (pid file %s is locked)", (int)other,
                pidfile);
        die(EXIT_RUNNING, "already running (pid file %s is locked)", pidfile);
    }
    if (pr) die(EXIT_OTHER, "cannot open pid file %s: %s", pidfile, strerror(errno));
    g_pidfile = pidfile;
    g_pidfd = pidfd;
    /* no stale pid in it from here on */
    if (pidfile_update(pidfd, getpid()))
        die(EXIT_OTHER, "cannot write pid file %s: %s", pidfile, strerror(errno));
    /* root's, readable by all (coffer status): were it the service user's, that user could
     * write another pid in it for an administrator's `kill $(cat pidfile)` */
    if (geteuid() == 0 && (fchown(pidfd, 0, 0) < 0 || fchmod(pidfd, 0644) < 0))
        die(EXIT_OTHER, "cannot set the owner of pid file %s: %s", pidfile, strerror(errno));
    return pidfd;
}

int main(int argc, char **argv)
{
    const char *conf_arg = COFFER_DEFAULT_CONF;
    int foreground = 0, debug = 0, check = 0, opt;
    for (int k = 1; k < argc; k++)
        if (!strcmp(argv[k], "--help")) usage(1);
    while ((opt = getopt(argc, argv, "C:fdth")) != -1) {
        switch (opt) {
        case 'C': conf_arg = optarg; break;
        case 'f': foreground = 1; break;
        case 'd': debug = 1; break;
        case 't': check = 1; break;
        case 'h': usage(1); break;
        default: usage(0);
        }
    }
    if (optind != argc) usage(0);

    /* before anything is forked: no worker may inherit NOTIFY_SOCKET */
    notify_init();
    char *conf = absolute_conf(conf_arg);

    struct config *cfg = NULL;
    struct buf err = BUF_INIT;
    if (config_load(conf, &cfg, &err) || master_validate(cfg, &err))
        die(EXIT_CONFIG, "%s", buf_cstr(&err));
    const struct passwd *pw = user_check(cfg);
    access_check(cfg, conf, pw);
    if (check) {
        printf("cofferd: %s: configuration OK\n", conf);
        config_free(&cfg);
        free(conf);
        return EXIT_CLEAN;
    }

    int to_stderr = debug || !strcmp(config_str(cfg, CFG_LOG_TARGET), "stderr");
    enum log_level lvl = LOG_LVL_INFO;
    log_level_parse(config_str(cfg, CFG_LOG_LEVEL), &lvl);
    log_init("cofferd", to_stderr, debug ? LOG_LVL_DEBUG : lvl);

    char *pidfile = config_pidfile(cfg);
    char *configdir = xstrdup(config_str(cfg, CFG_CONFIGDIR));
    warn_owner(conf);
    warn_owner(config_str(cfg, CFG_PARTITIONS));
    umask(077);
    /* the pid file usually lives in configdir */
    make_dir(configdir, pw);
    int pidfd = pidfile_take(pidfile);

    struct passwd pwcopy;
    char *pwname = NULL;
    if (pw) {
        pwcopy = *pw;
        pwname = xstrdup(pw->pw_name);
        pwcopy.pw_name = pwname;
        pw = &pwcopy;
    }

    /* Bind first, while still root, so privileged ports work; the master keeps these sockets
     * for its whole life and hands them to every worker. */
    int r = master_setup(cfg, conf, debug, &err);
    cfg = NULL;   /* owned by the master now (freed by master_setup on failure) */
    if (r == CF_E_IO) die(EXIT_BIND, "%s", buf_cstr(&err));
    if (r) die(EXIT_OTHER, "%s", buf_cstr(&err));
    const struct config *mc = master_config();

    for (size_t i = 0; i < mc->npartitions; i++) make_dir(mc->partitions[i].path, pw);

    /* the daemon shares the locked open file with the parent, which exits */
    if (!foreground) daemonize();
    if (pidfile_update(pidfd, getpid()))
        die(EXIT_OTHER, "cannot write pid file %s: %s", pidfile, strerror(errno));
    buf_reset(&err);
    if (pw && priv_drop(pw->pw_name, &err)) die(EXIT_OTHER, "%s", buf_cstr(&err));
    /* every worker re-reads the configuration as this user: better to fail here, clearly */
    if (access(conf, R_OK) < 0 || access(mc->v[CFG_PARTITIONS].s, R_OK) < 0)
        die(EXIT_OTHER, "%s or %s is not readable by uid %d, which the workers run as: %s",
            conf, mc->v[CFG_PARTITIONS].s, (int)getuid(), strerror(errno));

    /* Recovery needs the environment to itself: no worker exists yet. It runs as the service
     * user so the files it creates belong to that user. */
    if (store_db_recover(mc)) {
        die(EXIT_OTHER, "database recovery in %s/db failed (the reason is in the log)", configdir);
    }
    struct passwd *me = getpwuid(geteuid());
    log_notice("started", "pid=%d config=%s services=%zu user=%s", (int)getpid(),
               log_quote(conf), mc->nservices, log_quote(me ? me->pw_name : "?"));
    notify_parent(EXIT_CLEAN);
    if (!foreground) stdio_to_null(to_stderr);
    /* listeners bound, databases recovered: connections are queued from here on, and the
     * workers the loop starts first thing take them */
    notify_send("READY=1\nMAINPID=%d\nSTATUS=started, starting workers", (int)getpid());

    int rc = master_run();

    pidfile_remove(pidfile, pidfd);
    g_pidfd = -1;
    log_notice("stopped", "pid=%d exit=%d", (int)getpid(), rc);
    master_fini();
    free(pidfile);
    free(configdir);
    free(pwname);
    free(conf);
    buf_fini(&err);
    return rc;
}
