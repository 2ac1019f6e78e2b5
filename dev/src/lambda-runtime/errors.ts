// The Lambda API errors the local runtime answers with, their HTTP status codes and body shapes.
// Each body field is named as @aws-sdk/client-lambda's error schema reads it (some read `message`,
// some `Message`); `x-amzn-errortype` tells the SDK which exception class to raise.

export const LAMBDA_ERROR_TYPE_NAMES = [
  'ResourceNotFoundException',
  'InvalidParameterValueException',
  'InvalidRequestContentException',
  'RequestTooLargeException',
  'TooManyRequestsException',
  'ResourceConflictException',
  'ResourceNotReadyException',
  'ServiceException',
  'UnsupportedMediaTypeException',
  'UnknownOperationException',
  'AccessDeniedException',
  'UnrecognizedClientException',
  'ExpiredTokenException',
] as const;

export type LambdaErrorType = (typeof LAMBDA_ERROR_TYPE_NAMES)[number];

interface ErrorSpec {
  status: number;
  fault: 'User' | 'Service';
  messageField: 'message' | 'Message';
}

export const LAMBDA_ERROR_TYPES: Record<LambdaErrorType, ErrorSpec> = {
  ResourceNotFoundException: { status: 404, fault: 'User', messageField: 'Message' },
  InvalidParameterValueException: { status: 400, fault: 'User', messageField: 'message' },
  InvalidRequestContentException: { status: 400, fault: 'User', messageField: 'message' },
  RequestTooLargeException: { status: 413, fault: 'User', messageField: 'message' },
  TooManyRequestsException: { status: 429, fault: 'User', messageField: 'message' },
  ResourceConflictException: { status: 409, fault: 'User', messageField: 'message' },
  ResourceNotReadyException: { status: 502, fault: 'Service', messageField: 'message' },
  ServiceException: { status: 500, fault: 'Service', messageField: 'Message' },
  UnsupportedMediaTypeException: { status: 415, fault: 'User', messageField: 'message' },
  // Not a Lambda error class: what the runtime answers for a route it does not implement.
  UnknownOperationException: { status: 404, fault: 'User', messageField: 'message' },
  // Authorization: a denied action, an access key the runtime never issued, a temporary key past its expiry.
  AccessDeniedException: { status: 403, fault: 'User', messageField: 'Message' },
  UnrecognizedClientException: { status: 403, fault: 'User', messageField: 'message' },
  ExpiredTokenException: { status: 403, fault: 'User', messageField: 'message' },
};

/** Why an Invoke call was throttled, as AWS reports it in `Reason`. */
export const THROTTLE_REASONS = [
  'ReservedFunctionConcurrentInvocationLimitExceeded',
  'CallerRateLimitExceeded',
  'ConcurrentInvocationLimitExceeded',
] as const;
export type ThrottleReason = (typeof THROTTLE_REASONS)[number];

export interface ThrottleDetails {
  reason: ThrottleReason;
  retryAfterSeconds: number;
}

/** An error the runtime answers an API call with. */
export class LambdaApiError extends Error {
  override readonly name = 'LambdaApiError';
  readonly type: LambdaErrorType;
  readonly throttle: ThrottleDetails | undefined;

  constructor(type: LambdaErrorType, message: string, throttle?: ThrottleDetails) {
    super(message);
    this.type = type;
    this.throttle = throttle;
  }

  get status(): number {
    return LAMBDA_ERROR_TYPES[this.type].status;
  }
}

export function throttled(details: ThrottleDetails): LambdaApiError {
  return new LambdaApiError('TooManyRequestsException', 'Rate Exceeded.', details);
}

export interface ErrorResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/** The HTTP answer for an API error, in the shape the AWS SDK parses. */
export function errorResponse(error: LambdaApiError, requestId: string): ErrorResponse {
  const spec = LAMBDA_ERROR_TYPES[error.type];
  const body: Record<string, string | number> = { Type: spec.fault, [spec.messageField]: error.message };
  const headers: Record<string, string> = {
    'content-type': 'application/json',
    'x-amzn-errortype': error.type,
    'x-amzn-requestid': requestId,
  };
  if (error.throttle) {
    body.Reason = error.throttle.reason;
    body.retryAfterSeconds = String(error.throttle.retryAfterSeconds);
    headers['retry-after'] = String(error.throttle.retryAfterSeconds);
  }
  return { status: spec.status, headers, body: JSON.stringify(body) };
}
