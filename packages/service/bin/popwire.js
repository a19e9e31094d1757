#!/usr/bin/env node
// The command runs from its bundle (scripts/build.mjs makes it): a few files to read at start-up
// instead of some 420 modules. Source maps stay off: Node 20 reads and parses the map of every
// chunk as it loads it, 25 to 45 ms of each start (`node --cpu-prof`, bench (j)), for stack traces
// that a failure never prints (cli/failure.ts). To see the .ts files and lines in a crash's trace:
// NODE_OPTIONS=--enable-source-maps popwire ...
const { main } = await import('../dist/bundle/popwire.js');

// exitCode rather than process.exit(): the process ends once stdout has drained.
process.exitCode = await main(process.argv);
