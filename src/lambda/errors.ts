// A small, closed vocabulary for Invoke outcomes, classified where the call is made, by the error's
// type name and HTTP status (never by its message). See docs/architecture.md §3.

export type InvokeFailure =
  /** 429: back off (for retryAfterMs when Lambda names it), then invoke the same rows again. */
  | { kind: 'throttled'; code: string; message: string; retryAfterMs?: number }
  /** Will fail the same way until someone changes the function or the pool: a condition, not a retry loop. */
  | { kind: 'rejected'; code: string; message: string }
  /** May pass on a later try: the rows stay created and are invoked again after a backoff. */
  | { kind: 'transient'; code: string; message: string };

const REJECTED = new Set([
  'ResourceNotFoundException',
  'AccessDeniedException',
  'InvalidParameterValueException',
  'InvalidRequestContentException',
  'RequestTooLargeException',
  'UnsupportedMediaTypeException',
  'InvalidRuntimeException',
  'InvalidSecurityGroupIDException',
  'InvalidSubnetIDException',
  'InvalidZipFileException',
  'KMSAccessDeniedException',
  'KMSDisabledException',
  'KMSInvalidStateException',
  'KMSNotFoundException',
  'UnrecognizedClientException',
  'InvalidSignatureException',
  'ExpiredTokenException',
  'CredentialsProviderError',
  // STS, assuming a namespace's role: the controller may not assume it, or the role does not exist.
  'AccessDenied',
  'RegionDisabledException',
]);

/** Codes that mean "the function cannot be invoked as configured" for the Ready condition. */
export const FUNCTION_MISSING_CODES = new Set(['ResourceNotFoundException']);
export const ACCESS_DENIED_CODES = new Set([
  'AccessDeniedException',
  'UnrecognizedClientException',
  'InvalidSignatureException',
  'ExpiredTokenException',
  'CredentialsProviderError',
  'AccessDenied',
]);

interface ErrorShape {
  name?: unknown;
  message?: unknown;
  retryAfterSeconds?: unknown;
  $metadata?: { httpStatusCode?: unknown };
  $retryable?: unknown;
}

function shape(error: unknown): ErrorShape {
  return typeof error === 'object' && error !== null ? (error as ErrorShape) : {};
}

/**
 * Total: any thrown value classifies. One whose fields or text cannot be read (a getter that throws, a
 * proxy, no toString to call) is transient.
 */
export function classifyInvokeError(error: unknown): InvokeFailure {
  try {
    return classify(error);
  } catch {
    return { kind: 'transient', code: 'UnknownError', message: 'an error that could not be read' };
  }
}

/** The failure a thrown value stands for, read from its AWS error name and HTTP status; may throw while reading it. */
function classify(error: unknown): InvokeFailure {
  const e = shape(error);
  const code = typeof e.name === 'string' && e.name !== 'Error' ? e.name : 'UnknownError';
  const message = (typeof e.message === 'string' ? e.message : String(error)).slice(0, 500);
  const httpStatus = e.$metadata?.httpStatusCode;
  const status = typeof httpStatus === 'number' ? httpStatus : undefined;

  if (code === 'TooManyRequestsException' || status === 429) {
    const seconds = Number(e.retryAfterSeconds);
    const named = e.retryAfterSeconds !== undefined && Number.isFinite(seconds) && seconds > 0;
    return { kind: 'throttled', code: 'TooManyRequestsException', message, ...(named ? { retryAfterMs: seconds * 1000 } : {}) };
  }
  if (REJECTED.has(code) || status === 403 || status === 404 || status === 413 || status === 415) {
    return { kind: 'rejected', code, message };
  }
  return { kind: 'transient', code, message };
}
