// Mocha root hooks: stop every shared server after the last test.
import { runTeardown } from './teardown.ts';

export const mochaHooks = {
  async afterAll(this: Mocha.Context) {
    this.timeout(60_000);
    await runTeardown();
  },
};
