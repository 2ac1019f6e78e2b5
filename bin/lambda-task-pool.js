#!/usr/bin/env node
// Runs the built CLI (npm run build). In a checkout without a build, use `npm run cli -- ...`.
// The version check comes first, and in syntax every Node since 12 reads: an older Node would otherwise
// die deep inside a dependency (undici) with an error that names nothing useful.
const [major, minor] = process.versions.node.split('.').map(Number);
if (major < 22 || (major === 22 && minor < 19)) {
  process.stderr.write(
    `lambda-task-pool needs Node.js 22.19 or newer (Node 24 LTS is recommended); this is Node ${process.versions.node}.\n` +
      'Install it from https://nodejs.org or with a version manager (nvm install 24), then run this again.\n',
  );
  process.exit(1);
}
import('../dist/cli.js');
