"""boto3 (Debian's python3-boto3 1.26.27 / botocore 1.29.27) against the server, over HTTP/1.1.

That botocore has no StreamARN input member on most operations and no StreamSummaries: streams are
named; the operations whose only identifier is an ARN (consumers, UpdateStreamMode) take the ARN.
"""

import datetime
import re
import time
import unittest

import botocore
from botocore.exceptions import ClientError, WaiterError

import harness
from common import MAX_HASH_KEY, ServerTestCase, gateway_only, stream_arn, unique, wait_until


class Boto3Case(ServerTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.kinesis = harness.boto3_client(cls.endpoint, verify=cls.server.ca_file)

    def create(self, shards=1, prefix="b3", **kw):
        name = unique(prefix)
        self.kinesis.create_stream(StreamName=name, ShardCount=shards, **kw)
        self.kinesis.get_waiter("stream_exists").wait(
            StreamName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 20}
        )
        return name

    def assertError(self, code, fn, **kwargs):
        with self.assertRaises(ClientError) as caught:
            fn(**kwargs)
        err = caught.exception.response
        self.assertEqual(err["Error"]["Code"], code, err)
        self.assertEqual(err["ResponseMetadata"]["HTTPStatusCode"], 400, err)
        self.assertTrue(err["Error"].get("Message"), err)
        return err

    def shard_ids(self, name):
        return [s["ShardId"] for s in self.kinesis.list_shards(StreamName=name)["Shards"]]

    def read_all(self, name, shard_id, iterator_type="TRIM_HORIZON", **kw):
        it = self.kinesis.get_shard_iterator(
            StreamName=name, ShardId=shard_id, ShardIteratorType=iterator_type, **kw
        )["ShardIterator"]
        out = []
        for _ in range(20):
            page = self.kinesis.get_records(ShardIterator=it, Limit=1000)
            out += page["Records"]
            it = page.get("NextShardIterator")
            if not page["Records"] or it is None:
                break
        return out


