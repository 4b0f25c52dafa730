#!/bin/bash
# bench-manyusers.sh DIR BASEPORT [USERS]: a private Coffer instance (scripts/bench-start.sh)
# provisioned with USERS users (default 100000) of 20 mailboxes each, for the "many users"
# benchmark (docs/perf/many-users.md). Users user0..user{USERS-1}, password "pw" (mailbench's
# contract: user0..user99 must exist), each with INBOX and the 19 folders below; a few grants
# on other users' folders and one shared mailbox, so that LIST "" "*" has shared mailboxes to
# find. Everything goes through the store's own paths: `coffer user add --stdin` (SASL) and
# `coffer mailbox create --stdin` (real mailbox directories and list entries, in batches),
# `coffer acl set`. Prints the instance's line (as bench-start.sh) and writes the times
# taken into DIR/provision.txt. Stop it with the bench's peers/peer-stop DIR.
set -euo pipefail
usage() { echo "usage: $0 DIR BASEPORT [USERS]" >&2; exit 2; }
[ $# -ge 2 ] && [ $# -le 3 ] || usage
DIR=$1; BASE=$2; USERS=${3:-100000}
case "$USERS" in ''|*[!0-9]*) usage;; esac
[ "$USERS" -ge 100 ] || { echo "bench-manyusers: USERS must be at least 100 (mailbench uses user0..user99)" >&2; exit 2; }
TOP=$(cd "$(dirname "$0")/.." && pwd)
log() { echo "bench-manyusers: $*" >&2; }

# the instance itself, with no users yet but admin
BENCH_USERS=0 bash "$TOP/scripts/bench-start.sh" "$DIR" "$BASE" >/dev/null
DIR=$(cd "$DIR" && pwd)
COFFER=("$TOP/build/bin/coffer" -C "$DIR/coffer.conf")
FOLDERS="Sent Drafts Trash Junk Archive Archive/2021 Archive/2022 Archive/2023 Archive/2024
Lists Lists/dev Lists/announce Projects Projects/alpha Projects/beta Family Travel Receipts Notes"
now() { date +%s.%N; }

# users (sasldb) and mailboxes (the mailbox list and partition) touch different files: both
# at once, each timed
t0=$(now)
(
    python3 -c '
import sys
for i in range(int(sys.argv[1])):
    sys.stdout.write("user%d pw\n" % i)
' "$USERS" | "${COFFER[@]}" user add --stdin >&2
    now > "$DIR/.users.done"
) &
UPID=$!
python3 -c '
import sys
folders = sys.argv[2].split()
out = sys.stdout
for i in range(int(sys.argv[1])):
    out.write("user/user%d\n" % i)
    for f in folders:
        out.write("user/user%d/%s\n" % (i, f))
' "$USERS" "$FOLDERS" | "${COFFER[@]}" mailbox create --stdin >&2
t2=$(now)
wait "$UPID"
t1=$(cat "$DIR/.users.done"); rm -f "$DIR/.users.done"
# shared mailboxes user0 may see: five other users' folders (read) and one public mailbox
for k in 1 2 3 4 5; do
    "${COFFER[@]}" acl set "user/user$k/Projects" user0 lr >/dev/null
done
"${COFFER[@]}" mailbox create shared/announce >/dev/null
"${COFFER[@]}" acl set shared/announce anyone lr >/dev/null
t3=$(now)
# users_s and mailboxes_s ran side by side (both from t0); total_s is the wall time
python3 - "$DIR/provision.txt" "$USERS" "$t0" "$t1" "$t2" "$t3" <<'PY'
import sys
path, users, t0, t1, t2, t3 = sys.argv[1], int(sys.argv[2]), *map(float, sys.argv[3:])
with open(path, "w") as f:
    f.write("users=%d mailboxes=%d users_s=%.1f mailboxes_s=%.1f grants_s=%.1f total_s=%.1f\n"
            % (users, users * 20 + 1, t1 - t0, t2 - t0, t3 - max(t1, t2), t3 - t0))
PY
log "$(cat "$DIR/provision.txt")"
cat "$DIR/peer.ports"
