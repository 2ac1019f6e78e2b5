#!/usr/bin/env bash
# Installs AWS's Node.js runtime interface client (the npm package aws-lambda-ric, what AWS's public
# Node.js base images run as the runtime) from the npm registry into a cache outside the repository,
# keyed by its version and the Node.js major version. Its install scripts build curl and aws-lambda-cpp
# from the sources the package ships and then a native addon (rapid-client.node) with node-gyp, so it
# needs cmake, autoconf, automake, libtool, make, g++ and python3: missing ones are installed from Debian's
# packages (root only). node-gyp compiles against the running Node's own headers (--nodedir), never
# downloaded ones. A second run finds the package in the cache and costs well under a second.
# See docs/rie.md.
#
# Prints the directory of the installed package (holding index.mjs and rapid-client.node) on its last line.
# With --check it installs nothing: it prints the directory when the package is cached for this Node major,
# and fails otherwise.
set -euo pipefail
check_only=
if [ "${1:-}" = "--check" ]; then check_only=1; fi

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
RIC_VERSION="4.0.2"

log() { echo "install-ric: $*" >&2; }
fail() { log "$*"; exit 1; }

# shellcheck source=../../../scripts/node24.sh
source "$root/scripts/node24.sh"
node_bin="$(command -v node)"
node_version="$(node -p 'process.versions.node')"
node_major="${node_version%%.*}"
cache_root="${LTP_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/lambda-task-pool}"
dir="$cache_root/ric/aws-lambda-ric-$RIC_VERSION-node$node_major"
pkg="$dir/node_modules/aws-lambda-ric"

# The addon reads AWS_LAMBDA_RUNTIME_API when it loads; any address will do to prove that it loads.
addon_loads() {
  AWS_LAMBDA_RUNTIME_API=127.0.0.1:9 "$node_bin" -e 'process.dlopen({ exports: {} }, process.argv[1])' "$1/rapid-client.node" 2>&1
}

if [ -f "$dir/.installed" ] && [ -f "$pkg/index.mjs" ] && [ -f "$pkg/rapid-client.node" ]; then
  echo "$pkg"
  exit 0
fi
if [ -n "$check_only" ]; then
  fail "aws-lambda-ric@$RIC_VERSION is not installed for Node $node_major: no $pkg/rapid-client.node (run bash test/env/rie/install-ric.sh)"
fi

# Build tools: command  Debian package
wanted=(
  "cmake cmake"
  "autoreconf autoconf"
  "automake automake"
  "libtoolize libtool"
  "make make"
  "g++ g++"
  "python3 python3"
  "xz xz-utils"
)
missing=()
for entry in "${wanted[@]}"; do
  what="${entry%% *}" package="${entry##* }"
  command -v "$what" >/dev/null 2>&1 && continue
  [[ " ${missing[*]} " == *" $package "* ]] || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    fail "aws-lambda-ric@$RIC_VERSION builds native code and needs these packages, which only root with apt-get can install here: ${missing[*]}"
  fi
  log "installing the build tools aws-lambda-ric needs: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  if ! apt-get install -y -q --no-install-recommends "${missing[@]}" >/tmp/ltp-ric-apt-install.log 2>&1; then
    apt-get update -q >/tmp/ltp-ric-apt-update.log 2>&1 || { cat /tmp/ltp-ric-apt-update.log >&2; fail "apt-get update failed"; }
    apt-get install -y -q --no-install-recommends "${missing[@]}" >/tmp/ltp-ric-apt-install.log 2>&1 || {
      tail -30 /tmp/ltp-ric-apt-install.log >&2; fail "apt-get install ${missing[*]} failed"; }
  fi
fi

# node-gyp must find the headers of the Node that will load the addon, here, not on a download site.
node_prefix="$(cd "$(dirname "$(readlink -f "$node_bin")")/.." && pwd)"
if [ ! -f "$node_prefix/include/node/node_api.h" ]; then
  fail "Node $node_version at $node_bin has no headers in $node_prefix/include/node; node-gyp needs them to build aws-lambda-ric (use the Node that scripts/node24.sh installs, or a Node install that ships include/node)"
fi

tmp="$dir.tmp.$$"
rm -rf "$tmp"
mkdir -p "$tmp"
trap 'rm -rf "$tmp"' EXIT
echo '{ "name": "ltp-aws-lambda-ric", "private": true }' >"$tmp/package.json"
started=$SECONDS
log "installing aws-lambda-ric@$RIC_VERSION for Node $node_version into $dir (builds curl, aws-lambda-cpp and the addon: minutes on 2 cores)"
if ! npm_config_nodedir="$node_prefix" npm install --prefix "$tmp" --no-audit --no-fund --foreground-scripts \
  --loglevel=error "aws-lambda-ric@$RIC_VERSION" >"$tmp/install.log" 2>&1; then
  tail -60 "$tmp/install.log" >&2
  cp "$tmp/install.log" /tmp/ltp-ric-install.log
  fail "npm install aws-lambda-ric@$RIC_VERSION failed (the whole log: /tmp/ltp-ric-install.log)"
fi
tpkg="$tmp/node_modules/aws-lambda-ric"
[ -f "$tpkg/rapid-client.node" ] || { tail -40 "$tmp/install.log" >&2; fail "aws-lambda-ric@$RIC_VERSION installed without its native addon rapid-client.node"; }
if ! out="$(addon_loads "$tpkg")"; then
  echo "$out" >&2
  fail "the aws-lambda-ric@$RIC_VERSION addon does not load in Node $node_version"
fi
printf 'aws-lambda-ric %s\nnode %s\nbuilt %s\n' "$RIC_VERSION" "$node_version" "$(date -u +%FT%TZ)" >"$tmp/.installed"
rm -rf "$dir"
mv "$tmp" "$dir"
trap - EXIT
log "installed aws-lambda-ric@$RIC_VERSION in $((SECONDS - started)) s"
echo "$pkg"
