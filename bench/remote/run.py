#!/usr/bin/python3
"""The remote backend's figures (issue 16, "Speed"), one run, same machine.

Usage (from the repository root, after a Release build):
    cmake --preset release
    flock /tmp/kinlet-build.lock cmake --build build/release -j2 --target kinlet-gateway remote_bench
    /usr/bin/python3 bench/remote/run.py [--reps 3] [--records 2000000] [--only lat,prod,boto3,sub]

Points:
  lat    one remote PutRecord (RemoteStream, HTTP/1.1 keep-alive) against an in-process Gateway,
         beside the raw-socket floor (the same signed request), and the old loop-thread client;
         modes alternate round by round inside remote_bench.
  prod   the batching Producer (remote_bench producer) into kinlet-gateway and into kinesalite,
         64 B records, alternating servers; fresh streams per point.
  boto3  boto3's put_records loop (500 records a call, 64 B) against the same kinlet-gateway.
  sub    SubscribeToShard put -> callback through RemoteStream against kinlet-gateway.
Servers: kinlet-gateway (`--limits unlimited`, bigger shards) and kinesalite 3.3.3 on 127.0.0.1,
kernel-picked ports, stopped by pid (bench/gateway/run.py's Servers, tests/clients/harness.py).
Each point reports server / client / foreign CPU in cores. JSON: build/release/bench-remote.json.
"""

import argparse
import json
import os
import re
import signal
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "bench", "gateway"))

import run as gw  # noqa: E402  (bench/gateway/run.py: servers, CPU accounting, placement)

BENCH = os.path.join(ROOT, "build/release/bench/remote/remote_bench")


def parse(out):
    return {k: float(v) for k, v in re.findall(r"^([\w-]+) ([-\d.]+)$", out, re.M)}


def boto3_loop(port, stream, seconds):
    """put_records of 500 x 64 B records in a loop for `seconds`; returns records/s."""
    import harness

    client = harness.boto3_client("http://127.0.0.1:%d" % port)
    keys = ["key-%d" % i for i in range(500)]
    records = [{"PartitionKey": k, "Data": b"d" * 64} for k in keys]
    n = 0
    t0 = time.time()
    while time.time() - t0 < seconds:
        out = client.put_records(StreamName=stream, Records=records)
        assert out["FailedRecordCount"] == 0, out["FailedRecordCount"]
        n += len(records)
    return n / (time.time() - t0)


