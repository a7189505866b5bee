"""Differential check: one scripted sequence against kinlet-gateway and kinesalite, same boto3 client.

Both servers run side by side (each on its own loopback port). The script (SCRIPT below) uses only
operations and members kinesalite 3.3.3 implements, with stream names (Debian's boto3 has no
StreamARN). Every response is normalised, then compared field by field:
  * records' sequence numbers -> "SEQ<n>", numbered in order of first appearance (so the same
    record keeps the same token across put and get), shard range bounds -> "BOUND" (presence
    only), shard iterators -> "ITER", NextToken -> "TOKEN",
    datetimes -> "TIME", MillisBehindLatest -> "MILLIS", ResponseMetadata dropped except the status;
  * errors become {"Error": code, "Message": text, "Status": http status}.
The differences kept are listed in ALLOWED (each with its reason) and in DIFFERENCES.md; any other
difference fails the test and is printed as `step: path: gateway-value != kinesalite-value`.
In a kinesalite-only run (run.py --kinesalite) it compares kinesalite with a second kinesalite,
which checks the script and the normaliser.
"""

import datetime
import fnmatch
import os
import unittest

from botocore.exceptions import ClientError

import harness
from common import MAX_HASH_KEY

# (step glob, path glob) -> why the difference is kept. Paths: ".Key[index].Key"; "+.Key" marks a
# member only the gateway sends, "-.Key" one only kinesalite sends. Mirrored in DIFFERENCES.md.
ALLOWED = {
    ("describe_stream*", "+.StreamDescription.StreamModeDetails"): (
        "kinesalite predates on-demand streams (2021): no StreamModeDetails; AWS sends it"
    ),
    ("describe_stream_summary*", "+.StreamDescriptionSummary.StreamModeDetails"): (
        "kinesalite predates on-demand streams (2021)"
    ),
    ("describe_stream_summary*", "+.StreamDescriptionSummary.ConsumerCount"): (
        "kinesalite has no consumers; AWS sends ConsumerCount"
    ),
    ("get_records*", "+.ChildShards"): (
        "kinesalite predates ChildShards (2020 model): AWS sends them when a closed shard is drained"
    ),
}


def _normaliser():
    seqs = {}

    def norm(value, key=""):
        if isinstance(value, dict):
            return {k: norm(v, k) for k, v in sorted(value.items()) if k != "ResponseMetadata"}
        if isinstance(value, list):
            return [norm(v, key) for v in value]
        if isinstance(value, datetime.datetime):
            return "TIME"
        if isinstance(value, bytes):
            return value.decode("latin-1")
        if key in ("SequenceNumber", "ContinuationSequenceNumber"):
            return seqs.setdefault(value, "SEQ%d" % len(seqs))
        if key in ("StartingSequenceNumber", "EndingSequenceNumber"):
            # Shard bounds: only their presence is compared (see DIFFERENCES.md).
            return "BOUND"
        if key in ("ShardIterator", "NextShardIterator"):
            return "ITER"
        if key == "NextToken":
            return "TOKEN"
        if key == "MillisBehindLatest":
            return "MILLIS"
        return value

    return norm


class Recorder:
    """Runs one step at a time against one server and keeps the normalised outcomes."""

    def __init__(self, endpoint):
        self.kinesis = harness.boto3_client(endpoint, retries=1)
        self.norm = _normaliser()
        self.outcomes = []  # [(label, normalised outcome)]
        self.raw = {}

    def call(self, label, op, **kwargs):
        try:
            resp = getattr(self.kinesis, op)(**kwargs)
            status = resp["ResponseMetadata"]["HTTPStatusCode"]
            out = dict(resp)
            out["Status"] = status
        except ClientError as e:
            resp = None
            out = {
                "Error": e.response["Error"].get("Code"),
                "Message": e.response["Error"].get("Message"),
                "Status": e.response["ResponseMetadata"]["HTTPStatusCode"],
            }
        self.raw[label] = resp
        self.outcomes.append((label, self.norm(out)))
        return resp


    def drain(self, label, iterator):
        """Reads a closed shard to its end; records all its records and the last page's members.

        How many pages that takes is not compared: the gateway ends the shard (no
        NextShardIterator) on the page that returns its last records, kinesalite one empty page
        later; AWS allows both.
        """
        records, last = [], None
        for _ in range(20):
            page = self.kinesis.get_records(ShardIterator=iterator)
            records += page["Records"]
            last = page
            iterator = page.get("NextShardIterator")
            if iterator is None:
                break
        out = {k: v for k, v in last.items() if k not in ("Records", "ResponseMetadata")}
        out["Records"] = records
        self.outcomes.append((label, self.norm(out)))


