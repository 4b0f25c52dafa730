#!/bin/bash
# bench-cluster-stop.sh DIR: stop what scripts/bench-cluster.sh started in DIR: nginx (by its pid
# file) and each cofferd master (SIGTERM; a master stops its workers), each only when its
# command line names a file inside DIR; waits up to 20 s for them to go.
set -uo pipefail
[ $# -eq 1 ] || { echo "usage: $0 DIR" >&2; exit 2; }
DIR=$(cd "$1" && pwd) || exit 1
pids=""
for f in "$DIR"/nginx/nginx.pid "$DIR"/*/cofferd.pid; do
    [ -s "$f" ] || continue
    p=$(cat "$f")
    if tr '\0' ' ' < "/proc/$p/cmdline" 2>/dev/null | grep -q -- "$DIR"; then
        kill -TERM "$p" 2>/dev/null && pids="$pids $p"
    fi
done
n=0
for p in $pids; do
    while kill -0 "$p" 2>/dev/null && [ $n -lt 200 ]; do sleep 0.1; n=$((n + 1)); done
done
rm -f "$DIR/cluster.ports"
