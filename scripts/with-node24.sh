#!/usr/bin/env bash
# Runs a command with Node >= 22.19 first on PATH (see node24.sh) and the project's node_modules/.bin.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=node24.sh
source "$root/scripts/node24.sh"
export PATH="$root/node_modules/.bin:$PATH"
exec "$@"
