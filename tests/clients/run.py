#!/usr/bin/python3
"""Runs one client suite against kinlet-gateway (or kinesalite, to debug the suites themselves).

  /usr/bin/python3 tests/clients/run.py SUITE --gateway build/dev/tools/kinlet-gateway/kinlet-gateway
  /usr/bin/python3 tests/clients/run.py SUITE --kinesalite        # the second implementation
  /usr/bin/python3 tests/clients/run.py SUITE --skip-missing-gateway   # exit 77 (ctest: skipped)

SUITE: boto3 | cli | js | differential | examples (each is test_SUITE.py beside this file; extra
arguments go to unittest, e.g. a test name). --node-dir DIR installs the pinned npm packages
(npm ci from package-lock.json) into DIR/node_modules instead of this folder.
"""

import argparse
import os
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
SUITES = ("boto3", "cli", "js", "differential", "examples")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("suite", choices=SUITES)
    parser.add_argument("--gateway", help="kinlet-gateway executable")
    parser.add_argument("--kinesalite", action="store_true", help="run against kinesalite")
    parser.add_argument(
        "--skip-missing-gateway",
        action="store_true",
        help="exit 77 (skipped) because the kinlet-gateway target does not exist in this build",
    )
    parser.add_argument("--node-dir", help="folder for node_modules (npm ci)")
    args, rest = parser.parse_known_args()

    if args.skip_missing_gateway:
        print("SKIPPED: this build has no kinlet-gateway target")
        return 77
    os.environ.pop("KINLET_CLIENTS_TARGET", None)
    if args.kinesalite:
        os.environ["KINLET_CLIENTS_TARGET"] = "kinesalite"
    elif args.gateway:
        os.environ["KINLET_GATEWAY"] = os.path.abspath(args.gateway)
        os.environ["KINLET_CLIENTS_TARGET"] = "gateway"
    elif not os.environ.get("KINLET_GATEWAY"):
        parser.error("give --gateway PATH or --kinesalite")
    if args.node_dir:
        os.environ["KINLET_CLIENTS_NODE_DIR"] = os.path.abspath(args.node_dir)

    sys.path.insert(0, HERE)
    import harness

    harness.require_debian_python()
    harness.ensure_node_modules()
    harness.seal_this_process()
    print("client suite %s against %s" % (args.suite, harness.target()), flush=True)

    loader = unittest.TestLoader()
    module = __import__("test_" + args.suite)
    if rest:
        suite = loader.loadTestsFromNames(rest, module)
    else:
        suite = loader.loadTestsFromModule(module)
    result = unittest.TextTestRunner(verbosity=2, stream=sys.stdout).run(suite)
    if result.testsRun == 0:
        print("no test ran")
        return 1
    return 0 if result.wasSuccessful() else 1


if __name__ == "__main__":
    sys.exit(main())
