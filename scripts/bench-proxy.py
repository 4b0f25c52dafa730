#!/usr/bin/env python3
"""bench-proxy.py: the proxy benchmark of docs/scale-out.md (Capacity): mailbench's imap-login
and mixed workloads through nginx's mail proxy in front of two backends (the router answering
auth_http, mail delivered through lmtproute) against one backend driven directly, in
alternating rounds; prints the median of the rounds, the proxy overhead and the CPU time nginx
and the router (with its lmtproute) spent per login and per mixed operation.

    python3 scripts/bench-proxy.py --bin build-rel/bin --dir /tmp/bp --base 32100

Starts both setups with scripts/bench-cluster.sh (BENCH_BACKENDS=2 at BASE, =1 at BASE+100)
and stops them with scripts/bench-cluster-stop.sh at the end, also after a failure."""
import argparse
import json
import os
import statistics
import subprocess
import sys

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def find_mailbench():
    """../shared/bench/mailbench.py beside the checkout, or beside the main checkout when this
    is a git worktree (as bench-start.sh finds waitports.py)."""
    here = os.path.join(TOP, "..", "shared", "bench", "mailbench.py")
    if os.path.exists(here):
        return here
    common = subprocess.run(["git", "-C", TOP, "rev-parse", "--git-common-dir"],
                            stdout=subprocess.PIPE, text=True).stdout.strip()
    return os.path.join(TOP, common, "..", "..", "shared", "bench", "mailbench.py")


BENCH = find_mailbench()
CLK = os.sysconf("SC_CLK_TCK")


def tree_cpu(root):
    """CPU seconds (user+system, reaped children included) of root and its descendants."""
    kids, cpu = {}, {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                s = f.read()
        except OSError:
            continue
        f = s[s.rfind(")") + 2:].split()
        kids.setdefault(int(f[1]), []).append(int(d))
        cpu[int(d)] = sum(int(x) for x in f[11:15]) / CLK
    total, todo = 0.0, [root]
    while todo:
        p = todo.pop()
        total += cpu.get(p, 0.0)
        todo += kids.get(p, [])
    return total


def start(dirname, base, nback, binpath):
    env = dict(os.environ, BENCH_BACKENDS=str(nback), BENCH_BIN=binpath)
    out = subprocess.run(["bash", os.path.join(TOP, "scripts", "bench-cluster.sh"), dirname,
                          str(base)], env=env, check=True, stdout=subprocess.PIPE, text=True)
    return dict(kv.split("=", 1) for kv in out.stdout.split())


def stop(dirname):
    subprocess.run(["bash", os.path.join(TOP, "scripts", "bench-cluster-stop.sh"), dirname])


def mailbench(ports, only, args, out):
    cmd = [sys.executable, BENCH, "--imap-port", ports[0], "--pop3-port", ports[1],
           "--lmtp-port", ports[2], "--only", only, "--concurrency", args.concurrency,
           "--login-seconds", str(args.login_seconds), "--mixed-seconds",
           str(args.mixed_seconds), "--json", out, "--label", only]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    with open(out) as f:
        data = json.load(f)
    return [r for r in data["results"] if r["workload"] == only]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bin", required=True, help="the release build's bin directory")
    ap.add_argument("--dir", required=True, help="a scratch directory")
    ap.add_argument("--base", type=int, default=32100)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--concurrency", default="8")
    ap.add_argument("--login-seconds", type=int, default=10)
    ap.add_argument("--mixed-seconds", type=int, default=20)
    args = ap.parse_args()
    binpath = os.path.abspath(args.bin)
    proxy_dir = os.path.join(args.dir, "proxy")
    direct_dir = os.path.join(args.dir, "direct")
    os.makedirs(args.dir, exist_ok=True)
    res = {"proxy": {"login": [], "mixed": [], "cpu_login": [], "cpu_mixed": []},
           "direct": {"login": [], "mixed": []}}
    try:
        px = start(proxy_dir, args.base, 2, binpath)
        dx = start(direct_dir, args.base + 100, 1, binpath)
        setups = {"proxy": (px["imap"], px["pop3"], px["lmtp"]),
                  "direct": (dx["b0_imap"], dx["b0_pop3"], dx["b0_lmtp"])}
        front = [int(px["nginx"]), int(px["routerpid"])]
        for r in range(args.rounds):
            order = ["direct", "proxy"] if r % 2 == 0 else ["proxy", "direct"]
            for name in order:
                for wl, key in (("imap-login", "login"), ("mixed", "mixed")):
                    out = os.path.join(args.dir, "%s-%s-%d.json" % (name, wl, r))
                    c0 = [tree_cpu(p) for p in front]
                    recs = mailbench(setups[name], wl, args, out)
                    c1 = [tree_cpu(p) for p in front]
                    rec = recs[0]
                    res[name][key].append(rec["value"])
                    if name == "proxy":
                        n = rec.get("logins") if key == "login" else rec.get("ops")
                        res[name]["cpu_" + key].append(
                            [(b - a) / n * 1e6 for a, b in zip(c0, c1)])   # us per op
                    print("round %d %s %s: %s %s" % (r + 1, name, wl, rec["value"], rec["unit"]),
                          file=sys.stderr, flush=True)
    finally:
        stop(proxy_dir)
        stop(direct_dir)
    med = {n: {k: statistics.median(v) for k, v in d.items() if not k.startswith("cpu")}
           for n, d in res.items()}
    for k in ("login", "mixed"):
        d, p = med["direct"][k], med["proxy"][k]
        print("%-6s direct %.1f/s  proxy %.1f/s  proxy/direct %.3f  overhead %.1f%%"
              % (k, d, p, p / d, (d - p) / d * 100))
    for k in ("cpu_login", "cpu_mixed"):
        v = res["proxy"][k]
        print("%s  nginx %.0f us  router %.0f us (median of %d rounds)"
              % (k, statistics.median(x[0] for x in v), statistics.median(x[1] for x in v),
                 len(v)))
    print(json.dumps(res))


if __name__ == "__main__":
    main()