class ControlPlane(Boto3Case):
    def test_create_describe_summary_delete(self):
        name = self.create(shards=2)
        desc = self.kinesis.describe_stream(StreamName=name)["StreamDescription"]
        self.assertEqual(desc["StreamName"], name)
        self.assertEqual(desc["StreamARN"], stream_arn(name))
        self.assertEqual(desc["StreamStatus"], "ACTIVE")
        self.assertEqual(desc["RetentionPeriodHours"], 24)
        self.assertFalse(desc["HasMoreShards"])
        self.assertIsInstance(desc["StreamCreationTimestamp"], datetime.datetime)
        self.assertIn("EnhancedMonitoring", desc)
        shards = desc["Shards"]
        self.assertEqual([s["ShardId"] for s in shards], ["shardId-000000000000", "shardId-000000000001"])
        self.assertEqual(shards[0]["HashKeyRange"]["StartingHashKey"], "0")
        self.assertEqual(shards[1]["HashKeyRange"]["EndingHashKey"], str(MAX_HASH_KEY))
        self.assertEqual(
            int(shards[0]["HashKeyRange"]["EndingHashKey"]) + 1,
            int(shards[1]["HashKeyRange"]["StartingHashKey"]),
        )
        for s in shards:
            self.assertRegex(s["SequenceNumberRange"]["StartingSequenceNumber"], r"^(0|[1-9]\d{0,128})$")
            self.assertNotIn("EndingSequenceNumber", s["SequenceNumberRange"])

        summary = self.kinesis.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]
        self.assertEqual(summary["StreamName"], name)
        self.assertEqual(summary["StreamARN"], stream_arn(name))
        self.assertEqual(summary["OpenShardCount"], 2)
        self.assertEqual(summary["StreamStatus"], "ACTIVE")
        self.assertEqual(summary["RetentionPeriodHours"], 24)

        self.kinesis.delete_stream(StreamName=name, EnforceConsumerDeletion=True)
        self.kinesis.get_waiter("stream_not_exists").wait(
            StreamName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 20}
        )
        self.assertError("ResourceNotFoundException", self.kinesis.describe_stream, StreamName=name)

    def test_stream_exists_waiter_and_duplicate_create(self):
        name = unique("wait")
        self.kinesis.create_stream(StreamName=name, ShardCount=1)
        if self.server.kind == "gateway":
            # With the default (0 ms) create delay the stream is ACTIVE at once, so the waiter's
            # first poll succeeds and it never sleeps its 10 s (AWS's waiter model).
            status = self.kinesis.describe_stream(StreamName=name)["StreamDescription"]["StreamStatus"]
            self.assertEqual(status, "ACTIVE")
            self.kinesis.get_waiter("stream_exists").wait(StreamName=name)
        else:  # kinesalite answers CREATING first even with --createStreamMs 0
            self.kinesis.get_waiter("stream_exists").wait(StreamName=name, WaiterConfig={"Delay": 1})
        self.assertError("ResourceInUseException", self.kinesis.create_stream, StreamName=name, ShardCount=1)
        with self.assertRaises(WaiterError):
            self.kinesis.get_waiter("stream_exists").wait(
                StreamName=unique("never"), WaiterConfig={"Delay": 1, "MaxAttempts": 2}
            )

    @gateway_only("no on-demand streams, no UpdateStreamMode")
    def test_on_demand_and_update_stream_mode(self):
        name = unique("od")
        self.kinesis.create_stream(StreamName=name, StreamModeDetails={"StreamMode": "ON_DEMAND"})
        self.kinesis.get_waiter("stream_exists").wait(StreamName=name, WaiterConfig={"Delay": 1})
        summary = self.kinesis.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]
        self.assertEqual(summary["StreamModeDetails"], {"StreamMode": "ON_DEMAND"})
        self.assertGreaterEqual(summary["OpenShardCount"], 1)
        self.kinesis.update_stream_mode(
            StreamARN=stream_arn(name), StreamModeDetails={"StreamMode": "PROVISIONED"}
        )
        wait_until(
            lambda: self.kinesis.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"][
                "StreamStatus"
            ]
            == "ACTIVE",
            what="ACTIVE after UpdateStreamMode",
        )
        summary = self.kinesis.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]
        self.assertEqual(summary["StreamModeDetails"], {"StreamMode": "PROVISIONED"})

    @gateway_only("ListShards ignores MaxResults (one page)")
    def test_list_shards_paginator(self):
        name = self.create(shards=5)
        pages = list(self.kinesis.get_paginator("list_shards").paginate(StreamName=name))
        self.assertEqual([s["ShardId"] for p in pages for s in p["Shards"]], ["shardId-%012d" % i for i in range(5)])
        # As on AWS, a second page fails: botocore's paginator sends StreamName again beside
        # NextToken, which ListShards refuses (boto/botocore#2009, aws/aws-cli#9635).
        with self.assertRaises(ClientError) as caught:
            list(
                self.kinesis.get_paginator("list_shards").paginate(
                    StreamName=name, PaginationConfig={"PageSize": 2}
                )
            )
        self.assertEqual(caught.exception.response["Error"]["Code"], "InvalidArgumentException")
        self.assertEqual(
            caught.exception.response["Error"]["Message"], "NextToken and StreamName cannot be provided together."
        )
        # What works on AWS: follow NextToken alone.
        ids, page = [], self.kinesis.list_shards(StreamName=name, MaxResults=2)
        ids += [s["ShardId"] for s in page["Shards"]]
        while "NextToken" in page:
            page = self.kinesis.list_shards(NextToken=page["NextToken"], MaxResults=2)
            self.assertLessEqual(len(page["Shards"]), 2)
            ids += [s["ShardId"] for s in page["Shards"]]
        self.assertEqual(ids, ["shardId-%012d" % i for i in range(5)])

    @gateway_only("DescribeStream ignores Limit (one page)")
    def test_describe_stream_paginator(self):
        name = self.create(shards=5)
        pages = list(
            self.kinesis.get_paginator("describe_stream").paginate(
                StreamName=name, PaginationConfig={"PageSize": 2}
            )
        )
        self.assertEqual(len(pages), 3)
        self.assertEqual([p["StreamDescription"]["HasMoreShards"] for p in pages], [True, True, False])
        ids = [s["ShardId"] for p in pages for s in p["StreamDescription"]["Shards"]]
        self.assertEqual(ids, ["shardId-%012d" % i for i in range(5)])

    def test_list_streams_paginator(self):
        name = self.create()
        names = sorted(self.create(prefix="lst") for _ in range(3))
        pages = list(
            self.kinesis.get_paginator("list_streams").paginate(PaginationConfig={"PageSize": 2})
        )
        listed = [n for p in pages for n in p["StreamNames"]]
        self.assertEqual(listed, sorted(listed))
        self.assertEqual(len(listed), len(set(listed)))
        for n in names + [name]:
            self.assertIn(n, listed)
        self.assertTrue(all(len(p["StreamNames"]) <= 2 for p in pages))
        self.assertFalse(pages[-1]["HasMoreStreams"])

        page = self.kinesis.list_streams(Limit=1, ExclusiveStartStreamName=names[0])
        self.assertGreater(page["StreamNames"][0], names[0])

    def test_retention(self):
        name = self.create()
        self.kinesis.increase_stream_retention_period(StreamName=name, RetentionPeriodHours=48)
        desc = self.kinesis.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]
        self.assertEqual(desc["RetentionPeriodHours"], 48)
        self.assertError(
            "InvalidArgumentException",
            self.kinesis.increase_stream_retention_period,
            StreamName=name,
            RetentionPeriodHours=30,
        )
        self.kinesis.decrease_stream_retention_period(StreamName=name, RetentionPeriodHours=24)
        desc = self.kinesis.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]
        self.assertEqual(desc["RetentionPeriodHours"], 24)
        self.assertError(
            "InvalidArgumentException",
            self.kinesis.decrease_stream_retention_period,
            StreamName=name,
            RetentionPeriodHours=12,
        )

    def test_tags(self):
        name = self.create()
        self.kinesis.add_tags_to_stream(StreamName=name, Tags={"b": "2", "a": "1", "c": ""})
        tags = self.kinesis.list_tags_for_stream(StreamName=name)
        self.assertEqual(tags["Tags"], [{"Key": "a", "Value": "1"}, {"Key": "b", "Value": "2"}, {"Key": "c", "Value": ""}])
        self.assertFalse(tags["HasMoreTags"])
        page = self.kinesis.list_tags_for_stream(StreamName=name, Limit=1)
        self.assertEqual(page["Tags"], [{"Key": "a", "Value": "1"}])
        self.assertTrue(page["HasMoreTags"])
        page = self.kinesis.list_tags_for_stream(StreamName=name, ExclusiveStartTagKey="a")
        self.assertEqual([t["Key"] for t in page["Tags"]], ["b", "c"])
        self.kinesis.remove_tags_from_stream(StreamName=name, TagKeys=["a", "c"])
        self.assertEqual(
            self.kinesis.list_tags_for_stream(StreamName=name)["Tags"], [{"Key": "b", "Value": "2"}]
        )

    @gateway_only("no DescribeLimits")
    def test_describe_limits(self):
        limits = self.kinesis.describe_limits()
        for key in ("ShardLimit", "OpenShardCount", "OnDemandStreamCount", "OnDemandStreamCountLimit"):
            self.assertIsInstance(limits[key], int, key)

    @gateway_only("no Enable/DisableEnhancedMonitoring")
    def test_enhanced_monitoring(self):
        name = self.create()
        out = self.kinesis.enable_enhanced_monitoring(
            StreamName=name, ShardLevelMetrics=["IncomingBytes", "OutgoingRecords"]
        )
        self.assertEqual(out["StreamName"], name)
        self.assertEqual(out["CurrentShardLevelMetrics"], [])
        self.assertEqual(sorted(out["DesiredShardLevelMetrics"]), ["IncomingBytes", "OutgoingRecords"])
        desc = self.kinesis.describe_stream(StreamName=name)["StreamDescription"]
        self.assertEqual(
            sorted(desc["EnhancedMonitoring"][0]["ShardLevelMetrics"]), ["IncomingBytes", "OutgoingRecords"]
        )
        out = self.kinesis.disable_enhanced_monitoring(StreamName=name, ShardLevelMetrics=["ALL"])
        self.assertEqual(out["DesiredShardLevelMetrics"], [])

    @gateway_only("no StartStreamEncryption/StopStreamEncryption")
    def test_stream_encryption_state(self):
        name = self.create()
        self.kinesis.start_stream_encryption(
            StreamName=name, EncryptionType="KMS", KeyId="alias/aws/kinesis"
        )
        wait_until(
            lambda: self.kinesis.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"][
                "StreamStatus"
            ]
            == "ACTIVE",
            what="ACTIVE after StartStreamEncryption",
        )
        desc = self.kinesis.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]
        self.assertEqual(desc["EncryptionType"], "KMS")
        self.assertEqual(desc["KeyId"], "alias/aws/kinesis")
        put = self.kinesis.put_record(StreamName=name, Data=b"x", PartitionKey="k")
        self.assertEqual(put["EncryptionType"], "KMS")
        self.kinesis.stop_stream_encryption(StreamName=name, EncryptionType="KMS", KeyId="alias/aws/kinesis")
        wait_until(
            lambda: self.kinesis.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"].get(
                "EncryptionType"
            )
            == "NONE",
            what="EncryptionType NONE after StopStreamEncryption",
        )


