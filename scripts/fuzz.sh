#!/bin/sh
# fuzz.sh BUILD_DIR SECONDS [TARGET...]: run each libFuzzer target of BUILD_DIR (configured
# with CC=clang -DCOFFER_FUZZ=ON; see `make fuzz`) for SECONDS, one after the other, and print
# a table of the executions each reached. The committed seeds (BUILD_DIR/fuzz-targets.txt names
# them) are read only: what libFuzzer finds goes to BUILD_DIR/fuzz-corpus/TARGET, crash inputs
# to BUILD_DIR/fuzz-crashes/TARGET-*, logs to BUILD_DIR/fuzz-logs/TARGET.log.
# Exit status 1 when any target crashed, leaked, timed out or ran out of memory.
# FUZZ_JOBS=N runs N targets at a time (default 1); FUZZ_RUNS=N stops a target after N
# executions (SECONDS stays the limit).
set -u
dir=${1:?usage: fuzz.sh BUILD_DIR SECONDS [TARGET...]}
secs=${2:?usage: fuzz.sh BUILD_DIR SECONDS [TARGET...]}
shift 2
list="$dir/fuzz-targets.txt"
[ -f "$list" ] || { echo "fuzz.sh: $list is missing: configure $dir first" >&2; exit 2; }
mkdir -p "$dir/fuzz-corpus" "$dir/fuzz-crashes" "$dir/fuzz-logs"

run_one() {   # NAME SEEDDIR...
    name=$1
    shift
    mkdir -p "$dir/fuzz-corpus/$name"
    # -timeout: one input may take 10 s at most; -rss_limit_mb: 2 GiB; -max_len: 64 KiB, as
    # the ctest driver caps its mutants; leaks are detected (ASan's LeakSanitizer).
    "$dir/bin/$name" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
        -detect_leaks=1 -print_final_stats=1 -close_fd_mask=1 ${FUZZ_RUNS:+-runs=$FUZZ_RUNS} \
        -artifact_prefix="$dir/fuzz-crashes/$name-" \
        "$dir/fuzz-corpus/$name" "$@" > "$dir/fuzz-logs/$name.log" 2>&1
    echo $? > "$dir/fuzz-logs/$name.rc"
}

targets=""
while read -r name seeds; do
    [ -n "$name" ] || continue
    if [ $# -gt 0 ]; then
        case " $* " in *" $name "*) ;; *) continue ;; esac
    fi
    targets="$targets $name"
done < "$list"

jobs=${FUZZ_JOBS:-1}
running=0
for name in $targets; do
    seeds=$(awk -v n="$name" '$1 == n { $1 = ""; print }' "$list")
    echo "fuzz: $name for ${secs}s"
    # shellcheck disable=SC2086 # seeds is a list of directories
    run_one "$name" $seeds &
    running=$((running + 1))
    if [ "$running" -ge "$jobs" ]; then
        wait
        running=0
    fi
done
wait

status=0
printf '\n%-22s %14s %8s %8s  %s\n' target executions exec/s corpus result
for name in $targets; do
    log="$dir/fuzz-logs/$name.log"
    rc=$(cat "$dir/fuzz-logs/$name.rc" 2>/dev/null || echo 1)
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
    ncorp=$(ls "$dir/fuzz-corpus/$name" | wc -l)
    result=ok
    if [ "$rc" != 0 ]; then
        result="FAILED (exit $rc): $(grep -m1 -E 'ERROR|Assertion|property failed|deadly signal' "$log")"
        status=1
    fi
    printf '%-22s %14s %8s %8s  %s\n' "$name" "${execs:-?}" "${rate:-?}" "$ncorp" "$result"
done
exit $status
