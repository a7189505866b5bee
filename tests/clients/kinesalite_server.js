// Starts kinesalite (npm kinesalite@3.3.3, pinned in package-lock.json) on 127.0.0.1 only, on a
// port the kernel picks (port 0), and prints "PORT <n>" on stdout once it listens. kinesalite's own
// cli.js listens on every interface and on a fixed port, which the client tests must not do.
// Usage: node kinesalite_server.js [--shardLimit N]
'use strict';
const kinesalite = require('kinesalite');
const argv = process.argv.slice(2);
const shardLimitAt = argv.indexOf('--shardLimit');
const server = kinesalite({
  createStreamMs: 0,
  deleteStreamMs: 0,
  updateStreamMs: 0,
  shardLimit: shardLimitAt >= 0 ? Number(argv[shardLimitAt + 1]) : 50,
});
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`PORT ${server.address().port}\n`);
});
for (const sig of ['SIGTERM', 'SIGINT']) {
  process.on(sig, () => server.close(() => process.exit(0)));
}
