import { expect } from 'chai';
import { classifyInvokeError } from '../../src/lambda/errors.ts';

/** An error shaped like the AWS SDK v3 service exceptions thrown by LambdaClient.send(InvokeCommand). */
function awsError(name: string, httpStatusCode: number, message = `${name}: details`, extra: Record<string, unknown> = {}): Error {
  return Object.assign(new Error(message), {
    name,
    $metadata: { httpStatusCode },
    $fault: httpStatusCode >= 500 ? 'server' : 'client',
    ...extra,
  });
}

/** The fields the test cares about; the rest of the failure is not compared. */
type Expected = { kind: 'throttled' | 'rejected' | 'transient'; code?: string; retryAfterMs?: number | 'none' };

interface ErrorCase {
  name: string;
  error: unknown;
  expected: Expected;
}

describe('classifyInvokeError', () => {
  const cases: ErrorCase[] = [
    // Throttles: back off for as long as Lambda asked.
    {
      name: 'waits the 3 seconds a TooManyRequestsException asks for',
      error: awsError('TooManyRequestsException', 429, 'Rate Exceeded.', {
        retryAfterSeconds: '3',
        Reason: 'ReservedFunctionConcurrentInvocationLimitExceeded',
      }),
      expected: { kind: 'throttled', retryAfterMs: 3_000, code: 'TooManyRequestsException' },
    },
    {
      name: 'names no delay when a TooManyRequestsException gives none (the retry policy backs off)',
      error: awsError('TooManyRequestsException', 429),
      expected: { kind: 'throttled', retryAfterMs: 'none', code: 'TooManyRequestsException' },
    },
    {
      name: 'names no delay when the delay is not a number',
      error: awsError('TooManyRequestsException', 429, 'Rate Exceeded.', { retryAfterSeconds: 'soon' }),
      expected: { kind: 'throttled', retryAfterMs: 'none' },
    },
    {
      name: 'names no delay when the delay is zero',
      error: awsError('TooManyRequestsException', 429, 'Rate Exceeded.', { retryAfterSeconds: '0' }),
      expected: { kind: 'throttled', retryAfterMs: 'none' },
    },
    {
      name: 'treats an unnamed HTTP 429 as a throttle',
      error: { $metadata: { httpStatusCode: 429 } },
      expected: { kind: 'throttled', retryAfterMs: 'none', code: 'TooManyRequestsException' },
    },

    // Rejections: the function or the pool must change; retrying will not help.
    {
      name: 'rejects on ResourceNotFoundException',
      error: awsError('ResourceNotFoundException', 404),
      expected: { kind: 'rejected', code: 'ResourceNotFoundException' },
    },
    {
      name: 'rejects on AccessDeniedException',
      error: awsError('AccessDeniedException', 403),
      expected: { kind: 'rejected', code: 'AccessDeniedException' },
    },
    {
      name: 'rejects on InvalidParameterValueException',
      error: awsError('InvalidParameterValueException', 400),
      expected: { kind: 'rejected', code: 'InvalidParameterValueException' },
    },
    {
      name: 'rejects on InvalidRequestContentException',
      error: awsError('InvalidRequestContentException', 400),
      expected: { kind: 'rejected', code: 'InvalidRequestContentException' },
    },
    {
      name: 'rejects on RequestTooLargeException',
      error: awsError('RequestTooLargeException', 413),
      expected: { kind: 'rejected', code: 'RequestTooLargeException' },
    },
    {
      name: 'rejects on KMSAccessDeniedException',
      error: awsError('KMSAccessDeniedException', 502),
      expected: { kind: 'rejected', code: 'KMSAccessDeniedException' },
    },
    {
      name: 'rejects on KMSDisabledException',
      error: awsError('KMSDisabledException', 502),
      expected: { kind: 'rejected', code: 'KMSDisabledException' },
    },
    {
      name: 'rejects on KMSInvalidStateException',
      error: awsError('KMSInvalidStateException', 502),
      expected: { kind: 'rejected', code: 'KMSInvalidStateException' },
    },
    {
      name: 'rejects on KMSNotFoundException',
      error: awsError('KMSNotFoundException', 502),
      expected: { kind: 'rejected', code: 'KMSNotFoundException' },
    },
    {
      name: 'rejects on an unrecognized client',
      error: awsError('UnrecognizedClientException', 403),
      expected: { kind: 'rejected', code: 'UnrecognizedClientException' },
    },
    {
      name: 'rejects on ResourceNotFoundException even without HTTP metadata',
      error: { name: 'ResourceNotFoundException', message: 'Function not found' },
      expected: { kind: 'rejected' },
    },

    // Transient: may pass later.
    {
      name: 'retries a ResourceConflictException',
      error: awsError('ResourceConflictException', 409),
      expected: { kind: 'transient', code: 'ResourceConflictException' },
    },
    {
      name: 'retries a ServiceException',
      error: awsError('ServiceException', 500),
      expected: { kind: 'transient', code: 'ServiceException' },
    },
    {
      name: 'retries a ResourceNotReadyException',
      error: awsError('ResourceNotReadyException', 502),
      expected: { kind: 'transient', code: 'ResourceNotReadyException' },
    },
    {
      name: 'retries an EC2ThrottledException',
      error: awsError('EC2ThrottledException', 502),
      expected: { kind: 'transient', code: 'EC2ThrottledException' },
    },
    {
      name: 'retries a request timeout',
      error: Object.assign(new Error('Connection timed out after 5000 ms'), { name: 'TimeoutError' }),
      expected: { kind: 'transient', code: 'TimeoutError' },
    },
    {
      name: 'retries a refused connection',
      error: Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:9001'), { code: 'ECONNREFUSED', errno: -111, syscall: 'connect' }),
      expected: { kind: 'transient', code: 'UnknownError' },
    },
    { name: 'retries an unknown object', error: { what: 'is this' }, expected: { kind: 'transient', code: 'UnknownError' } },
    { name: 'retries a thrown string', error: 'socket hang up', expected: { kind: 'transient', code: 'UnknownError' } },
    { name: 'retries a thrown null', error: null, expected: { kind: 'transient', code: 'UnknownError' } },
    { name: 'retries a thrown undefined', error: undefined, expected: { kind: 'transient', code: 'UnknownError' } },
    // Errors that cannot be read as text: classifying must not throw (the invoker would lose the call's answer).
    {
      name: 'retries an object with no prototype (String() of it throws)',
      error: Object.create(null) as unknown,
      expected: { kind: 'transient', code: 'UnknownError' },
    },
    {
      name: 'retries an error whose fields throw when read',
      error: Object.defineProperties(
        {},
        {
          name: {
            get: () => {
              throw new Error('no name');
            },
          },
          message: {
            get: () => {
              throw new Error('no message');
            },
          },
          $metadata: {
            get: () => {
              throw new Error('no metadata');
            },
          },
        },
      ) as unknown,
      expected: { kind: 'transient', code: 'UnknownError' },
    },

    // Never by message.
    {
      name: 'retries a ServiceException whose message mentions ResourceNotFoundException',
      error: awsError('ServiceException', 500, 'ResourceNotFoundException: upstream said so'),
      expected: { kind: 'transient', code: 'ServiceException' },
    },
    {
      name: 'retries a plain Error whose message mentions AccessDeniedException',
      error: new Error('AccessDeniedException: User is not authorized to perform lambda:InvokeFunction'),
      expected: { kind: 'transient', code: 'UnknownError' },
    },
    {
      name: 'does not throttle a ServiceException whose message mentions TooManyRequestsException',
      error: awsError('ServiceException', 500, 'TooManyRequestsException upstream', { retryAfterSeconds: '60' }),
      expected: { kind: 'transient', code: 'ServiceException' },
    },
  ];

  for (const c of cases) {
    it(c.name, () => {
      const failure = classifyInvokeError(c.error);
      const { retryAfterMs, ...rest } = c.expected;
      expect(failure).to.deep.include(rest);
      if (retryAfterMs === 'none') expect(failure).not.to.have.property('retryAfterMs');
      else if (retryAfterMs !== undefined) expect(failure).to.have.property('retryAfterMs', retryAfterMs);
    });
  }

  it('leaves the delay of a transient failure to the retry policy', () => {
    const failure = classifyInvokeError(awsError('ServiceException', 500));
    expect(failure).to.deep.equal({ kind: 'transient', code: 'ServiceException', message: 'ServiceException: details' });
  });

  it('says the error could not be read when its message cannot be', () => {
    expect(classifyInvokeError(Object.create(null) as unknown).message).to.equal('an error that could not be read');
  });

  it('keeps the message, cut to 500 characters, for the condition and the row', () => {
    expect(
      classifyInvokeError(awsError('ResourceNotFoundException', 404, 'Function not found: arn:aws:lambda:eu-west-1:1:function:f')).message,
    ).to.equal('Function not found: arn:aws:lambda:eu-west-1:1:function:f');
    expect(classifyInvokeError('socket hang up').message).to.equal('socket hang up');
    expect(classifyInvokeError(awsError('ServiceException', 500, 'x'.repeat(2000))).message).to.have.length(500);
  });
});
