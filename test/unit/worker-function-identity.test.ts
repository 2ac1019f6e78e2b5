import { expect } from 'chai';
import { mismatch, rowFunction, runningFunction } from '../../packages/worker/src/function-identity.ts';

describe('the function an invocation row names, against the running function', () => {
  const rows: Array<[string, string | null, { name: string; qualifier?: string }]> = [
    ['thumbs', null, { name: 'thumbs' }],
    ['thumbs:live', null, { name: 'thumbs', qualifier: 'live' }],
    ['thumbs', 'live', { name: 'thumbs', qualifier: 'live' }],
    ['123456789012:function:thumbs', null, { name: 'thumbs' }],
    ['123456789012:function:thumbs:7', null, { name: 'thumbs', qualifier: '7' }],
    ['arn:aws:lambda:eu-west-1:123456789012:function:thumbs', null, { name: 'thumbs' }],
    ['arn:aws:lambda:eu-west-1:123456789012:function:thumbs:live', null, { name: 'thumbs', qualifier: 'live' }],
    // A function may be named "function": only the ARN forms have the marker.
    ['function', null, { name: 'function' }],
    ['function:live', null, { name: 'function', qualifier: 'live' }],
    ['123456789012:function:function', null, { name: 'function' }],
    ['arn:aws:lambda:eu-west-1:123456789012:function:function:7', null, { name: 'function', qualifier: '7' }],
  ];
  for (const [name, qualifier, expected] of rows) {
    it(`reads ${name}${qualifier ? ` with qualifier ${qualifier}` : ''}`, () =>
      expect(rowFunction(name, qualifier)).to.deep.equal(expected));
  }

  it('reads the running function from AWS_LAMBDA_FUNCTION_NAME and the qualifier of the invoked ARN', () => {
    const env = { AWS_LAMBDA_FUNCTION_NAME: 'thumbs' };
    expect(runningFunction(env, 'arn:aws:lambda:eu-west-1:123456789012:function:thumbs')).to.deep.equal({ name: 'thumbs' });
    expect(runningFunction(env, 'arn:aws:lambda:eu-west-1:123456789012:function:thumbs:live')).to.deep.equal({
      name: 'thumbs',
      qualifier: 'live',
    });
    expect(runningFunction({}, undefined)).to.equal(undefined);
  });

  const cases: Array<{
    name: string;
    row: { name: string; qualifier?: string };
    running: { name: string; qualifier?: string };
    ok: boolean;
  }> = [
    { name: 'accepts its own function', row: { name: 'thumbs' }, running: { name: 'thumbs' }, ok: true },
    {
      name: 'accepts an unqualified row whatever version runs',
      row: { name: 'thumbs' },
      running: { name: 'thumbs', qualifier: '3' },
      ok: true,
    },
    {
      name: 'accepts the alias the row names',
      row: { name: 'thumbs', qualifier: 'live' },
      running: { name: 'thumbs', qualifier: 'live' },
      ok: true,
    },
    { name: 'refuses another function', row: { name: 'billing' }, running: { name: 'thumbs' }, ok: false },
    {
      name: 'refuses another alias of the same function',
      row: { name: 'thumbs', qualifier: 'live' },
      running: { name: 'thumbs', qualifier: 'canary' },
      ok: false,
    },
    {
      name: 'refuses an unqualified run of a row that names an alias',
      row: { name: 'thumbs', qualifier: 'live' },
      running: { name: 'thumbs' },
      ok: false,
    },
  ];
  for (const c of cases) {
    it(c.name, () => expect(mismatch(c.row, c.running) === undefined).to.equal(c.ok));
  }
});
