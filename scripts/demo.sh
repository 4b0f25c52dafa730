#!/bin/sh
# demo.sh BUILD_DIR: run a demo Coffer instance under ./var in the foreground, on loopback.
# Ports can be changed with IMAP_PORT, IMAPS_PORT, POP3_PORT, POP3S_PORT, LMTP_PORT, SIEVE_PORT,
# METRICS_PORT (the metrics and health endpoint, cofferd(8) METRICS AND HEALTH).
set -eu
BUILD=${1:-build}
TOP=$(cd "$(dirname "$0")/.." && pwd)
VAR=$TOP/var
IMAP_PORT=${IMAP_PORT:-1143}
IMAPS_PORT=${IMAPS_PORT:-1993}
POP3_PORT=${POP3_PORT:-1110}
POP3S_PORT=${POP3S_PORT:-1995}
LMTP_PORT=${LMTP_PORT:-2424}
SIEVE_PORT=${SIEVE_PORT:-4190}
METRICS_PORT=${METRICS_PORT:-9143}
BIN=$TOP/$BUILD/bin

mkdir -p "$VAR/tls"
chmod 0700 "$VAR"

# The service user when started as root, a self-signed certificate on first run.
. "$TOP/scripts/demo-common.sh"
demo_service_user
demo_cert "$VAR/tls"

# The partitions file from the example, the config written fresh each run (so port changes apply).
[ -f "$VAR/partitions.conf" ] || cp "$TOP/partitions.conf.example" "$VAR/partitions.conf"
cat > "$VAR/coffer.conf" <<CONF
# Demo configuration written by scripts/demo.sh (make run); rewritten on every run.
configdir = config
$USER_LINE
pidfile = cofferd.pid
log_target = stderr
hostname = localhost
tls_cert = tls/cert.pem
tls_key = tls/key.pem
allow_plaintext = yes
admins = admin
shutdown_timeout = 5s
metrics_listen = 127.0.0.1:$METRICS_PORT

[service imap]
program = imapd
listen = 127.0.0.1:$IMAP_PORT [::1]:$IMAP_PORT

[service imaps]
program = imapd
listen = 127.0.0.1:$IMAPS_PORT
tls = implicit

[service pop3]
program = pop3d
listen = 127.0.0.1:$POP3_PORT

[service pop3s]
program = pop3d
listen = 127.0.0.1:$POP3S_PORT
tls = implicit

[service lmtp]
program = lmtpd
listen = 127.0.0.1:$LMTP_PORT
tls = none

[service sieve]
program = sieved
listen = 127.0.0.1:$SIEVE_PORT
CONF
# [::1] may be missing on some machines: listen on IPv4 only then.
if ! python3 -c 'import socket; s=socket.socket(socket.AF_INET6); s.bind(("::1",0))' 2>/dev/null; then
    sed -i "s/ \[::1\]:$IMAP_PORT//" "$VAR/coffer.conf"
fi

# Started as root, what the server writes under var/ belongs to the service user, but var/
# itself and the two configuration files stay root's (SECURITY in cofferd(8): the service
# user must not be able to change what root reads at start).
if [ -n "$USER_LINE" ]; then
    chown -R coffer "$VAR"
    chown root "$VAR" "$VAR/coffer.conf" "$VAR/partitions.conf"
    chmod 0711 "$VAR"
fi
"$BIN/cofferd" -C "$VAR/coffer.conf" -t

# Demo accounts in the SASL password database (configdir/sasldb2); coffer switches to the
# service user itself when run as root.
mkdir -p "$VAR/config"
[ -n "$USER_LINE" ] && chown coffer "$VAR/config"
for pair in demo:demo admin:admin; do
    u=${pair%%:*}; p=${pair#*:}
    "$BIN/coffer" -C "$VAR/coffer.conf" user passwd "$u" -p "$p" >/dev/null 2>&1 ||
        "$BIN/coffer" -C "$VAR/coffer.conf" user add "$u" -p "$p" >/dev/null
done

cat <<MSG

  Coffer demo server (Ctrl-C stops it)
    IMAP   127.0.0.1:$IMAP_PORT  (STARTTLS)     IMAPS  127.0.0.1:$IMAPS_PORT
    POP3   127.0.0.1:$POP3_PORT  (STLS)         POP3S  127.0.0.1:$POP3S_PORT
    LMTP   127.0.0.1:$LMTP_PORT                 METRICS http://127.0.0.1:$METRICS_PORT/metrics  /health
    SIEVE  127.0.0.1:$SIEVE_PORT  (ManageSieve, STARTTLS)
           sieve-connect -s 127.0.0.1 -p $SIEVE_PORT -u demo --notlsverify --list
    users  demo / demo,  admin / admin (administrator)
    data   $VAR  (config: $VAR/coffer.conf)

MSG
exec "$BIN/cofferd" -C "$VAR/coffer.conf" -f