class DataPlane(Boto3Case):
    def test_put_record_get_records_roundtrip(self):
        name = self.create()
        payload = bytes(range(256)) + b"\xff\x00 kinlet"
        before = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(seconds=5)
        put = self.kinesis.put_record(StreamName=name, Data=payload, PartitionKey="pk-1")
        self.assertEqual(put["ShardId"], "shardId-000000000000")
        self.assertRegex(put["SequenceNumber"], r"^[1-9]\d{0,128}$")
        records = self.read_all(name, "shardId-000000000000")
        self.assertEqual(len(records), 1)
        rec = records[0]
        self.assertEqual(rec["Data"], payload)
        self.assertEqual(rec["PartitionKey"], "pk-1")
        self.assertEqual(rec["SequenceNumber"], put["SequenceNumber"])
        self.assertGreater(rec["ApproximateArrivalTimestamp"], before)
        page = self.kinesis.get_records(
            ShardIterator=self.kinesis.get_shard_iterator(
                StreamName=name, ShardId="shardId-000000000000", ShardIteratorType="LATEST"
            )["ShardIterator"]
        )
        self.assertEqual(page["Records"], [])
        self.assertIn("NextShardIterator", page)
        self.assertEqual(page["MillisBehindLatest"], 0)

    def test_partition_keys_route_by_md5(self):
        # AWS maps a partition key to the hash key MD5(key) read as a big-endian 128-bit integer.
        import hashlib

        name = self.create(shards=4)
        shards = self.kinesis.list_shards(StreamName=name)["Shards"]
        for key in ["alpha", "beta", "gamma", "user123", "k0", "k1", "k2", "k3", "k4", "k5"]:
            hash_key = int.from_bytes(hashlib.md5(key.encode()).digest(), "big")
            want = [
                s["ShardId"]
                for s in shards
                if int(s["HashKeyRange"]["StartingHashKey"]) <= hash_key <= int(s["HashKeyRange"]["EndingHashKey"])
            ]
            got = self.kinesis.put_record(StreamName=name, Data=b"x", PartitionKey=key)["ShardId"]
            self.assertEqual([got], want, "partition key %r (MD5 %032x)" % (key, hash_key))

    def test_put_records_explicit_hash_keys_and_order(self):
        name = self.create(shards=2)
        entries = [
            {"Data": b"r%d" % i, "PartitionKey": "p%d" % i, "ExplicitHashKey": str(0 if i % 2 == 0 else MAX_HASH_KEY)}
            for i in range(10)
        ]
        out = self.kinesis.put_records(StreamName=name, Records=entries)
        self.assertEqual(out["FailedRecordCount"], 0)
        self.assertEqual(len(out["Records"]), 10)
        for i, r in enumerate(out["Records"]):
            self.assertEqual(r["ShardId"], "shardId-00000000000%d" % (i % 2))
        seqs0 = [r["SequenceNumber"] for r in out["Records"][0::2]]
        self.assertEqual(seqs0, sorted(seqs0, key=int))
        got = self.read_all(name, "shardId-000000000000")
        self.assertEqual([r["Data"] for r in got], [b"r0", b"r2", b"r4", b"r6", b"r8"])
        got = self.read_all(name, "shardId-000000000001")
        self.assertEqual([r["PartitionKey"] for r in got], ["p1", "p3", "p5", "p7", "p9"])

    def test_iterator_types(self):
        name = self.create()
        shard = "shardId-000000000000"
        seqs = [
            self.kinesis.put_record(StreamName=name, Data=b"%d" % i, PartitionKey="k")["SequenceNumber"]
            for i in range(4)
        ]
        at = self.read_all(name, shard, "AT_SEQUENCE_NUMBER", StartingSequenceNumber=seqs[1])
        self.assertEqual([r["Data"] for r in at], [b"1", b"2", b"3"])
        after = self.read_all(name, shard, "AFTER_SEQUENCE_NUMBER", StartingSequenceNumber=seqs[1])
        self.assertEqual([r["Data"] for r in after], [b"2", b"3"])
        past = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(minutes=10)
        ts = self.read_all(name, shard, "AT_TIMESTAMP", Timestamp=past)
        self.assertEqual(len(ts), 4)
        future = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(minutes=10)
        self.assertError(
            "InvalidArgumentException",
            self.kinesis.get_shard_iterator,
            StreamName=name,
            ShardId=shard,
            ShardIteratorType="AT_TIMESTAMP",
            Timestamp=future,
        )
        latest = self.kinesis.get_shard_iterator(StreamName=name, ShardId=shard, ShardIteratorType="LATEST")[
            "ShardIterator"
        ]
        self.kinesis.put_record(StreamName=name, Data=b"new", PartitionKey="k")
        page = self.kinesis.get_records(ShardIterator=latest)
        self.assertEqual([r["Data"] for r in page["Records"]], [b"new"])
        # GetRecords with Limit pages through the shard.
        it = self.kinesis.get_shard_iterator(StreamName=name, ShardId=shard, ShardIteratorType="TRIM_HORIZON")[
            "ShardIterator"
        ]
        first = self.kinesis.get_records(ShardIterator=it, Limit=2)
        self.assertEqual([r["Data"] for r in first["Records"]], [b"0", b"1"])
        second = self.kinesis.get_records(ShardIterator=first["NextShardIterator"], Limit=2)
        self.assertEqual([r["Data"] for r in second["Records"]], [b"2", b"3"])

    def test_split_merge_and_list_shards_filters(self):
        name = self.create()
        self.kinesis.put_record(StreamName=name, Data=b"before-split", PartitionKey="k")
        self.kinesis.split_shard(
            StreamName=name, ShardToSplit="shardId-000000000000", NewStartingHashKey=str(2**127)
        )
        wait_until(
            lambda: self.kinesis.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"][
                "StreamStatus"
            ]
            == "ACTIVE",
            what="ACTIVE after split",
        )
        shards = self.kinesis.list_shards(StreamName=name)["Shards"]
        self.assertEqual([s["ShardId"] for s in shards], ["shardId-000000000000", "shardId-000000000001", "shardId-000000000002"])
        self.assertIn("EndingSequenceNumber", shards[0]["SequenceNumberRange"])
        self.assertEqual(shards[1]["ParentShardId"], "shardId-000000000000")
        self.assertEqual(shards[1]["HashKeyRange"], {"StartingHashKey": "0", "EndingHashKey": str(2**127 - 1)})
        self.assertEqual(shards[2]["HashKeyRange"], {"StartingHashKey": str(2**127), "EndingHashKey": str(MAX_HASH_KEY)})
        # Splitting the closed parent again is refused (kinesalite accepts it: mhart/kinesalite#109).
        if self.server.kind == "gateway":
            self.assertError(
                "InvalidArgumentException",
                self.kinesis.split_shard,
                StreamName=name,
                ShardToSplit="shardId-000000000000",
                NewStartingHashKey=str(2**126),
            )

        if self.server.kind == "gateway":  # kinesalite ignores MaxResults and ExclusiveStartShardId
            page = self.kinesis.list_shards(StreamName=name, MaxResults=1)
            self.assertEqual([s["ShardId"] for s in page["Shards"]], ["shardId-000000000000"])
            page = self.kinesis.list_shards(NextToken=page["NextToken"], MaxResults=5)
            self.assertEqual(
                [s["ShardId"] for s in page["Shards"]], ["shardId-000000000001", "shardId-000000000002"]
            )
            self.assertNotIn("NextToken", page)
            page = self.kinesis.list_shards(StreamName=name, ExclusiveStartShardId="shardId-000000000001")
            self.assertEqual([s["ShardId"] for s in page["Shards"]], ["shardId-000000000002"])
            self.assertError(
                "InvalidArgumentException",
                self.kinesis.list_shards,
                StreamName=name,
                NextToken=self.kinesis.list_shards(StreamName=name, MaxResults=1)["NextToken"],
            )
        self.merge_and_filters(name)

    def merge_and_filters(self, name):
        if self.server.kind == "gateway":
            for ftype, want in (
                ("AT_LATEST", ["shardId-000000000001", "shardId-000000000002"]),
                ("AT_TRIM_HORIZON", ["shardId-000000000000"]),
                ("FROM_TRIM_HORIZON", ["shardId-000000000000", "shardId-000000000001", "shardId-000000000002"]),
            ):
                got = self.kinesis.list_shards(StreamName=name, ShardFilter={"Type": ftype})["Shards"]
                self.assertEqual([s["ShardId"] for s in got], want, ftype)
            got = self.kinesis.list_shards(
                StreamName=name, ShardFilter={"Type": "AFTER_SHARD_ID", "ShardId": "shardId-000000000000"}
            )["Shards"]
            self.assertEqual([s["ShardId"] for s in got], ["shardId-000000000001", "shardId-000000000002"])

            # The closed parent drains, then ends with ChildShards and no NextShardIterator.
            it = self.kinesis.get_shard_iterator(
                StreamName=name, ShardId="shardId-000000000000", ShardIteratorType="TRIM_HORIZON"
            )["ShardIterator"]
            seen, children = [], None
            for _ in range(10):
                page = self.kinesis.get_records(ShardIterator=it)
                seen += page["Records"]
                it = page.get("NextShardIterator")
                if it is None:
                    children = page.get("ChildShards")
                    break
            self.assertEqual([r["Data"] for r in seen], [b"before-split"])
            self.assertIsNone(it)
            self.assertEqual(
                sorted(c["ShardId"] for c in children), ["shardId-000000000001", "shardId-000000000002"]
            )
            self.assertEqual(children[0]["ParentShards"], ["shardId-000000000000"])

        self.kinesis.merge_shards(
            StreamName=name, ShardToMerge="shardId-000000000001", AdjacentShardToMerge="shardId-000000000002"
        )
        wait_until(
            lambda: self.kinesis.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"][
                "StreamStatus"
            ]
            == "ACTIVE",
            what="ACTIVE after merge",
        )
        shards = self.kinesis.describe_stream(StreamName=name)["StreamDescription"]["Shards"]
        merged = shards[-1]
        self.assertEqual(merged["ShardId"], "shardId-000000000003")
        self.assertEqual(merged["ParentShardId"], "shardId-000000000001")
        self.assertEqual(merged["AdjacentParentShardId"], "shardId-000000000002")
        self.assertEqual(merged["HashKeyRange"], {"StartingHashKey": "0", "EndingHashKey": str(MAX_HASH_KEY)})
        put = self.kinesis.put_record(StreamName=name, Data=b"after-merge", PartitionKey="k")
        self.assertEqual(put["ShardId"], "shardId-000000000003")

    @gateway_only("no UpdateShardCount")
    def test_update_shard_count(self):
        name = self.create(shards=1)
        out = self.kinesis.update_shard_count(StreamName=name, TargetShardCount=2, ScalingType="UNIFORM_SCALING")
        self.assertEqual(out["StreamName"], name)
        self.assertEqual(out["CurrentShardCount"], 1)
        self.assertEqual(out["TargetShardCount"], 2)
        wait_until(
            lambda: self.kinesis.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"][
                "OpenShardCount"
            ]
            == 2,
            what="2 open shards after UpdateShardCount",
        )
        open_shards = self.kinesis.list_shards(StreamName=name, ShardFilter={"Type": "AT_LATEST"})["Shards"]
        ranges = sorted((int(s["HashKeyRange"]["StartingHashKey"]), int(s["HashKeyRange"]["EndingHashKey"])) for s in open_shards)
        self.assertEqual(ranges[0][0], 0)
        self.assertEqual(ranges[-1][1], MAX_HASH_KEY)
        self.assertEqual(ranges[0][1] + 1, ranges[1][0])


