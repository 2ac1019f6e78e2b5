// The only place the node test reaches into the local development tools (dev/src; DESIGN §11 keeps
// them to a dev-tools folder). Repoint these lines when they move.
export { freePort } from '../../../dev/src/ports.ts';
export { killOnExit, waitForExit } from '../../../dev/src/processes.ts';
export { startLambdaRuntime, type LambdaRuntime } from '../../../dev/src/lambda-runtime/index.ts';
