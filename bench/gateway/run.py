#!/usr/bin/python3
"""kinlet-gateway beside kinesalite 3.3.3: the same clients (wrk, h2load, a Python subscriber), the
same run, the servers alternating (kinlet, kinesalite, kinlet, ...), medians reported.

Usage (from the repository root, after a Release build of the gateway):
    cmake --preset release
    flock /tmp/kinlet-build.lock cmake --build build/release -j2 --target kinlet-gateway
    /usr/bin/python3 bench/gateway/run.py [--reps 3] [--duration 5] [--only put,puts,get,lat,h2,sub]

Both servers listen on 127.0.0.1 on kernel-picked ports and are stopped by pid (tests/clients/harness.py
starts them; kinesalite through tests/clients/kinesalite_server.js, pinned by its package-lock.json,
installed with `npm ci` into build/release/bench-node). Every measurement point gets fresh streams
(created before, deleted after), so a run never meets a full shard (kinlet-gateway's shards keep at
most 65,536 records). Each point also reports the CPU that other processes took during it
("foreign", in cores, from /proc/stat minus the server's and the client's own): on this shared
2-core machine a point with foreign > 0.15 is repeated once and flagged if it stays busy.
Results: a JSON file (--out, default build/release/bench-gateway.json) and a Markdown table on stdout.
"""

import argparse
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tests", "clients"))
sys.path.insert(0, HERE)

import kinesis_http as kh  # noqa: E402

TMP = tempfile.mkdtemp(prefix="kinlet-bench-gw-")
FOREIGN_LIMIT = 0.15  # cores used by other processes during a point before it is repeated


def cpu_ticks():
    with open("/proc/stat") as f:
        parts = [int(x) for x in f.readline().split()[1:]]
    idle = parts[3] + parts[4]
    steal = parts[7] if len(parts) > 7 else 0
    return sum(parts[:8]) - idle - steal, steal, sum(parts[:8])


def proc_ticks(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])  # utime + stime, all threads
    except OSError:
        return 0


def placement():
    try:
        return subprocess.run(["/work/shared/tools/placement"], capture_output=True, text=True, timeout=60).stdout.strip()
    except (OSError, subprocess.SubprocessError) as e:
        return "placement unavailable (%s)" % e


def run_measured(cmd, server_pid, env=None):
    """Runs a client command; returns (stdout, cpu dict: server/client/foreign/steal in cores)."""
    hz = os.sysconf("SC_CLK_TCK")
    b0, s0, _ = cpu_ticks()
    srv0 = proc_ticks(server_pid)
    t0 = time.time()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    out_lines = []
    client_ticks = 0
    # Sample the client's ticks just before it exits (a zombie keeps them until reaped).
    while True:
        line = p.stdout.readline()
        if not line:
            break
        out_lines.append(line)
    # After EOF the client may still be running its exit; its ticks: read them before wait().
    client_ticks = proc_ticks(p.pid)
    p.wait()
    wall = time.time() - t0
    b1, s1, _ = cpu_ticks()
    srv = proc_ticks(server_pid) - srv0
    busy = (b1 - b0) / hz / wall
    cpu = {
        "server": srv / hz / wall,
        "client": client_ticks / hz / wall,
        "steal": (s1 - s0) / hz / wall,
    }
    cpu["foreign"] = max(0.0, busy - cpu["server"] - cpu["client"])
    out = "".join(out_lines)
    if p.returncode != 0:
        raise RuntimeError("%s failed (%d):\n%s" % (cmd[0], p.returncode, out))
    return out, cpu


UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0}


def parse_wrk(out):
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    res = {"rps": float(m.group(1))}
    m = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    res["non2xx"] = int(m.group(1)) if m else 0
    m = re.search(r"Socket errors: (.*)", out)
    res["socket_errors"] = m.group(1) if m else ""
    for pct in ("50", "90", "99"):
        m = re.search(r"^\s+%s%%\s+([\d.]+)(us|ms|s)\s*$" % pct, out, re.M)
        if m:
            res["p" + pct + "_us"] = float(m.group(1)) * UNITS[m.group(2)] * 1e6
    return res


