"""Starts a local Kinesis for the client tests and gives the clients a sealed environment.

Two servers can be started, both on 127.0.0.1 only and on a port the kernel picks:
  * kinlet-gateway (the program under test): `--bind 127.0.0.1 --port 0 --port-file F`, then the
    harness reads the port from F;
  * kinesalite 3.3.3 (npm, pinned by package-lock.json), through kinesalite_server.js, which listens
    on 127.0.0.1 port 0 and prints the port.
Each is stopped by its process id (SIGTERM, then SIGKILL after a grace period) when the `with` block
ends, on failure too, and at interpreter exit (atexit) as a last resort.

The clients (boto3 here, the AWS CLI and node in subprocesses) get dummy credentials and no AWS
config files, the instance metadata service is disabled, and every HTTP proxy setting points at a
closed loopback port with 127.0.0.1/localhost exempted: a request to anything but the local server
fails at once instead of leaving the machine.

Environment:
  KINLET_GATEWAY          path of the kinlet-gateway executable (target "gateway")
  KINLET_CLIENTS_TARGET   "gateway" (default when KINLET_GATEWAY is set) or "kinesalite"
  KINLET_CLIENTS_NODE_DIR folder holding node_modules/ (default: this folder)
  KINLET_CLIENTS_NODE     node to run (default: /usr/bin/node)
  KINLET_CLIENTS_START_S  seconds to wait for a server to listen (default 60: sanitizer builds)
"""

import atexit
import contextlib
import hashlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))

# Debian's clients, never the pyenv shims that come first on developers' PATH.
DEBIAN_PYTHON = "/usr/bin/python3"
DEBIAN_AWS = "/usr/bin/aws"
NODE = os.environ.get("KINLET_CLIENTS_NODE") or shutil.which("node", path="/usr/bin:/bin") or "node"
NPM = shutil.which("npm", path="/usr/bin:/bin") or "npm"

REGION = "us-east-1"
ACCOUNT_ID = "000000000000"
ACCESS_KEY = "AKIDKINLETTEST000000"
SECRET_KEY = "kinlet/test/secret/key/not/a/real/one/00"

# Processes started and not yet stopped: atexit ends them by pid.
_live = {}


def _atexit_stop_all():
    for pid in list(_live):
        _stop_pid(pid, _live.pop(pid), grace_s=5)


atexit.register(_atexit_stop_all)


def _stop_pid(pid, proc, grace_s):
    if proc.poll() is not None:
        return proc.returncode
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return proc.wait()
    try:
        return proc.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        os.kill(pid, signal.SIGKILL)
        proc.wait()
        return None  # did not stop on SIGTERM


def sealed_env(base=None, tmpdir=None):
    """Returns an environment in which AWS clients can reach only the loopback server."""
    env = dict(os.environ if base is None else base)
    for key in list(env):
        if key.startswith("AWS_") or key.lower() in (
            "http_proxy",
            "https_proxy",
            "all_proxy",
            "no_proxy",
        ):
            del env[key]
    tmpdir = tmpdir or _session_tmp()
    for name in ("config", "credentials"):
        open(os.path.join(tmpdir, name), "a").close()
    env.update(
        {
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_REGION": REGION,
            "AWS_CONFIG_FILE": os.path.join(tmpdir, "config"),
            "AWS_SHARED_CREDENTIALS_FILE": os.path.join(tmpdir, "credentials"),
            "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_PAGER": "",
            "AWS_CLI_AUTO_PROMPT": "off",
            "AWS_RETRY_MODE": "standard",
            # Anything not on loopback goes to a closed port and fails at once.
            "HTTP_PROXY": "http://127.0.0.1:9",
            "HTTPS_PROXY": "http://127.0.0.1:9",
            "http_proxy": "http://127.0.0.1:9",
            "https_proxy": "http://127.0.0.1:9",
            "NO_PROXY": "127.0.0.1,localhost",
            "no_proxy": "127.0.0.1,localhost",
            "NODE_PATH": os.path.join(node_dir(), "node_modules"),
        }
    )
    return env


_tmp = None


def _session_tmp():
    global _tmp
    if _tmp is None:
        _tmp = tempfile.mkdtemp(prefix="kinlet-clients-")
        atexit.register(shutil.rmtree, _tmp, True)
    return _tmp


def seal_this_process():
    """Seals os.environ of the running interpreter (for boto3 in-process)."""
    sealed = sealed_env()
    os.environ.clear()
    os.environ.update(sealed)


