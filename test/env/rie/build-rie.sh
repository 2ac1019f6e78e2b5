#!/usr/bin/env bash
# Builds AWS's Lambda Runtime Interface Emulator (aws-lambda-rie, the program AWS's public Lambda base
# images run as their entrypoint outside Lambda) from Go modules, pinned by the wrapper module in ./go,
# and caches it outside the repository, keyed by that version. A second run finds it in the cache and
# costs well under a second. See docs/rie.md.
#
# Prints the path of the aws-lambda-rie binary on its last line.
# With --check it builds nothing: it prints the path when the binary is cached, and fails otherwise.
set -euo pipefail
check_only=
if [ "${1:-}" = "--check" ]; then check_only=1; fi

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
module="github.com/aws/aws-lambda-runtime-interface-emulator"
# The one pin is the wrapper module's require line.
RIE_VERSION="$(sed -n "s|^require $module \(v[^ ]*\).*|\1|p" "$here/go/go.mod")"
if [ -z "$RIE_VERSION" ]; then
  echo "build-rie: no 'require $module vX' line in $here/go/go.mod" >&2
  exit 1
fi
cache_root="${LTP_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/lambda-task-pool}"
bin_dir="$cache_root/bin/rie-$RIE_VERSION"
binary="$bin_dir/aws-lambda-rie"

log() { echo "build-rie: $*" >&2; }

if [ -x "$binary" ]; then
  echo "$binary"
  exit 0
fi
if [ -n "$check_only" ]; then
  log "aws-lambda-rie $RIE_VERSION is not built: no $binary (run bash test/env/rie/build-rie.sh)"
  exit 1
fi

if ! command -v go >/dev/null 2>&1; then
  if [ -x /usr/local/go/bin/go ]; then export PATH="/usr/local/go/bin:$PATH"; else
    log "the Go toolchain is missing; it is needed to build aws-lambda-rie ($module@$RIE_VERSION)"
    exit 1
  fi
fi
export GOFLAGS="${GOFLAGS:--buildvcs=false}"

mkdir -p "$bin_dir"
started=$SECONDS
log "building aws-lambda-rie from $module@$RIE_VERSION"
# As the emulator's own Makefile does: a static binary without symbols.
(cd "$here/go" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$binary.tmp.$$" "$module/cmd/aws-lambda-rie")
mv "$binary.tmp.$$" "$binary"
log "built aws-lambda-rie in $((SECONDS - started)) s"
echo "$binary"
