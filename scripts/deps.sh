#!/bin/sh
# deps.sh: install the Debian packages Coffer needs to build, run and test, if any are missing.
# As root it runs apt-get; otherwise it prints the one apt-get line to run and fails.
# `deps.sh fuzz`: what `make fuzz` needs besides: clang and its libFuzzer runtime.
PKGS="build-essential cmake pkg-config libdb5.3-dev libssl-dev openssl libsasl2-dev \
libsasl2-modules sasl2-bin libsieve2-dev zlib1g-dev python3 curl swaks fetchmail procps \
sieve-connect"
[ "${1:-}" = fuzz ] && PKGS="clang libclang-rt-14-dev"
missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" = 0 ]; then
    echo "deps: installing$missing"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null || exit 1
    apt-get install -y -qq --no-install-recommends $missing >/dev/null || exit 1
else
    echo "Coffer needs these Debian packages:$missing"
    echo "Run as root:  apt-get install -y$missing"
    exit 1
fi
