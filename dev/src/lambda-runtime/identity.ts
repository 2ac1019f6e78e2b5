// Who is calling: the local runtime's small IAM. It answers STS AssumeRole (the AWS query protocol: a
// form-encoded POST, an XML answer) with temporary keys it remembers, reads the access key out of every
// SigV4 Authorization header, refuses keys it never issued once roles are in use, expired ones, and
// actions a test denied, and records which key signed each call, so that a test can prove which role
// invoked which function. It checks who signed, not the signature itself.
import { randomBytes, randomUUID } from 'node:crypto';
import { LambdaApiError } from './errors.ts';

export interface AssumedRole {
  roleArn: string;
  sessionName: string;
  accessKeyId: string;
  expiration: Date;
}

export interface SignedCall {
  at: number;
  /** `lambda:Invoke`, `lambda:GetFunctionConfiguration`, ... */
  action: string;
  functionName?: string;
  accessKeyId: string;
  /** The role the key was issued for; undefined for the caller's own (static) key. */
  roleArn?: string;
}

const ROLE_ARN = /^arn:aws[a-zA-Z-]*:iam::(\d{12}):role\/([\w+=,.@/-]{1,512})$/;
const SESSION_NAME = /^[\w+=,.@-]{2,64}$/;
const CALLS_KEPT = 100_000;