class Errors(Boto3Case):
    def test_missing_authentication(self):
        unsigned = harness.boto3_client(self.endpoint, retries=1, signature_version=botocore.UNSIGNED)
        self.assertError("MissingAuthenticationTokenException", unsigned.list_streams)

    def test_error_codes(self):
        missing = unique("missing")
        self.assertError("ResourceNotFoundException", self.kinesis.describe_stream, StreamName=missing)
        self.assertError("ResourceNotFoundException", self.kinesis.put_record, StreamName=missing, Data=b"x", PartitionKey="k")
        name = self.create()
        self.assertError(
            "ResourceNotFoundException",
            self.kinesis.get_shard_iterator,
            StreamName=name,
            ShardId="shardId-000000000009",
            ShardIteratorType="TRIM_HORIZON",
        )
        self.assertError(
            "InvalidArgumentException",
            self.kinesis.put_record,
            StreamName=name,
            Data=b"x",
            PartitionKey="k",
            ExplicitHashKey=str(2**128),
        )
        self.assertError(
            "InvalidArgumentException",
            self.kinesis.get_shard_iterator,
            StreamName=name,
            ShardId="shardId-000000000000",
            ShardIteratorType="AT_SEQUENCE_NUMBER",
        )
        self.assertError(
            "InvalidArgumentException",
            self.kinesis.get_records,
            ShardIterator="not-an-iterator-" + "A" * 40,
        )
        self.assertError(
            "InvalidArgumentException",
            self.kinesis.split_shard,
            StreamName=name,
            ShardToSplit="shardId-000000000000",
            NewStartingHashKey="0",
        )
        self.assertError("ResourceInUseException", self.kinesis.create_stream, StreamName=name, ShardCount=1)

    @gateway_only("no consumers")
    def test_consumer_errors(self):
        name = self.create()
        arn = stream_arn(name)
        self.assertError(
            "ResourceNotFoundException", self.kinesis.describe_stream_consumer, StreamARN=arn, ConsumerName="nobody"
        )
        self.assertError(
            "ResourceNotFoundException",
            self.kinesis.register_stream_consumer,
            StreamARN=stream_arn(unique("missing")),
            ConsumerName="c",
        )
        self.kinesis.register_stream_consumer(StreamARN=arn, ConsumerName="dup")
        self.assertError("ResourceInUseException", self.kinesis.register_stream_consumer, StreamARN=arn, ConsumerName="dup")


