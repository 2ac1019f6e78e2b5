import { expect } from 'chai';
import { LambdaApiError } from '../../dev/src/lambda-runtime/errors.ts';
import { functionArn, resolveFunctionTarget } from '../../dev/src/lambda-runtime/function-name.ts';

const scope = { region: 'us-east-1', accountId: '123456789012' };

function failure(raw: string, qualifier?: string): LambdaApiError {
  try {
    resolveFunctionTarget(raw, qualifier, scope);
  } catch (error) {
    if (error instanceof LambdaApiError) return error;
    throw error;
  }
  throw new Error(`expected ${raw} to be rejected`);
}

describe('lambda runtime function names', () => {
  const resolved: Array<[string, string | undefined, { name: string; qualifier?: string }]> = [
    ['worker', undefined, { name: 'worker' }],
    ['worker:live', undefined, { name: 'worker', qualifier: 'live' }],
    ['worker', 'live', { name: 'worker', qualifier: 'live' }],
    ['worker:live', 'live', { name: 'worker', qualifier: 'live' }],
    ['worker:$LATEST', undefined, { name: 'worker', qualifier: '$LATEST' }],
    ['worker', '', { name: 'worker' }],
    ['123456789012:function:worker', undefined, { name: 'worker' }],
    ['123456789012:function:worker:7', undefined, { name: 'worker', qualifier: '7' }],
    ['arn:aws:lambda:us-east-1:123456789012:function:worker', undefined, { name: 'worker' }],
    ['arn:aws:lambda:us-east-1:123456789012:function:worker:prod', undefined, { name: 'worker', qualifier: 'prod' }],
    ['arn:aws:lambda:us-east-1:123456789012:function:worker', '$LATEST', { name: 'worker', qualifier: '$LATEST' }],
  ];
  for (const [raw, qualifier, expected] of resolved) {
    it(`resolves ${raw}${qualifier === undefined ? '' : ` with Qualifier=${qualifier}`} to ${JSON.stringify(expected)}`, () => {
      expect(resolveFunctionTarget(raw, qualifier, scope)).to.deep.equal(expected);
    });
  }

  const rejected: Array<[string, string | undefined, string, string]> = [
    ['worker:a', 'b', 'InvalidParameterValueException', 'does not match the specified qualifier'],
    ['has space', undefined, 'InvalidParameterValueException', 'functionName'],
    ['worker:a:b', undefined, 'InvalidParameterValueException', 'functionName'],
    ['worker:bad qualifier', undefined, 'InvalidParameterValueException', 'Invalid qualifier'],
    ['arn:aws:s3:us-east-1:123456789012:function:worker', undefined, 'InvalidParameterValueException', 'Invalid function ARN'],
    ['12345:function:worker', undefined, 'InvalidParameterValueException', 'Invalid account id'],
    ['arn:aws:lambda:eu-west-1:123456789012:function:worker', undefined, 'ResourceNotFoundException', 'Function not found'],
    ['arn:aws:lambda:us-east-1:999999999999:function:worker', undefined, 'ResourceNotFoundException', 'Function not found'],
    ['999999999999:function:worker', undefined, 'ResourceNotFoundException', 'Function not found'],
  ];
  for (const [raw, qualifier, type, says] of rejected) {
    it(`answers ${raw}${qualifier === undefined ? '' : ` with Qualifier=${qualifier}`} with ${type}`, () => {
      const error = failure(raw, qualifier);
      expect(error.type).to.equal(type);
      expect(error.message).to.contain(says);
    });
  }

  it('builds the invoked ARN with the qualifier when one was asked for', () => {
    expect(functionArn(scope, 'worker')).to.equal('arn:aws:lambda:us-east-1:123456789012:function:worker');
    expect(functionArn(scope, 'worker', 'live')).to.equal('arn:aws:lambda:us-east-1:123456789012:function:worker:live');
  });
});
