// The product's version, from package.json (two folders up, both from src/cli and from dist/cli).
import { readFileSync } from 'node:fs';

function readVersion(): string {
  const manifest: unknown = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8'));
  if (typeof manifest === 'object' && manifest !== null && 'version' in manifest && typeof manifest.version === 'string') {
    return manifest.version;
  }
  throw new Error('package.json has no version');
}

export const PRODUCT_VERSION = readVersion();
