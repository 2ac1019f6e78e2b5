import { expect } from 'chai';
import { InvalidArgumentError } from 'commander';
import { jsonValue } from '../../src/cli/options.ts';

describe('--payload values (jsonValue)', () => {
  it('takes any JSON Postgres stores as given, pairs of surrogates (emoji) included', () => {
    expect(jsonValue('{"image":"cat.png","n":[1,2]}')).to.deep.equal({ image: 'cat.png', n: [1, 2] });
    expect(jsonValue('{"mood":"\\ud83d\\ude00","😀":"é"}')).to.deep.equal({ mood: '😀', '😀': 'é' });
  });

  it('refuses what Postgres cannot store: a NUL, or a lone surrogate in a value or a key', () => {
    const refusal = (text: string) => {
      try {
        jsonValue(text);
        return 'accepted';
      } catch (error) {
        expect(error).to.be.instanceOf(InvalidArgumentError);
        return (error as Error).message;
      }
    };
    expect(refusal('"a\\u0000b"')).to.include('NUL');
    expect(refusal('["x", {"y": "\\ud800"}]')).to.include('lone surrogate');
    expect(refusal('{"\\udc00": 1}')).to.include('lone surrogate');
    expect(refusal('"\\ude00\\ud83d"'), 'a pair in the wrong order is two lone halves').to.include('lone surrogate');
    expect(refusal('not json')).to.include('must be JSON');
  });
});
