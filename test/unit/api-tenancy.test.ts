import { expect } from 'chai';
import {
  checkPool,
  functionMatches,
  globMatches,
  OPEN_POLICY,
  parseTenancyPolicy,
  policyRestricts,
  TenancyPolicyError,
} from '../../src/api/tenancy.ts';

const POLICY = parseTenancyPolicy(
  JSON.stringify({
    default: { functions: [], queues: [] },
    namespaces: {
      'team-a': {
        functions: ['team-a-*', 'arn:aws:lambda:eu-west-1:111111111111:function:team-a-*'],
        queues: ['team-a/*'],
        roleArn: 'arn:aws:iam::111111111111:role/team-a-invoker',
      },
      shared: { functions: ['*'], queues: ['*'] },
    },
  }),
);

const pool = (over: Partial<Parameters<typeof checkPool>[1]>) => ({
  namespace: 'team-a',
  functionName: 'team-a-thumbs',
  queue: 'team-a/thumbs',
  usesDefaultDatabase: true,
  ...over,
});

describe('the tenancy policy', () => {
  const cases: Array<{
    name: string;
    pool: Parameters<typeof checkPool>[1];
    verdict: 'allowed' | 'FunctionNotAllowed' | 'QueueNotAllowed';
  }> = [
    { name: 'allows a function and a queue that match the namespace rules', pool: pool({}), verdict: 'allowed' },
    {
      name: 'allows an ARN that matches an ARN pattern',
      pool: pool({ functionName: 'arn:aws:lambda:eu-west-1:111111111111:function:team-a-x' }),
      verdict: 'allowed',
    },
    {
      name: "refuses another account's function written as an ARN, although its name matches a name pattern",
      pool: pool({ functionName: 'arn:aws:lambda:eu-west-1:999999999999:function:team-a-x' }),
      verdict: 'FunctionNotAllowed',
    },
    { name: 'refuses a function of another team', pool: pool({ functionName: 'team-b-thumbs' }), verdict: 'FunctionNotAllowed' },
    {
      name: 'matches the qualifier with the name',
      pool: pool({ functionName: 'team-a-thumbs', functionQualifier: 'live' }),
      verdict: 'allowed',
    },
    {
      name: "refuses a queue outside the namespace's prefix on the default database",
      pool: pool({ queue: 'team-b/thumbs' }),
      verdict: 'QueueNotAllowed',
    },
    {
      name: 'does not restrict the queues of a pool with its own database',
      pool: pool({ queue: 'anything', usesDefaultDatabase: false }),
      verdict: 'allowed',
    },
    { name: 'applies the default rules to a namespace not listed', pool: pool({ namespace: 'team-c' }), verdict: 'FunctionNotAllowed' },
    { name: 'lets an open namespace use anything', pool: pool({ namespace: 'shared', functionName: 'x', queue: 'y' }), verdict: 'allowed' },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const v = checkPool(POLICY, c.pool);
      expect(v.allowed ? 'allowed' : v.reason).to.equal(c.verdict);
    });
  }

  it('names the rule and the patterns in the message', () => {
    const v = checkPool(POLICY, pool({ functionName: 'team-b-thumbs' }));
    expect(v.allowed).to.equal(false);
    if (!v.allowed)
      expect(v.message).to.include('tenancy.namespaces.team-a.functions').and.include('"team-a-*"').and.include('team-b-thumbs');
    const d = checkPool(POLICY, pool({ namespace: 'team-c' }));
    if (!d.allowed) expect(d.message).to.include('tenancy.default.functions').and.include('nothing (an empty list)');
  });

  it('matches globs on the whole string, with * only, and every other character literal', () => {
    expect(globMatches('team-a-*', 'team-a-x')).to.equal(true);
    expect(globMatches('team-a-*', 'xteam-a-x')).to.equal(false);
    expect(globMatches('q.v1', 'qxv1')).to.equal(false);
    expect(globMatches('a*b*c', 'aXXbYc')).to.equal(true);
    expect(globMatches('[a-z]', 'b')).to.equal(false);
  });

  it('answers a glob the same way every time it is matched (compiled once), and * matches anything', () => {
    for (let i = 0; i < 3; i += 1) {
      expect(globMatches('team-*-q', 'team-a-q'), `round ${i}`).to.equal(true);
      expect(globMatches('team-*-q', 'team-a-qx'), `round ${i}`).to.equal(false);
      expect(globMatches('team-*-q', 'team-\n-q'), `round ${i}, a newline`).to.equal(true);
    }
    expect(['', 'x', 'a\nb', '*'].map((v) => globMatches('*', v))).to.deep.equal([true, true, true, true]);
  });

  it('matches function patterns part by part: a * never spans a colon, and a qualifier may follow', () => {
    const cases: Array<[pattern: string, fn: string, matches: boolean]> = [
      // A pattern that starts with * used to match any ARN or partial ARN ending the same way.
      ['*-team-a', 'thumbs-team-a', true],
      ['*-team-a', 'arn:aws:lambda:us-east-1:999999999999:function:evil-team-a', false],
      ['*-team-a', '999999999999:function:evil-team-a', false],
      // Nor may a qualifier carry what the name pattern asks for.
      ['*-team-a', 'evil:x-team-a', false],
      ['*-team-a', 'thumbs-team-a:live', true],
      ['team-a-*', 'team-a-thumbs:live', true],
      ['team-a-*', 'team-a-thumbs:live:extra', false],
      ['team-a-*:live', 'team-a-thumbs:live', true],
      ['team-a-*:live', 'team-a-thumbs:dev', false],
      ['team-a-*:live', 'team-a-thumbs', false],
      // An ARN pattern's * stays within its part: the region, the account, the name.
      ['arn:aws:lambda:*:111111111111:function:team-a-*', 'arn:aws:lambda:eu-west-1:111111111111:function:team-a-x', true],
      ['arn:aws:lambda:*:111111111111:function:team-a-*', 'arn:aws:lambda:eu-west-1:111111111111:function:team-a-x:live', true],
      [
        'arn:aws:lambda:*:111111111111:function:team-a-*',
        'arn:aws:lambda:eu-west-1:999999999999:function:x:111111111111:function:team-a-y',
        false,
      ],
      ['arn:aws:lambda:*:*:function:team-a-*', 'arn:aws:lambda:eu-west-1:999999999999:function:team-a-y', true],
      // A * that is a whole last part is the rest: every function of an account and region, or of a partial ARN's account.
      ['arn:aws:lambda:eu-west-1:123456789012:*', 'arn:aws:lambda:eu-west-1:123456789012:function:x', true],
      ['arn:aws:lambda:eu-west-1:123456789012:*', 'arn:aws:lambda:eu-west-1:123456789012:function:x:live', true],
      ['arn:aws:lambda:eu-west-1:123456789012:*', 'arn:aws:lambda:eu-west-1:999999999999:function:x', false],
      ['arn:aws:lambda:*', 'arn:aws:lambda:us-east-1:999999999999:function:x', true],
      ['123456789012:*', '123456789012:function:x', true],
      ['123456789012:*', 'arn:aws:lambda:us-east-1:123456789012:function:x', false],
      // A part more is a qualifier only where Lambda has one: not the name after an ARN's "function".
      ['arn:aws:lambda:eu-west-1:123456789012:function', 'arn:aws:lambda:eu-west-1:123456789012:function:x', false],
      // * alone is every function, ARNs too.
      ['*', 'arn:aws:lambda:us-east-1:999999999999:function:anything:live', true],
    ];
    expect(cases.map(([pattern, fn]) => [pattern, fn, functionMatches(pattern, fn)])).to.deep.equal(cases);
  });

  it("refuses a pool whose name pattern starts with * when it writes another account's ARN", () => {
    const policy = parseTenancyPolicy(JSON.stringify({ namespaces: { 'team-a': { functions: ['*-team-a'], queues: ['*'] } } }));
    for (const functionName of ['arn:aws:lambda:us-east-1:999999999999:function:evil-team-a', '999999999999:function:evil-team-a']) {
      const v = checkPool(policy, pool({ functionName }));
      expect(v.allowed ? 'allowed' : v.reason, functionName).to.equal('FunctionNotAllowed');
    }
    expect(checkPool(policy, pool({ functionName: 'thumbs-team-a', functionQualifier: 'live' })).allowed).to.equal(true);
  });

  it('knows whether a policy restricts anything', () => {
    expect(policyRestricts(OPEN_POLICY)).to.equal(false);
    expect(policyRestricts(POLICY)).to.equal(true);
  });

  const bad: Array<[string, RegExp]> = [
    ['not json', /not JSON/],
    ['[]', /must be an object/],
    ['{"defaults":{}}', /unknown keys: defaults/],
    ['{"namespaces":{"Team A":{}}}', /not a namespace name/],
    ['{"default":{"functions":"*"}}', /functions must be a list/],
    ['{"default":{"functions":["*"],"queues":["*"],"roleArn":"admin"}}', /roleArn must be an IAM role ARN/],
    ['{"default":{"functions":["*"],"query":[]}}', /unknown keys: query/],
  ];
  for (const [text, error] of bad) {
    it(`refuses ${text} with a clear error`, () => expect(() => parseTenancyPolicy(text)).to.throw(TenancyPolicyError, error));
  }
});
