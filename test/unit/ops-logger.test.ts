import { Writable } from 'node:stream';
import { expect } from 'chai';
import { createLogger } from '../../src/ops/logger.ts';

/** A logger writing JSON lines into an array, as the controller's does to stderr. */
function capture(level: string) {
  const lines: Array<Record<string, unknown>> = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString('utf8').split('\n').filter(Boolean)) lines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  return { logger: createLogger({ level, stream, component: 'test' }), lines };
}

describe('the controller logger', () => {
  it('writes lines at and above its level, with their fields and child fields, and nothing below it', () => {
    const { logger, lines } = capture('warn');
    const child = logger.child({ pool: 'thumbnails' });
    child.info('dispatch pass', { dispatched: 3 });
    logger.debug('detail');
    child.warn('status write failed', { error: 'conflict' });
    logger.error('gave up');
    expect(lines.map((l) => [l.level, l.message, l.pool, l.error, l.component])).to.deep.equal([
      ['warn', 'status write failed', 'thumbnails', 'conflict', 'test'],
      ['error', 'gave up', undefined, undefined, 'test'],
    ]);
  });

  it('writes info lines at level info, and follows a level changed later', () => {
    const { logger, lines } = capture('info');
    logger.child({ pool: 'a' }).info('dispatch pass', { dispatched: 1 });
    logger.debug('hidden');
    logger.level = 'debug';
    logger.child({ pool: 'b' }).debug('now shown');
    logger.level = 'error';
    logger.warn('hidden again');
    expect(lines.map((l) => [l.level, l.message, l.pool])).to.deep.equal([
      ['info', 'dispatch pass', 'a'],
      ['debug', 'now shown', 'b'],
    ]);
  });

  it('still redacts secret fields', () => {
    const { logger, lines } = capture('info');
    logger.info('connecting', { databaseUrl: 'postgres://u:p@h/db', password: 'p' });
    expect(lines[0]).to.include({ databaseUrl: '[redacted]', password: '[redacted]' });
  });
});
