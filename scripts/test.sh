#!/usr/bin/env bash
# The one test command (npm test): provisions what the suites need and runs every suite.
#  - Node 24 when the machine's Node is older (scripts/node24.sh);
#  - kube-apiserver, etcd, kubectl and helm built from pinned Go modules (cached after the first run);
#  - AWS's Lambda Runtime Interface Emulator (Go modules) and aws-lambda-ric (npm, native) for test/rie;
#  - the worker SDK package built (the tests run its sources; the bundle and packaging checks use dist);
#  - the node test builds its own image and cluster (test/env/node/provision.sh), as root;
#  - Postgres is started by the tests themselves (Debian server binaries, else embedded-postgres).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
source scripts/node24.sh
export PATH="$root/node_modules/.bin:$PATH"
if [ ! -x node_modules/.bin/mocha ]; then
  echo "test: node_modules is missing; run 'npm ci' first" >&2
  exit 1
fi
# Every process the tests start inherits this mark, so that the leftover check below looks at ours only
# (a local stack or another checkout's tests may run on the same machine).
export LTP_TEST_RUN="test-$$-$(date +%s)"

started=$SECONDS
echo "== control plane binaries (built from Go modules on the first run; cached after)"
bash test/env/build-binaries.sh
echo "== AWS Lambda runtime: aws-lambda-rie (Go modules) and aws-lambda-ric (npm, native addon; build tools from apt the first time)"
bash test/env/rie/build-rie.sh
bash test/env/rie/install-ric.sh
echo "== worker SDK package"
npm run --silent build -w @lambda-task-pool/worker
echo "== lint and format"
eslint --max-warnings=0 .
prettier --check --log-level=warn .
echo "== type check"
tsc -p tsconfig.json --noEmit
echo "== unit, integration, end-to-end, security, AWS runtime and node tests"
set +e
mocha --reporter test/support/summary-reporter.cjs \
  'test/unit/**/*.test.ts' 'test/integration/**/*.test.ts' 'test/e2e/**/*.test.ts' 'test/security/**/*.test.ts' 'test/rie/**/*.test.ts' 'test/node/**/*.test.ts' "$@"
status=$?
set -e

# Nothing the tests started may outlive them: any process that carries this run's mark.
leftovers="$(node scripts/leftovers.mjs "$LTP_TEST_RUN")"
if [ -n "$leftovers" ]; then
  echo "test: processes started by the tests are still running:" >&2
  echo "$leftovers" >&2
  status=1
fi
echo "== done in $((SECONDS - started)) s (exit $status)"
exit $status
