#!/bin/bash
# bench-round.sh OUTDIR TAG [mailbench args]: one round of the default mailbench on a fresh
# Dovecot sdbox instance (ports 21200-21202), then on a fresh Coffer instance (21100-21102);
# results in OUTDIR/{d,c}-TAG.{json,txt}. BENCH: the bench directory (../shared/bench).
# Run it 3 times with tags r1 r2 r3, then scripts/bench-table.py OUTDIR.
set -u
TOP=$(cd "$(dirname "$0")/.." && pwd)
OUT=$1; TAG=$2; shift 2
mkdir -p "$OUT"
MB=${BENCH:-$TOP/../shared/bench}/mailbench.py
P=${BENCH:-$TOP/../shared/bench}/peers
rm -rf /tmp/rd-d /tmp/rd-c
DOVECOT_MAIL_FORMAT=sdbox $P/dovecot-start /tmp/rd-d 21200 >/dev/null 2>&1 || { echo dovecot start failed; exit 1; }
python3 $MB --imap-port 21200 --pop3-port 21201 --lmtp-port 21202 --server-pid $(cat /tmp/rd-d/peer.pid) --label dovecot --json "$OUT/d-$TAG.json" "$@" > "$OUT/d-$TAG.txt" 2>&1
$P/peer-stop /tmp/rd-d >/dev/null 2>&1
(cd "$TOP" && bash scripts/bench-start.sh /tmp/rd-c 21100 >/dev/null 2>&1) || { echo coffer start failed; exit 1; }
python3 $MB --imap-port 21100 --pop3-port 21101 --lmtp-port 21102 --server-pid $(cat /tmp/rd-c/peer.pid) --label coffer --json "$OUT/c-$TAG.json" "$@" > "$OUT/c-$TAG.txt" 2>&1
$P/peer-stop /tmp/rd-c >/dev/null 2>&1
echo round $TAG done
