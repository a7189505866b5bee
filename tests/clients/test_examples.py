"""examples/python/producer.py and consumer.py (Debian's python3 and boto3) against the server."""

import json
import os
import subprocess
import unittest

import harness

EXAMPLES = os.path.join(harness.HERE, "..", "..", "examples", "python")
STREAM = "clickstream-data"


class PythonExamples(unittest.TestCase):
    def run_example(self, script, endpoint):
        proc = subprocess.run(
            [harness.DEBIAN_PYTHON, os.path.join(EXAMPLES, script), endpoint],
            env=harness.sealed_env(),
            capture_output=True,
            text=True,
            timeout=60,
        )
        self.assertEqual(proc.returncode, 0, proc.stdout + proc.stderr)
        return proc.stdout

    def test_producer_then_consumer(self):
        kind = harness.target()
        # kinlet-gateway creates the stream from its command line; kinesalite through the API.
        streams = (STREAM + ":1",) if kind == "gateway" else ()
        with harness.running(kind, streams=streams) as server:
            if kind == "kinesalite":
                client = harness.boto3_client(server.endpoint)
                client.create_stream(StreamName=STREAM, ShardCount=1)
                client.get_waiter("stream_exists").wait(StreamName=STREAM, WaiterConfig={"Delay": 1})
            out = self.run_example("producer.py", server.endpoint)
            self.assertIn("put to shardId-000000000000, sequence number ", out)
            seq = out.split("sequence number ")[1].split()[0]
            out = self.run_example("consumer.py", server.endpoint)
            lines = out.strip().splitlines()
            self.assertEqual(lines[-1], "1 record(s) read from clickstream-data")
            key, got_seq, event = lines[0].split(" ", 2)
            self.assertEqual((key, got_seq), ("user123", seq))
            self.assertEqual(json.loads(event), {"user": "abinaya", "event": "viewed_product"})
            server.check_clean_exit()


if __name__ == "__main__":
    unittest.main()
