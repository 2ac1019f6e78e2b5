// Which function an invocation row was dispatched to, against the function that is running: a forged or
// misrouted event (an invocation id of another pool, sent to this function) must touch nothing.

export interface FunctionIdentity {
  name: string;
  qualifier?: string;
}

/** The function a row names: a name, a partial ARN or a full ARN, each maybe ending in :qualifier. */
export function rowFunction(functionName: string, functionQualifier: string | null): FunctionIdentity {
  const parts = functionName.split(':');
  // arn:aws:lambda:REGION:ACCOUNT:function:NAME[:QUALIFIER]  or  ACCOUNT:function:NAME[:QUALIFIER]  or  NAME[:QUALIFIER].
  // "function" marks an ARN only in those places: a function may itself be named "function".
  const at = parts[0] === 'arn' && parts[5] === 'function' ? 6 : /^\d{12}$/.test(parts[0] ?? '') && parts[1] === 'function' ? 2 : 0;
  const [name = '', embedded] = parts.slice(at);
  const qualifier = functionQualifier ?? embedded;
  return { name, ...(qualifier ? { qualifier } : {}) };
}

/** The running function: AWS_LAMBDA_FUNCTION_NAME, and the qualifier it was invoked with (from its ARN). */
export function runningFunction(env: NodeJS.ProcessEnv, invokedFunctionArn: string | undefined): FunctionIdentity | undefined {
  const name = env.AWS_LAMBDA_FUNCTION_NAME;
  if (!name) return undefined;
  const parts = (invokedFunctionArn ?? '').split(':');
  // An ARN invoked with a qualifier has 8 parts: arn:aws:lambda:region:account:function:name:qualifier
  const qualifier = parts.length === 8 ? parts[7] : undefined;
  return { name, ...(qualifier ? { qualifier } : {}) };
}

/**
 * Why the row does not belong to the running function, or undefined when it does. A row without a
 * qualifier matches any version of its function ($LATEST included); a row with one needs that qualifier.
 */
export function mismatch(row: FunctionIdentity, running: FunctionIdentity): string | undefined {
  if (row.name !== running.name) return `the invocation was dispatched to function ${row.name}, not ${running.name}`;
  if (row.qualifier && row.qualifier !== '$LATEST' && row.qualifier !== running.qualifier) {
    return `the invocation was dispatched to ${row.name}:${row.qualifier}, not ${running.name}:${running.qualifier ?? '$LATEST'}`;
  }
  return undefined;
}
