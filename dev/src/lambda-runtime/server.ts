// The HTTP face of the local Lambda runtime: the Lambda REST routes the AWS SDK calls, on loopback.
//   POST /2015-03-31/functions/{FunctionName}/invocations   Invoke
//   GET  /2015-03-31/functions/{FunctionName}               GetFunction
//   GET  /2015-03-31/functions/{FunctionName}/configuration GetFunctionConfiguration
//   the function-settings routes of settings-routes.ts (reserved concurrency, event invoke config)
//   POST /  with a form body                                STS AssumeRole and GetCallerIdentity (identity.ts)
// Every Lambda call is authorized and recorded by identity.ts (which key signed it, for which role).
// Errors carry `x-amzn-errortype` and a JSON body, so the SDK raises its own exception classes.
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import type { Logger } from '../../../src/ops/logger.ts';
import { type LambdaFunctionConfig, parseHandlerSpec } from './config.ts';
import { errorResponse, LambdaApiError } from './errors.ts';
import { type LocalIdentity, StsError, stsErrorXml } from './identity.ts';
import { handleSettings, settingsRoute } from './settings-routes.ts';
import { type AccountScope, functionArn, resolveFunctionTarget } from './function-name.ts';
import { type InvokeResult, type LambdaEngine, MAX_SYNC_PAYLOAD_BYTES } from './runtime.ts';

export interface ServerOptions {
  host: string;
  port: number;
  logger: Logger;
  identity: LocalIdentity;
}

export interface RunningServer {
  endpoint: string;
  close(): Promise<void>;
}

const INVOKE_ROUTE = /^\/2015-03-31\/functions\/([^/]+)\/invocations\/?$/;
const GET_FUNCTION_ROUTE = /^\/2015-03-31\/functions\/([^/]+)\/?$/;
const GET_CONFIGURATION_ROUTE = /^\/2015-03-31\/functions\/([^/]+)\/configuration\/?$/;

interface Reply {
  status: number;
  headers: Record<string, string>;
  body: string;
}

function header(request: http.IncomingMessage, name: string): string | undefined {
  const value = request.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/** Reads the whole body, keeping at most `cap` bytes but counting them all. */
function readBody(request: http.IncomingMessage, cap: number): Promise<{ body: Buffer; bytes: number }> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let kept = 0;
    let bytes = 0;
    request.on('data', (chunk: Buffer) => {
      bytes += chunk.length;
      if (kept < cap) {
        const part = chunk.subarray(0, cap - kept);
        chunks.push(part);
        kept += part.length;
      }
    });
    request.on('end', () => resolve({ body: Buffer.concat(chunks), bytes }));
    request.on('error', reject);
  });
}

function decodeName(raw: string): string {
  try {
    return decodeURIComponent(raw);
  } catch {
    throw new LambdaApiError('InvalidParameterValueException', `Invalid function name: '${raw}'`);
  }
}

function invokeReply(result: InvokeResult): Reply {
  const base = { 'x-amzn-requestid': result.requestId };
  switch (result.kind) {
    case 'accepted':
      return { status: 202, headers: base, body: '' };
    case 'dryRun':
      return { status: 204, headers: base, body: '' };
    case 'completed': {
      const headers: Record<string, string> = { ...base, 'content-type': 'application/json', 'x-amz-executed-version': '$LATEST' };
      if (result.functionError) headers['x-amz-function-error'] = result.functionError;
      if (result.logResult !== undefined) headers['x-amz-log-result'] = result.logResult;
      return { status: 200, headers, body: result.payload };
    }
  }
}

/** The FunctionConfiguration shape of GetFunction and GetFunctionConfiguration. */
export function functionConfiguration(config: LambdaFunctionConfig, scope: AccountScope): Record<string, unknown> {
  const spec = parseHandlerSpec(config.handler);
  return {
    FunctionName: config.name,
    FunctionArn: functionArn(scope, config.name),
    Runtime: 'nodejs24.x',
    Role: `arn:aws:iam::${scope.accountId}:role/local-lambda-runtime`,
    Handler: `${path.basename(spec.modulePath, path.extname(spec.modulePath))}.${spec.exportName}`,
    CodeSize: 0,
    Description: `local: ${config.handler}`,
    Timeout: config.timeoutSeconds,
    MemorySize: config.memoryMb,
    Version: '$LATEST',
    Environment: { Variables: config.environment },
    TracingConfig: { Mode: 'PassThrough' },
    State: config.state,
    LastUpdateStatus: 'Successful',
    PackageType: 'Zip',
    Architectures: ['x86_64'],
    EphemeralStorage: { Size: 512 },
  };
}