class Signatures(Boto3Case):
    """--credentials: SigV4 verified exactly (boto3 signs over HTTP/1.1, no x-amz-content-sha256)."""

    gateway_args = ("--limits", "unlimited", "--credentials", "%s:%s" % (harness.ACCESS_KEY, harness.SECRET_KEY))

    @gateway_only("does not verify signatures")
    def test_verified_signatures(self):
        name = self.create()
        self.kinesis.put_record(StreamName=name, Data=b"signed", PartitionKey="k")
        self.assertEqual(len(self.read_all(name, "shardId-000000000000")), 1)
        wrong_secret = harness.boto3_client(self.endpoint, retries=1, secret_key="not-the-secret")
        self.assertError("InvalidSignatureException", wrong_secret.describe_stream, StreamName=name)
        unknown_key = harness.boto3_client(self.endpoint, retries=1, access_key="AKIDUNKNOWN000000000")
        self.assertError("UnrecognizedClientException", unknown_key.describe_stream, StreamName=name)
        unsigned = harness.boto3_client(self.endpoint, retries=1, signature_version=botocore.UNSIGNED)
        self.assertError("MissingAuthenticationTokenException", unsigned.describe_stream, StreamName=name)


class Tls(Boto3Case):
    """--tls-cert/--tls-key: boto3 over HTTPS (HTTP/1.1 by ALPN or without ALPN), certificate verified."""

    tls = True

    def test_https_roundtrip_and_subscription(self):
        self.assertTrue(self.endpoint.startswith("https://127.0.0.1:"))
        name = self.create()
        self.kinesis.put_record(StreamName=name, Data=b"over tls", PartitionKey="k")
        self.assertEqual([r["Data"] for r in self.read_all(name, "shardId-000000000000")], [b"over tls"])
        carn = self.kinesis.register_stream_consumer(StreamARN=stream_arn(name), ConsumerName="tls")["Consumer"][
            "ConsumerARN"
        ]
        wait_until(
            lambda: self.kinesis.describe_stream_consumer(ConsumerARN=carn)["ConsumerDescription"]["ConsumerStatus"]
            == "ACTIVE",
            what="consumer ACTIVE",
        )
        stream = self.kinesis.subscribe_to_shard(
            ConsumerARN=carn, ShardId="shardId-000000000000", StartingPosition={"Type": "TRIM_HORIZON"}
        )["EventStream"]
        try:
            for event in stream:
                records = event["SubscribeToShardEvent"]["Records"]
                if records:
                    self.assertEqual(records[0]["Data"], b"over tls")
                    break
        finally:
            stream.close()


