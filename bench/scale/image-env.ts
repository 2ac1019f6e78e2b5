// How the controller image runs Node (the Dockerfile's ENTRYPOINT flags and its ENV NODE_OPTIONS and
// MALLOC_ARENA_MAX), read from the Dockerfile itself, so that the scale benchmark measures the controller's
// memory as it runs in a cluster and the two can never drift apart.
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const DOCKERFILE = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'Dockerfile');

export interface ImageRuntime {
  /** Node's flags in the ENTRYPOINT, before the script. */
  nodeArgs: string[];
  /** NODE_OPTIONS (empty when the image sets none) and MALLOC_ARENA_MAX. */
  env: Record<string, string>;
}

/** The runtime stage of the Dockerfile: its ENTRYPOINT's Node flags and its ENV. */
export async function imageRuntime(): Promise<ImageRuntime> {
  const text = (await readFile(DOCKERFILE, 'utf8')).replace(/\\\n/g, ' ');
  const runtime = text.slice(text.lastIndexOf('FROM '));
  const entrypoint = /^ENTRYPOINT\s+(\[.*\])\s*$/m.exec(runtime)?.[1];
  const parsed: unknown = entrypoint ? JSON.parse(entrypoint) : undefined;
  const argv = Array.isArray(parsed) ? parsed.filter((a): a is string => typeof a === 'string') : [];
  if (argv[0] !== 'node' || argv.length !== (Array.isArray(parsed) ? parsed.length : -1)) {
    throw new Error(
      'the Dockerfile\'s ENTRYPOINT is not ["node", ...flags, script]: the benchmark cannot run the controller as the image does',
    );
  }
  const nodeArgs = argv.slice(1).filter((a) => a.startsWith('--'));
  const env: Record<string, string> = {};
  for (const name of ['NODE_OPTIONS', 'MALLOC_ARENA_MAX']) {
    const match = new RegExp(`\\b${name}=("([^"]*)"|(\\S+))`).exec(runtime);
    // When the image sets no NODE_OPTIONS, neither does the controller the benchmark runs (not the benchmark's own).
    const value = match?.[2] ?? match?.[3] ?? (name === 'NODE_OPTIONS' ? '' : undefined);
    if (value === undefined)
      throw new Error(`the Dockerfile's runtime stage sets no ${name}: the benchmark cannot run the controller as the image does`);
    env[name] = value;
  }
  return { nodeArgs, env };
}
