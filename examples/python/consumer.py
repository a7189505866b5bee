#!/usr/bin/env python3
"""Reads clickstream-data back from the start of every shard with get_shard_iterator/get_records.

    python3 consumer.py http://127.0.0.1:4567
Prints one line per record: partition key, sequence number and the JSON event. Stops when every
shard is read to its end (an empty page), so it suits a one-shot check; a long-running consumer
would keep polling NextShardIterator about once a second per shard.
"""

import json
import os
import sys

import boto3

endpoint = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("KINESIS_ENDPOINT", "http://127.0.0.1:4567")
stream = "clickstream-data"

kinesis = boto3.client('kinesis', endpoint_url=endpoint)
count = 0
for shard in kinesis.list_shards(StreamName=stream)["Shards"]:
    iterator = kinesis.get_shard_iterator(
        StreamName=stream, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
    )["ShardIterator"]
    while iterator:
        page = kinesis.get_records(ShardIterator=iterator, Limit=1000)
        for record in page["Records"]:
            event = json.loads(record["Data"])
            print("%s %s %s" % (record["PartitionKey"], record["SequenceNumber"], json.dumps(event)))
            count += 1
        if not page["Records"]:
            break
        iterator = page.get("NextShardIterator")
print("%d record(s) read from %s" % (count, stream))
