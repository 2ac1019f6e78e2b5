// The tenancy policy (docs/architecture.md §9): per namespace, and for namespaces not listed, which Lambda functions
// its pools may invoke and which queues they may claim in the controller's default database, and which
// IAM role invokes them. Pure: parsed once at start (Helm values -> --tenancy-policy), then consulted.
//
//   { "default":    { "functions": ["*"], "queues": ["*"] },
//     "namespaces": { "team-a": { "functions": ["team-a-*"], "queues": ["team-a/*"],
//                                 "roleArn": "arn:aws:iam::123456789012:role/team-a-invoker" } } }
//
// A pattern is matched against the whole string as the pool writes it: `*` is any run of characters,
// everything else is literal. A function pattern is matched colon-separated part by part: its `*` never
// spans a colon, a qualifier after what it names is left out (team-a-* allows team-a-x:live), and a `*` that
// is a whole last part matches the rest (arn:aws:lambda:eu-west-1:123456789012:* is every function of that
// account and region). So a name pattern (no colon) never matches an ARN or a partial ARN, even one that
// starts with `*` ("*-team-a" does not match 999999999999:function:evil-team-a), and a pool cannot reach
// another account's function by writing its ARN; allow ARNs with ARN patterns. `*` alone matches every function.
import type { PoolSpec } from './types.ts';

export interface NamespaceRules {
  /** Patterns over spec.function.name (with :qualifier when spec.function.qualifier is set). */
  functions: string[];
  /** Patterns over spec.queue, for pools on the default database. */
  queues: string[];
  /** The IAM role the controller assumes to invoke this namespace's functions. */
  roleArn?: string;
}

export interface TenancyPolicy {
  default: NamespaceRules;
  namespaces: Record<string, NamespaceRules>;
}

/** No restriction at all: what a controller without a policy does (and what the chart warns about). */
export const OPEN_POLICY: TenancyPolicy = { default: { functions: ['*'], queues: ['*'] }, namespaces: {} };

export class TenancyPolicyError extends Error {
  override name = 'TenancyPolicyError';
}

const ROLE_ARN = /^arn:aws[a-zA-Z-]*:iam::\d{12}:role\/[\w+=,.@/-]{1,512}$/;

export function parseTenancyPolicy(text: string): TenancyPolicy {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw new TenancyPolicyError('the tenancy policy is not JSON');
  }
  if (!isObject(raw)) throw new TenancyPolicyError('the tenancy policy must be an object with "default" and "namespaces"');
  const unknown = Object.keys(raw).filter((k) => k !== 'default' && k !== 'namespaces');
  if (unknown.length > 0) throw new TenancyPolicyError(`the tenancy policy has unknown keys: ${unknown.join(', ')}`);
  const namespaces: Record<string, NamespaceRules> = {};
  if (raw.namespaces !== undefined) {
    if (!isObject(raw.namespaces)) throw new TenancyPolicyError('tenancy.namespaces must map namespace names to rules');
    for (const [ns, rules] of Object.entries(raw.namespaces)) {
      if (!/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/.test(ns))
        throw new TenancyPolicyError(`tenancy.namespaces: "${ns.slice(0, 80)}" is not a namespace name`);
      namespaces[ns] = parseRules(rules, `tenancy.namespaces.${ns}`);
    }
  }
  return { default: raw.default === undefined ? OPEN_POLICY.default : parseRules(raw.default, 'tenancy.default'), namespaces };
}

