// Resolves the FunctionName path parameter of the Lambda API (a name, "name:qualifier", a partial ARN
// "123456789012:function:name[:qualifier]" or a full ARN) and the Qualifier query parameter. Pure.
import { LambdaApiError } from './errors.ts';

export interface FunctionTarget {
  name: string;
  /** The version or alias asked for, if any. The local runtime runs $LATEST for every qualifier. */
  qualifier?: string;
}

export interface AccountScope {
  region: string;
  accountId: string;
}

const NAME = /^[A-Za-z0-9_-]{1,64}$/;
const QUALIFIER = /^(\$LATEST|[A-Za-z0-9_-]{1,128})$/;
const ACCOUNT = /^\d{12}$/;

function invalid(message: string): LambdaApiError {
  return new LambdaApiError('InvalidParameterValueException', message);
}

function notFound(raw: string): LambdaApiError {
  return new LambdaApiError('ResourceNotFoundException', `Function not found: ${raw}`);
}

/** Splits the parts after "function:" into a name and an optional qualifier. */
function nameAndQualifier(parts: string[], raw: string): FunctionTarget {
  const [name, qualifier, ...extra] = parts;
  if (name === undefined || !NAME.test(name) || extra.length > 0) {
    throw invalid(
      `1 validation error detected: Value '${raw}' at 'functionName' failed to satisfy constraint: Member must satisfy regular expression pattern`,
    );
  }
  if (qualifier === undefined) return { name };
  if (!QUALIFIER.test(qualifier)) throw invalid(`Invalid qualifier '${qualifier}' in function name '${raw}'`);
  return { name, qualifier };
}

/**
 * Resolves a FunctionName and an optional Qualifier to the registered function name.
 * Throws InvalidParameterValueException for a malformed name or conflicting qualifiers, and
 * ResourceNotFoundException for an ARN of another region or account.
 */
export function resolveFunctionTarget(raw: string, qualifierParam: string | undefined, scope: AccountScope): FunctionTarget {
  const parts = raw.split(':');
  let target: FunctionTarget;
  if (parts[0] === 'arn') {
    const [, partition, service, region, account, resource, ...rest] = parts;
    if (!partition || service !== 'lambda' || resource !== 'function' || region === undefined || account === undefined) {
      throw invalid(`Invalid function ARN: '${raw}'`);
    }
    if (!ACCOUNT.test(account)) throw invalid(`Invalid account id in function ARN: '${raw}'`);
    if (region !== scope.region || account !== scope.accountId) throw notFound(raw);
    target = nameAndQualifier(rest, raw);
  } else if (parts.length >= 3 && parts[1] === 'function') {
    const [account, , ...rest] = parts;
    if (account === undefined || !ACCOUNT.test(account)) throw invalid(`Invalid account id in function name: '${raw}'`);
    if (account !== scope.accountId) throw notFound(raw);
    target = nameAndQualifier(rest, raw);
  } else {
    target = nameAndQualifier(parts, raw);
  }
  if (qualifierParam !== undefined && qualifierParam !== '') {
    if (!QUALIFIER.test(qualifierParam)) throw invalid(`Invalid Qualifier: '${qualifierParam}'`);
    if (target.qualifier !== undefined && target.qualifier !== qualifierParam) {
      throw invalid('The derived qualifier from the function name does not match the specified qualifier.');
    }
    return { name: target.name, qualifier: qualifierParam };
  }
  return target;
}

/** The function's ARN, with the qualifier appended when one was asked for (as context.invokedFunctionArn). */
export function functionArn(scope: AccountScope, name: string, qualifier?: string): string {
  const base = `arn:aws:lambda:${scope.region}:${scope.accountId}:function:${name}`;
  return qualifier === undefined ? base : `${base}:${qualifier}`;
}
