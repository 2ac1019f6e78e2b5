#!/usr/bin/env bash
# Builds the controller image from the repository's Dockerfile without Docker and without a registry:
#  1. the base image (scripts/image/build-base.sh: debootstrap + Node from the npm registry), cached;
#  2. the build context: the working tree less what .dockerignore excludes, staged in a temporary folder;
#  3. `buildah bud` with vfs storage and chroot isolation, NODE_IMAGE pointing at the local base image;
#  4. the image written as a docker-archive tarball (what `ctr images import` and `docker load` read).
#
# The archive is cached under ${LTP_CACHE_DIR:-~/.cache/lambda-task-pool}/image, keyed by a hash of the
# Dockerfile, the staged context (package.json, package-lock.json, tsconfig, src, crds, ...) and the base,
# so an unchanged tree costs a second. The image is tagged with that hash.
#
# Prints one JSON line last: {"archive": PATH, "image": REF, "bytes": N, "built": true|false}.
# Needs root (buildah's chroot isolation) and the npm registry (the Dockerfile runs npm ci).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cache_root="${LTP_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/lambda-task-pool}"
image_dir="$cache_root/image"
repository="${LTP_IMAGE_REPOSITORY:-localhost/lambda-task-pool/controller}"
keep="${LTP_IMAGE_KEEP:-3}" # archives kept in the cache (newest first)
log() { echo "build-image: $*" >&2; }

if [ "$(id -u)" -ne 0 ]; then log "buildah's chroot isolation needs root"; exit 1; fi
command -v buildah >/dev/null 2>&1 || { log "buildah is missing (bash test/env/node/install-packages.sh installs it)"; exit 1; }

base_tar="$(bash "$here/build-base.sh")" || { log "the base image could not be built"; exit 1; }
base_tar="${base_tar##*$'\n'}"
base_key="$(basename "$base_tar" .tar)"
base_ref="localhost/lambda-task-pool/node-base:$base_key"

mkdir -p "$image_dir"
# Work folders of builds killed hours ago (a running build's is younger).
find "$image_dir" -maxdepth 1 -name 'tmp-*' -type d -mmin +180 -exec rm -rf {} + 2>/dev/null || true
work="$(mktemp -d "$image_dir/tmp-XXXXXX")"
store=(--root "$work/storage" --runroot "$work/run" --storage-driver vfs)
cleanup() {
  if [ -d "$work/storage" ]; then
    buildah "${store[@]}" rm --all >/dev/null 2>&1 || true
    buildah "${store[@]}" rmi --all --force >/dev/null 2>&1 || true
  fi
  # (An EXIT trap's last status becomes the script's: every command here must succeed.)
  local m
  for m in $(findmnt -rn -o TARGET | grep -F "$work" | sort -r || true); do umount -l "$m" 2>/dev/null || true; done
  rm -rf "$work" || true
}
trap cleanup EXIT

# The build context, as `docker build .` would send it: everything but what .dockerignore names.
context="$work/context"
mkdir -p "$context"
excludes="$work/excludes"
# .dockerignore patterns are relative to the context's root, and * does not cross a /: so are tar's here.
grep -v '^\s*#' "$root/.dockerignore" | sed -e 's/^\s*//' -e 's/\s*$//' -e '/^$/d' -e 's#^/##' -e 's#^#./#' >"$excludes"
echo "./.git" >>"$excludes"
tar -C "$root" --anchored --no-wildcards-match-slash --exclude-from="$excludes" -cf - . | tar -C "$context" -xf -

key="$({
  echo "base $base_key"
  sha256sum "$root/Dockerfile" | cut -d' ' -f1
  (cd "$context" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum)
} | sha256sum | cut -c1-16)"
tag="$key"
ref="$repository:$tag"
archive="$image_dir/controller-$key.tar"

built=false
if [ ! -s "$archive" ]; then
  started=$SECONDS
  log "building $ref (context $(du -sh "$context" | cut -f1); the first build takes a few minutes)"
  base_ctr="$(buildah "${store[@]}" from --quiet scratch)"
  buildah "${store[@]}" add --quiet "$base_ctr" "$base_tar" / >/dev/null
  buildah "${store[@]}" config \
    --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    --env NODE_VERSION="$(basename "$base_key" | sed 's/.*-node-\([^-]*\)-.*/\1/')" \
    --cmd '["node"]' --os linux --arch amd64 "$base_ctr"
  buildah "${store[@]}" commit --quiet --rm "$base_ctr" "$base_ref" >/dev/null
  log "base image $base_ref ready after $((SECONDS - started)) s"

  # The CA bundle the machine's own npm trusts (e.g. a TLS-intercepting proxy's), for the build's npm ci.
  secret=()
  ca="${LTP_BUILD_CA_FILE:-${NODE_EXTRA_CA_CERTS:-}}"
  if [ -z "$ca" ] && command -v npm >/dev/null 2>&1; then ca="$(npm config get cafile 2>/dev/null || true)"; fi
  if [ -n "$ca" ] && [ "$ca" != "null" ] && [ -s "$ca" ]; then secret=(--secret "id=npm-ca,src=$ca"); fi
  if ! buildah "${store[@]}" bud --isolation chroot --pull=never --layers=false "${secret[@]}" \
      --build-arg "NODE_IMAGE=$base_ref" -f "$root/Dockerfile" -t "$ref" "$context" >"$work/build.log" 2>&1; then
    tail -40 "$work/build.log" >&2
    log "buildah bud failed (full log above, last 40 lines)"
    exit 1
  fi
  grep -E 'STEP|COMMIT' "$work/build.log" | sed 's/^/build-image:   /' >&2 || true
  rm -f "$archive.tmp"
  buildah "${store[@]}" push --quiet "$ref" "docker-archive:$archive.tmp:$ref" >/dev/null
  mv "$archive.tmp" "$archive"
  echo "$ref" >"$archive.ref"
  built=true
  log "built $ref in $((SECONDS - started)) s"
  # Keep the newest few archives only.
  ls -1t "$image_dir"/controller-*.tar 2>/dev/null | tail -n +"$((keep + 1))" | while read -r old; do rm -f "$old" "$old.ref"; done
fi
bytes="$(stat -c %s "$archive")"
log "image $ref: $archive ($((bytes / 1024 / 1024)) MiB)"
printf '{"archive":"%s","image":"%s","bytes":%s,"built":%s}\n' "$archive" "$ref" "$bytes" "$built"
