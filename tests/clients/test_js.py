"""The AWS SDK for JavaScript v3 (js_suite.js) on Debian's node, over HTTP/2 (h2c) and HTTP/1.1."""

import os
import subprocess
import unittest

import harness
from common import ServerTestCase, gateway_only


class JavaScriptV3(ServerTestCase):
    def run_suite(self, mode):
        args = [harness.NODE, os.path.join(harness.HERE, "js_suite.js"), self.endpoint, mode]
        if self.server.kind == "kinesalite":
            args.append("--kinesalite")
        proc = subprocess.run(
            args, env=harness.sealed_env(), capture_output=True, text=True, timeout=150
        )
        print(proc.stdout + proc.stderr)
        self.assertEqual(proc.returncode, 0, proc.stdout[-3000:] + proc.stderr[-3000:])

    @gateway_only("HTTP/1.1 only: the default HTTP/2 handler fails with ERR_HTTP2_ERROR")
    def test_default_client_http2_cleartext(self):
        self.run_suite("h2")

    def test_node_http_handler_http11(self):
        self.run_suite("http1")


if __name__ == "__main__":
    unittest.main()