def script(r, name):
    """The scripted sequence; `r` is a Recorder, `name` the stream name (same on both servers)."""
    iter_args = dict(StreamName=name)
    r.call("create_stream", "create_stream", StreamName=name, ShardCount=2)
    r.kinesis.get_waiter("stream_exists").wait(StreamName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    r.call("create_stream duplicate", "create_stream", StreamName=name, ShardCount=2)
    r.call("describe_stream", "describe_stream", StreamName=name)
    r.call("describe_stream_summary", "describe_stream_summary", StreamName=name)
    r.call("list_shards", "list_shards", StreamName=name)
    r.call("list_streams", "list_streams", ExclusiveStartStreamName=name[:-1], Limit=1)

    # Writes: explicit hash keys at both ends and in the middle, and MD5-hashed partition keys.
    for i, key in enumerate(["0", str(MAX_HASH_KEY), str(2**127 - 1), str(2**127)]):
        r.call("put_record explicit %d" % i, "put_record", StreamName=name, Data=b"e%d" % i, PartitionKey="p", ExplicitHashKey=key)
    for pk in ["alpha", "beta", "gamma", "user123"]:
        r.call("put_record pk %s" % pk, "put_record", StreamName=name, Data=pk.encode(), PartitionKey=pk)
    r.call(
        "put_records",
        "put_records",
        StreamName=name,
        Records=[{"Data": b"\x00\x01\xff%d" % i, "PartitionKey": "k%d" % i} for i in range(6)]
        + [{"Data": b"hk", "PartitionKey": "x", "ExplicitHashKey": str(MAX_HASH_KEY)}],
    )
    first = r.raw["put_record explicit 0"]["SequenceNumber"]

    # Reads: each iterator type, Limit paging.
    for shard in ("shardId-000000000000", "shardId-000000000001"):
        it = r.call("get_shard_iterator TRIM_HORIZON %s" % shard, "get_shard_iterator", ShardId=shard, ShardIteratorType="TRIM_HORIZON", **iter_args)
        page = r.call("get_records all %s" % shard, "get_records", ShardIterator=it["ShardIterator"])
        page = r.call("get_records limit 2 %s" % shard, "get_records", ShardIterator=it["ShardIterator"], Limit=2)
        r.call("get_records next %s" % shard, "get_records", ShardIterator=page["NextShardIterator"], Limit=2)
    it = r.call("get_shard_iterator AT_SEQUENCE_NUMBER", "get_shard_iterator", ShardId="shardId-000000000000", ShardIteratorType="AT_SEQUENCE_NUMBER", StartingSequenceNumber=first, **iter_args)
    r.call("get_records AT_SEQUENCE_NUMBER", "get_records", ShardIterator=it["ShardIterator"])
    it = r.call("get_shard_iterator AFTER_SEQUENCE_NUMBER", "get_shard_iterator", ShardId="shardId-000000000000", ShardIteratorType="AFTER_SEQUENCE_NUMBER", StartingSequenceNumber=first, **iter_args)
    r.call("get_records AFTER_SEQUENCE_NUMBER", "get_records", ShardIterator=it["ShardIterator"])
    past = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(minutes=5)
    it = r.call("get_shard_iterator AT_TIMESTAMP", "get_shard_iterator", ShardId="shardId-000000000001", ShardIteratorType="AT_TIMESTAMP", Timestamp=past, **iter_args)
    r.call("get_records AT_TIMESTAMP", "get_records", ShardIterator=it["ShardIterator"])
    it = r.call("get_shard_iterator LATEST", "get_shard_iterator", ShardId="shardId-000000000001", ShardIteratorType="LATEST", **iter_args)
    r.call("get_records LATEST empty", "get_records", ShardIterator=it["ShardIterator"])
    r.call("put_record after LATEST", "put_record", StreamName=name, Data=b"late", PartitionKey="p", ExplicitHashKey=str(MAX_HASH_KEY))
    r.call("get_records LATEST", "get_records", ShardIterator=it["ShardIterator"])

    # Resharding.
    r.call("split_shard", "split_shard", StreamName=name, ShardToSplit="shardId-000000000000", NewStartingHashKey=str(2**126))
    r.kinesis.get_waiter("stream_exists").wait(StreamName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    r.call("describe_stream after split", "describe_stream", StreamName=name)
    r.call("list_shards after-split", "list_shards", StreamName=name)
    r.call("put_record after split", "put_record", StreamName=name, Data=b"child", PartitionKey="p", ExplicitHashKey="1")
    it = r.call("get_shard_iterator closed parent", "get_shard_iterator", ShardId="shardId-000000000000", ShardIteratorType="TRIM_HORIZON", **iter_args)
    r.drain("get_records closed parent", it["ShardIterator"])
    r.call("merge_shards", "merge_shards", StreamName=name, ShardToMerge="shardId-000000000002", AdjacentShardToMerge="shardId-000000000003")
    r.kinesis.get_waiter("stream_exists").wait(StreamName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    r.call("describe_stream after merge", "describe_stream", StreamName=name)
    r.call("put_record after merge", "put_record", StreamName=name, Data=b"merged", PartitionKey="p", ExplicitHashKey="1")

    # Retention and tags.
    r.call("increase_stream_retention_period", "increase_stream_retention_period", StreamName=name, RetentionPeriodHours=48)
    r.call("describe_stream_summary retention", "describe_stream_summary", StreamName=name)
    r.call("decrease_stream_retention_period", "decrease_stream_retention_period", StreamName=name, RetentionPeriodHours=24)
    r.call("add_tags_to_stream", "add_tags_to_stream", StreamName=name, Tags={"b": "2", "a": "1", "c": "3"})
    r.call("list_tags_for_stream", "list_tags_for_stream", StreamName=name)
    r.call("list_tags_for_stream limit", "list_tags_for_stream", StreamName=name, Limit=2)
    r.call("list_tags_for_stream start", "list_tags_for_stream", StreamName=name, ExclusiveStartTagKey="a")
    r.call("remove_tags_from_stream", "remove_tags_from_stream", StreamName=name, TagKeys=["a"])
    r.call("list_tags_for_stream after remove", "list_tags_for_stream", StreamName=name)

    # Error cases clients branch on.
    missing = name + "-missing"
    r.call("error describe missing", "describe_stream", StreamName=missing)
    r.call("error put missing", "put_record", StreamName=missing, Data=b"x", PartitionKey="p")
    r.call("error iterator bad shard", "get_shard_iterator", ShardId="shardId-000000000099", ShardIteratorType="TRIM_HORIZON", **iter_args)
    r.call("error AT_SEQUENCE_NUMBER without number", "get_shard_iterator", ShardId="shardId-000000000001", ShardIteratorType="AT_SEQUENCE_NUMBER", **iter_args)
    r.call("error hash key too large", "put_record", StreamName=name, Data=b"x", PartitionKey="p", ExplicitHashKey=str(2**128))
    r.call("error split at shard start", "split_shard", StreamName=name, ShardToSplit="shardId-000000000001", NewStartingHashKey=str(2**127))
    r.call("error merge not adjacent", "merge_shards", StreamName=name, ShardToMerge="shardId-000000000001", AdjacentShardToMerge="shardId-000000000001")
    r.call("error retention below 24", "decrease_stream_retention_period", StreamName=name, RetentionPeriodHours=12)
    r.call("error retention increase to lower", "increase_stream_retention_period", StreamName=name, RetentionPeriodHours=1)

    r.call("delete_stream", "delete_stream", StreamName=name)
    r.kinesis.get_waiter("stream_not_exists").wait(StreamName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    r.call("describe after delete", "describe_stream", StreamName=name)


def diff(a, b, path=""):
    """Yields (path, a-value, b-value) for every difference; '+'/'-' prefix members only in a/b."""
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b)):
            if k not in b:
                yield ("+" + path + "." + k, a[k], None)
            elif k not in a:
                yield ("-" + path + "." + k, None, b[k])
            else:
                yield from diff(a[k], b[k], path + "." + k)
    elif isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            yield (path + ".length", len(a), len(b))
        for i, (x, y) in enumerate(zip(a, b)):
            yield from diff(x, y, "%s[%d]" % (path, i))
    elif a != b:
        yield (path, a, b)


def allowed(label, path):
    for (step_glob, path_glob), reason in ALLOWED.items():
        if fnmatch.fnmatchcase(label, step_glob) and fnmatch.fnmatchcase(path, path_glob):
            return reason
    return None


class Differential(unittest.TestCase):
    def test_same_script_same_answers(self):
        ensure = harness.target()
        first_kind = "gateway" if ensure == "gateway" else "kinesalite"
        name = "diff-%d" % os.getpid()
        results = {}
        for side, kind in (("gateway", first_kind), ("kinesalite", "kinesalite")):
            server = harness.start(kind, gateway_args=("--limits", "unlimited"))
            try:
                rec = Recorder(server.endpoint)
                script(rec, name)
                results[side] = rec.outcomes
            finally:
                server.stop()
            server.check_clean_exit()
        a, b = results["gateway"], results["kinesalite"]
        self.assertEqual([l for l, _ in a], [l for l, _ in b], "the two runs took different steps")
        failures, kept = [], []
        for (label, x), (_, y) in zip(a, b):
            for path, xv, yv in diff(x, y):
                reason = allowed(label, path)
                line = "%s: %s: %r != %r" % (label, path, xv, yv)
                (kept if reason else failures).append(line + ("  [kept: %s]" % reason if reason else ""))
        for line in kept:
            print("kept  " + line)
        for line in failures:
            print("DIFF  " + line)
        print("%d steps compared, %d differences kept, %d not allowed" % (len(a), len(kept), len(failures)))
        self.assertEqual(failures, [], "\n".join(failures))


if __name__ == "__main__":
    unittest.main()
