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
        env = harness.sealed_env()
        if self.server.ca_file:
            env["NODE_EXTRA_CA_CERTS"] = self.server.ca_file
        proc = subprocess.run(args, env=env, capture_output=True, text=True, timeout=150)
        print(proc.stdout + proc.stderr)
        self.assertEqual(proc.returncode, 0, proc.stdout[-3000:] + proc.stderr[-3000:])

    @gateway_only("HTTP/1.1 only: the default HTTP/2 handler fails with ERR_HTTP2_ERROR")
    def test_default_client_http2_cleartext(self):
        self.run_suite("h2")

    def test_node_http_handler_http11(self):
        self.run_suite("http1")



class JavaScriptV3Tls(JavaScriptV3):
    """h2 by ALPN over TLS (--tls-cert/--tls-key), and HTTP/1.1 over TLS."""

    tls = True


class JavaScriptV3Signed(ServerTestCase):
    """--credentials: the gateway verifies JS v3's signatures, `:authority` signed over HTTP/2."""

    gateway_args = ("--limits", "unlimited", "--credentials", "%s:%s" % (harness.ACCESS_KEY, harness.SECRET_KEY))

    @gateway_only("does not verify signatures")
    def test_default_client_http2_signed(self):
        JavaScriptV3.run_suite(self, "h2")


if __name__ == "__main__":
    unittest.main()