function parseRules(value: unknown, where: string): NamespaceRules {
  if (!isObject(value)) throw new TenancyPolicyError(`${where} must be an object with "functions" and "queues"`);
  const unknown = Object.keys(value).filter((k) => !['functions', 'queues', 'roleArn'].includes(k));
  if (unknown.length > 0) throw new TenancyPolicyError(`${where} has unknown keys: ${unknown.join(', ')}`);
  const list = (key: 'functions' | 'queues'): string[] => {
    const v = value[key] ?? [];
    if (!Array.isArray(v) || !v.every((p) => typeof p === 'string' && p.length > 0 && p.length <= 256)) {
      throw new TenancyPolicyError(`${where}.${key} must be a list of patterns (strings of 1 to 256 characters)`);
    }
    return v;
  };
  const roleArn = value.roleArn;
  if (roleArn !== undefined && (typeof roleArn !== 'string' || !ROLE_ARN.test(roleArn))) {
    throw new TenancyPolicyError(`${where}.roleArn must be an IAM role ARN (arn:aws:iam::123456789012:role/NAME)`);
  }
  return { functions: list('functions'), queues: list('queues'), ...(roleArn ? { roleArn } : {}) };
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Compiled globs: a policy has a handful, and every pass of every pool matches them. */
const globs = new Map<string, RegExp>();

/** A glob with `*` only, matched against the whole string. */
export function globMatches(pattern: string, value: string): boolean {
  if (pattern === '*') return true;
  let glob = globs.get(pattern);
  if (!glob) {
    const source = pattern
      .split('*')
      .map((part) => part.replace(/[.+?^${}()|[\]\\]/g, '\\$&'))
      .join('.*');
    glob = new RegExp(`^${source}$`, 's');
    // Patterns come from the policy, but bound the cache all the same.
    if (globs.size >= 1_000) globs.clear();
    globs.set(pattern, glob);
  }
  return glob.test(value);
}

/** How many colon-separated parts a Lambda function identifier has with a qualifier: name:q, account:function:name:q, an ARN's :q. */
const QUALIFIED_PARTS = [2, 4, 8];

/**
 * Whether a function pattern matches a function as the pool writes it (name, or name:qualifier): part by
 * part between colons, `*` never spanning one; a qualifier after what the pattern names is left out; and a
 * `*` that is a whole last part matches the rest, colons included (`arn:aws:lambda:eu-west-1:123456789012:*`
 * is every function of that account and region).
 */
export function functionMatches(pattern: string, fn: string): boolean {
  if (pattern === '*') return true;
  const want = pattern.split(':');
  const have = fn.split(':');
  if (want.length > 1 && want.at(-1) === '*') {
    return have.length >= want.length && want.slice(0, -1).every((part, i) => globMatches(part, have[i] as string));
  }
  const qualified = have.length === want.length + 1 && QUALIFIED_PARTS.includes(have.length);
  if (have.length !== want.length && !qualified) return false;
  return want.every((part, i) => globMatches(part, have[i] as string));
}

export interface RulesFor {
  rules: NamespaceRules;
  /** Where in the policy the rules come from, for messages: tenancy.namespaces.team-a, or tenancy.default. */
  path: string;
}

export function rulesFor(policy: TenancyPolicy, namespace: string): RulesFor {
  const own = policy.namespaces[namespace];
  return own ? { rules: own, path: `tenancy.namespaces.${namespace}` } : { rules: policy.default, path: 'tenancy.default' };
}

export type PolicyVerdict = { allowed: true } | { allowed: false; reason: 'FunctionNotAllowed' | 'QueueNotAllowed'; message: string };

/** Whether a pool may invoke its function, and (on the default database) claim its queue. */
/** The policy's verdict on a pool as its spec stands: its function, its queue, and whether it uses the default database. */
export function checkPoolSpec(policy: TenancyPolicy, pool: { meta: { namespace: string }; spec: PoolSpec }): PolicyVerdict {
  return checkPool(policy, {
    namespace: pool.meta.namespace,
    functionName: pool.spec.function.name,
    functionQualifier: pool.spec.function.qualifier,
    queue: pool.spec.queue,
    usesDefaultDatabase: pool.spec.database === undefined,
  });
}

export function checkPool(
  policy: TenancyPolicy,
  pool: { namespace: string; functionName: string; functionQualifier?: string; queue: string; usesDefaultDatabase: boolean },
): PolicyVerdict {
  const { rules, path } = rulesFor(policy, pool.namespace);
  const fn = pool.functionQualifier ? `${pool.functionName}:${pool.functionQualifier}` : pool.functionName;
  if (!rules.functions.some((p) => functionMatches(p, fn))) {
    return {
      allowed: false,
      reason: 'FunctionNotAllowed',
      message: `namespace ${pool.namespace} may invoke only functions matching ${describe(rules.functions)} (${path}.functions); ${fn} does not match`,
    };
  }
  if (pool.usesDefaultDatabase && !rules.queues.some((p) => globMatches(p, pool.queue))) {
    return {
      allowed: false,
      reason: 'QueueNotAllowed',
      message: `namespace ${pool.namespace} may claim only queues matching ${describe(rules.queues)} in the default database (${path}.queues); ${pool.queue} does not match`,
    };
  }
  return { allowed: true };
}

/** Whether the policy restricts anything at all (the chart warns when it does not). */
export function policyRestricts(policy: TenancyPolicy): boolean {
  const open = (r: NamespaceRules) => r.functions.includes('*') && r.queues.includes('*') && !r.roleArn;
  return !open(policy.default) || Object.values(policy.namespaces).some((r) => !open(r));
}

function describe(patterns: readonly string[]): string {
  return patterns.length === 0 ? 'nothing (an empty list)' : patterns.map((p) => JSON.stringify(p)).join(', ');
}
