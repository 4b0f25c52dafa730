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
# The mailboxes in STREAMS parallel `mailbox create --stdin` (BENCH_STREAMS, default the
# number of CPUs, at most 4), each given a contiguous range of the names in the mailbox list's
# key order (bytes: Berkeley DB's default B-tree comparison; a parent, a prefix, comes before
# its children), cut between users so that every parent is in its children's stream. The
# tool sorts its input in that order anyway: each insert lands on a page the previous one
# left in the cache. In user-number order (user1, user10, user100...) they went all over a
# tree of 400 MB through an 8 MB cache, and one stream slowed from 1,600 to 430 mailboxes/s
# past 1.2 million (docs/perf/many-users.md). The streams share the list through its
# transactions (deadlocks are retried) and each syncs the partition once a batch.
STREAMS=${BENCH_STREAMS:-$(nproc)}
[ "$STREAMS" -ge 1 ] 2>/dev/null || STREAMS=1
[ "$STREAMS" -le 4 ] || STREAMS=4
python3 -c '
import sys
users, folders, nstreams, prefix = int(sys.argv[1]), sys.argv[2].split(), int(sys.argv[3]), sys.argv[4]
tops = sorted(b"user/user%d" % i for i in range(users))
per = -(-users // nstreams)
for k in range(nstreams):
    with open("%s%d" % (prefix, k), "wb") as f:
        for top in tops[k * per:(k + 1) * per]:
            f.write(top + b"\n")
            f.write(b"".join(b"%s/%s\n" % (top, x.encode()) for x in sorted(folders)))
' "$USERS" "$FOLDERS" "$STREAMS" "$DIR/.names."
MPIDS=()
for ((k = 0; k < STREAMS; k++)); do
    "${COFFER[@]}" mailbox create --stdin < "$DIR/.names.$k" >&2 &
    MPIDS+=($!)
done
MFAIL=0
for p in "${MPIDS[@]}"; do wait "$p" || MFAIL=1; done
rm -f "$DIR"/.names.*
[ "$MFAIL" = 0 ] || { log "a mailbox stream failed"; exit 1; }
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
