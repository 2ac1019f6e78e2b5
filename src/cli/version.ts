// The product's version, from the package.json of lambda-task-pool: the nearest one above this module, which
// lies in src/cli under tsx and in dist/ or dist/chunks/ in the bundle (scripts/build-controller.mjs).
import { existsSync, readFileSync } from 'node:fs';

function readVersion(): string {
  for (let dir = new URL('./', import.meta.url); ; dir = new URL('../', dir)) {
    const file = new URL('package.json', dir);
    if (existsSync(file)) {
      const manifest: unknown = JSON.parse(readFileSync(file, 'utf8'));
      if (typeof manifest === 'object' && manifest !== null && 'name' in manifest && manifest.name === 'lambda-task-pool') {
        if ('version' in manifest && typeof manifest.version === 'string') return manifest.version;
        throw new Error(`${file.pathname} has no version`);
      }
    }
    if (dir.pathname === '/') throw new Error('no package.json of lambda-task-pool above the CLI');
  }
}

export const PRODUCT_VERSION = readVersion();
