"""Helpers shared by the client suites (unittest)."""

import functools
import itertools
import os
import time
import unittest

import harness

MAX_HASH_KEY = 2**128 - 1
_counter = itertools.count()


def unique(prefix):
    """A stream/consumer name unique within this run (the servers are shared by a class)."""
    return "%s-%d-%d" % (prefix, os.getpid(), next(_counter))


def stream_arn(name):
    return "arn:aws:kinesis:%s:%s:stream/%s" % (harness.REGION, harness.ACCOUNT_ID, name)


def gateway_only(reason):
    """Marks a test kinesalite cannot pass (it lacks the operation or behaviour: `reason`).

    Such a test runs against kinlet-gateway and is skipped only in a kinesalite run, which exists
    to debug the suites themselves.
    """

    def wrap(fn):
        @functools.wraps(fn)
        def inner(self, *a, **kw):
            if self.server.kind == "kinesalite":
                raise unittest.SkipTest("kinesalite: " + reason)
            return fn(self, *a, **kw)

        return inner

    return wrap


def wait_until(predicate, timeout_s=20, what="condition"):
    deadline = time.time() + timeout_s
    while True:
        value = predicate()
        if value:
            return value
        if time.time() > deadline:
            raise AssertionError("timed out waiting for " + what)
        time.sleep(0.05)


class ServerTestCase(unittest.TestCase):
    """Starts one server per test class (kinlet-gateway or kinesalite) and stops it by pid."""

    # The suites poll DescribeStreamSummary and friends faster than AWS's control-plane quotas
    # allow; the quotas themselves are exercised by test_boto3.Throttling (--limits kinesis).
    gateway_args = ("--limits", "unlimited")
    tls = False

    @classmethod
    def setUpClass(cls):
        if cls.tls and harness.target() != "gateway":
            raise unittest.SkipTest("kinesalite: TLS on a random port is not wired here")
        cls.server = harness.start(gateway_args=cls.gateway_args, tls=cls.tls)
        cls.endpoint = cls.server.endpoint

    @classmethod
    def tearDownClass(cls):
        cls.server.check_clean_exit()
