// The functions of the local stack: a --lambda-config file, and --function NAME=PATH flags on top of it. A
// flag gives a function its handler; every other setting of that function (timeout, environment, async
// behaviour) and the file's defaults still come from the file, so a file may set only a function's options
// and leave its handler to the flag.
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { LambdaConfigError, parseFunctionFlag, parseLambdaConfig, type LambdaConfigFile } from './lambda-runtime/index.ts';

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * The config document with each flag's handler (resolved from `cwd`) set on its function: added to the
 * function's own settings when the document has them, or as a new function with the file's defaults.
 */
export function withFunctionFlags(document: unknown, flags: readonly string[], cwd: string): unknown {
  if (flags.length === 0) return document;
  const base = document === null || document === undefined ? {} : document;
  // A document of the wrong shape is left for the parser to name the problem.
  if (!isRecord(base) || (base.functions !== undefined && !isRecord(base.functions))) return base;
  const functions: Record<string, unknown> = { ...(base.functions ?? {}) };
  for (const flag of flags) {
    const { name, handler } = parseFunctionFlag(flag);
    const own = functions[name];
    functions[name] = { ...(isRecord(own) ? own : {}), handler: path.resolve(cwd, handler) };
  }
  return { ...base, functions };
}

/** Reads the config file (if any), merges the flags in, and validates the whole. Errors name the file and the key. */
export async function localFunctions(args: { file?: string; flags: readonly string[]; cwd: string }): Promise<LambdaConfigFile> {
  if (args.file === undefined) return parseLambdaConfig(withFunctionFlags({}, args.flags, args.cwd), args.cwd);
  const file = path.resolve(args.cwd, args.file);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    const code = error instanceof Error && 'code' in error ? String(error.code) : 'unreadable';
    throw new LambdaConfigError('', `cannot read the file (${code})`, args.file);
  }
  let document: unknown;
  try {
    document = parseYaml(text);
  } catch (error) {
    throw new LambdaConfigError('', `not valid YAML: ${error instanceof Error ? error.message : String(error)}`, args.file);
  }
  try {
    return parseLambdaConfig(withFunctionFlags(document, args.flags, args.cwd), path.dirname(file));
  } catch (error) {
    if (error instanceof LambdaConfigError) throw new LambdaConfigError(error.key, error.problem, args.file);
    throw error;
  }
}
