// The environment the controller image runs with (the Dockerfile's ENV NODE_OPTIONS and MALLOC_ARENA_MAX),
// read from the Dockerfile itself, so that the scale benchmark measures the controller's memory as it runs
// in a cluster and the two can never drift apart.
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const DOCKERFILE = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'Dockerfile');

/** NODE_OPTIONS and MALLOC_ARENA_MAX as the runtime stage of the Dockerfile sets them. */
export async function imageRuntimeEnv(): Promise<Record<string, string>> {
  const text = (await readFile(DOCKERFILE, 'utf8')).replace(/\\\n/g, ' ');
  const runtime = text.slice(text.lastIndexOf('FROM '));
  const env: Record<string, string> = {};
  for (const name of ['NODE_OPTIONS', 'MALLOC_ARENA_MAX']) {
    const match = new RegExp(`\\b${name}=("([^"]*)"|(\\S+))`).exec(runtime);
    const value = match?.[2] ?? match?.[3];
    if (value === undefined) throw new Error(`the Dockerfile's runtime stage sets no ${name}: the benchmark cannot run the controller as the image does`);
    env[name] = value;
  }
  return env;
}
