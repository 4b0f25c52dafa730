#!/bin/sh
# run-cluster.sh BUILD_DIR: the scale-out demo (make run-cluster; docs/scale-out.md) in the
# foreground, on loopback: nginx's mail proxy at the front, one cofferd running the router
# (man/router.8) and the LMTP entry lmtproute (man/lmtproute.8), two cofferd backends "a" and
# "b". alice lives on a, bob on b. Ctrl-C stops all.
# Data under $CLUSTER_VAR (default ./var/cluster). Ports: FRONT_IMAP_PORT FRONT_POP3_PORT
# ROUTER_PORT LMTP_PORT A_IMAP_PORT A_POP3_PORT A_LMTP_PORT A_ADMIN_PORT B_IMAP_PORT B_POP3_PORT
# B_LMTP_PORT B_ADMIN_PORT.
# NGINX (default: nginx on PATH or /usr/sbin/nginx), NGINX_MAIL_MODULE (the .so to load).
set -eu
BUILD=${1:-build}
TOP=$(cd "$(dirname "$0")/.." && pwd)
VAR=${CLUSTER_VAR:-$TOP/var/cluster}
FRONT_IMAP_PORT=${FRONT_IMAP_PORT:-2143}
FRONT_POP3_PORT=${FRONT_POP3_PORT:-2110}
ROUTER_PORT=${ROUTER_PORT:-9144}
LMTP_PORT=${LMTP_PORT:-2424}
A_IMAP_PORT=${A_IMAP_PORT:-2201}
A_POP3_PORT=${A_POP3_PORT:-2202}
A_LMTP_PORT=${A_LMTP_PORT:-2425}
B_IMAP_PORT=${B_IMAP_PORT:-2211}
B_POP3_PORT=${B_POP3_PORT:-2212}
B_LMTP_PORT=${B_LMTP_PORT:-2426}
A_ADMIN_PORT=${A_ADMIN_PORT:-2203}   # admind, for coffer user move (man/admind.8)
B_ADMIN_PORT=${B_ADMIN_PORT:-2213}
NGINX=${NGINX:-$(command -v nginx || echo /usr/sbin/nginx)}
NGINX_MAIL_MODULE=${NGINX_MAIL_MODULE:-/usr/lib/nginx/modules/ngx_mail_module.so}
BIN=$TOP/$BUILD/bin

