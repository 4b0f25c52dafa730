# demo-common.sh: sourced by demo.sh, run-cluster.sh and bench-cluster.sh (with TOP set to the
# source tree): the service user and the self-signed certificate of the demo instances.

# demo_service_user: started as root, make sure the system user "coffer" exists (cofferd never
# runs workers as root) and set USER_LINE to the coffer.conf line naming it; else USER_LINE="".
demo_service_user() {
    USER_LINE=""
    if [ "$(id -u)" = 0 ]; then
        if ! id coffer >/dev/null 2>&1; then
            useradd --system --home-dir /nonexistent --shell /usr/sbin/nologin coffer
        fi
        USER_LINE="user = coffer"
    fi
}

# demo_cert DIR: a self-signed certificate DIR/cert.pem and key DIR/key.pem, made on first run.
demo_cert() {
    mkdir -p "$1"
    if [ ! -s "$1/cert.pem" ]; then
        sh "$TOP/scripts/gen-cert.sh" -d 825 "$1/cert.pem" "$1/key.pem" >/dev/null
    fi
}
