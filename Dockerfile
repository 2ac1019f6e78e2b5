# syntax=docker/dockerfile:1
# The LambdaTaskPool controller image.
#
#   docker build -t ghcr.io/lambda-task-pool/controller:0.1.0 .
#   docker run --rm ghcr.io/lambda-task-pool/controller:0.1.0 --help
#
# The Helm chart runs it as `controller --metrics-addr=:8080 --leader-elect`, as user 65532 with a
# read-only root filesystem (and an emptyDir at /tmp).

ARG NODE_IMAGE=node:24-bookworm-slim

# ---- build: install all dependencies, compile TypeScript, then drop dev dependencies ----
FROM ${NODE_IMAGE} AS build
WORKDIR /app
ENV npm_config_update_notifier=false npm_config_fund=false npm_config_audit=false
COPY package.json package-lock.json ./
# Behind a TLS-intercepting proxy, pass its CA as a build secret (never stored in a layer):
#   docker build --secret id=npm-ca,src=/etc/ssl/certs/ca-certificates.crt .
RUN --mount=type=secret,id=npm-ca \
    if [ -s /run/secrets/npm-ca ]; then export NODE_EXTRA_CA_CERTS=/run/secrets/npm-ca; fi; \
    npm ci
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
# package.json's "build" script wraps tsc in scripts/with-node24.sh; this image already has Node 24.
RUN npx tsc -p tsconfig.build.json \
 && npm prune --omit=dev \
 && npm cache clean --force

# ---- runtime: only what the controller needs, as a non-root user ----
FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production \
    HOME=/tmp \
    NODE_OPTIONS=--enable-source-maps
WORKDIR /app
COPY --from=build /app/package.json ./package.json
COPY --from=build /app/node_modules ./node_modules
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
