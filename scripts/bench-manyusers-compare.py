#!/usr/bin/env python3
"""bench-manyusers-compare.py OUTDIR NAME=DIR... : the "many users" benchmark
(docs/perf/many-users.md) over running instances, each given by its directory (holding
peer.ports and peer.pid, as scripts/bench-manyusers.sh and the bench's peers/ scripts leave
them). ROUNDS alternating rounds (--rounds N, default 5); in each, for each instance in the
order given: mailbench's imap-login and lmtp-concurrent workloads (short settings) and
scripts/bench-manyusers-probe.py (LIST "" "*" for user0 and user1, first SELECT). Besides the
rates, the server's CPU per login and per delivered message (ms; mailbench's server-CPU
accounting over the master's process tree in /proc, --server-pid): what a loaded machine
cannot blur as it blurs a rate. Writes OUTDIR/NAME-rN.json files and prints each round, the
medians of the rounds per instance, and the ratio of each pair named X-100 / X-100k (rates:
100k over 100; times and CPU per operation: 100 over 100k, so that >= 0.9 means at most 10%
worse everywhere)."""
import json
import os
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
BENCH = os.environ.get("MAILBENCH", os.path.join(HERE, "..", "..", "..", "shared", "bench",
                                                 "mailbench.py"))
if not os.path.exists(BENCH):
    BENCH = "/work/shared/bench/mailbench.py"


def ports(d):
    kv = dict(x.split("=") for x in open(os.path.join(d, "peer.ports")).read().split())
    return int(kv["imap"]), int(kv["pop3"]), int(kv["lmtp"]), int(kv["pid"])


def find_rate(res, workload):
    """the first record mailbench reports for a workload (logins/s, deliveries msgs/s)."""
    for r in res["results"]:
        if r["workload"] == workload:
            return r
    raise KeyError("mailbench reported nothing for %s" % workload)


def cpu_ms_per(rec, count_key):
    """server CPU (ms) per operation of a mailbench record, None without the accounting."""
    cpu, n = rec.get("server_cpu_s"), rec.get(count_key)
    return round(1000.0 * cpu / n, 4) if cpu is not None and n else None


def run_one(out, name, d, rnd):
    imap, pop3, lmtp, pid = ports(d)
    js = os.path.join(out, "%s-r%d.json" % (name, rnd))
    subprocess.run([sys.executable, BENCH, "--imap-port", str(imap), "--pop3-port", str(pop3),
                    "--lmtp-port", str(lmtp), "--server-pid", str(pid), "--users", "100",
                    "--only", "imap-login,lmtp-concurrent", "--login-seconds", "5",
                    "--lmtp-messages", "300", "--concurrency", "8", "--messages", "200", "--label", name,
                    "--json", js], check=True, stdout=subprocess.DEVNULL)
    res = json.load(open(js))
    probe = {}
    for user, first in (("user0", 40 + 10 * rnd), ("user1", None)):
        args = [sys.executable, os.path.join(HERE, "bench-manyusers-probe.py"), str(imap),
                "--user", user]
        if first is not None:
            args += ["--users-from", str(first)]
        else:
            args += ["--no-select"]
        p = json.loads(subprocess.run(args, check=True, capture_output=True,
                                      text=True).stdout)
        probe[user] = p
    login, lmtp = find_rate(res, "imap-login"), find_rate(res, "lmtp-concurrent")
    row = {"login_per_s": float(login["value"]), "lmtp_per_s": float(lmtp["value"]),
           "login_cpu_ms": cpu_ms_per(login, "logins"),
           "lmtp_cpu_ms": cpu_ms_per(lmtp, "messages"),
           "list_ms_user0": probe["user0"]["list_ms"], "list_names_user0":
           probe["user0"]["list_names"], "list_ms_user1": probe["user1"]["list_ms"],
           "select_ms": probe["user0"]["select_ms"]}
    json.dump(row, open(os.path.join(out, "%s-r%d.row.json" % (name, rnd)), "w"))
    print(name, rnd, json.dumps(row), flush=True)
    return row


def main():
    args = sys.argv[1:]
    rounds = 5
    if len(args) >= 2 and args[0] == "--rounds":
        rounds = int(args[1])
        args = args[2:]
    if len(args) < 2 or rounds < 1:
        sys.exit("usage: bench-manyusers-compare.py [--rounds N] OUTDIR NAME=DIR...")
    out = args[0]
    inst = [a.split("=", 1) for a in args[1:]]
    os.makedirs(out, exist_ok=True)
    rows = {n: [] for n, _ in inst}
    for rnd in range(rounds):
        for name, d in inst:
            rows[name].append(run_one(out, name, d, rnd))
    med = {n: {k: statistics.median(r[k] for r in rs if r[k] is not None)
               for k in rs[0] if any(r[k] is not None for r in rs)} for n, rs in rows.items()}
    print("\nper round:")
    for n, rs in rows.items():
        for k in rs[0]:
            print(n, k, [r[k] for r in rs])
    print("\nmedians of %d rounds:" % rounds)
    for n, m in med.items():
        print(n, json.dumps(m))
    print("\nratios 100k vs 100 (rates: 100k/100; times: 100/100k):")
    for n in med:
        if n.endswith("-100") and n + "k" in med:
            a, b = med[n], med[n + "k"]
            r = {k: (b[k] / a[k] if k.endswith("per_s") else a[k] / b[k])
                 for k in a if not k.startswith("list_names") and a[k] and b[k]}
            print(n[:-4], json.dumps({k: round(v, 3) for k, v in r.items()}))
    json.dump({"rounds": rows, "medians": med}, open(os.path.join(out, "summary.json"), "w"),
              indent=1)


if __name__ == "__main__":
    main()
