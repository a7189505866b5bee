#!/usr/bin/python3
"""Runs the same benchmark binaries from two builds (before and after a change), alternating
binary by binary so that both see the same vCPU placement drift, and prints one markdown table:
each benchmark's median (over every repetition of every round) before and after, and the ratio
after/before for rates, before/after for times (above 1: the change is faster), and for
latency benchmarks (a p50_ns counter) the median p50.

    bench/before_after.py --before OLD/build/release/bench --after build/release/bench \\
        --rounds 2 stream_bench end_to_end_bench ...

Throughput benchmarks (items_per_second) are compared by rate, the others by real time per
iteration. Each run's JSON is kept in --out (default /tmp/kinlet-before-after). The placement
(../shared/tools/placement, when present) is printed before every run.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys


def placement():
    tool = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "tools", "placement")
    if os.access(tool, os.X_OK):
        return subprocess.run([tool], capture_output=True, text=True).stdout.strip()
    return "unknown"


def run(binary, out, reps, extra):
    subprocess.run([binary, f"--benchmark_repetitions={reps}", f"--benchmark_out={out}",
                    "--benchmark_out_format=json"] + extra, check=True,
                   stdout=subprocess.DEVNULL)
    with open(out) as f:
        return json.load(f)["benchmarks"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--before", required=True)
    ap.add_argument("--after", required=True)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--out", default="/tmp/kinlet-before-after")
    ap.add_argument("--filter", default="")
    ap.add_argument("binaries", nargs="+")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    extra = [f"--benchmark_filter={args.filter}"] if args.filter else []
    # name -> {"before": [values], "after": [values], "unit": ...}
    table = {}
    order = []
    for binary in args.binaries:
        for rnd in range(args.rounds):
            for side in ("before", "after"):
                path = os.path.join(getattr(args, side), binary)
                if not os.access(path, os.X_OK):
                    continue  # a benchmark only one side has
                print(f"{binary} round {rnd + 1} {side}: placement {placement()}", flush=True)
                out = os.path.join(args.out, f"{binary}-{side}-{rnd}.json")
                for b in run(path, out, args.reps, extra):
                    if b.get("run_type") != "iteration":
                        continue
                    name = f"{binary}/{b['run_name']}"
                    if name not in table:
                        table[name] = {"before": [], "after": []}
                        order.append(name)
                    if "p50_ns" in b:
                        table[name]["unit"] = "p50 ns"
                        table[name][side].append(b["p50_ns"])
                    elif "items_per_second" in b:
                        table[name]["unit"] = "items/s"
                        table[name][side].append(b["items_per_second"])
                    else:
                        table[name]["unit"] = b["time_unit"]
                        table[name][side].append(b["real_time"])
        print(f"{binary} done: placement {placement()}", flush=True)
    print()
    print("| Benchmark | Before | After | After / before | Unit |")
    print("|---|---|---|---|---|")
    for name in order:
        row = table[name]
        b = statistics.median(row["before"]) if row["before"] else None
        a = statistics.median(row["after"]) if row["after"] else None

        def fmt(v):
            if v is None:
                return "-"
            if row["unit"] == "items/s":
                return f"{v / 1e6:.2f} M"
            return f"{v:.4g}"

        if a is not None and b:
            ratio = a / b if row["unit"] == "items/s" else b / a  # > 1: after is better
            r = f"{ratio:.2f}"
        else:
            r = "new" if b is None else "-"
        print(f"| {name} | {fmt(b)} | {fmt(a)} | {r} | {row['unit']} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
