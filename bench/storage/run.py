#!/usr/bin/python3
"""Durable streams' figures (issue 17, "Speed"), beside fio on the same directory, one run.

Usage (from the repository root, after a Release build; fio from Debian: apt-get install fio):
    cmake --preset release
    flock /tmp/kinlet-build.lock cmake --build build/release -j2 --target storage_bench stream_bench
    /usr/bin/python3 bench/storage/run.py [--dir /var/tmp/kinlet-bench] [--reps 3] [--gib 1]

Points (kinlet and fio alternate inside every repetition; the median is reported):
  write1k   durable PutRecord of 1 KiB records, SyncPolicy::kNone (the kernel writes back),
            --gib of data, against fio's sequential buffered write of the same size
            (bs=1M, and bs=1k for a like-for-like call size). Goal: >= 70% of fio bs=1M.
  put64     durable PutRecord of 64 B records (kNone) against the same stream in memory.
            Goal: >= 50% of the in-memory rate.
  fsync4    SyncPolicy::kEveryPut, 4 writers into one shard (group commit), 1 KiB records:
            records/s and records per fsync, beside fio's fdatasync'd 4 KiB writes (fsyncs/s).
  read      reopen the 1 KiB stream (seconds, --gib of segments), then read it from
            TRIM_HORIZON with GetRecords, against fio's sequential read (bs=1M) of its file.
            Goal: >= 70% of fio. Both read what the page cache holds after writing.
Prints a table and writes build/release/bench-storage.json; names the CPU placement
(../shared/tools/placement) before and after.
"""

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
BENCH = os.path.join(ROOT, "build/release/bench/storage/storage_bench")
PLACEMENT = os.path.join(ROOT, "..", "shared", "tools", "placement")


def run(cmd):
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return out


def kinlet(*args):
    out = run([BENCH] + [str(a) for a in args])
    return {k: float(v) for k, v in re.findall(r"^(\w+) ([-\d.]+)$", out, re.M)}


def fio(directory, name, *extra):
    """One fio job in `directory`; returns its write or read job summary."""
    cmd = ["fio", "--name=" + name, "--directory=" + directory, "--ioengine=psync",
           "--output-format=json", "--group_reporting"] + list(extra)
    job = json.loads(run(cmd))["jobs"][0]
    return job, " ".join(cmd)


def placement():
    try:
        return run([PLACEMENT]).strip()
    except (OSError, subprocess.CalledProcessError) as e:
        return "unknown (%s)" % e


def fresh(path):
    shutil.rmtree(path, ignore_errors=True)
    os.makedirs(path)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--dir", default="/var/tmp/kinlet-storage-bench")
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--gib", type=float, default=1.0)
    p.add_argument("--only", default="write1k,put64,fsync4,read")
    a = p.parse_args()
    only = set(a.only.split(","))
    size = int(a.gib * (1 << 30))
    kdir = os.path.join(a.dir, "kinlet")
    fdir = os.path.join(a.dir, "fio")
    results = {"placement_before": placement(), "commands": {}}
    print("placement:", results["placement_before"])
    samples = {}

    def add(key, value):
        samples.setdefault(key, []).append(value)

    for rep in range(a.reps):
        if "write1k" in only or "read" in only:
            fresh(kdir)
            w = kinlet("put", "--dir", kdir, "--size", 1024, "--bytes", size, "--sync", "none")
            add("kinlet write 1 KiB MB/s", w["mb_per_s"])
            fresh(fdir)
            job, cmd = fio(fdir, "seqwrite", "--rw=write", "--bs=1M", "--size=%d" % size)
            add("fio write bs=1M MB/s", job["write"]["bw_bytes"] / 1e6)
            results["commands"]["fio write bs=1M"] = cmd
            fresh(fdir)
            job, cmd = fio(fdir, "seqwrite1k", "--rw=write", "--bs=1k", "--size=%d" % size)
            add("fio write bs=1k MB/s", job["write"]["bw_bytes"] / 1e6)
            results["commands"]["fio write bs=1k"] = cmd
        if "read" in only:
            r = kinlet("read", "--dir", kdir)
            add("kinlet reopen s (%.1f GiB)" % a.gib, r["reopen_s"])
            add("kinlet read MB/s", r["mb_per_s"])
            fresh(fdir)
            fio(fdir, "seqread", "--rw=write", "--bs=1M", "--size=%d" % size)  # lay out
            job, cmd = fio(fdir, "seqread", "--rw=read", "--bs=1M", "--size=%d" % size)
            add("fio read bs=1M MB/s", job["read"]["bw_bytes"] / 1e6)
            results["commands"]["fio read bs=1M"] = cmd
        if "put64" in only:
            fresh(kdir)
            d = kinlet("put", "--dir", kdir, "--size", 64, "--bytes", 64 * 20_000_000,
                       "--sync", "none")
            add("kinlet durable 64 B records/s", d["records_per_s"])
            m = kinlet("put", "--memory", "--size", 64, "--bytes", 64 * 20_000_000)
            add("kinlet memory 64 B records/s", m["records_per_s"])
        if "fsync4" in only:
            fresh(kdir)
            f = kinlet("put", "--dir", kdir, "--size", 1024, "--bytes", 32 << 20, "--sync",
                       "every", "--threads", 4)
            add("kinlet fsync'd 4 writers records/s", f["records_per_s"])
            add("kinlet records per fsync", f.get("records_per_fsync", 0))
            fresh(fdir)
            job, cmd = fio(fdir, "fsync", "--rw=write", "--bs=4k", "--size=64M",
                           "--fdatasync=1", "--runtime=10", "--time_based")
            add("fio fdatasync'd 4k writes/s", job["write"]["iops"])
            results["commands"]["fio fdatasync"] = cmd
        print("rep %d done" % (rep + 1), file=sys.stderr)

    shutil.rmtree(a.dir, ignore_errors=True)
    results["placement_after"] = placement()
    med = {k: statistics.median(v) for k, v in samples.items()}
    results["median"] = med
    results["samples"] = samples
    print("\n| point | median | samples |\n|---|---|---|")
    for k, v in samples.items():
        print("| %s | %.3f | %s |" % (k, med[k], ", ".join("%.3f" % x for x in v)))

    def ratio(num, den, label):
        if num in med and den in med and med[den] > 0:
            r = med[num] / med[den]
            results.setdefault("ratios", {})[label] = r
            print("%s: %.2f" % (label, r))

    print()
    ratio("kinlet write 1 KiB MB/s", "fio write bs=1M MB/s", "durable write / fio bs=1M (goal 0.70)")
    ratio("kinlet write 1 KiB MB/s", "fio write bs=1k MB/s", "durable write / fio bs=1k")
    ratio("kinlet durable 64 B records/s", "kinlet memory 64 B records/s",
          "durable 64 B / in-memory 64 B (goal 0.50)")
    ratio("kinlet read MB/s", "fio read bs=1M MB/s", "read / fio read (goal 0.70)")
    print("placement after:", results["placement_after"])
    out = os.path.join(ROOT, "build/release/bench-storage.json")
    with open(out, "w") as f:
        json.dump(results, f, indent=2)
    print("wrote", out)


if __name__ == "__main__":
    main()
