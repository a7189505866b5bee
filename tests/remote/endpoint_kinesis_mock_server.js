// Starts kinesis-mock (npm kinesis-local@0.6.2, pinned in tests/clients/package-lock.json) on
// 127.0.0.1 only, on ports the kernel picks, and prints "KINLET_TLS_PORT <n>" and
// "KINLET_PLAIN_PORT <n>" on stdout once each listens.
//
// kinesis-local takes its ports from KINESIS_MOCK_TLS_PORT / KINESIS_MOCK_PLAIN_PORT, listens on
// every interface (server.listen(port, callback)) and never says which port it got for port 0.
// This wrapper sets the two variables to the markers 1 and 2, then rewrites the two listen calls
// into listen({host: '127.0.0.1', port: 0}) and reports the ports the kernel chose. Everything
// else (durations, limits, log level) is kinesis-mock's own environment configuration, set by the
// caller (tests/remote/endpoint_driver.py).
// Usage: node endpoint_kinesis_mock_server.js   (NODE_PATH = the folder holding node_modules)
'use strict';
const net = require('net');
const path = require('path');

const TLS_MARKER = 1;
const PLAIN_MARKER = 2;
process.env.KINESIS_MOCK_TLS_PORT = String(TLS_MARKER);
process.env.KINESIS_MOCK_PLAIN_PORT = String(PLAIN_MARKER);
const main = require.resolve('kinesis-local/main.js');
if (!process.env.KINESIS_MOCK_CERT_PATH) {
  // The self-signed certificate shipped beside main.js (kinesis-local looks in the cwd otherwise).
  process.env.KINESIS_MOCK_CERT_PATH = path.join(path.dirname(main), 'server.json');
}

const listen = net.Server.prototype.listen;
net.Server.prototype.listen = function (...args) {
  const port = args[0];
  if (port !== TLS_MARKER && port !== PLAIN_MARKER) {
    throw new Error(`endpoint_kinesis_mock_server.js: unexpected listen(${JSON.stringify(port)})`);
  }
  const label = port === TLS_MARKER ? 'KINLET_TLS_PORT' : 'KINLET_PLAIN_PORT';
  const callback = typeof args[args.length - 1] === 'function' ? args[args.length - 1] : undefined;
  this.once('listening', () => process.stdout.write(`${label} ${this.address().port}\n`));
  return listen.call(this, {host: '127.0.0.1', port: 0}, callback);
};

for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => process.exit(0));
require(main);