def parse_h2load(out):
    m = re.search(r"finished in [\d.]+\w+, ([\d.]+) req/s", out)
    res = {"rps": float(m.group(1))}
    m = re.search(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", out)
    res["non2xx"] = int(m.group(3)) + int(m.group(4)) if m else -1
    m = re.search(r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored", out)
    if m:
        res["failed"] = int(m.group(5)) + int(m.group(6))
    m = re.search(r"time for request:\s+([\d.]+)(us|ms|s)\s+([\d.]+)(us|ms|s)\s+([\d.]+)(us|ms|s)", out)
    if m:
        res["mean_us"] = float(m.group(5)) * UNITS[m.group(6)] * 1e6
    return res


class Servers:
    def __init__(self, gateway, gateway_args):
        import harness

        self.harness = harness
        os.environ["KINLET_GATEWAY"] = gateway
        node_dir = os.path.join(ROOT, "build", "release", "bench-node")
        os.environ["KINLET_CLIENTS_NODE_DIR"] = node_dir
        harness.ensure_node_modules(node_dir)
        self.servers = {
            "kinlet": harness.start("gateway", gateway_args=["--limits", "unlimited"] + gateway_args),
            "kinesalite": self._start_kinesalite(),
        }
        self.clients = {k: kh.Client(s.port) for k, s in self.servers.items()}
        floor = os.path.join(ROOT, "build", "release", "floor_server")
        if os.access(floor, os.X_OK):
            # The loopback floor (floor_server.c): a fixed 200 per request, nothing else.
            port_file = os.path.join(TMP, "floor.port")
            proc = subprocess.Popen([floor, port_file])
            for _ in range(200):
                if os.path.exists(port_file) and open(port_file).read().strip():
                    break
                time.sleep(0.01)
            self.servers["floor"] = harness.Server("floor", proc, int(open(port_file).read()), os.devnull)
            self.clients["floor"] = None

    def _start_kinesalite(self):
        # harness.start("kinesalite") with --shardLimit: the PutRecords points use 160-shard streams.
        harness = self.harness
        log_path = os.path.join(TMP, "kinesalite.log")
        proc = subprocess.Popen(
            [harness.NODE, os.path.join(harness.HERE, "kinesalite_server.js"), "--shardLimit", "100000"],
            stdout=subprocess.PIPE,
            stderr=open(log_path, "wb"),
            env=dict(os.environ, NODE_PATH=os.path.join(harness.node_dir(), "node_modules")),
        )
        line = proc.stdout.readline().decode()
        if not line.startswith("PORT "):
            proc.kill()
            raise RuntimeError("kinesalite did not start: %r" % line)
        server = harness.Server("kinesalite", proc, int(line.split()[1]), log_path)
        harness._wait_listening(server.port, proc, time.time() + 60, log_path)
        return server

    def stop(self):
        for c in self.clients.values():
            if c is not None:
                c.close()
        codes = {k: s.stop() for k, s in self.servers.items()}
        return codes


def write_bodies(name, lines):
    path = os.path.join(TMP, name)
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return path


# Shards of the PutRecords streams: records spread over all of them, so a 5 s run at up to
# ~2 M records/s (10 M records) stays under 160 x 65,536 records.
PUTRECORDS_SHARDS = 160
RECORD = b"r" * 64  # 64-byte records throughout


def bodies_putrecord(stream, shards):
    return [json.dumps({"StreamName": stream, "PartitionKey": k, "Data": kh.b64(RECORD)}) for k in kh.keys_one_per_shard(shards)]


def body_putrecords(stream, shards, n=500):
    keys = kh.keys_one_per_shard(shards)
    recs = [{"PartitionKey": keys[i % shards], "Data": kh.b64(RECORD)} for i in range(n)]
    return [json.dumps({"StreamName": stream, "Records": recs})]


def wrk_point(servers, kind, script, conns, duration, make_stream, latency=False):
    """One wrk run against `kind`; make_stream(client) -> (stream or None, body lines)."""
    client = servers.clients[kind]
    stream, lines = make_stream(client)
    body = write_bodies("body-%s.json" % kind, lines)
    env = dict(os.environ, BENCH_DIR=HERE, BENCH_BODY=body, BENCH_DATE=kh.amz_date())
    cmd = ["wrk", "-t1", "-c%d" % conns, "-d%ds" % duration, "-s", os.path.join(HERE, script)]
    if latency:
        cmd.append("--latency")
    cmd.append("http://127.0.0.1:%d/" % servers.servers[kind].port)
    out, cpu = run_measured(cmd, servers.servers[kind].proc.pid, env)
    res = parse_wrk(out)
    res.update(cpu=cpu, cmd=" ".join(cmd[:6] + ([cmd[6]] if latency else [])))
    if stream:
        client.delete_stream(stream)
    return res


def h2_point(servers, conns, streams_per_conn, n, make_stream):
    kind = "kinlet"
    client = servers.clients[kind]
    stream, lines = make_stream(client)
    body = write_bodies("body-h2.json", lines[:1])
    cmd = ["h2load", "-n", str(n), "-c", str(conns), "-m", str(streams_per_conn), "-t", "1"]
    for k, v in kh.headers("PutRecord").items():
        cmd += ["-H", "%s: %s" % (k.lower(), v)]
    cmd += ["-d", body, "http://127.0.0.1:%d/" % servers.servers[kind].port]
    out, cpu = run_measured(cmd, servers.servers[kind].proc.pid)
    res = parse_h2load(out)
    res.update(cpu=cpu)
    client.delete_stream(stream)
    return res


MAX_WAIT_S = 20  # --max-wait


def wait_quiet(max_wait_s=None):
    """Waits (up to max_wait_s) until other processes use under FOREIGN_LIMIT cores over 1 s.

    Nothing of this bench runs between points, so the busy time measured here is someone else's
    (another engineer's build on the shared 2 cores). Returns the seconds waited.
    """
    max_wait_s = MAX_WAIT_S if max_wait_s is None else max_wait_s
    if max_wait_s <= 0:
        return 0.0
    hz = os.sysconf("SC_CLK_TCK")
    t0 = time.time()
    while True:
        b0, _, _ = cpu_ticks()
        time.sleep(1.0)
        b1, _, _ = cpu_ticks()
        busy = (b1 - b0) / hz
        if busy < FOREIGN_LIMIT or time.time() - t0 > max_wait_s:
            waited = time.time() - t0
            if waited > 2:
                print("  (waited %.0f s for a quiet machine; busy %.2f cores)" % (waited, busy), flush=True)
            return waited


def alternate(name, reps, fn, kinds=("kinlet", "kinesalite")):
    """Runs fn(kind) reps times per kind, alternating; repeats a busy point once; returns per-kind lists."""
    runs = {k: [] for k in kinds}
    for r in range(reps):
        for kind in kinds:
            wait_quiet()
            res = fn(kind)
            if res["cpu"]["foreign"] > FOREIGN_LIMIT and MAX_WAIT_S > 0:
                print("  %s %s rep %d: foreign CPU %.2f cores, repeating" % (name, kind, r, res["cpu"]["foreign"]), flush=True)
                wait_quiet()
                res = fn(kind)
                res["repeated"] = True
            res["busy"] = res["cpu"]["foreign"] > FOREIGN_LIMIT
            runs[kind].append(res)
            print("  %-10s %-10s rep %d: %s" % (name, kind, r, summary(res)), flush=True)
    return runs


def summary(res):
    parts = ["%.0f req/s" % res["rps"]]
    for p in ("p50_us", "p99_us", "mean_us"):
        if p in res:
            parts.append("%s %.1f us" % (p[:-3], res[p]))
    if res.get("non2xx"):
        parts.append("NON-2XX %d" % res["non2xx"])
    if res.get("socket_errors"):
        parts.append("socket errors: " + res["socket_errors"])
    c = res["cpu"]
    parts.append("cpu server %.2f client %.2f foreign %.2f steal %.2f" % (c["server"], c["client"], c["foreign"], c["steal"]))
    return ", ".join(parts)


def med(runs, key="rps"):
    vals = [r[key] for r in runs if key in r]
    return statistics.median(vals) if vals else None


def main():
    global MAX_WAIT_S
    # SIGTERM (e.g. `kill` of this script): unwind, so that the servers are stopped by pid.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--gateway", default=os.path.join(ROOT, "build/release/tools/kinlet-gateway/kinlet-gateway"))
    ap.add_argument("--gateway-arg", action="append", default=[], help="extra kinlet-gateway flag (repeatable)")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--duration", type=int, default=5)
    ap.add_argument("--only", default="put,puts,get,lat,h2,sub")
    # build/release/floor_server (cc -O2 bench/gateway/floor_server.c), when built, joins the latency point.
    ap.add_argument("--out", default=os.path.join(ROOT, "build/release/bench-gateway.json"))
    ap.add_argument("--max-wait", type=float, default=20,
                    help="seconds to wait for a quiet machine before a point (0: neither wait nor repeat busy points)")
    args = ap.parse_args()
    MAX_WAIT_S = args.max_wait
    only = set(args.only.split(","))
    d = args.duration
    result = {"date": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "uptime_before": open("/proc/loadavg").read().strip()}
    result["placement_before"] = placement()
    print("placement before:", result["placement_before"], "| loadavg:", result["uptime_before"], flush=True)
    servers = Servers(args.gateway, args.gateway_arg)
    counter = [0]

    def fresh(shards, bodies_fn):
        def make(client):
            if client is None:  # the floor server: no streams
                return None, bodies_fn("floor", shards)
            counter[0] += 1
            name = "bench%d" % counter[0]
            client.create_stream(name, shards)
            return name, bodies_fn(name, shards)

        return make

    points = result["points"] = {}
    try:
        if "put" in only:
            for c in (8, 64):
                name = "PutRecord c%d" % c
                points[name] = alternate(name, args.reps, lambda k: wrk_point(servers, k, "putrecord.lua", c, d, fresh(16, bodies_putrecord)))
        if "puts" in only:
            for c in (4,):
                name = "PutRecords500 c%d" % c
                points[name] = alternate(name, args.reps, lambda k: wrk_point(servers, k, "putrecords.lua", c, d, fresh(PUTRECORDS_SHARDS, body_putrecords)))
        if "get" in only:
            # One filled shard per server (10 x PutRecords of 500 records), then GetRecords Limit 1000
            # with one TRIM_HORIZON iterator per run, sent again on every request (an iterator can be
            # reused until it expires): each response holds the shard's first 1,000 records.
            filled = {}
            for kind, client in servers.clients.items():
                if client is None:
                    continue
                client.create_stream("get", 1)
                for _ in range(10):
                    _, out = client.call("PutRecords", json.loads(body_putrecords("get", 1)[0]))
                    assert out.get("FailedRecordCount", 0) == 0, out
                filled[kind] = True

            def get_body(client):
                _, it = client.call("GetShardIterator", {"StreamName": "get", "ShardId": "shardId-000000000000", "ShardIteratorType": "TRIM_HORIZON"})
                body = {"ShardIterator": it["ShardIterator"], "Limit": 1000}
                _, page = client.call("GetRecords", body)
                assert len(page["Records"]) == 1000, len(page["Records"])
                return None, [json.dumps(body)]

            for c in (4,):
                name = "GetRecords1000 c%d" % c
                points[name] = alternate(name, args.reps, lambda k: wrk_point(servers, k, "getrecords.lua", c, d, get_body))
        if "lat" in only:
            name = "PutRecord latency c1"
            kinds = ("kinlet", "kinesalite") + (("floor",) if "floor" in servers.servers else ())
            points[name] = alternate(name, args.reps, lambda k: wrk_point(servers, k, "putrecord.lua", 1, d, fresh(16, bodies_putrecord), latency=True), kinds=kinds)
        if "h2" in only:
            for c, m in ((1, 1), (8, 1), (8, 16)):
                name = "h2 PutRecord c%d m%d" % (c, m)
                # One body (h2load sends one), so one shard: 60,000 requests stay under its 65,536 records.
                points[name] = alternate(name, args.reps, lambda k: h2_point(servers, c, m, 60000, fresh(1, bodies_putrecord)), kinds=("kinlet",))
        if "sub" in only:
            import subscribe

            name = "SubscribeToShard put->event"
            runs = []
            for gap_us in (0, 1000):
                for r in range(args.reps):
                    res = subscribe.measure(servers.servers["kinlet"].port, servers.clients["kinlet"], samples=2000, gap_us=gap_us, stream="sub%d_%d" % (gap_us, r))
                    res["gap_us"] = gap_us
                    runs.append(res)
                    print("  %s gap %d us rep %d: event p50 %.1f p99 %.1f us, put response p50 %.1f us" % (name, gap_us, r, res["event_p50_us"], res["event_p99_us"], res["put_p50_us"]), flush=True)
            points[name] = {"kinlet": runs}
    finally:
        result["exit_codes"] = servers.stop()
        result["placement_after"] = placement()
        result["uptime_after"] = open("/proc/loadavg").read().strip()
        print("placement after:", result["placement_after"], "| loadavg:", result["uptime_after"], flush=True)
        os.makedirs(os.path.dirname(args.out), exist_ok=True)
        with open(args.out, "w") as f:
            json.dump(result, f, indent=1)
    table(result)


def table(result):
    print("\n| point | kinlet | kinesalite | ratio |")
    print("|---|---|---|---|")
    for name, runs in result["points"].items():
        if name.startswith("SubscribeToShard"):
            for gap in (0, 1000):
                rs = [r for r in runs["kinlet"] if r["gap_us"] == gap]
                print("| %s (puts %d us apart), p50 / p99 | %.0f / %.0f us | no SubscribeToShard | |" % (name, gap, med(rs, "event_p50_us"), med(rs, "event_p99_us")))
            continue
        k, s = runs.get("kinlet", []), runs.get("kinesalite", [])
        mult = 500 if "PutRecords500" in name else 1000 if "GetRecords1000" in name else 1
        unit = "records/s" if mult > 1 else "req/s"
        flags = " (busy)" if any(r.get("busy") for r in k + s) else ""
        kv, sv = med(k), med(s) if s else None
        cell = lambda v: "%s %s" % (format(int(v * mult), ","), unit) if v else "n/a"
        ratio = "%.0fx" % (kv / sv) if kv and sv else ""
        print("| %s%s | %s | %s | %s |" % (name, flags, cell(kv), cell(sv) if s else "n/a (no HTTP/2)", ratio))
        if "latency" in name:
            print("| %s p50 / p99 | %.1f / %.1f us | %.1f / %.1f us | |" % (name, med(k, "p50_us"), med(k, "p99_us"), med(s, "p50_us"), med(s, "p99_us")))
            fl = runs.get("floor")
            if fl:
                print("| floor_server (loopback floor), same point: %s req/s, p50 / p99 %.1f / %.1f us | | | |" % (format(int(med(fl)), ","), med(fl, "p50_us"), med(fl, "p99_us")))


if __name__ == "__main__":
    main()
