#!/usr/bin/env node
// Runs the built CLI (npm run build). In a checkout without a build, use `npm run cli -- ...`.
import('../dist/cli.js');
