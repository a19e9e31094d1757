#!/usr/bin/env node
// The command runs from its bundle (scripts/build.mjs makes it): a few files to read at start-up
// instead of some 420 modules. Source maps on first, so that a stack trace names the .ts files:
// Node reads a module's map when it loads the module, not later.
process.setSourceMapsEnabled(true);
const { main } = await import('../dist/bundle/popwire.js');

// exitCode rather than process.exit(): the process ends once stdout has drained.
process.exitCode = await main(process.argv);
