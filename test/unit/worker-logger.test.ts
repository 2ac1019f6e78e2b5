// The worker's default logger: one JSON line per call, whatever a handler puts in the fields (it is also
// ctx.logger, so a line that threw would fail the task that logged it).
import { expect } from 'chai';
import { jsonLogger } from '../../packages/worker/src/logger.ts';

function capture(): { lines: Array<Record<string, unknown>>; logger: ReturnType<typeof jsonLogger> } {
  const lines: Array<Record<string, unknown>> = [];
  return { lines, logger: jsonLogger({ level: 'info', write: (line) => lines.push(JSON.parse(line) as Record<string, unknown>) }) };
}

describe('worker jsonLogger', () => {
  it('writes an Error as its name, message, stack and own fields, not as {}', () => {
    const { lines, logger } = capture();
    logger.error('upload failed', { error: Object.assign(new TypeError('bad bucket'), { code: 'NoSuchBucket' }) });
    const error = lines[0]?.error as Record<string, unknown>;
    expect(error).to.include({ name: 'TypeError', message: 'bad bucket', code: 'NoSuchBucket' });
    expect(error.stack).to.be.a('string').that.includes('bad bucket');
  });

  it('never throws on a cycle or a bigint: it writes them as "[Circular]" and a string', () => {
    const { lines, logger } = capture();
    const request: Record<string, unknown> = { url: 'https://example.com' };
    request.self = request;
    const error = Object.assign(new Error('socket hang up'), { request });
    (error as { cause?: unknown }).cause = error;
    expect(() => logger.warn('retrying', { error, bytes: 12n, twice: [request, request] })).not.to.throw();
    expect(lines[0]).to.deep.include({ bytes: '12', message: 'retrying' });
    const written = lines[0]?.error as { request: { self: unknown }; cause: unknown };
    expect(written.request.self).to.equal('[Circular]');
    expect(written.cause).to.equal('[Circular]');
    expect(lines[0]?.twice, 'the same object twice side by side is no cycle').to.deep.equal([
      { url: 'https://example.com', self: '[Circular]' },
      { url: 'https://example.com', self: '[Circular]' },
    ]);
  });

  it('leaves out lines below its level', () => {
    const lines: string[] = [];
    const logger = jsonLogger({ level: 'warn', write: (line) => lines.push(line) });
    logger.info('quiet');
    logger.warn('loud');
    expect(lines.map((l) => (JSON.parse(l) as { message: string }).message)).to.deep.equal(['loud']);
  });
});
