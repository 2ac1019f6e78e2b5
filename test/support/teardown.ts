// Servers shared by the whole test run are stopped once, after the last suite (see hooks.ts).
const steps: Array<() => Promise<void>> = [];

export function registerTeardown(step: () => Promise<void>): void {
  steps.push(step);
}

export async function runTeardown(): Promise<void> {
  const errors: unknown[] = [];
  for (const step of steps.splice(0).reverse()) {
    try {
      await step();
    } catch (error) {
      errors.push(error);
    }
  }
  if (errors.length > 0) throw new Error(`teardown failed: ${errors.map(String).join('; ')}`);
}
