"""The AWS CLI (Debian's awscli 2.9.19, /usr/bin/aws; its bundled botocore has StreamARN).

Every call is `/usr/bin/aws kinesis ... --endpoint-url http://127.0.0.1:<port>` in the sealed
environment (dummy credentials, no config files, no metadata service). The CLI auto-paginates
describe-stream, list-streams, list-shards and list-stream-consumers; --page-size forces several
requests. The CLI has no subscribe-to-shard (awscli/customizations/removals.py).
"""

import base64
import json
import subprocess
import unittest

import harness
from common import MAX_HASH_KEY, ServerTestCase, gateway_only, stream_arn, unique


class Cli(ServerTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.env = harness.sealed_env()

    def run_aws(self, *args):
        cmd = [harness.DEBIAN_AWS, "kinesis", *args, "--endpoint-url", self.endpoint, "--output", "json"]
        return subprocess.run(cmd, env=self.env, capture_output=True, text=True, timeout=120)

    def aws(self, *args):
        proc = self.run_aws(*args)
        self.assertEqual(proc.returncode, 0, "aws kinesis %s\nstderr: %s" % (" ".join(args), proc.stderr))
        return json.loads(proc.stdout) if proc.stdout.strip() else {}

    def aws_error(self, code, *args):
        proc = self.run_aws(*args)
        self.assertNotEqual(proc.returncode, 0, proc.stdout)
        self.assertIn("(%s)" % code, proc.stderr)
        return proc.stderr

    def create(self, shards):
        name = unique("cli")
        self.aws("create-stream", "--stream-name", name, "--shard-count", str(shards))
        self.aws("wait", "stream-exists", "--stream-name", name)
        return name

    def test_stream_lifecycle_and_records(self):
        name = self.create(3)
        desc = self.aws("describe-stream", "--stream-name", name, "--page-size", "1")["StreamDescription"]
        self.assertEqual(desc["StreamStatus"], "ACTIVE")
        self.assertEqual([s["ShardId"] for s in desc["Shards"]], ["shardId-%012d" % i for i in range(3)])
        summary = self.aws("describe-stream-summary", "--stream-name", name)["StreamDescriptionSummary"]
        self.assertEqual(summary["OpenShardCount"], 3)
        self.assertEqual(summary["StreamARN"], stream_arn(name))

        other = self.create(1)
        # This CLI's ListStreams paginator follows NextToken (Debian's boto3 follows
        # ExclusiveStartStreamName); kinesalite predates NextToken, so it pages only in a gateway run.
        page_size = "1" if self.server.kind == "gateway" else "100"
        out = self.aws("list-streams", "--page-size", page_size)
        listed = out["StreamNames"]
        self.assertIn(name, listed)
        self.assertIn(other, listed)
        self.assertEqual(len(listed), len(set(listed)))
        if self.server.kind == "gateway":
            summaries = {s["StreamName"]: s for s in out["StreamSummaries"]}
            self.assertEqual(sorted(summaries), sorted(listed))
            self.assertEqual(summaries[name]["StreamARN"], stream_arn(name))
            self.assertEqual(summaries[name]["StreamStatus"], "ACTIVE")
        shards = self.aws("list-shards", "--stream-name", name)["Shards"]
        self.assertEqual([s["ShardId"] for s in shards], ["shardId-%012d" % i for i in range(3)])
        if self.server.kind == "gateway":  # kinesalite ignores MaxResults
            # As on AWS, the CLI's auto-pagination of list-shards fails from the second page: it
            # sends --stream-name again beside NextToken (aws/aws-cli#9635, boto/botocore#2009).
            err = self.aws_error("InvalidArgumentException", "list-shards", "--stream-name", name, "--page-size", "1")
            self.assertIn("NextToken and StreamName cannot be provided together", err)
            page = self.aws("list-shards", "--stream-name", name, "--max-results", "2", "--no-paginate")
            self.assertEqual(len(page["Shards"]), 2)
            rest = self.aws("list-shards", "--next-token", page["NextToken"], "--no-paginate")
            self.assertEqual([s["ShardId"] for s in rest["Shards"]], ["shardId-000000000002"])

        put = self.aws(
            "put-record",
            "--stream-name",
            name,
            "--partition-key",
            "pk",
            "--explicit-hash-key",
            "0",
            "--data",
            "hello from the cli",
            "--cli-binary-format",
            "raw-in-base64-out",
        )
        self.assertEqual(put["ShardId"], "shardId-000000000000")
        records = [
            {"Data": base64.b64encode(b"batch-%d" % i).decode(), "PartitionKey": "p", "ExplicitHashKey": "0"}
            for i in range(3)
        ]
        out = self.aws("put-records", "--stream-name", name, "--records", json.dumps(records))
        self.assertEqual(out["FailedRecordCount"], 0)
        self.assertEqual(len(out["Records"]), 3)

        it = self.aws(
            "get-shard-iterator",
            "--stream-name",
            name,
            "--shard-id",
            "shardId-000000000000",
            "--shard-iterator-type",
            "AT_SEQUENCE_NUMBER",
            "--starting-sequence-number",
            put["SequenceNumber"],
        )["ShardIterator"]
        got = self.aws("get-records", "--shard-iterator", it)
        self.assertEqual(
            [base64.b64decode(r["Data"]) for r in got["Records"]],
            [b"hello from the cli", b"batch-0", b"batch-1", b"batch-2"],
        )
        self.assertIn("NextShardIterator", got)

        self.aws(
            "split-shard",
            "--stream-name",
            name,
            "--shard-to-split",
            "shardId-000000000000",
            "--new-starting-hash-key",
            str(MAX_HASH_KEY // 6),
        )
        self.aws("wait", "stream-exists", "--stream-name", name)
        shards = self.aws("list-shards", "--stream-name", name)["Shards"]
        self.assertEqual(len(shards), 5)
        self.aws(
            "merge-shards",
            "--stream-name",
            name,
            "--shard-to-merge",
            "shardId-000000000003",
            "--adjacent-shard-to-merge",
            "shardId-000000000004",
        )
        self.aws("wait", "stream-exists", "--stream-name", name)
        desc = self.aws("describe-stream", "--stream-name", name)["StreamDescription"]
        self.assertEqual(desc["Shards"][-1]["ShardId"], "shardId-000000000005")
        self.assertEqual(desc["Shards"][-1]["AdjacentParentShardId"], "shardId-000000000004")

        self.aws("increase-stream-retention-period", "--stream-name", name, "--retention-period-hours", "72")
        summary = self.aws("describe-stream-summary", "--stream-name", name)["StreamDescriptionSummary"]
        self.assertEqual(summary["RetentionPeriodHours"], 72)
        self.aws("decrease-stream-retention-period", "--stream-name", name, "--retention-period-hours", "24")

        self.aws("add-tags-to-stream", "--stream-name", name, "--tags", "team=data,env=test")
        tags = self.aws("list-tags-for-stream", "--stream-name", name)
        self.assertEqual(tags["Tags"], [{"Key": "env", "Value": "test"}, {"Key": "team", "Value": "data"}])
        self.aws("remove-tags-from-stream", "--stream-name", name, "--tag-keys", "env")
        tags = self.aws("list-tags-for-stream", "--stream-name", name)
        self.assertEqual(tags["Tags"], [{"Key": "team", "Value": "data"}])

        self.aws("delete-stream", "--stream-name", name)
        self.aws("wait", "stream-not-exists", "--stream-name", name)
        self.aws_error("ResourceNotFoundException", "describe-stream", "--stream-name", name)

    def test_errors(self):
        missing = unique("nothere")
        self.aws_error("ResourceNotFoundException", "describe-stream-summary", "--stream-name", missing)
        name = self.create(1)
        self.aws_error("ResourceInUseException", "create-stream", "--stream-name", name, "--shard-count", "1")
        self.aws_error(
            "InvalidArgumentException",
            "decrease-stream-retention-period",
            "--stream-name",
            name,
            "--retention-period-hours",
            "1",
        )

    @gateway_only("no StreamARN, no UpdateShardCount, no consumers")
    def test_arns_consumers_update_shard_count(self):
        name = self.create(1)
        arn = stream_arn(name)
        summary = self.aws("describe-stream-summary", "--stream-arn", arn)["StreamDescriptionSummary"]
        self.assertEqual(summary["StreamName"], name)
        put = self.aws(
            "put-record",
            "--stream-arn",
            arn,
            "--partition-key",
            "k",
            "--data",
            "by-arn",
            "--cli-binary-format",
            "raw-in-base64-out",
        )
        self.assertEqual(put["ShardId"], "shardId-000000000000")

        out = self.aws(
            "update-shard-count", "--stream-name", name, "--target-shard-count", "2", "--scaling-type", "UNIFORM_SCALING"
        )
        self.assertEqual((out["CurrentShardCount"], out["TargetShardCount"]), (1, 2))
        self.aws("wait", "stream-exists", "--stream-name", name)
        summary = self.aws("describe-stream-summary", "--stream-name", name)["StreamDescriptionSummary"]
        self.assertEqual(summary["OpenShardCount"], 2)

        consumer = self.aws("register-stream-consumer", "--stream-arn", arn, "--consumer-name", "cli-efo")["Consumer"]
        self.assertTrue(consumer["ConsumerARN"].startswith(arn + "/consumer/cli-efo:"))
        listed = self.aws("list-stream-consumers", "--stream-arn", arn, "--page-size", "1")["Consumers"]
        self.assertEqual([c["ConsumerName"] for c in listed], ["cli-efo"])
        desc = self.aws("describe-stream-consumer", "--consumer-arn", consumer["ConsumerARN"])["ConsumerDescription"]
        self.assertEqual(desc["StreamARN"], arn)
        self.aws("deregister-stream-consumer", "--consumer-arn", consumer["ConsumerARN"])
        self.aws("delete-stream", "--stream-arn", arn, "--enforce-consumer-deletion")
        self.aws("wait", "stream-not-exists", "--stream-name", name)



class CliSigned(Cli):
    """--credentials: the CLI's signatures verified; an unknown key refused."""

    gateway_args = ("--limits", "unlimited", "--credentials", "%s:%s" % (harness.ACCESS_KEY, harness.SECRET_KEY))

    # Only this test runs in this class (the others are Cli's, run once).
    test_stream_lifecycle_and_records = None
    test_errors = None
    test_arns_consumers_update_shard_count = None

    @gateway_only("does not verify signatures")
    def test_signed_calls(self):
        name = self.create(1)
        self.aws("describe-stream-summary", "--stream-name", name)
        good = self.env
        try:
            self.env = dict(good, AWS_ACCESS_KEY_ID="AKIDUNKNOWN000000000")
            self.aws_error("UnrecognizedClientException", "describe-stream-summary", "--stream-name", name)
            self.env = dict(good, AWS_SECRET_ACCESS_KEY="wrong")
            self.aws_error("InvalidSignatureException", "describe-stream-summary", "--stream-name", name)
        finally:
            self.env = good


if __name__ == "__main__":
    unittest.main()
