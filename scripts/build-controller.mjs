// Compiles the controller and CLI into dist/ as an esbuild bundle: dist/cli.js, one file per command in
// dist/cli/commands/ (the CLI finds its commands by listing that folder), and the code they share in
// dist/chunks/. Why a bundle and not tsc's one file per module: @kubernetes/client-node alone is about a
// thousand modules (every generated API and model), and Node keeps a record, a compiled wrapper and the
// source of each one it loads. Bundled, the controller starts with about 26 MB less resident memory (issue 8:
// 1,000 pools within 150 MB), and only the parts of a library reached from our code are kept.
//
// Left out of the bundle and loaded from node_modules: TypeORM (loaded only when a migration is due; it
// requires its database drivers by name at run time) and pg-native (pg's optional native binding).
// Type checking is tsc's job (npm run typecheck); esbuild only strips the types.
import { readFile, readdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const src = path.join(root, 'src');
const dist = path.join(root, 'dist');
const commands = (await readdir(path.join(src, 'cli', 'commands')))
  .filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts'))
  .map((f) => path.join(src, 'cli', 'commands', f));

await rm(dist, { recursive: true, force: true });
const result = await build({
  absWorkingDir: root,
  entryPoints: [path.join(src, 'cli.ts'), ...commands],
  outbase: src,
  outdir: dist,
  bundle: true,
  splitting: true,
  chunkNames: 'chunks/[name]-[hash]',
  format: 'esm',
  platform: 'node',
  target: 'node22.19',
  external: ['typeorm', 'pg-native'],
  // Some bundled CommonJS packages call require(); an ES module has none of its own.
  banner: { js: "import { createRequire as __ltpCreateRequire } from 'node:module'; const require = __ltpCreateRequire(import.meta.url);" },
  // Stack traces map back to src/ with node --enable-source-maps (off by default: it costs memory).
  sourcemap: 'linked',
  sourcesContent: false,
  logLevel: 'warning',
  metafile: true,
});
// ASCII only. esbuild escapes non-ASCII characters in code (its default charset), but keeps the comments of
// bundled libraries as they are, and undici's hold a few curly quotes. V8 keeps the source of every module it
// loads for lazy compilation, and one such character makes that string two bytes per character: the 6 MB
// chunk of @kubernetes/client-node and undici took 12.5 MB of the controller's heap. The escapes below sit in
// comments (anything else is escaped already), where they change nothing.
for (const file of Object.keys(result.metafile.outputs).filter((f) => f.endsWith('.js'))) {
  const text = await readFile(path.join(root, file), 'utf8');
  // eslint-disable-next-line no-control-regex -- the complement of ASCII
  const ascii = text.replace(/[^\u0000-\u007f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
  if (ascii !== text) await writeFile(path.join(root, file), ascii);
}
const bytes = Object.values(result.metafile.outputs).reduce((sum, o) => sum + o.bytes, 0);
process.stdout.write(`build-controller: dist/ (${Object.keys(result.metafile.outputs).length} files, ${(bytes / 1e6).toFixed(1)} MB)\n`);