class Throttling(Boto3Case):
    gateway_args = ("--limits", "kinesis")

    @gateway_only("no throughput limits")
    def test_provisioned_throughput_exceeded(self):
        name = self.create()
        no_retry = harness.boto3_client(self.endpoint, retries=1)
        blob = b"z" * (900 * 1024)
        codes = []
        for _ in range(4):  # 3.6 MB within a second or so on a 1 MiB/s shard
            try:
                no_retry.put_record(StreamName=name, Data=blob, PartitionKey="k")
                codes.append("ok")
            except ClientError as e:
                codes.append(e.response["Error"]["Code"])
                self.assertEqual(e.response["ResponseMetadata"]["HTTPStatusCode"], 400)
        self.assertEqual(codes[0], "ok")
        self.assertIn("ProvisionedThroughputExceededException", codes)
        # PutRecords reports throttled entries per record, not as an exception.
        time.sleep(1.1)
        out = no_retry.put_records(
            StreamName=name, Records=[{"Data": b"y" * (100 * 1024), "PartitionKey": "k"} for _ in range(30)]
        )
        self.assertGreater(out["FailedRecordCount"], 0)
        failed = [r for r in out["Records"] if "ErrorCode" in r]
        self.assertEqual(len(failed), out["FailedRecordCount"])
        self.assertEqual({r["ErrorCode"] for r in failed}, {"ProvisionedThroughputExceededException"})
        self.assertTrue(all(r.get("ErrorMessage") for r in failed))


