#!/bin/sh
# gen-cert.sh: make a self-signed TLS certificate and key for tests and the demo (never production).
#
# usage: gen-cert.sh [-t ec|rsa] [-d DAYS] [-n CN] CERTFILE KEYFILE
#   -t  key type: ec (P-256, the default) or rsa (2048 bits)
#   -d  validity in days (default 1)
#   -n  common name (default localhost)
# The certificate carries subjectAltName DNS:CN, DNS:localhost, IP:127.0.0.1 and IP:::1, so
# clients that check host names accept it for "localhost" and the loopback addresses.
# The key is written mode 0600; the certificate 0644. Exit status 0 on success, 1 on error.
set -eu

type=ec
days=1
cn=localhost
usage() { echo "usage: gen-cert.sh [-t ec|rsa] [-d DAYS] [-n CN] CERTFILE KEYFILE" >&2; exit 1; }
while getopts "t:d:n:" opt; do
    case "$opt" in
        t) type=$OPTARG ;;
        d) days=$OPTARG ;;
        n) cn=$OPTARG ;;
        *) usage ;;
    esac
done
shift $((OPTIND - 1))
[ $# -eq 2 ] || usage
cert=$1
key=$2

case "$type" in
    ec)  newkey="-newkey ec -pkeyopt ec_paramgen_curve:prime256v1" ;;
    rsa) newkey="-newkey rsa:2048" ;;
    *)   echo "gen-cert.sh: key type must be ec or rsa, not '$type'" >&2; exit 1 ;;
esac
case "$days" in
    ''|*[!0-9]*) echo "gen-cert.sh: days must be a number" >&2; exit 1 ;;
esac
command -v openssl >/dev/null 2>&1 || {
    echo "gen-cert.sh: openssl not found (apt-get install openssl)" >&2; exit 1; }

san="DNS:$cn,DNS:localhost,IP:127.0.0.1,IP:::1"
[ "$cn" = localhost ] && san="DNS:localhost,IP:127.0.0.1,IP:::1"

umask 077
# shellcheck disable=SC2086  # $newkey is deliberately split into options
if ! err=$(openssl req -x509 $newkey -nodes -days "$days" -subj "/CN=$cn" \
        -addext "subjectAltName=$san" -addext "basicConstraints=critical,CA:FALSE" \
        -addext "keyUsage=critical,digitalSignature,keyEncipherment" \
        -addext "extendedKeyUsage=serverAuth" \
        -keyout "$key" -out "$cert" 2>&1); then
    echo "gen-cert.sh: openssl failed: $err" >&2
    exit 1
fi
chmod 600 "$key"
chmod 644 "$cert"