def node_dir():
    return os.environ.get("KINLET_CLIENTS_NODE_DIR", HERE)


def ensure_node_modules(dest=None):
    """Installs the pinned npm packages (npm ci from package-lock.json) into dest/node_modules.

    Does nothing when dest already holds an install of the same lock file (a stamp records its
    hash). Scripts are not run: kinesalite's optional leveldown is only loaded for --path.
    """
    dest = dest or node_dir()
    os.makedirs(dest, exist_ok=True)
    lock = os.path.join(HERE, "package-lock.json")
    with open(lock, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    stamp = os.path.join(dest, "node_modules", ".kinlet-lock-sha256")
    if os.path.exists(stamp) and open(stamp).read().strip() == digest:
        return
    if os.path.abspath(dest) != HERE:
        for name in ("package.json", "package-lock.json"):
            shutil.copyfile(os.path.join(HERE, name), os.path.join(dest, name))
    # npm trusts only the CAs bundled with node; use the system's store as well, as every other
    # client does (a registry reached through an administrator's proxy CA then works).
    env = dict(os.environ)
    system_cas = "/etc/ssl/certs/ca-certificates.crt"
    if os.path.exists(system_cas) and "npm_config_cafile" not in env:
        env["npm_config_cafile"] = system_cas
    subprocess.run(
        [NPM, "ci", "--ignore-scripts", "--no-audit", "--no-fund", "--loglevel=error"],
        cwd=dest,
        env=env,
        check=True,
    )
    with open(stamp, "w") as f:
        f.write(digest + "\n")


def target():
    explicit = os.environ.get("KINLET_CLIENTS_TARGET")
    if explicit:
        return explicit
    return "gateway" if os.environ.get("KINLET_GATEWAY") else "kinesalite"


class Server:
    """A running local Kinesis: endpoint, port, kind; stop() by pid."""

    def __init__(self, kind, proc, port, log_path, ca_file=None):
        self.kind = kind
        self.proc = proc
        self.port = port
        self.log_path = log_path
        self.ca_file = ca_file  # the self-signed certificate when serving TLS
        self.endpoint = "%s://127.0.0.1:%d" % ("https" if ca_file else "http", port)
        self.exit_code = None
        _live[proc.pid] = proc

    def stop(self):
        """Stops the server by pid; returns its exit code (None: needed SIGKILL)."""
        proc = _live.pop(self.proc.pid, None)
        if proc is not None:
            self.exit_code = _stop_pid(proc.pid, proc, grace_s=15)
        return self.exit_code

    def sanitizer_reports(self):
        """Lines of the server's log that report a sanitizer finding (ASan, UBSan, TSan, LSan)."""
        markers = ("ERROR: AddressSanitizer", "runtime error:", "WARNING: ThreadSanitizer", "ERROR: LeakSanitizer")
        try:
            with open(self.log_path, errors="replace") as f:
                return [line.rstrip() for line in f if any(m in line for m in markers)]
        except OSError:
            return []

    def check_clean_exit(self):
        """Stops the server; raises AssertionError unless kinlet-gateway exited 0 with no sanitizer report."""
        code = self.stop()
        if self.kind != "gateway":
            return
        reports = self.sanitizer_reports()
        if code != 0 or reports:
            raise AssertionError(
                "kinlet-gateway exited with %r on SIGTERM (want 0)%s; log:\n%s"
                % (code, ", sanitizer reports: %s" % reports[:5] if reports else "", self.log_tail(80))
            )

    def log_tail(self, lines=40):
        try:
            with open(self.log_path, errors="replace") as f:
                return "".join(f.readlines()[-lines:])
        except OSError:
            return ""


def make_certificate(folder):
    """A self-signed ECDSA P-256 certificate for 127.0.0.1 (openssl CLI); returns (cert, key)."""
    cert, key = os.path.join(folder, "cert.pem"), os.path.join(folder, "key.pem")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-keyout", key, "-out", cert, "-days", "2", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
        check=True,
        capture_output=True,
    )
    return cert, key