export class StsError extends Error {
  constructor(
    readonly code: string,
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export class LocalIdentity {
  private readonly issued = new Map<string, AssumedRole & { secretAccessKey: string; sessionToken: string }>();
  private readonly assumed: AssumedRole[] = [];
  private readonly calls: SignedCall[] = [];
  private readonly denied = new Set<string>();
  private readonly grants = new Map<string, Set<string>>();
  /** Lifetime of the keys AssumeRole hands out; shorter than AWS allows, to exercise refreshes. */
  credentialSeconds: number | undefined;

  constructor(private readonly accountId: string) {}

  /** Every later call of these actions (`lambda:GetFunctionConcurrency`, `sts:AssumeRole`, ...) is refused. */
  deny(actions: readonly string[]): void {
    for (const a of actions) this.denied.add(a);
  }

  allow(actions: readonly string[]): void {
    for (const a of actions) this.denied.delete(a);
  }

  /** A role may invoke only these functions (by name); other roles and the static key are not limited. */
  grant(roleArn: string, functionNames: readonly string[]): void {
    this.grants.set(roleArn, new Set(functionNames));
  }

  assumedRoles(): AssumedRole[] {
    return this.assumed.map((a) => ({ ...a }));
  }

  signedCalls(): SignedCall[] {
    return this.calls.map((c) => ({ ...c }));
  }

  /** Checks and records a Lambda API call; throws the error Lambda would answer with. */
  authorize(authorization: string | undefined, action: string, functionName: string | undefined, functionArn: string): void {
    const accessKeyId = accessKeyOf(authorization);
    const role = accessKeyId ? this.issued.get(accessKeyId) : undefined;
    if (accessKeyId?.startsWith('ASIA') && !role) {
      throw new LambdaApiError('UnrecognizedClientException', 'The security token included in the request is invalid.');
    }
    if (role && role.expiration.getTime() <= Date.now()) {
      throw new LambdaApiError('ExpiredTokenException', 'The security token included in the request is expired');
    }
    const principal = role
      ? `arn:aws:sts::${this.accountId}:assumed-role/${roleName(role.roleArn)}/${role.sessionName}`
      : `arn:aws:iam::${this.accountId}:user/local`;
    const granted = role ? this.grants.get(role.roleArn) : undefined;
    if (this.denied.has(action) || (granted && functionName !== undefined && !granted.has(functionName))) {
      throw new LambdaApiError(
        'AccessDeniedException',
        `User: ${principal} is not authorized to perform: ${action} on resource: ${functionArn} because no identity-based policy allows the ${action} action`,
      );
    }
    this.calls.push({
      at: Date.now(),
      action,
      ...(functionName !== undefined ? { functionName } : {}),
      accessKeyId: accessKeyId ?? 'unsigned',
      ...(role ? { roleArn: role.roleArn } : {}),
    });
    if (this.calls.length > CALLS_KEPT) this.calls.splice(0, this.calls.length - CALLS_KEPT);
  }

  /** STS over the query protocol: the form body of POST /. Returns the XML answer, or throws StsError. */
  handleSts(authorization: string | undefined, form: URLSearchParams, requestId: string): string {
    const action = form.get('Action');
    if (action === 'GetCallerIdentity') {
      const key = accessKeyOf(authorization);
      const role = key ? this.issued.get(key) : undefined;
      const arn = role
        ? `arn:aws:sts::${this.accountId}:assumed-role/${roleName(role.roleArn)}/${role.sessionName}`
        : `arn:aws:iam::${this.accountId}:user/local`;
      return stsXml(
        'GetCallerIdentity',
        `<Arn>${escapeXml(arn)}</Arn><UserId>${escapeXml(key ?? 'anonymous')}</UserId><Account>${this.accountId}</Account>`,
        requestId,
      );
    }
    if (action !== 'AssumeRole')
      throw new StsError('InvalidAction', 400, `Could not find operation ${action ?? '(none)'} for version 2011-06-15`);
    const roleArn = form.get('RoleArn') ?? '';
    const sessionName = form.get('RoleSessionName') ?? '';
    if (!ROLE_ARN.test(roleArn)) throw new StsError('ValidationError', 400, `${roleArn} is invalid`);
    if (!SESSION_NAME.test(sessionName)) {
      throw new StsError(
        'ValidationError',
        400,
        `1 validation error detected: Value '${sessionName}' at 'roleSessionName' failed to satisfy constraint`,
      );
    }
    const requested = Number(form.get('DurationSeconds') ?? 3600);
    if (!Number.isInteger(requested) || requested < 900 || requested > 43_200) {
      throw new StsError('ValidationError', 400, `The requested DurationSeconds exceeds the MaxSessionDuration set for this role.`);
    }
    if (this.denied.has('sts:AssumeRole')) {
      throw new StsError(
        'AccessDenied',
        403,
        `User: arn:aws:iam::${this.accountId}:user/local is not authorized to perform: sts:AssumeRole on resource: ${roleArn}`,
      );
    }
    const seconds = this.credentialSeconds ?? requested;
    const credentials = {
      roleArn,
      sessionName,
      accessKeyId: `ASIA${randomBytes(10).toString('hex').toUpperCase().slice(0, 16)}`,
      secretAccessKey: randomBytes(30).toString('base64'),
      sessionToken: randomBytes(60).toString('base64'),
      expiration: new Date(Math.floor(Date.now() / 1000) * 1000 + seconds * 1000),
    };
    this.issued.set(credentials.accessKeyId, credentials);
    this.assumed.push({ roleArn, sessionName, accessKeyId: credentials.accessKeyId, expiration: credentials.expiration });
    const roleId = `AROA${randomUUID().replaceAll('-', '').toUpperCase().slice(0, 17)}`;
    return stsXml(
      'AssumeRole',
      `<Credentials><AccessKeyId>${credentials.accessKeyId}</AccessKeyId><SecretAccessKey>${escapeXml(credentials.secretAccessKey)}</SecretAccessKey>` +
        `<SessionToken>${escapeXml(credentials.sessionToken)}</SessionToken><Expiration>${credentials.expiration.toISOString()}</Expiration></Credentials>` +
        `<AssumedRoleUser><AssumedRoleId>${roleId}:${escapeXml(sessionName)}</AssumedRoleId>` +
        `<Arn>arn:aws:sts::${this.accountId}:assumed-role/${escapeXml(roleName(roleArn))}/${escapeXml(sessionName)}</Arn></AssumedRoleUser>`,
      requestId,
    );
  }
}

/** The access key of a SigV4 Authorization header: `AWS4-HMAC-SHA256 Credential=AKID/date/region/service/aws4_request, ...`. */
export function accessKeyOf(authorization: string | undefined): string | undefined {
  return /Credential=([^/,\s]+)\//.exec(authorization ?? '')?.[1];
}

function roleName(roleArn: string): string {
  const path = ROLE_ARN.exec(roleArn)?.[2] ?? roleArn;
  return path.slice(path.lastIndexOf('/') + 1);
}

function escapeXml(value: string): string {
  return value.replaceAll('&', '&amp;').replaceAll('<', '&lt;').replaceAll('>', '&gt;').replaceAll('"', '&quot;');
}

function stsXml(action: string, result: string, requestId: string): string {
  return (
    `<${action}Response xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><${action}Result>${result}</${action}Result>` +
    `<ResponseMetadata><RequestId>${requestId}</RequestId></ResponseMetadata></${action}Response>`
  );
}

export function stsErrorXml(error: StsError, requestId: string): string {
  const type = error.status >= 500 ? 'Receiver' : 'Sender';
  return (
    `<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>${type}</Type><Code>${error.code}</Code>` +
    `<Message>${escapeXml(error.message)}</Message></Error><RequestId>${requestId}</RequestId></ErrorResponse>`
  );
}