def main():
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--gateway", default=os.path.join(ROOT, "build/release/tools/kinlet-gateway/kinlet-gateway"))
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--records", type=int, default=2000000, help="records per producer point into kinlet-gateway")
    ap.add_argument("--kinesalite-records", type=int, default=20000)
    ap.add_argument("--only", default="lat,prod,boto3,sub")
    ap.add_argument("--out", default=os.path.join(ROOT, "build/release/bench-remote.json"))
    ap.add_argument("--max-wait", type=float, default=20, help="seconds to wait for a quiet machine before a point")
    args = ap.parse_args()
    gw.MAX_WAIT_S = args.max_wait
    only = set(args.only.split(","))
    result = {"date": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "loadavg_before": open("/proc/loadavg").read().strip()}
    with open("/proc/cpuinfo") as f:
        result["cpu"] = next((l.split(":", 1)[1].strip() for l in f if l.startswith("model name")), "?")
    result["placement_before"] = gw.placement()
    print("cpu:", result["cpu"], "| placement before:", result["placement_before"], "| loadavg:", result["loadavg_before"], flush=True)
    points = result["points"] = {}

    if "lat" in only:
        runs = []
        for r in range(args.reps):
            gw.wait_quiet()
            out, cpu = gw.run_measured([BENCH, "latency", "--rounds", "10", "--calls", "2000"], os.getpid())
            res = parse(out)
            res["cpu"] = cpu
            runs.append(res)
            print("  latency rep %d: floor p50 %.1f p99 %.1f | remote p50 %.1f p99 %.1f | loop p50 %.1f p99 %.1f | added p50 %.1f (loop %.1f) us | placement %s" % (
                r, res["floor_p50_us"], res["floor_p99_us"], res["remote_p50_us"], res["remote_p99_us"],
                res["remote-loop_p50_us"] if "remote-loop_p50_us" in res else -1, res.get("remote-loop_p99_us", -1),
                res["added_p50_us"], res["added_loop_p50_us"], gw.placement()), flush=True)
        points["latency"] = runs

    if only & {"prod", "boto3", "sub"}:
        # Shards hold up to 1 Mi records each here (kinlet-gateway's default is 64 Ki).
        servers = gw.Servers(args.gateway, ["--shard-capacity-records", "1048576", "--shard-capacity-bytes", str(512 << 20)])
        counter = [0]

        def fresh(kind, shards):
            counter[0] += 1
            name = "rb%d" % counter[0]
            servers.clients[kind].create_stream(name, shards)
            return name

        def endpoint(kind):
            return "http://127.0.0.1:%d" % servers.servers[kind].port

        try:
            if "prod" in only:
                runs = {"kinlet": [], "kinesalite": []}
                for r in range(args.reps):
                    for kind in ("kinlet", "kinesalite"):
                        gw.wait_quiet()
                        name = fresh(kind, 16)
                        n = args.records if kind == "kinlet" else args.kinesalite_records
                        cmd = [BENCH, "producer", "--endpoint", endpoint(kind), "--stream", name, "--records", str(n),
                               "--keys", "100000", "--in-flight", "4", "--linger-ms", "20"]
                        try:
                            out, cpu = gw.run_measured(cmd, servers.servers[kind].proc.pid)
                        except RuntimeError as e:  # e.g. kinesalite's 56-digit sequence numbers
                            runs[kind].append({"error": str(e)[-400:]})
                            print("  producer %-10s rep %d: FAILED %s" % (kind, r, str(e)[-300:]), flush=True)
                            servers.clients[kind].delete_stream(name)
                            continue
                        res = parse(out)
                        res["cpu"] = cpu
                        res["placement"] = gw.placement()
                        runs[kind].append(res)
                        servers.clients[kind].delete_stream(name)
                        print("  producer %-10s rep %d: %.0f records/s (%d records, %d requests, %d retries), cpu server %.2f client %.2f foreign %.2f, %s" % (
                            kind, r, res["records_per_s"], res["records"], res["requests"], res["entry_retries"],
                            cpu["server"], cpu["client"], cpu["foreign"], res["placement"]), flush=True)
                points["producer"] = runs
            if "boto3" in only:
                runs = []
                for r in range(args.reps):
                    gw.wait_quiet()
                    name = fresh("kinlet", 16)
                    rate = boto3_loop(servers.servers["kinlet"].port, name, 5)
                    servers.clients["kinlet"].delete_stream(name)
                    runs.append({"records_per_s": rate, "placement": gw.placement()})
                    print("  boto3 put_records loop rep %d: %.0f records/s, %s" % (r, rate, runs[-1]["placement"]), flush=True)
                points["boto3"] = runs
            if "sub" in only:
                runs = []
                for gap in (0, 1000):
                    for r in range(args.reps):
                        gw.wait_quiet()
                        name = fresh("kinlet", 1)
                        out, cpu = gw.run_measured([BENCH, "subscribe", "--endpoint", endpoint("kinlet"), "--stream", name,
                                                    "--samples", "2000", "--gap-us", str(gap)], servers.servers["kinlet"].proc.pid)
                        res = parse(out)
                        res.update(cpu=cpu, gap_us=gap, placement=gw.placement())
                        runs.append(res)
                        servers.clients["kinlet"].delete_stream(name)
                        print("  subscribe gap %d us rep %d: put->callback p50 %.1f p99 %.1f us, %s" % (
                            gap, r, res["event_p50_us"], res["event_p99_us"], res["placement"]), flush=True)
                points["subscribe"] = runs
        finally:
            result["exit_codes"] = servers.stop()

    result["placement_after"] = gw.placement()
    result["loadavg_after"] = open("/proc/loadavg").read().strip()
    print("placement after:", result["placement_after"], "| loadavg:", result["loadavg_after"], flush=True)
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(result, f, indent=1)

    def med(values):
        return statistics.median(values) if values else float("nan")

    print("\n| figure | median |\n|---|---|")
    if "latency" in points:
        lat = points["latency"]
        for key in ("floor_p50_us", "floor_p99_us", "remote_p50_us", "remote_p99_us", "remote-loop_p50_us",
                    "remote-loop_p99_us", "added_p50_us", "added_loop_p50_us"):
            print("| %s | %.1f |" % (key, med([x[key] for x in lat if key in x])))
    if "producer" in points:
        for kind, runs in points["producer"].items():
            ok = [x["records_per_s"] for x in runs if "records_per_s" in x]
            print("| producer into %s, records/s | %s |" % (kind, format(int(med(ok)), ",") if ok else "failed"))
    if "boto3" in points:
        b = med([x["records_per_s"] for x in points["boto3"]])
        print("| boto3 put_records loop into kinlet, records/s | %s |" % format(int(b), ","))
        if "producer" in points:
            print("| factor producer / boto3 | %.1f |" % (med([x["records_per_s"] for x in points["producer"]["kinlet"] if "records_per_s" in x]) / b))
    if "subscribe" in points:
        for gap in (0, 1000):
            sel = [x for x in points["subscribe"] if x["gap_us"] == gap]
            print("| SubscribeToShard put->callback p50 / p99 us, gap %d us | %.1f / %.1f |" % (
                gap, med([x["event_p50_us"] for x in sel]), med([x["event_p99_us"] for x in sel])))


if __name__ == "__main__":
    main()