class Consumers(Boto3Case):
    def register(self, name, consumer="efo"):
        arn = stream_arn(name)
        c = self.kinesis.register_stream_consumer(StreamARN=arn, ConsumerName=consumer)["Consumer"]
        self.assertEqual(c["ConsumerName"], consumer)
        self.assertRegex(c["ConsumerARN"], "^" + re.escape(arn) + "/consumer/" + consumer + r":\d+$")
        self.assertIn(c["ConsumerStatus"], ("CREATING", "ACTIVE"))
        wait_until(
            lambda: self.kinesis.describe_stream_consumer(ConsumerARN=c["ConsumerARN"])["ConsumerDescription"][
                "ConsumerStatus"
            ]
            == "ACTIVE",
            what="consumer ACTIVE",
        )
        return c["ConsumerARN"]

    @gateway_only("no consumers")
    def test_register_describe_list_deregister(self):
        name = self.create()
        arn = stream_arn(name)
        carn = self.register(name, "alpha")
        d = self.kinesis.describe_stream_consumer(StreamARN=arn, ConsumerName="alpha")["ConsumerDescription"]
        self.assertEqual(d["ConsumerARN"], carn)
        self.assertEqual(d["StreamARN"], arn)
        self.assertIsInstance(d["ConsumerCreationTimestamp"], datetime.datetime)
        self.register(name, "beta")
        listed = self.kinesis.list_stream_consumers(StreamARN=arn)["Consumers"]
        self.assertEqual(sorted(c["ConsumerName"] for c in listed), ["alpha", "beta"])
        pages = list(
            self.kinesis.get_paginator("list_stream_consumers").paginate(
                StreamARN=arn, PaginationConfig={"PageSize": 1}
            )
        )
        self.assertEqual(sorted(c["ConsumerName"] for p in pages for c in p["Consumers"]), ["alpha", "beta"])
        summary = self.kinesis.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]
        self.assertEqual(summary["ConsumerCount"], 2)
        self.kinesis.deregister_stream_consumer(ConsumerARN=carn)
        self.kinesis.deregister_stream_consumer(StreamARN=arn, ConsumerName="beta")

        def gone():
            try:
                status = self.kinesis.describe_stream_consumer(ConsumerARN=carn)["ConsumerDescription"]["ConsumerStatus"]
                return status == "DELETING" and None
            except ClientError as e:
                return e.response["Error"]["Code"] == "ResourceNotFoundException"

        wait_until(gone, what="consumer gone after deregister")
        # Deleting a stream with a consumer needs EnforceConsumerDeletion.
        self.register(name, "gamma")
        self.assertError("ResourceInUseException", self.kinesis.delete_stream, StreamName=name)
        self.kinesis.delete_stream(StreamName=name, EnforceConsumerDeletion=True)

    def collect(self, events, want, timeout_s=20):
        """Reads SubscribeToShardEvent events until `want` records arrived; returns (records, events)."""
        records, seen = [], []
        deadline = time.time() + timeout_s
        for event in events:
            self.assertIn("SubscribeToShardEvent", event)
            body = event["SubscribeToShardEvent"]
            seen.append(body)
            self.assertRegex(body["ContinuationSequenceNumber"], r"^(0|[1-9]\d{0,128})$")
            self.assertIsInstance(body["MillisBehindLatest"], int)
            records += body["Records"]
            if len(records) >= want or time.time() > deadline:
                break
        return records, seen

    @gateway_only("no SubscribeToShard")
    def test_subscribe_to_shard_http11(self):
        name = self.create()
        carn = self.register(name)
        sent = [b"efo-%d" % i for i in range(3)]
        for data in sent:
            self.kinesis.put_record(StreamName=name, Data=data, PartitionKey="k")
        resp = self.kinesis.subscribe_to_shard(
            ConsumerARN=carn, ShardId="shardId-000000000000", StartingPosition={"Type": "TRIM_HORIZON"}
        )
        self.assertEqual(resp["ResponseMetadata"]["HTTPStatusCode"], 200)
        stream = resp["EventStream"]
        try:
            records, seen = self.collect(stream, 3)
            self.assertEqual([r["Data"] for r in records], sent)
            self.assertEqual(records[0]["PartitionKey"], "k")
            self.assertIsInstance(records[0]["ApproximateArrivalTimestamp"], datetime.datetime)
            last = seen[-1]["ContinuationSequenceNumber"]
            self.assertGreaterEqual(int(last), int(records[-1]["SequenceNumber"]))
            # Records put while subscribed arrive as events.
            self.kinesis.put_record(StreamName=name, Data=b"live", PartitionKey="k")
            live, _ = self.collect(stream, 1)
            self.assertEqual([r["Data"] for r in live], [b"live"])
        finally:
            stream.close()
        # Resuming from the continuation sequence number yields only what came after it.
        self.kinesis.put_record(StreamName=name, Data=b"after", PartitionKey="k")
        resume = {"Type": "AFTER_SEQUENCE_NUMBER", "SequenceNumber": live[-1]["SequenceNumber"]}

        def subscribe():
            try:
                return self.kinesis.subscribe_to_shard(
                    ConsumerARN=carn, ShardId="shardId-000000000000", StartingPosition=resume
                )
            except ClientError as e:  # a new subscription within 5 s of the last one
                self.assertEqual(e.response["Error"]["Code"], "ResourceInUseException")
                return None

        resp = wait_until(subscribe, timeout_s=15, what="second subscription")
        stream = resp["EventStream"]
        try:
            records, _ = self.collect(stream, 1)
            self.assertEqual([r["Data"] for r in records], [b"after"])
        finally:
            stream.close()

    @gateway_only("no SubscribeToShard")
    def test_subscribe_errors(self):
        name = self.create()
        self.assertError(
            "ResourceNotFoundException",
            self.kinesis.subscribe_to_shard,
            ConsumerARN=stream_arn(name) + "/consumer/nobody:1700000000",
            ShardId="shardId-000000000000",
            StartingPosition={"Type": "LATEST"},
        )


if __name__ == "__main__":
    unittest.main()
