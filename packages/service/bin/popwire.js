#!/usr/bin/env node
import { main } from '../dist/cli/main.js';

// exitCode rather than process.exit(): the process ends once stdout has drained.
process.exitCode = await main(process.argv);
