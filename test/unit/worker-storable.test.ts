import { expect } from 'chai';
import { storableJson, storableText } from '../../packages/worker/src/storable.ts';

describe('values Postgres can store', () => {
  const texts: Array<[string, string, string]> = [
    ['keeps ordinary text, accents and whole emoji as they are', 'café 日本 \ud83d\ude00', 'café 日本 \ud83d\ude00'],
    ['replaces a NUL character', 'bad byte \u0000 here', 'bad byte \ufffd here'],
    ['replaces a high surrogate with no low one after it', 'cut \ud83d', 'cut \ufffd'],
    ['replaces a low surrogate with no high one before it', '\ude00 cut', '\ufffd cut'],
    ['keeps the backslash-u text of an escaped escape', 'a literal \\u0000', 'a literal \\u0000'],
  ];
  for (const [name, input, expected] of texts) {
    it(name, () => expect(storableText(input)).to.equal(expected));
  }

  it('makes a result storable in its values and its keys, through nested objects, arrays and toJSON', () => {
    const result = { ['k\u0000']: ['v\ud800', { deep: 'x\u0000' }], at: new Date(0), kept: 'ok' };
    expect(JSON.parse(storableJson(result))).to.deep.equal({
      'k\ufffd': ['v\ufffd', { deep: 'x\ufffd' }],
      at: '1970-01-01T00:00:00.000Z',
      kept: 'ok',
    });
  });

  it('stores an undefined result as JSON null', () => expect(storableJson(undefined)).to.equal('null'));
});
