// @lambda-task-pool/dev-tools: what the CLI's `local up` loads from the development tools. The tests and
// benchmarks import the modules of dev/src directly.
export { runLocalUp, type LocalUpOptions } from './local-command.ts';
export { startLocalStack, type LocalStack, type LocalStackOptions } from './stack.ts';
