// Lambda's function-settings API on the local runtime, with AWS's routes, shapes and errors:
//   GET  /2019-09-30/functions/{FunctionName}/concurrency           GetFunctionConcurrency
//   PUT  /2017-10-31/functions/{FunctionName}/concurrency           PutFunctionConcurrency
//   DELETE /2017-10-31/functions/{FunctionName}/concurrency         DeleteFunctionConcurrency
//   GET  /2019-09-25/functions/{FunctionName}/event-invoke-config   GetFunctionEventInvokeConfig
//   PUT  /2019-09-25/functions/{FunctionName}/event-invoke-config   PutFunctionEventInvokeConfig
// A function has an event invoke config, as on AWS, once one was put, or when its own settings differ
// from the async defaults (2 retries, 6 hours); otherwise Get answers ResourceNotFoundException.
import { DEFAULT_ASYNC_SETTINGS, type LambdaFunctionConfig } from './config.ts';
import { LambdaApiError } from './errors.ts';

export interface SettingsRoute {
  action: string;
  method: string;
  rawName: string;
  kind: 'concurrency' | 'event-invoke-config';
}

const CONCURRENCY_GET = /^\/2019-09-30\/functions\/([^/]+)\/concurrency\/?$/;
const CONCURRENCY_SET = /^\/2017-10-31\/functions\/([^/]+)\/concurrency\/?$/;
const EVENT_INVOKE_CONFIG = /^\/2019-09-25\/functions\/([^/]+)\/event-invoke-config\/?$/;

/** The settings route of a request, if it is one. */
export function settingsRoute(method: string, pathname: string): SettingsRoute | undefined {
  const get = CONCURRENCY_GET.exec(pathname);
  if (get && method === 'GET') return { action: 'lambda:GetFunctionConcurrency', method, rawName: get[1] ?? '', kind: 'concurrency' };
  const set = CONCURRENCY_SET.exec(pathname);
  if (set && (method === 'PUT' || method === 'DELETE')) {
    const action = method === 'PUT' ? 'lambda:PutFunctionConcurrency' : 'lambda:DeleteFunctionConcurrency';
    return { action, method, rawName: set[1] ?? '', kind: 'concurrency' };
  }
  const eic = EVENT_INVOKE_CONFIG.exec(pathname);
  if (eic && (method === 'GET' || method === 'PUT')) {
    const action = method === 'GET' ? 'lambda:GetFunctionEventInvokeConfig' : 'lambda:PutFunctionEventInvokeConfig';
    return { action, method, rawName: eic[1] ?? '', kind: 'event-invoke-config' };
  }
  return undefined;
}

export interface SettingsTarget {
  config: LambdaFunctionConfig;
  arn: string;
  /** When an event invoke config was last put (epoch ms), if ever. */
  eventInvokeConfigPutAt: number | undefined;
  update(next: LambdaFunctionConfig): void;
  markEventInvokeConfigPut(at: number): void;
}

/** Answers a settings route for one function. Returns the JSON body of a 200 (or undefined for a 204). */
export function handleSettings(route: SettingsRoute, target: SettingsTarget, body: string): Record<string, unknown> | undefined {
  const { config } = target;
  if (route.kind === 'concurrency') {
    if (route.method === 'GET') {
      return config.reservedConcurrency === undefined ? {} : { ReservedConcurrentExecutions: config.reservedConcurrency };
    }
    if (route.method === 'DELETE') {
      const { reservedConcurrency: _dropped, ...rest } = config;
      target.update(rest);
      return undefined;
    }
    const input = parseBody(body);
    const value = input.ReservedConcurrentExecutions;
    if (typeof value !== 'number' || !Number.isInteger(value) || value < 0) {
      throw new LambdaApiError(
        'InvalidParameterValueException',
        `1 validation error detected: Value '${String(value)}' at 'reservedConcurrentExecutions' failed to satisfy constraint: Member must have value greater than or equal to 0`,
      );
    }
    target.update({ ...config, reservedConcurrency: value });
    return { ReservedConcurrentExecutions: value };
  }

  if (route.method === 'GET') {
    const differs =
      config.async.maximumRetryAttempts !== DEFAULT_ASYNC_SETTINGS.maximumRetryAttempts ||
      config.async.maximumEventAgeSeconds !== DEFAULT_ASYNC_SETTINGS.maximumEventAgeSeconds;
    if (target.eventInvokeConfigPutAt === undefined && !differs) {
      throw new LambdaApiError('ResourceNotFoundException', `The function ${target.arn} doesn't have an EventInvokeConfig`);
    }
    return eventInvokeConfig(target);
  }
  const input = parseBody(body);
  const retries = input.MaximumRetryAttempts;
  const age = input.MaximumEventAgeInSeconds;
  if (retries !== undefined && (typeof retries !== 'number' || !Number.isInteger(retries) || retries < 0 || retries > 2)) {
    throw new LambdaApiError(
      'InvalidParameterValueException',
      `1 validation error detected: Value '${String(retries)}' at 'maximumRetryAttempts' failed to satisfy constraint: Member must have value less than or equal to 2`,
    );
  }
  if (age !== undefined && (typeof age !== 'number' || !Number.isInteger(age) || age < 60 || age > 21_600)) {
    throw new LambdaApiError(
      'InvalidParameterValueException',
      `1 validation error detected: Value '${String(age)}' at 'maximumEventAgeInSeconds' failed to satisfy constraint: Member must have value between 60 and 21600`,
    );
  }
  // Put replaces the whole config: what it leaves out goes back to the defaults.
  target.update({
    ...config,
    async: {
      ...config.async,
      maximumRetryAttempts: (retries ?? DEFAULT_ASYNC_SETTINGS.maximumRetryAttempts) as 0 | 1 | 2,
      maximumEventAgeSeconds: age ?? DEFAULT_ASYNC_SETTINGS.maximumEventAgeSeconds,
    },
  });
  target.markEventInvokeConfigPut(Date.now());
  return eventInvokeConfig(target);
}

function eventInvokeConfig(target: SettingsTarget): Record<string, unknown> {
  return {
    FunctionArn: target.arn,
    LastModified: Math.floor((target.eventInvokeConfigPutAt ?? Date.now()) / 1000),
    MaximumRetryAttempts: target.config.async.maximumRetryAttempts,
    MaximumEventAgeInSeconds: target.config.async.maximumEventAgeSeconds,
    DestinationConfig: { OnSuccess: {}, OnFailure: {} },
  };
}

function parseBody(body: string): Record<string, unknown> {
  try {
    const value: unknown = JSON.parse(body || '{}');
    if (typeof value === 'object' && value !== null && !Array.isArray(value)) return value as Record<string, unknown>;
  } catch {
    // answered below
  }
  throw new LambdaApiError('InvalidRequestContentException', 'Could not parse request body into json');
}