export async function startServer(engine: LambdaEngine, options: ServerOptions): Promise<RunningServer> {
  const scope = engine.scope;
  const logger = options.logger;
  const identity = options.identity;
  /** When an event invoke config was put, per function. */
  const eventInvokeConfigPutAt = new Map<string, number>();

  function lookUp(rawName: string, qualifier: string | undefined): LambdaFunctionConfig {
    const name = decodeName(rawName);
    const target = resolveFunctionTarget(name, qualifier, scope);
    const config = engine.config(target.name);
    if (!config)
      throw new LambdaApiError('ResourceNotFoundException', `Function not found: ${functionArn(scope, target.name, target.qualifier)}`);
    return config;
  }

  /** Authorizes a call on a function (recording who signed it) and returns the function's config. */
  function authorizeCall(
    request: http.IncomingMessage,
    action: string,
    rawName: string,
    qualifier: string | undefined,
  ): LambdaFunctionConfig {
    const name = decodeName(rawName);
    const target = resolveFunctionTarget(name, qualifier, scope);
    identity.authorize(header(request, 'authorization'), action, target.name, functionArn(scope, target.name, target.qualifier));
    return lookUp(rawName, qualifier);
  }

  /** Invoke is authorized before the engine sees it; a name the engine will refuse is authorized as written. */
  function authorizeInvoke(request: http.IncomingMessage, rawName: string, qualifier: string | undefined): void {
    let target: { name: string; qualifier?: string } | undefined;
    try {
      target = resolveFunctionTarget(decodeName(rawName), qualifier, scope);
    } catch {
      target = undefined;
    }
    const arn = target ? functionArn(scope, target.name, target.qualifier) : rawName;
    identity.authorize(header(request, 'authorization'), 'lambda:InvokeFunction', target?.name, arn);
  }

  function stsReply(request: http.IncomingMessage, body: string, requestId: string): Reply {
    const headers = { 'content-type': 'text/xml', 'x-amzn-requestid': requestId };
    try {
      return { status: 200, headers, body: identity.handleSts(header(request, 'authorization'), new URLSearchParams(body), requestId) };
    } catch (error) {
      if (error instanceof StsError) return { status: error.status, headers, body: stsErrorXml(error, requestId) };
      throw error;
    }
  }

  async function route(request: http.IncomingMessage, requestId: string): Promise<Reply> {
    const url = new URL(request.url ?? '/', 'http://localhost');
    const qualifier = url.searchParams.get('Qualifier') ?? undefined;
    const invoke = INVOKE_ROUTE.exec(url.pathname);
    if (invoke && request.method === 'POST') {
      const rawName = invoke[1] ?? '';
      authorizeInvoke(request, rawName, qualifier);
      const { body, bytes } = await readBody(request, MAX_SYNC_PAYLOAD_BYTES + 1);
      const result = await engine.invoke(
        {
          functionName: rawName,
          qualifier,
          invocationType: header(request, 'x-amz-invocation-type'),
          logType: header(request, 'x-amz-log-type'),
          body,
          bodyBytes: bytes,
          requestId,
        },
        () => resolveFunctionTarget(decodeName(rawName), qualifier, scope),
      );
      return invokeReply(result);
    }
    if (url.pathname === '/' && request.method === 'POST') {
      const { body } = await readBody(request, 64 * 1024);
      return stsReply(request, body.toString('utf8'), requestId);
    }
    const settings = settingsRoute(request.method ?? '', url.pathname);
    if (settings) {
      const { body } = await readBody(request, 64 * 1024);
      const config = authorizeCall(request, settings.action, settings.rawName, qualifier);
      const answer = handleSettings(
        settings,
        {
          config,
          arn: functionArn(scope, config.name),
          eventInvokeConfigPutAt: eventInvokeConfigPutAt.get(config.name),
          update: (next) => engine.updateSettings(next),
          markEventInvokeConfigPut: (at) => eventInvokeConfigPutAt.set(config.name, at),
        },
        body.toString('utf8'),
      );
      if (answer === undefined) return { status: 204, headers: { 'x-amzn-requestid': requestId }, body: '' };
      return { status: 200, headers: { 'content-type': 'application/json', 'x-amzn-requestid': requestId }, body: JSON.stringify(answer) };
    }
    // Any other route: drain the body first so that the connection stays usable.
    await readBody(request, 0);
    const configuration = request.method === 'GET' ? GET_CONFIGURATION_ROUTE.exec(url.pathname) : null;
    if (configuration) {
      const config = authorizeCall(request, 'lambda:GetFunctionConfiguration', configuration[1] ?? '', qualifier);
      return {
        status: 200,
        headers: { 'content-type': 'application/json', 'x-amzn-requestid': requestId },
        body: JSON.stringify(functionConfiguration(config, scope)),
      };
    }
    const getFunction = request.method === 'GET' ? GET_FUNCTION_ROUTE.exec(url.pathname) : null;
    if (getFunction) {
      const config = authorizeCall(request, 'lambda:GetFunction', getFunction[1] ?? '', qualifier);
      const body = {
        Configuration: functionConfiguration(config, scope),
        Code: { RepositoryType: 'Local', Location: parseHandlerSpec(config.handler).modulePath },
      };
      return { status: 200, headers: { 'content-type': 'application/json', 'x-amzn-requestid': requestId }, body: JSON.stringify(body) };
    }
    throw new LambdaApiError(
      'UnknownOperationException',
      `The local Lambda runtime does not implement ${request.method ?? '?'} ${url.pathname}`,
    );
  }

  const server = http.createServer((request, response) => {
    const requestId = randomUUID();
    const started = Date.now();
    void route(request, requestId)
      .catch((error: unknown): Reply => {
        if (error instanceof LambdaApiError) return errorResponse(error, requestId);
        const message = error instanceof Error ? error.message : String(error);
        logger.error('lambda api request failed', { requestId, method: request.method, url: request.url, error: message });
        return errorResponse(new LambdaApiError('ServiceException', `Internal error: ${message}`), requestId);
      })
      .then((reply) => {
        if (response.destroyed) return;
        response.writeHead(reply.status, { ...reply.headers, 'content-length': String(Buffer.byteLength(reply.body)) });
        response.end(reply.body);
        logger.debug('lambda api request', {
          requestId,
          method: request.method,
          url: request.url,
          status: reply.status,
          durationMs: Date.now() - started,
        });
      });
  });
  server.keepAliveTimeout = 30_000;

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('the Lambda runtime server has no TCP address');
  const port = (address satisfies AddressInfo).port;
  const host = options.host.includes(':') ? `[${options.host}]` : options.host;
  return {
    endpoint: `http://${host}:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
