// The parts of @kubernetes/client-node the CLI uses, named, so that the controller's bundle
// (scripts/build-controller.mjs) keeps only what is reached: a dynamic import of the whole package would
// keep all of it (about 15 MB of generated API code) in the chunk the controller loads too.
export { ApiException, CustomObjectsApi, KubeConfig, Observable } from '@kubernetes/client-node';
