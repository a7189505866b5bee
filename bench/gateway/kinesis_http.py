"""A minimal Kinesis JSON 1.1 client over one keep-alive HTTP/1.1 connection (bench setup only).

Requests carry a well-formed SigV4 Authorization header with a dummy signature and a current
X-Amz-Date: kinlet-gateway without --credentials and kinesalite accept any well-formed signature.
"""

import base64
import datetime
import hashlib
import http.client
import json
import time

REGION = "us-east-1"


def amz_date():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")


def headers(target, date=None):
    date = date or amz_date()
    return {
        "Content-Type": "application/x-amz-json-1.1",
        "X-Amz-Target": "Kinesis_20131202." + target,
        "X-Amz-Date": date,
        "Authorization": "AWS4-HMAC-SHA256 Credential=AKIDKINLETBENCH00000/%s/%s/kinesis/aws4_request, "
        "SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature=%s" % (date[:8], REGION, "0" * 64),
    }


class Client:
    def __init__(self, port):
        self.port = port
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

    def call(self, target, body, ok=True):
        data = json.dumps(body).encode()
        try:
            self.conn.request("POST", "/", body=data, headers=headers(target))
            resp = self.conn.getresponse()
        except (ConnectionError, http.client.HTTPException):
            # The server closed the idle keep-alive connection: once more on a new one.
            self.conn.close()
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
            self.conn.request("POST", "/", body=data, headers=headers(target))
            resp = self.conn.getresponse()
        text = resp.read()
        out = json.loads(text) if text else {}
        if ok and resp.status != 200:
            raise RuntimeError("%s -> %d %s" % (target, resp.status, text[:300]))
        return resp.status, out

    def wait_active(self, stream):
        for _ in range(600):
            _, d = self.call("DescribeStreamSummary", {"StreamName": stream})
            if d["StreamDescriptionSummary"]["StreamStatus"] == "ACTIVE":
                return d["StreamDescriptionSummary"]
            time.sleep(0.01)
        raise RuntimeError("stream %s not ACTIVE" % stream)

    def create_stream(self, stream, shards):
        self.call("CreateStream", {"StreamName": stream, "ShardCount": shards})
        return self.wait_active(stream)

    def delete_stream(self, stream):
        self.call("DeleteStream", {"StreamName": stream}, ok=False)

    def close(self):
        self.conn.close()


def keys_one_per_shard(shards):
    """Partition keys, one landing in each of `shards` evenly split shards (MD5 placement, as Kinesis)."""
    found = {}
    i = 0
    while len(found) < shards:
        key = "pk%d" % i
        h = int.from_bytes(hashlib.md5(key.encode()).digest(), "big")
        found.setdefault(h * shards >> 128, key)
        i += 1
    return [found[s] for s in range(shards)]


def b64(data):
    return base64.b64encode(data).decode()
