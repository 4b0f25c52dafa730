#!/bin/sh
# deps.sh: install the Debian packages Coffer needs to build, run and test, if any are missing.
# As root it runs apt-get; otherwise it prints the one apt-get line to run and fails.
# `deps.sh fuzz`: what `make fuzz` needs besides: clang and its libFuzzer runtime.
# `deps.sh deb`: what `make deb` needs besides (dpkg-shlibdeps; cpack comes with cmake).
# When another apt-get or dpkg holds the package lock (unattended-upgrades, a second make),
# apt-get waits for it up to COFFER_APT_LOCK_TIMEOUT seconds (default 600) instead of failing.
PKGS="build-essential cmake pkg-config libdb5.3-dev libssl-dev openssl libsasl2-dev \
libsasl2-modules sasl2-bin libsieve2-dev zlib1g-dev python3 curl swaks fetchmail procps \
postfix sieve-connect nginx-light libnginx-mod-mail"
[ "${1:-}" = fuzz ] && PKGS="clang libclang-rt-14-dev"
[ "${1:-}" = deb ] && PKGS="dpkg-dev"
missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" = 0 ]; then
    echo "deps: installing$missing"
    export DEBIAN_FRONTEND=noninteractive
    # nginx-light and libnginx-mod-mail are for test/test_router.py and make run-cluster, which run a private
    # nginx mail proxy with its own nginx.conf (the system's nginx site is never used)
    # postfix is for test/test_postfix.py, which runs a private instance of its own: installed
    # with "No configuration", the system's Postfix gets no main.cf and is never started
    case " $missing " in *" postfix "*)
        echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
    esac
    wait_s=${COFFER_APT_LOCK_TIMEOUT:-600}
    # DPkg::Lock::Timeout makes apt-get wait for the dpkg lock; `apt-get update` does not
    # honour it for the lists lock, so that one is retried here until the same bound. The
    # package lists are refreshed only when the install cannot find a package without it;
    # --no-upgrade: install what is missing, never upgrade what is there.
    install() {
        apt-get install -y -qq --no-install-recommends --no-upgrade \
            -o DPkg::Lock::Timeout="$wait_s" $missing 2>&1 >/dev/null
    }
    update() {
        deadline=$(( $(date +%s) + wait_s ))
        while :; do
            out=$(apt-get update -qq 2>&1) && return 0
            case $out in
            *"Could not get lock"*|*"Unable to lock"*)
                [ "$(date +%s)" -lt "$deadline" ] || { echo "$out" >&2; return 1; }
                sleep 3 ;;
            *) echo "$out" >&2; return 1 ;;
            esac
        done
    }
    if ! out=$(install); then
        case $out in
        *"Unable to locate package"*|*"no installation candidate"*)
            update || exit 1
            out=$(install) || { echo "$out" >&2; exit 1; } ;;
        *) echo "$out" >&2; exit 1 ;;
        esac
    fi
else
    echo "Coffer needs these Debian packages:$missing"
    echo "Run as root:  apt-get install -y$missing"
    exit 1
fi
