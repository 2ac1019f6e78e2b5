import { expect } from 'chai';
import type { FunctionRef } from '../../src/api/types.ts';
import { regionOf } from '../../src/lambda/invoker.ts';

describe('regionOf', () => {
  const cases: Array<{ name: string; fn: FunctionRef; expected: string | undefined }> = [
    { name: 'uses the region field of a plain function name', fn: { name: 'make-thumbnails', region: 'eu-west-1' }, expected: 'eu-west-1' },
    {
      name: 'prefers the region field over the region in a full ARN',
      fn: { name: 'arn:aws:lambda:us-east-1:123456789012:function:make-thumbnails', region: 'eu-west-1' },
      expected: 'eu-west-1',
    },
    {
      name: 'reads the region of a full ARN',
      fn: { name: 'arn:aws:lambda:ap-southeast-2:123456789012:function:make-thumbnails' },
      expected: 'ap-southeast-2',
    },
    {
      name: 'reads the region of a full ARN with a qualifier',
      fn: { name: 'arn:aws:lambda:eu-central-1:123456789012:function:make-thumbnails:live' },
      expected: 'eu-central-1',
    },
    {
      name: 'reads the region of a China partition ARN',
      fn: { name: 'arn:aws-cn:lambda:cn-north-1:123456789012:function:f' },
      expected: 'cn-north-1',
    },
    {
      name: 'reads the region of a GovCloud ARN',
      fn: { name: 'arn:aws-us-gov:lambda:us-gov-west-1:123456789012:function:f' },
      expected: 'us-gov-west-1',
    },
    { name: 'has no region for a plain name', fn: { name: 'make-thumbnails' }, expected: undefined },
    { name: 'has no region for a partial ARN', fn: { name: '123456789012:function:make-thumbnails' }, expected: undefined },
  ];

  for (const c of cases) {
    it(c.name, () => {
      expect(regionOf(c.fn)).to.equal(c.expected);
    });
  }
});
