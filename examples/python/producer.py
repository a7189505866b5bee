#!/usr/bin/env python3
"""The seed's producer, unmodified but for the endpoint: puts one click event with boto3.

Run a local Kinesis first (kinlet-gateway creates the stream at start):
    kinlet-gateway --port 4567 --create-stream clickstream-data:1
    AWS_ACCESS_KEY_ID=x AWS_SECRET_ACCESS_KEY=x AWS_DEFAULT_REGION=us-east-1 \
        python3 producer.py http://127.0.0.1:4567
The endpoint comes from the first argument or KINESIS_ENDPOINT (default http://127.0.0.1:4567).
"""

import json
import os
import sys

import boto3

endpoint = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("KINESIS_ENDPOINT", "http://127.0.0.1:4567")

kinesis = boto3.client('kinesis', endpoint_url=endpoint)
response = kinesis.put_record(StreamName="clickstream-data", Data=json.dumps({"user": "abinaya", "event": "viewed_product"}), PartitionKey="user123")
print("put to %s, sequence number %s" % (response["ShardId"], response["SequenceNumber"]))
