# syntax=docker/dockerfile:1
# The LambdaTaskPool controller image.
#
#   docker build -t ghcr.io/lambda-task-pool/controller:0.1.0 .
#   docker run --rm ghcr.io/lambda-task-pool/controller:0.1.0 --help
#
# The Helm chart runs it as `controller --metrics-addr=:8080 --leader-elect`, as user 65532 with a
# read-only root filesystem (and an emptyDir at /tmp).

ARG NODE_IMAGE=node:24-bookworm-slim

# ---- build: the controller's and the worker SDK's dependencies (dev ones included, to compile), then compile ----
# npm workspaces: packages/worker is the worker SDK (@lambda-task-pool/worker), which the controller shares its
# protocol with; dev/ holds the development tools, whose dependencies are all devDependencies and never installed here.
FROM ${NODE_IMAGE} AS build
WORKDIR /app
ENV npm_config_update_notifier=false npm_config_fund=false npm_config_audit=false
COPY package.json package-lock.json tsconfig.json tsconfig.build.json ./
COPY packages/worker packages/worker
COPY dev/package.json dev/
# Behind a TLS-intercepting proxy, pass its CA as a build secret (never stored in a layer):
#   docker build --secret id=npm-ca,src=/etc/ssl/certs/ca-certificates.crt .
# npm ci also builds the worker package (its prepare script).
RUN --mount=type=secret,id=npm-ca \
    if [ -s /run/secrets/npm-ca ]; then export NODE_EXTRA_CA_CERTS=/run/secrets/npm-ca; fi; \
    npm ci --workspace @lambda-task-pool/worker --include-workspace-root
COPY src ./src
COPY scripts/build-controller.mjs scripts/
# package.json's "build" script, without scripts/with-node24.sh (this image already has Node 24): tsc checks the
# types, esbuild bundles the controller into dist/ (scripts/build-controller.mjs says why).
RUN npx tsc -p tsconfig.build.json --noEmit && node scripts/build-controller.mjs

# ---- deps: the production dependencies alone, installed afresh (no compiler, no dev tool) ----
FROM ${NODE_IMAGE} AS deps
WORKDIR /app
ENV npm_config_update_notifier=false npm_config_fund=false npm_config_audit=false
COPY package.json package-lock.json ./
COPY packages/worker/package.json packages/worker/
COPY dev/package.json dev/
RUN --mount=type=secret,id=npm-ca \
    if [ -s /run/secrets/npm-ca ]; then export NODE_EXTRA_CA_CERTS=/run/secrets/npm-ca; fi; \
    npm ci --omit=dev --ignore-scripts --workspace @lambda-task-pool/worker --include-workspace-root \
 && npm cache clean --force

# ---- runtime: only what the controller needs, as a non-root user ----
FROM ${NODE_IMAGE} AS runtime
# Memory (bench/scale.bench.ts reads the ENTRYPOINT's flags and the ENV below from here and runs the controller
# with them): two malloc arenas, and V8's own heap sizing. dist/ is an esbuild bundle, which saves about 20 MB
# resident over tsc's one file per module. Once the controller goes quiet after a busy spell it gives the
# spell's pages back itself (src/ops/memory-release.ts; V8 alone kept them): 1,000 idle pools 126 to 135 MB, 134 to
# 139 MB 30 s after a burst of all 1,000 (the bundle is ASCII only and the controller loads no ICU data it does not
# need: docs/scale.md, "Less of Node's binary"). That replaced two flags that held idle memory down by making every burst
# collect more often (--max-semi-space-size=4 in NODE_OPTIONS, --heap-growing-percent=20): with them the
# controller spent 0.55 ms of CPU per invoke where a bare SDK client spent 0.34 (67% of its rate), without
# them 0.41 ms where the client spent 0.48 (89%). The price is the peak while a burst is under way: 256 MB
# right after 1,000 pools' tasks were done (174 MB with the flags), 371 MB at most before the release, on
# a 24 GiB machine with no limit (in a pod, Node sizes V8's heap from the container's memory limit).
# --optimize-for-size was measured and left out: about 12 MB less resident at 1,000 pools, but 15 to 20%
# fewer invokes per second from one pool.
# Source maps are off:
# --enable-source-maps loads every module's map at start (about 19 MB of heap); add it to NODE_OPTIONS when a
# stack trace should point into the TypeScript sources.
ENV NODE_ENV=production \
    HOME=/tmp \
    MALLOC_ARENA_MAX=2
WORKDIR /app
COPY --from=deps /app/package.json ./package.json
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /app/packages/worker/package.json ./packages/worker/package.json
COPY --from=build /app/packages/worker/dist ./packages/worker/dist
COPY --from=build /app/dist ./dist
COPY crds ./crds
LABEL org.opencontainers.image.title="lambda-task-pool controller" \
      org.opencontainers.image.description="Dispatches exactly as many async AWS Lambda invocations as a PostgreSQL task backlog needs" \
      org.opencontainers.image.licenses="Apache-2.0"
# 65532 is the conventional "nonroot" uid/gid; it needs no passwd entry. Files stay root-owned (read-only).
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["node", "dist/cli.js"]
CMD ["controller"]
