/* config-settings.h: every coffer.conf setting, one line each: the single table that config.c
 * parses, that programs read through config_*(), and that man/coffer.conf.5 documents (a unit
 * test checks that each name here appears in the man page).
 *
 * X(ID, "name", TYPE, "default", "one-line description")
 * Types: STR, INT, BOOL, SIZE (bytes; K/M/G suffixes), DURATION (seconds; s/m/h/d suffixes),
 * ENUM (the description begins with the allowed values as "a|b|c:"), LIST (comma or space
 * separated), PATH (relative paths are taken from the directory of coffer.conf). */

#define COFFER_GLOBAL_SETTINGS(X) \
    X(CFG_CONFIGDIR, "configdir", PATH, "/var/lib/coffer", "directory for the databases, Sieve scripts and runtime files") \
    X(CFG_PARTITIONS, "partitions", PATH, "partitions.conf", "file listing the mail partitions") \
    X(CFG_DEFAULTPARTITION, "defaultpartition", STR, "default", "partition for new mailboxes when partition_select is default") \
    X(CFG_PARTITION_SELECT, "partition_select", ENUM, "default", "default|mostfree: where new top-level mailboxes are placed") \
    X(CFG_USER, "user", STR, "", "service user that cofferd switches to after binding when started as root") \
    X(CFG_PIDFILE, "pidfile", PATH, "", "pid file of cofferd (default: configdir/cofferd.pid)") \
    X(CFG_LOG_TARGET, "log_target", ENUM, "syslog", "syslog|stderr: where every program logs") \
    X(CFG_LOG_LEVEL, "log_level", ENUM, "info", "debug|info|notice|warning|error: lowest level logged") \
    X(CFG_HOSTNAME, "hostname", STR, "", "name used in greetings and Received headers (default: the system host name)") \
    X(CFG_TLS_CERT, "tls_cert", PATH, "", "PEM certificate chain for STARTTLS and implicit TLS") \
    X(CFG_TLS_KEY, "tls_key", PATH, "", "PEM private key for tls_cert") \
    X(CFG_TLS_CIPHERS, "tls_ciphers", STR, "ECDHE+AESGCM:ECDHE+CHACHA20:DHE+AESGCM:DHE+CHACHA20", "OpenSSL cipher list for TLS 1.2 (default: AEAD ciphers with forward secrecy only)") \
    X(CFG_TLS_MIN_VERSION, "tls_min_version", ENUM, "1.2", "1.2|1.3: oldest TLS version accepted") \
    X(CFG_ALLOW_PLAINTEXT, "allow_plaintext", BOOL, "no", "allow passwords over connections without TLS") \
    X(CFG_ADMINS, "admins", LIST, "", "users with administrator rights") \
    X(CFG_ACL_LOCAL_USERS_ONLY, "acl_local_users_only", BOOL, "no", "SETACL and coffer acl set grant rights only to users of this server's password database, anyone, anonymous and admins (a scale-out backend: users of other backends cannot share folders here)") \
    X(CFG_URLAUTH_SUBMIT_SERVERS, "urlauth_submit_servers", LIST, "", "users (message submission servers) that may URLFETCH URLAUTH URLs made for submit+USER (RFC 4467)") \
    X(CFG_AUTH_FAIL_DELAY, "auth_fail_delay", DURATION, "2s", "pause before answering a failed login (IMAP, POP3, LMTP AUTH); the third failure closes the connection") \
    X(CFG_AUTOCREATE_SPECIAL_USE, "autocreate_special_use", LIST, "", "folders made with their RFC 6154 special-use flag at a user's first login, e.g. Sent Drafts Trash Junk") \
    X(CFG_POP3_RETR_SETS_SEEN, "pop3_retr_sets_seen", BOOL, "yes", "POP3 RETR sets the Seen flag of the message") \
    X(CFG_POP3_LOGIN_DELAY, "pop3_login_delay", DURATION, "0", "shortest time between two POP3 logins of one user (RFC 2449 LOGIN-DELAY)") \
    X(CFG_MAX_LINE, "max_line", SIZE, "64K", "longest command line accepted from a client") \
    X(CFG_MAX_LITERAL, "max_literal", SIZE, "64M", "largest IMAP literal or LMTP message accepted") \
    X(CFG_MAX_LITERAL_PREAUTH, "max_literal_preauth", SIZE, "8K", "largest IMAP literal accepted before login") \
    X(CFG_MAX_COMMAND_PREAUTH, "max_command_preauth", SIZE, "128K", "largest IMAP command (lines and literals) accepted before login") \
    X(CFG_MAX_ARGS_PREAUTH, "max_args_preauth", INT, "256", "most arguments in one IMAP command before login") \
    X(CFG_MAX_ARGS, "max_args", INT, "10000", "most arguments in one IMAP command after login") \
    X(CFG_IDLE_TIMEOUT, "idle_timeout", DURATION, "30m", "close a session idle this long (RFC 3501: at least 30 minutes)") \
    X(CFG_LOGIN_TIMEOUT, "login_timeout", DURATION, "60s", "close a connection not logged in this long after accept, TLS handshake included (LMTP: until LHLO, or AUTH when required; 0: no limit)") \
    X(CFG_MAX_PREAUTH_PER_IP, "max_preauth_per_ip", INT, "10", "connections to one service from one client address that have not logged in yet (0: no limit)") \
    X(CFG_MAX_USERIP_CONNECTIONS, "max_userip_connections", INT, "10", "logged-in connections to one service of one user from one client address, IDLE included (0: no limit)") \
    X(CFG_SHUTDOWN_TIMEOUT, "shutdown_timeout", DURATION, "10s", "on SIGTERM, how long workers may finish their session before they are killed") \
    X(CFG_RESPAWN_LIMIT, "respawn_limit", INT, "10", "worker exits per service within respawn_window before cofferd pauses respawning") \
    X(CFG_WORKER_IDLE_TIMEOUT, "worker_idle_timeout", DURATION, "10s", "workers a service has above its prefork are retired after this long idle (0: kept until maxuse)") \
    X(CFG_RESPAWN_WINDOW, "respawn_window", DURATION, "10s", "window for respawn_limit") \
    X(CFG_RESPAWN_PAUSE, "respawn_pause", DURATION, "5s", "how long respawning of a crashing service is paused") \
    X(CFG_STATUS_INTERVAL, "status_interval", DURATION, "0", "log a status line of workers per service this often (0: only on SIGUSR1)") \
    X(CFG_DB_CHECKPOINT_INTERVAL, "db_checkpoint_interval", DURATION, "5m", "how often cofferd checkpoints the databases and removes old log files (0: never)") \
    X(CFG_METRICS_LISTEN, "metrics_listen", STR, "", "HOST:PORT of cofferd's HTTP endpoint for GET /metrics (Prometheus text format) and GET /health; keep it on loopback (empty: off)") \
    X(CFG_DB_STATS_INTERVAL, "db_stats_interval", DURATION, "60s", "how often cofferd reads the Berkeley DB statistics and quota usage shown on the metrics endpoint (0: never)") \
    X(CFG_EXPIRE_INTERVAL, "expire_interval", DURATION, "1d", "how often cofferd runs what coffer expire does: duplicate and vacation records, delayed expunges and deletes past expunge_retention (0: never)") \
    X(CFG_EXPIRE_VACATION_DAYS, "expire_vacation_days", INT, "30", "scheduled expire removes Sieve vacation answers older than this many days (as coffer expire --vacation-days)") \
    X(CFG_SCRUB_RATE, "scrub_rate", SIZE, "1M", "bytes per second the scrubber re-reads message files at, niced and at idle I/O priority (0: no scrubber)") \
    X(CFG_SCRUB_INTERVAL, "scrub_interval", DURATION, "1d", "pause between two full passes of the scrubber over the store") \
    X(CFG_EXPUNGE_MODE, "expunge_mode", ENUM, "delayed", "delayed|immediate: delayed keeps expunged messages' files for coffer unexpunge until coffer expire runs after expunge_retention; immediate removes them at once") \
    X(CFG_EXPUNGE_RETENTION, "expunge_retention", DURATION, "7d", "how long delayed expunge keeps expunged messages, and delayed delete deleted mailboxes, before coffer expire removes them") \
    X(CFG_DELETE_MODE, "delete_mode", ENUM, "delayed", "delayed|immediate: delayed keeps a deleted mailbox hidden for coffer undelete until coffer expire runs after expunge_retention; immediate removes it at once") \
    X(CFG_DUPLICATE_LIFETIME, "duplicate_lifetime", DURATION, "3d", "how long delivered Message-IDs are remembered for duplicate suppression") \
    X(CFG_LMTP_AUTOCREATE_INBOX, "lmtp_autocreate_inbox", BOOL, "yes", "lmtpd creates a known user's INBOX on first delivery") \
    X(CFG_QUOTA_WARN_PERCENT, "quota_warn_percent", INT, "90", "SELECT warns (* NO [ALERT]) when the mailbox's quota root is at least this full (0: never)") \
    X(CFG_MAX_MAILBOXES_PER_USER, "max_mailboxes_per_user", INT, "1000", "most mailboxes in one user's hierarchy (INBOX included) that CREATE and RENAME make for non-administrators (0: no limit)") \
    X(CFG_MAX_SUBSCRIPTIONS_PER_USER, "max_subscriptions_per_user", INT, "1000", "most subscriptions one user may hold (0: no limit)") \
    X(CFG_METADATA_MAX_ENTRY_SIZE, "metadata_max_entry_size", SIZE, "64K", "largest value in bytes of one METADATA entry (RFC 5464); a larger one is refused with [METADATA MAXSIZE n]") \
    X(CFG_METADATA_MAX_ENTRIES, "metadata_max_entries", INT, "100", "most METADATA entries one mailbox (or the server) holds in one scope: its shared entries, or one user's private entries on it; more is refused with [METADATA TOOMANY] (0: no limit)") \
    X(CFG_METADATA_MAX_SIZE, "metadata_max_size", SIZE, "1M", "most bytes of values one mailbox (or the server) holds in one scope, as metadata_max_entries counts; more is refused with [METADATA TOOMANY] (0: no limit)") \
    X(CFG_METADATA_MAX_ENTRIES_PER_USER, "metadata_max_entries_per_user", INT, "1000", "most private METADATA entries one user holds on all mailboxes and the server together; more is refused with [METADATA TOOMANY] (0: no limit)") \
    X(CFG_NOTIFY_MAX_MAILBOXES, "notify_max_mailboxes", INT, "200", "most mailboxes one IMAP session may watch for message events with NOTIFY (RFC 5465); more is refused or ends with NOTIFICATIONOVERFLOW") \
    X(CFG_IMAP_HIBERNATE_TIMEOUT, "imap_hibernate_timeout", DURATION, "30s", "an IMAP session idle in IDLE this long moves to imap-hibernate when imap_hibernate_socket is set (0: never)") \
    X(CFG_IMAP_HIBERNATE_SOCKET, "imap_hibernate_socket", PATH, "", "UNIX socket of the imap-hibernate service, to which imapd hands idle IDLE sessions (empty: no hibernation)") \
    X(CFG_IMAP_HIBERNATE_RESUME_SOCKET, "imap_hibernate_resume_socket", PATH, "", "UNIX socket, one of the imap service's listen addresses, on which imap-hibernate hands sessions back to imapd workers") \
    X(CFG_IMAP_HIBERNATE_MAX_CONNECTIONS, "imap_hibernate_max_connections", INT, "20000", "most sessions imap-hibernate holds; further ones stay in their imapd worker") \
    X(CFG_LMTP_OVERQUOTA_PERMANENT, "lmtp_overquota_permanent", BOOL, "no", "over-quota deliveries fail with 552 5.2.2 instead of 452 4.2.2") \
    X(CFG_LMTP_REQUIRE_AUTH, "lmtp_require_auth", BOOL, "no", "LMTP over TCP accepts MAIL only after AUTH as an administrator (UNIX sockets: the file permissions decide, see socket_mode)") \
    X(CFG_SENDMAIL, "sendmail", STR, "/usr/sbin/sendmail -oi -f <>", "command (absolute path and arguments, no shell) that Sieve redirect and vacation hand messages to; -- and the recipient are appended") \
    X(CFG_SIEVE_MAX_SCRIPTS, "sieve_max_scripts", INT, "20", "most Sieve scripts one user may store through ManageSieve or coffer sieve put (0: no limit)") \
    X(CFG_SIEVE_MAX_SCRIPT_SIZE, "sieve_max_script_size", SIZE, "256K", "largest Sieve script a user may store (at most 1M)") \
    X(CFG_SIEVE_NOTIFY_INTERVAL, "sieve_notify_interval", DURATION, "5m", "shortest time between two Sieve notify messages to one user's addresses (0: no limit)") \
    X(CFG_SIEVE_MAX_REDIRECTS, "sieve_max_redirects", INT, "5", "most redirect actions one run of a Sieve script may take; more is a runtime error (the message is kept)") \
    X(CFG_SASL_PWCHECK_METHOD, "sasl_pwcheck_method", ENUM, "auxprop", "auxprop|saslauthd: how Cyrus SASL checks passwords") \
    X(CFG_SASL_MECH_LIST, "sasl_mech_list", STR, "SCRAM-SHA-256 SCRAM-SHA-1 PLAIN LOGIN", "SASL mechanisms offered") \
    X(CFG_SASL_DBPATH, "sasl_dbpath", PATH, "", "the sasldb password database (default: configdir/sasldb2)") \
    X(CFG_SASL_REALM, "sasl_realm", STR, "", "SASL realm of users given without one (default: hostname)") \
    X(CFG_ROUTER_DEFAULT_BACKEND, "router_default_backend", STR, "", "router: the [backend NAME] of users without an entry in the route database (empty: such users have no route)") \
    X(CFG_ROUTER_AUTH_WAIT, "router_auth_wait", DURATION, "2s", "router: Auth-Wait sent to nginx after a failed login, times the number of failures (nginx's Auth-Login-Attempt, or the failures of the user or client address within router_fail_window if more), at most 30 times this") \
    X(CFG_ROUTER_FAIL_WINDOW, "router_fail_window", DURATION, "15m", "router: how long failed logins of a user or a client address are counted for router_auth_wait (0: count only nginx's attempts)") \
    X(CFG_ROUTER_MOVE_WAIT, "router_move_wait", DURATION, "10s", "router: Auth-Wait sent to nginx for a user whose mailbox is being moved between backends") \
    X(CFG_ROUTER_LMTP_TIMEOUT, "router_lmtp_timeout", DURATION, "5m", "lmtproute: how long to wait for a backend's LMTP reply, or for a backend to take more of a message") \
    X(CFG_ROUTER_LMTP_CONNECT_TIMEOUT, "router_lmtp_connect_timeout", DURATION, "30s", "lmtproute: how long to wait for a backend's LMTP connection and greeting") \
    X(CFG_ROUTER_LMTP_MAX_RCPTS, "router_lmtp_max_rcpts", INT, "1000", "lmtproute: most recipients accepted in one transaction (more get 452 4.5.3)") \
    X(CFG_MOVE_ADMIN_USER, "move_admin_user", STR, "", "coffer user move: the administrator (in the backends' admins) it authenticates as to each backend's admin endpoint") \
    X(CFG_MOVE_ADMIN_PASSWORD_FILE, "move_admin_password_file", PATH, "", "coffer user move: a file whose first line is move_admin_user's password (keep it mode 0600)") \
    X(CFG_MOVE_ADMIN_TLS, "move_admin_tls", BOOL, "yes", "coffer user move: speak TLS to the admin endpoints (their listener is tls = implicit); no only on a trusted network, with allow_plaintext on the backends") \
    X(CFG_MOVE_ADMIN_CA_FILE, "move_admin_ca_file", PATH, "", "coffer user move: PEM certificates the admin endpoints' certificates must chain to (default: the system's trust store); the name checked is the host of the backend's admin address") \
    X(CFG_SASL_SASLAUTHD_PATH, "sasl_saslauthd_path", PATH, "", "saslauthd socket directory when sasl_pwcheck_method = saslauthd (default: SASL's)")

