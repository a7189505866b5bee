#!/usr/bin/env python3
"""Plots the end-to-end sweeps of end_to_end_bench's JSON output with gnuplot.

Usage: bench/plot.py build/release/bench/end_to_end_bench.json bench/
Writes throughput_vs_size.png and throughput_vs_readers.png into the output
directory. Needs gnuplot (Debian: gnuplot-nox). Medians are used when the run
had repetitions.
"""
import json
import os
import subprocess
import sys


def main():
    src, out_dir = sys.argv[1], sys.argv[2]
    with open(src) as f:
        runs = json.load(f)["benchmarks"]
    # name like "Sweep/Kinlet/65536/1/real_time" (+ "_median" with repetitions)
    series = {}
    for r in runs:
        name = r["name"]
        if not name.startswith("Sweep/"):
            continue
        if r.get("run_type") == "aggregate" and r.get("aggregate_name") != "median":
            continue
        parts = name.split("/")
        impl, size, readers = parts[1], int(parts[2]), int(parts[3])
        series.setdefault(impl, []).append((size, readers, r["items_per_second"],
                                            r["bytes_per_second"]))
    def write(kind, select, x, y):
        files = []
        for impl, points in sorted(series.items()):
            pts = sorted((x(p), y(p)) for p in points if select(p))
            path = os.path.join(out_dir, f".{kind}_{impl}.dat")
            with open(path, "w") as f:
                for a, b in pts:
                    f.write(f"{a} {b}\n")
            files.append((impl, path))
        return files
    size_files = write("size", lambda p: p[1] == 1, lambda p: p[0], lambda p: p[3] / 2**30)
    reader_files = write("readers", lambda p: p[0] == 64, lambda p: p[1], lambda p: p[2] / 1e6)
    script = f"""
set terminal pngcairo size 800,500
set grid
set key left top
set output '{os.path.join(out_dir, "throughput_vs_size.png")}'
set title 'End to end, 1 producer -> 1 reader: bytes moved per second'
set logscale x 2
set xlabel 'record size (bytes)'
set ylabel 'GiB/s'
plot {", ".join(f"'{p}' using 1:2 with linespoints title '{n}'" for n, p in size_files)}
unset logscale x
set output '{os.path.join(out_dir, "throughput_vs_readers.png")}'
set title 'End to end, 64 B records, each reader reads everything'
set xlabel 'readers'
set ylabel 'million records per second (per reader)'
set xtics (1, 2, 4, 8)
plot {", ".join(f"'{p}' using 1:2 with linespoints title '{n}'" for n, p in reader_files)}
"""
    subprocess.run(["gnuplot"], input=script.encode(), check=True)
    for _, p in size_files + reader_files:
        os.remove(p)


if __name__ == "__main__":
    main()
