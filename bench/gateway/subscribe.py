"""SubscribeToShard put -> event latency over HTTP/1.1, with raw sockets (no SDK in the timed path).

One keep-alive connection sends PutRecord (pre-formatted bytes); another holds a SubscribeToShard
response (chunked event stream). For each put the client takes t0 just before sending it, then
waits (select) for both the put's response and the record in the event stream: "event" is the time
until the decoded stream holds the record's base64 data, "put" the time until the put's response is
complete. Python's own cost (send, select, recv, search: a few microseconds) is inside both.
kinesalite has no SubscribeToShard, so only kinlet-gateway is measured.

Standalone: python3 bench/gateway/subscribe.py PORT   (a gateway already listening on 127.0.0.1:PORT)
"""

import base64
import json
import os
import select
import socket
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kinesis_http as kh  # noqa: E402


def _request_bytes(port, target, body):
    data = json.dumps(body).encode()
    head = "POST / HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nContent-Length: %d\r\n" % (port, len(data))
    head += "".join("%s: %s\r\n" % kv for kv in kh.headers(target).items())
    return head.encode() + b"\r\n" + data


class ChunkedReader:
    """Decodes a chunked HTTP/1.1 body incrementally into self.body (feed() any split of the bytes)."""

    def __init__(self):
        self.raw = b""
        self.body = bytearray()
        self.state, self.need = "size", 0  # "size" line, "data" (need bytes), "crlf" after data

    def feed(self, data):
        self.raw += data
        while True:
            if self.state == "size":
                end = self.raw.find(b"\r\n")
                if end < 0:
                    return
                self.need = int(self.raw[:end].split(b";")[0], 16)
                self.raw = self.raw[end + 2 :]
                if self.need == 0:
                    raise EOFError("subscription ended")
                self.state = "data"
            elif self.state == "data":
                take = min(self.need, len(self.raw))
                self.body += self.raw[:take]
                self.raw = self.raw[take:]
                self.need -= take
                if self.need:
                    return
                self.state = "crlf"
            else:
                if len(self.raw) < 2:
                    return
                self.raw = self.raw[2:]
                self.state = "size"


def _read_headers(sock, buf=b""):
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            raise EOFError("connection closed")
        buf += chunk
    head, rest = buf.split(b"\r\n\r\n", 1)
    return head.decode("latin-1"), rest


def measure(port, client, samples=2000, gap_us=0, stream="sub"):
    """Returns event/put latency percentiles (us) over `samples` sequential puts."""
    client.create_stream(stream, 1)
    arn = client.wait_active(stream)["StreamARN"]
    _, reg = client.call("RegisterStreamConsumer", {"StreamARN": arn, "ConsumerName": "bench"})
    consumer = reg["Consumer"]["ConsumerARN"]
    for _ in range(500):
        _, d = client.call("DescribeStreamConsumer", {"ConsumerARN": consumer})
        if d["ConsumerDescription"]["ConsumerStatus"] == "ACTIVE":
            break
        time.sleep(0.01)

    sub = socket.create_connection(("127.0.0.1", port))
    sub.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sub.sendall(
        _request_bytes(
            port,
            "SubscribeToShard",
            {"ConsumerARN": consumer, "ShardId": "shardId-000000000000", "StartingPosition": {"Type": "LATEST"}},
        )
    )
    head, rest = _read_headers(sub)
    if not head.startswith("HTTP/1.1 200") or "chunked" not in head.lower():
        raise RuntimeError("SubscribeToShard: unexpected response head:\n" + head)
    reader = ChunkedReader()
    reader.feed(rest)
    # Wait for the initial-response event.
    while b"initial-response" not in reader.body:
        reader.feed(sub.recv(65536))
    reader.body.clear()

    put = socket.create_connection(("127.0.0.1", port))
    put.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    events, puts = [], []
    for i in range(samples + 100):  # the first 100 warm up
        data = ("evt-%010d" % i).encode().ljust(48, b".")
        marker = base64.b64encode(data)
        req = _request_bytes(port, "PutRecord", {"StreamName": stream, "PartitionKey": "k", "Data": marker.decode()})
        put_buf = b""
        put_done = event_done = None
        t0 = time.perf_counter_ns()
        put.sendall(req)
        while put_done is None or event_done is None:
            want = ([put] if put_done is None else []) + ([sub] if event_done is None else [])
            ready, _, _ = select.select(want, [], [], 5.0)
            if not ready:
                raise RuntimeError("no event or put response in 5 s (sample %d)" % i)
            for s in ready:
                chunk = s.recv(65536)
                now = time.perf_counter_ns()
                if not chunk:
                    raise EOFError("connection closed")
                if s is sub:
                    reader.feed(chunk)
                    if marker in reader.body:
                        event_done = now
                        reader.body.clear()
                else:
                    put_buf += chunk
                    if b"\r\n\r\n" in put_buf:
                        head, body = put_buf.split(b"\r\n\r\n", 1)
                        length = int(next(line.split(b":")[1] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")))
                        if len(body) >= length:
                            if not head.startswith(b"HTTP/1.1 200"):
                                raise RuntimeError("PutRecord failed: %r" % put_buf[:300])
                            put_done = now
        if i >= 100:
            events.append((event_done - t0) / 1000.0)
            puts.append((put_done - t0) / 1000.0)
        if gap_us:
            end = time.perf_counter_ns() + gap_us * 1000
            time.sleep(gap_us / 1e6 * 0.8)
            while time.perf_counter_ns() < end:
                pass
    put.close()
    sub.close()
    client.delete_stream(stream)

    def pct(v, p):
        v = sorted(v)
        return v[min(len(v) - 1, int(p / 100.0 * len(v)))]

    return {
        "samples": samples,
        "event_p50_us": statistics.median(events),
        "event_p99_us": pct(events, 99),
        "put_p50_us": statistics.median(puts),
        "put_p99_us": pct(puts, 99),
        "cpu": {"foreign": 0.0},
    }


if __name__ == "__main__":
    port = int(sys.argv[1])
    c = kh.Client(port)
    print(json.dumps(measure(port, c, stream="sub-standalone"), indent=1))