#define COFFER_SERVICE_SETTINGS(X) \
    X(SVC_PROGRAM, "program", STR, "", "worker program: imapd, imap-hibernate, pop3d, lmtpd, sieved, router, lmtproute or admind (a bare name is looked up beside cofferd, else in ../libexec/coffer from it)") \
    X(SVC_LISTEN, "listen", LIST, "", "addresses: HOST:PORT, [IPv6]:PORT or an absolute UNIX socket path") \
    X(SVC_TLS, "tls", ENUM, "starttls", "starttls|implicit|none: TLS on this service") \
    X(SVC_SOCKET_MODE, "socket_mode", STR, "", "octal mode of this service's UNIX sockets, never giving others access (default: 0600, or 0660 with socket_group)") \
    X(SVC_SOCKET_GROUP, "socket_group", STR, "", "group of this service's UNIX sockets, e.g. the MTA's (default: cofferd's own group)") \
    X(SVC_PREFORK, "prefork", INT, "1", "idle workers kept ready") \
    X(SVC_MAXCHILD, "maxchild", INT, "100", "most workers at once; further connections wait in the listen queue") \
    X(SVC_MAXUSE, "maxuse", INT, "250", "connections a worker serves before it exits and is replaced") \
    X(SVC_ARGS, "args", STR, "", "extra arguments for the program")
