// Reads what of a function's configuration decides whether the count can stay exact, and sets its async
// invoke config when a pool asks for it (spec.function.asyncConfig: Managed). Each read is its own call,
// so a missing permission for one leaves the others: it is reported, never fatal.
import {
  GetFunctionConcurrencyCommand,
  GetFunctionConfigurationCommand,
  GetFunctionEventInvokeConfigCommand,
  PutFunctionEventInvokeConfigCommand,
  type LambdaClient,
} from '@aws-sdk/client-lambda';
import type { FunctionRef } from '../api/types.ts';
import { classifyInvokeError } from './errors.ts';

/** AWS's defaults for asynchronous invocation when a function has no event invoke config. */
export const ASYNC_DEFAULTS = { maximumRetryAttempts: 2, maximumEventAgeSeconds: 21_600 } as const;

export interface CallProblem {
  /** The IAM action that failed, e.g. lambda:GetFunctionConcurrency. */
  action: string;
  code: string;
  message: string;
}

export interface FunctionSettings {
  /** Undefined when GetFunctionConfiguration could not be read. */
  configuration?: {
    state: string;
    stateReason?: string;
    lastUpdateStatus?: string;
    timeoutSeconds: number;
    memoryMb: number;
  };
  /** Reserved concurrency: a number, `null` for none (the account's unreserved pool), undefined when unread. */
  reservedConcurrency?: number | null;
  /** The event invoke config in force (AWS's defaults when the function has none); undefined when unread. */
  asyncConfig?: { maximumRetryAttempts: number; maximumEventAgeSeconds: number; configured: boolean };
  /** The calls that failed: missing permissions, a missing function, throttling. */
  problems: CallProblem[];
}

function problem(action: string, error: unknown): CallProblem {
  const failure = classifyInvokeError(error);
  return { action, code: failure.code, message: failure.message };
}

export async function readFunctionSettings(client: LambdaClient, fn: FunctionRef): Promise<FunctionSettings> {
  const target = { FunctionName: fn.name, ...(fn.qualifier ? { Qualifier: fn.qualifier } : {}) };
  const settings: FunctionSettings = { problems: [] };
  const [configuration, concurrency, eventConfig] = await Promise.allSettled([
    client.send(new GetFunctionConfigurationCommand(target)),
    // Reserved concurrency belongs to the function, not to a version or alias.
    client.send(new GetFunctionConcurrencyCommand({ FunctionName: fn.name })),
    client.send(new GetFunctionEventInvokeConfigCommand(target)),
  ]);
  if (configuration.status === 'fulfilled') {
    const c = configuration.value;
    settings.configuration = {
      state: c.State ?? 'Active',
      ...(c.StateReason ? { stateReason: c.StateReason } : {}),
      ...(c.LastUpdateStatus ? { lastUpdateStatus: c.LastUpdateStatus } : {}),
      timeoutSeconds: c.Timeout ?? 3,
      memoryMb: c.MemorySize ?? 128,
    };
  } else {
    settings.problems.push(problem('lambda:GetFunctionConfiguration', configuration.reason));
  }
  if (concurrency.status === 'fulfilled') {
    settings.reservedConcurrency = concurrency.value.ReservedConcurrentExecutions ?? null;
  } else {
    settings.problems.push(problem('lambda:GetFunctionConcurrency', concurrency.reason));
  }
  if (eventConfig.status === 'fulfilled') {
    settings.asyncConfig = {
      maximumRetryAttempts: eventConfig.value.MaximumRetryAttempts ?? ASYNC_DEFAULTS.maximumRetryAttempts,
      maximumEventAgeSeconds: eventConfig.value.MaximumEventAgeInSeconds ?? ASYNC_DEFAULTS.maximumEventAgeSeconds,
      configured: true,
    };
  } else if (classifyInvokeError(eventConfig.reason).code === 'ResourceNotFoundException' && settings.configuration) {
    // The function exists and has no event invoke config: AWS's defaults apply.
    settings.asyncConfig = { ...ASYNC_DEFAULTS, configured: false };
  } else {
    settings.problems.push(problem('lambda:GetFunctionEventInvokeConfig', eventConfig.reason));
  }
  return settings;
}

/** Sets retries to 0 and the event age to the pool's start timeout (AWS allows 60 to 21600 seconds). */
export async function putManagedAsyncConfig(
  client: LambdaClient,
  fn: FunctionRef,
  args: { maximumEventAgeSeconds: number },
): Promise<CallProblem | undefined> {
  try {
    await client.send(
      new PutFunctionEventInvokeConfigCommand({
        FunctionName: fn.name,
        ...(fn.qualifier ? { Qualifier: fn.qualifier } : {}),
        MaximumRetryAttempts: 0,
        MaximumEventAgeInSeconds: Math.min(21_600, Math.max(60, Math.round(args.maximumEventAgeSeconds))),
      }),
    );
    return undefined;
  } catch (error) {
    return problem('lambda:PutFunctionEventInvokeConfig', error);
  }
}
