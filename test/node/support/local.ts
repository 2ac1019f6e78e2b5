// The only place the node test reaches into the local development tools (today src/local; DESIGN §11 moves
// them to a dev-tools folder). Repoint these lines when they move.
export { freePort } from '../../../src/local/ports.ts';
export { killOnExit, waitForExit } from '../../../src/local/processes.ts';
export { startLambdaRuntime, type LambdaRuntime } from '../../../src/local/lambda-runtime/index.ts';
