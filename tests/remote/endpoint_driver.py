#!/usr/bin/python3
"""Runs the RemoteStream scenario suite against an endpoint another program serves.

  /usr/bin/python3 tests/remote/endpoint_driver.py --profile kinesalite \
      --tests build/dev/tests/kinlet_remote_tests --node-dir build/dev/tests/clients/npm

Starts the server on 127.0.0.1 only, on a port the kernel picks, with its delays at 0:
  kinesalite    npm kinesalite@3.3.3 through tests/clients/kinesalite_server.js (createStreamMs,
                deleteStreamMs, updateStreamMs 0), HTTP/1.1;
  kinesis-mock  npm kinesis-local@0.6.2 through endpoint_kinesis_mock_server.js (every *_DURATION
                0ms), HTTP/2 over TLS on its own self-signed certificate.
Both are pinned in tests/clients/package-lock.json and installed with `npm ci` into
NODE_DIR/node_modules (shared with the client tests; a stamp of the lock file's hash skips a
second install). Then runs `TESTS "[endpoint]"` with KINLET_TEST_ENDPOINT and
KINLET_TEST_ENDPOINT_PROFILE set, stops the server by its process id (SIGTERM, then SIGKILL) and
exits with the tests' exit code. Exit 77 (ctest: skipped) when node is not installed, unless
KINLET_REQUIRE_NODE_SERVERS=1 (then 1).
"""

import argparse
import os
import shutil
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
CLIENTS = os.path.join(os.path.dirname(HERE), "clients")
PROFILES = ("kinesalite", "kinesis-mock")

# kinesis-mock's configuration (its README: environment variables; durations as "0ms").
KINESIS_MOCK_ENV = {
    "CREATE_STREAM_DURATION": "0ms",
    "DELETE_STREAM_DURATION": "0ms",
    "REGISTER_STREAM_CONSUMER_DURATION": "0ms",
    "DEREGISTER_STREAM_CONSUMER_DURATION": "0ms",
    "START_STREAM_ENCRYPTION_DURATION": "0ms",
    "STOP_STREAM_ENCRYPTION_DURATION": "0ms",
    "MERGE_SHARDS_DURATION": "0ms",
    "SPLIT_SHARD_DURATION": "0ms",
    "UPDATE_SHARD_COUNT_DURATION": "0ms",
    "UPDATE_STREAM_MODE_DURATION": "0ms",
    "SHOULD_PERSIST_DATA": "false",
    "LOAD_DATA_IF_EXISTS": "false",
    "AWS_ACCOUNT_ID": "000000000000",
    "AWS_REGION": "us-east-1",
    "LOG_LEVEL": "WARN",
}


def start_kinesis_mock(harness, log_path):
    """Starts kinesis-mock; returns (proc, endpoint)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(KINESIS_MOCK_ENV)
    env["NODE_PATH"] = os.path.join(harness.node_dir(), "node_modules")
    log = open(log_path, "wb")
    proc = subprocess.Popen(
        [harness.NODE, os.path.join(HERE, "endpoint_kinesis_mock_server.js")],
        stdout=subprocess.PIPE,
        stderr=log,
        env=env,
        cwd=os.path.dirname(log_path),  # it writes nothing, but never into the source tree
    )
    harness._live[proc.pid] = proc
    ports = {}
    deadline = time.time() + float(os.environ.get("KINLET_CLIENTS_START_S", "60"))
    while len(ports) < 2 and time.time() < deadline:
        line = proc.stdout.readline().decode(errors="replace")
        if not line:
            break
        log.write(line.encode())
        words = line.split()
        if len(words) == 2 and words[0] in ("KINLET_TLS_PORT", "KINLET_PLAIN_PORT"):
            ports[words[0]] = int(words[1])
    if len(ports) < 2:
        harness._stop_pid(proc.pid, harness._live.pop(proc.pid), grace_s=5)
        log.flush()
        raise RuntimeError(
            "kinesis-mock did not start:\n%s" % open(log_path, errors="replace").read()[-4000:]
        )
    # Its later output goes on to the log: a thread drains the pipe, so that kinesis-mock never
    # blocks on a full one.
    def drain():
        for chunk in iter(lambda: proc.stdout.read1(65536), b""):
            log.write(chunk)
            log.flush()

    threading.Thread(target=drain, daemon=True).start()
    port = ports["KINLET_TLS_PORT"]
    harness._wait_listening(port, proc, deadline, log_path)
    return proc, "https://127.0.0.1:%d" % port


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--profile", choices=PROFILES, required=True)
    parser.add_argument("--tests", required=True, help="the kinlet_remote_tests executable")
    parser.add_argument("--node-dir", help="folder for node_modules (npm ci)")
    args, rest = parser.parse_known_args()

    sys.path.insert(0, CLIENTS)
    import harness

    if not shutil.which(harness.NODE) and not os.access(harness.NODE, os.X_OK):
        why = "node is not installed (%s); the %s endpoint runs on node" % (harness.NODE, args.profile)
        if os.environ.get("KINLET_REQUIRE_NODE_SERVERS") == "1":  # scripts/run-tests.sh installs node
            print("FAILED: " + why)
            return 1
        print("SKIPPED: " + why)
        return 77
    if args.node_dir:
        os.environ["KINLET_CLIENTS_NODE_DIR"] = os.path.abspath(args.node_dir)
    harness.ensure_node_modules()

    tmp = harness._session_tmp()
    if args.profile == "kinesalite":
        server = harness.start("kinesalite")
        proc, endpoint, log_path = server.proc, server.endpoint, server.log_path
        stop = server.stop
    else:
        log_path = os.path.join(tmp, "kinesis-mock.log")
        proc, endpoint = start_kinesis_mock(harness, log_path)

        def stop():
            live = harness._live.pop(proc.pid, None)
            if live is not None:
                # kinesis-mock (cats-effect) does not end on SIGTERM while it still holds
                # event-stream fibers; it keeps no data (SHOULD_PERSIST_DATA=false), so after
                # a short grace period SIGKILL ends it.
                harness._stop_pid(proc.pid, live, grace_s=2)

    print("%s (pid %d) serves %s" % (args.profile, proc.pid, endpoint), flush=True)
    env = dict(os.environ)
    env["KINLET_TEST_ENDPOINT"] = endpoint
    env["KINLET_TEST_ENDPOINT_PROFILE"] = args.profile
    try:
        code = subprocess.call([args.tests, "[endpoint]", "--warn", "NoTests"] + rest, env=env)
    finally:
        stop()
    if code != 0:
        try:
            tail = open(log_path, errors="replace").read()[-4000:]
        except OSError:
            tail = ""
        print("%s log (tail):\n%s" % (args.profile, tail))
    return code


if __name__ == "__main__":
    sys.exit(main())