case $BUILD in /*) BIN=$BUILD/bin ;; esac
if [ ! -x "$NGINX" ] || [ ! -f "$NGINX_MAIL_MODULE" ]; then
    echo "run-cluster: needs nginx and its mail module ($NGINX, $NGINX_MAIL_MODULE);" \
         "on Debian: apt-get install nginx-light libnginx-mod-mail" >&2
    exit 2
fi
for p in cofferd coffer; do
    [ -x "$BIN/$p" ] || { echo "run-cluster: no $BIN/$p (build first)" >&2; exit 2; }
done

mkdir -p "$VAR/tls" "$VAR/nginx"
chmod 0711 "$VAR"

# The service user when started as root; one self-signed certificate for the front (nginx)
# and the instances.
. "$TOP/scripts/demo-common.sh"
demo_service_user
demo_cert "$VAR/tls"

# conf NAME SERVICES EXTRA: write $VAR/NAME/coffer.conf (rewritten each run, so ports apply).
conf() {
    d=$VAR/$1
    mkdir -p "$d/config" "$d/tls"
    cp "$VAR/tls/cert.pem" "$VAR/tls/key.pem" "$d/tls/"
    [ -f "$d/partitions.conf" ] || cp "$TOP/partitions.conf.example" "$d/partitions.conf"
    cat > "$d/coffer.conf" <<CONF
# Written by scripts/run-cluster.sh (make run-cluster): instance "$1"; rewritten on every run.
configdir = config
$USER_LINE
pidfile = cofferd.pid
log_target = stderr
hostname = localhost
tls_cert = tls/cert.pem
tls_key = tls/key.pem
allow_plaintext = yes
shutdown_timeout = 5s
$2
CONF
    if [ -n "$USER_LINE" ]; then
        chown -R coffer "$d"
        chown root "$d" "$d/coffer.conf" "$d/partitions.conf"
        chmod 0711 "$d"
    fi
    "$BIN/cofferd" -C "$d/coffer.conf" -t >/dev/null
}

backend() {   # NAME IMAP POP3 LMTP ADMIN
    # acl_local_users_only: SETACL for a user of the other backend is refused (router.8)
    conf "$1" "acl_local_users_only = yes
admins = admin

[service admin]
program = admind
listen = 127.0.0.1:$5
tls = implicit

[service imap]
program = imapd
listen = 127.0.0.1:$2

[service pop3]
program = pop3d
listen = 127.0.0.1:$3

[service lmtp]
program = lmtpd
listen = 127.0.0.1:$4
tls = none"
}

backend a "$A_IMAP_PORT" "$A_POP3_PORT" "$A_LMTP_PORT" "$A_ADMIN_PORT"
backend b "$B_IMAP_PORT" "$B_POP3_PORT" "$B_LMTP_PORT" "$B_ADMIN_PORT"
mkdir -p "$VAR/router"
echo admin > "$VAR/router/admin.pw"   # the demo's admin password is its name, as the users'
chmod 0600 "$VAR/router/admin.pw"     # (conf gives it to the service user)
conf router "move_admin_user = admin
move_admin_password_file = admin.pw
move_admin_ca_file = tls/cert.pem

[service router]
program = router
listen = 127.0.0.1:$ROUTER_PORT
tls = none

[service lmtp]
program = lmtproute
listen = 127.0.0.1:$LMTP_PORT
tls = none

[backend a]
imap = 127.0.0.1:$A_IMAP_PORT
pop3 = 127.0.0.1:$A_POP3_PORT
lmtp = 127.0.0.1:$A_LMTP_PORT
admin = 127.0.0.1:$A_ADMIN_PORT

[backend b]
imap = 127.0.0.1:$B_IMAP_PORT
pop3 = 127.0.0.1:$B_POP3_PORT
lmtp = 127.0.0.1:$B_LMTP_PORT
admin = 127.0.0.1:$B_ADMIN_PORT"

# Users: each on its backend, and all in the router's sasldb (the router checks passwords).
adduser() {   # INSTANCE USER (password = the name)
    "$BIN/coffer" -C "$VAR/$1/coffer.conf" user passwd "$2" -p "$2" >/dev/null 2>&1 ||
        "$BIN/coffer" -C "$VAR/$1/coffer.conf" user add "$2" -p "$2" >/dev/null
}
adduser a alice
adduser b bob
adduser router alice
adduser router bob
# coffer user move: the admin on both backends; the users known on both (credentials stay)
for i in a b; do adduser $i admin; done
adduser b alice
adduser a bob
"$BIN/coffer" -C "$VAR/router/coffer.conf" route import >/dev/null <<ROUTES
alice a
bob b
ROUTES

# nginx: the mail proxy, STARTTLS/STLS offered at the front, plaintext to the backends.
cat > "$VAR/nginx/nginx.conf" <<CONF
# Written by scripts/run-cluster.sh (make run-cluster); rewritten on every run.
load_module $NGINX_MAIL_MODULE;
pid $VAR/nginx/nginx.pid;
error_log $VAR/nginx/error.log info;
worker_processes 1;
events { worker_connections 256; }
mail {
    server_name localhost;
    auth_http 127.0.0.1:$ROUTER_PORT/auth;
    proxy_pass_error_message on;
    ssl_certificate $VAR/tls/cert.pem;
    ssl_certificate_key $VAR/tls/key.pem;
    starttls on;
    server { listen 127.0.0.1:$FRONT_IMAP_PORT; protocol imap; }
    server { listen 127.0.0.1:$FRONT_POP3_PORT; protocol pop3; }
}
CONF
"$NGINX" -p "$VAR/nginx" -e "$VAR/nginx/error.log" -c "$VAR/nginx/nginx.conf" -t -q

PIDS=""
stop() {   # [EXIT CODE]
    trap - INT TERM HUP
    echo "run-cluster: stopping" >&2
    if [ -s "$VAR/nginx/nginx.pid" ]; then
        kill "$(cat "$VAR/nginx/nginx.pid")" 2>/dev/null || true
    fi
    for p in $PIDS; do kill "$p" 2>/dev/null || true; done
    for p in $PIDS; do wait "$p" 2>/dev/null || true; done
    # nginx removes its pid file when it has exited
    n=0
    while [ -e "$VAR/nginx/nginx.pid" ] && [ $n -lt 100 ]; do sleep 0.1; n=$((n + 1)); done
    exit "${1:-0}"
}
trap "stop 0" INT TERM HUP

for i in a b router; do
    "$BIN/cofferd" -C "$VAR/$i/coffer.conf" -f 2>>"$VAR/$i/cofferd.log" &
    PIDS="$PIDS $!"
done
rm -f "$VAR/nginx/nginx.pid"
if ! "$NGINX" -p "$VAR/nginx" -e "$VAR/nginx/error.log" -c "$VAR/nginx/nginx.conf"; then
    echo "run-cluster: nginx did not start; see $VAR/nginx/error.log" >&2
    stop 1
fi
# nginx writes its pid file after going to the background
n=0
while [ ! -s "$VAR/nginx/nginx.pid" ] && [ $n -lt 50 ]; do sleep 0.1; n=$((n + 1)); done

cat <<MSG

  Coffer scale-out demo (Ctrl-C stops all of it; docs/scale-out.md)
    front  nginx   IMAP 127.0.0.1:$FRONT_IMAP_PORT (STARTTLS)   POP3 127.0.0.1:$FRONT_POP3_PORT (STLS)
                   config $VAR/nginx/nginx.conf
    router         127.0.0.1:$ROUTER_PORT  (nginx auth_http; Postfix socketmap, map name "route")
                   LMTP 127.0.0.1:$LMTP_PORT  (lmtproute: each recipient to its backend's LMTP)
                   coffer -C $VAR/router/coffer.conf route list
    backend a      IMAP 127.0.0.1:$A_IMAP_PORT  POP3 127.0.0.1:$A_POP3_PORT  LMTP 127.0.0.1:$A_LMTP_PORT
                   coffer -C $VAR/a/coffer.conf user list
    backend b      IMAP 127.0.0.1:$B_IMAP_PORT  POP3 127.0.0.1:$B_POP3_PORT  LMTP 127.0.0.1:$B_LMTP_PORT
                   coffer -C $VAR/b/coffer.conf user list
    users  alice / alice (route a),  bob / bob (route b)
    move   coffer -C $VAR/router/coffer.conf user move alice --to b   (and --to a: back)
           (admind on a 127.0.0.1:$A_ADMIN_PORT, b 127.0.0.1:$B_ADMIN_PORT; man/coffer-user.8)
    logs   $VAR/{a,b,router}/cofferd.log  $VAR/nginx/error.log
    try    curl -v --ssl-reqd --insecure imap://127.0.0.1:$FRONT_IMAP_PORT/ -u alice:alice
           curl -v --ssl-reqd --insecure pop3://127.0.0.1:$FRONT_POP3_PORT/ -u bob:bob
    mail   one LMTP entry for all users: an MTA delivers to lmtp:inet:127.0.0.1:$LMTP_PORT;
           by hand, through it (alice lands on a, bob on b):
           printf 'From: x@example.org\r\nSubject: hi\r\n\r\nhello\r\n' |
             $BIN/coffer -C $VAR/router/coffer.conf deliver bob
           or Postfix asks the map itself and delivers to the backend:
             transport_maps = socketmap:inet:127.0.0.1:$ROUTER_PORT:route

MSG
# Until a signal, or until one part exits by itself (then all of it stops, exit 1).
while :; do
    for p in $PIDS; do
        if ! kill -0 "$p" 2>/dev/null; then
            echo "run-cluster: cofferd $p exited; see $VAR/{a,b,router}/cofferd.log" >&2
            stop 1
        fi
    done
    np=$(cat "$VAR/nginx/nginx.pid" 2>/dev/null || true)
    if [ -z "$np" ] || ! kill -0 "$np" 2>/dev/null; then
        echo "run-cluster: nginx exited; see $VAR/nginx/error.log" >&2
        stop 1
    fi
    sleep 1
done
