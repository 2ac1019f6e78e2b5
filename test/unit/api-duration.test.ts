import { expect } from 'chai';
import { DurationError, parseDurationSeconds } from '../../src/api/duration.ts';

describe('parseDurationSeconds', () => {
  const valid: Array<[string, number]> = [
    ['7d', 604_800],
    ['36h', 129_600],
    ['90m', 5_400],
    ['45s', 45],
    ['3600', 3_600],
    ['0', 0],
    [' 2h ', 7_200],
  ];
  for (const [text, seconds] of valid) {
    it(`reads ${JSON.stringify(text)} as ${seconds} s`, () => expect(parseDurationSeconds(text, '--retention')).to.equal(seconds));
  }
  const invalid = ['', '7 days', '1.5h', '-1d', 'd', '7w', '1e3'];
  for (const text of invalid) {
    it(`refuses ${JSON.stringify(text)}, naming the flag`, () => {
      expect(() => parseDurationSeconds(text, '--retention')).to.throw(DurationError, /--retention must be a duration like 7d/);
    });
  }
});
