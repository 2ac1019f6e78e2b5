#!/usr/bin/env bash
# The one test command (npm test): provisions what the suites need and runs every suite.
#  - Node 24 when the machine's Node is older (scripts/node24.sh);
#  - kube-apiserver, etcd, kubectl and helm built from pinned Go modules (cached after the first run);
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

started=$SECONDS
echo "== control plane binaries (built from Go modules on the first run; cached after)"
bash test/env/build-binaries.sh
echo "== type check"
tsc -p tsconfig.json --noEmit
echo "== unit, integration and end-to-end tests"
set +e
mocha --reporter test/support/summary-reporter.cjs \
  'test/unit/**/*.test.ts' 'test/integration/**/*.test.ts' 'test/e2e/**/*.test.ts' "$@"
status=$?
set -e

# Nothing the tests started may outlive them.
leftovers=$(pgrep -af 'ltp-kube-|ltp-pg-|ltp-epg-|lambda-runtime/function-host' | grep -v pgrep || true)
if [ -n "$leftovers" ]; then
  echo "test: processes started by the tests are still running:" >&2
  echo "$leftovers" >&2
  status=1
fi
echo "== done in $((SECONDS - started)) s (exit $status)"
exit $status
