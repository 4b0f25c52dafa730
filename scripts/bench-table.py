#!/usr/bin/env python3
# bench-table.py DIR: the markdown table of scripts/bench-round.sh results: per row the
# median over rounds of Coffer (c-*.json) and Dovecot (d-*.json), the ratio (above 1 Coffer
# is better), every round, and the server CPU seconds.
import json, glob, sys, statistics, os
D = sys.argv[1]
def load(prefix):
    runs = []
    for f in sorted(glob.glob(os.path.join(D, prefix + "-*.json"))):
        d = json.load(open(f))
        runs.append({(r["workload"], r["metric"]): r for r in d["results"]})
    return runs
C, P = load("c"), load("d")
higher = {"msgs/s", "rcpts/s", "logins/s", "MB/s", "ops/s"}
print("| workload | metric | Coffer | Dovecot sdbox | ratio | Coffer rounds | Dovecot rounds | server CPU s C / D |")
print("|---|---|---|---|---|---|---|---|")
keys = list(C[0].keys()) if C else []
for k in keys:
    cv = [r[k]["value"] for r in C if k in r and r[k].get("value") is not None]
    pv = [r[k]["value"] for r in P if k in r and r[k].get("value") is not None]
    if not cv or not pv: continue
    unit = C[0][k]["unit"]
    cm, pm = statistics.median(cv), statistics.median(pv)
    if unit in higher: ratio = cm / pm if pm else 0
    else: ratio = pm / cm if cm else float('inf')
    cc = [r[k].get("server_cpu_s") for r in C if k in r and r[k].get("server_cpu_s") is not None]
    pc = [r[k].get("server_cpu_s") for r in P if k in r and r[k].get("server_cpu_s") is not None]
    cpu = f"{statistics.median(cc):.2f} / {statistics.median(pc):.2f}" if cc and pc else ""
    print(f"| {k[0]} | {k[1]} | {cm:g} {unit} | {pm:g} {unit} | {ratio:.2f}x | {' / '.join(f'{x:g}' for x in cv)} | {' / '.join(f'{x:g}' for x in pv)} | {cpu} |")