def _wait_listening(port, proc, deadline, log_path):
    """Returns once 127.0.0.1:port accepts a TCP connection (the server process still running)."""
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(
                "server exited with %s before listening:\n%s"
                % (proc.returncode, open(log_path, errors="replace").read()[-4000:])
            )
        try:
            socket.create_connection(("127.0.0.1", port), timeout=2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("server did not listen on 127.0.0.1:%d in time" % port)


def start(kind=None, gateway_args=(), streams=(), tmpdir=None, tls=False):
    """Starts a server of `kind` ("gateway" or "kinesalite") and returns a Server.

    gateway_args: extra kinlet-gateway flags (ignored for kinesalite). streams: ("name:shards",...)
    created at start by the gateway's --create-stream (kinesalite: not supported, must be empty).
    tls: the gateway serves TLS (h2 by ALPN, and HTTP/1.1) with a fresh self-signed certificate;
    Server.ca_file is the certificate to trust and Server.endpoint is https://.
    """
    kind = kind or target()
    tmpdir = tmpdir or tempfile.mkdtemp(prefix="srv-", dir=_session_tmp())
    log_path = os.path.join(tmpdir, "%s.log" % kind)
    log = open(log_path, "wb")
    start_s = float(os.environ.get("KINLET_CLIENTS_START_S", "60"))
    deadline = time.time() + start_s
    # The server never sees the clients' proxy or AWS settings.
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    if kind == "gateway":
        binary = os.environ.get("KINLET_GATEWAY")
        if not binary or not os.access(binary, os.X_OK):
            raise RuntimeError("KINLET_GATEWAY=%r is not an executable" % binary)
        port_file = os.path.join(tmpdir, "port")
        args = [binary, "--bind", "127.0.0.1", "--port", "0", "--port-file", port_file]
        args += ["--region", REGION, "--account-id", ACCOUNT_ID]
        ca_file = None
        if tls:
            ca_file, key = make_certificate(tmpdir)
            args += ["--tls-cert", ca_file, "--tls-key", key]
        for spec in streams:
            args += ["--create-stream", spec]
        args += list(gateway_args)
        proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=env)
        _live[proc.pid] = proc
        port = None
        while time.time() < deadline and port is None:
            if proc.poll() is not None:
                _live.pop(proc.pid, None)
                raise RuntimeError(
                    "kinlet-gateway exited with %s before listening:\n%s"
                    % (proc.returncode, open(log_path, errors="replace").read()[-4000:])
                )
            try:
                text = open(port_file).read().strip()
                port = int(text) if text else None
            except (OSError, ValueError):
                port = None
            if port is None:
                time.sleep(0.02)
        if port is None:
            _stop_pid(proc.pid, _live.pop(proc.pid), grace_s=5)
            raise RuntimeError("kinlet-gateway wrote no port to %s in %ss" % (port_file, start_s))
        server = Server(kind, proc, port, log_path, ca_file)
        _wait_listening(port, proc, deadline, log_path)
        return server
    if kind == "kinesalite":
        if streams:
            raise ValueError("kinesalite cannot create streams at start")
        script = os.path.join(HERE, "kinesalite_server.js")
        proc = subprocess.Popen(
            [NODE, script],
            stdout=subprocess.PIPE,
            stderr=log,
            env=dict(env, NODE_PATH=os.path.join(node_dir(), "node_modules")),
        )
        _live[proc.pid] = proc
        line = proc.stdout.readline().decode()
        if not line.startswith("PORT "):
            _stop_pid(proc.pid, _live.pop(proc.pid), grace_s=5)
            raise RuntimeError(
                "kinesalite did not start (%r):\n%s"
                % (line, open(log_path, errors="replace").read()[-4000:])
            )
        port = int(line.split()[1])
        server = Server(kind, proc, port, log_path)
        _wait_listening(port, proc, deadline, log_path)
        return server
    raise ValueError("unknown server kind %r" % kind)


@contextlib.contextmanager
def running(kind=None, **kwargs):
    server = start(kind, **kwargs)
    try:
        yield server
    finally:
        server.stop()


def boto3_client(endpoint, retries=3, access_key=ACCESS_KEY, secret_key=SECRET_KEY, verify=None, **config):
    """A boto3 Kinesis client bound to `endpoint` (never AWS): dummy credentials, us-east-1.

    verify: the CA file for an https:// endpoint.
    """
    import boto3
    import botocore.config

    cfg = botocore.config.Config(
        retries={"max_attempts": retries, "mode": "standard"},
        connect_timeout=5,
        read_timeout=30,
        **config
    )
    return boto3.session.Session(
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
        region_name=REGION,
    ).client("kinesis", endpoint_url=endpoint, config=cfg, verify=verify)


def require_debian_python():
    if os.path.realpath(sys.executable) != os.path.realpath(DEBIAN_PYTHON):
        sys.stderr.write(
            "warning: running under %s, not Debian's %s\n" % (sys.executable, DEBIAN_PYTHON)
        )
