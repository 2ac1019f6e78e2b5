import { expect } from 'chai';
import { InvalidArgumentError } from 'commander';
import { jsonText } from '../../src/cli/options.ts';

describe('--payload values (jsonText)', () => {
  it('takes any JSON Postgres stores, and keeps it as the text given: pairs of surrogates (emoji) and long numbers included', () => {
    for (const text of ['{"image":"cat.png","n":[1,2]}', '{"mood":"\\ud83d\\ude00","😀":"é"}', '{"id": 9007199254740993}']) {
      expect(jsonText(text), 'the text as given').to.equal(text);
    }
  });

  it('refuses what Postgres cannot store: a NUL, or a lone surrogate in a value or a key', () => {
    const refusal = (text: string) => {
      try {
        jsonText(text);
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
