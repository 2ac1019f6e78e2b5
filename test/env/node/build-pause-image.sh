#!/usr/bin/env bash
# Packs the pause binary from build-node-binaries.sh into a one-layer image archive (docker-archive), the
# pod sandbox image containerd's CRI runs for every pod. Built locally because this machine reaches no
# container registry. Cached beside the binary, keyed by its hash. Prints: ARCHIVE IMAGE_REF
set -euo pipefail
bin_dir="${1:?usage: build-pause-image.sh NODE_BIN_DIR}"
pause="$bin_dir/pause"
[ -x "$pause" ] || { echo "build-pause-image: $pause is missing (build-node-binaries.sh builds it)" >&2; exit 1; }
hash="$(sha256sum "$pause" | cut -c1-12)"
ref="localhost/lambda-task-pool/pause:$hash"
archive="$bin_dir/pause-image-$hash.tar"
if [ ! -s "$archive" ]; then
  command -v buildah >/dev/null 2>&1 || { echo "build-pause-image: buildah is missing (install-packages.sh installs it)" >&2; exit 1; }
  work="$(mktemp -d "$bin_dir/tmp-pause-XXXXXX")"
  store=(--root "$work/storage" --runroot "$work/run" --storage-driver vfs)
  trap 'buildah "${store[@]}" rm --all >/dev/null 2>&1 || true; buildah "${store[@]}" rmi --all --force >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
  ctr="$(buildah "${store[@]}" from --quiet scratch)"
  buildah "${store[@]}" copy --quiet "$ctr" "$pause" /pause >/dev/null
  buildah "${store[@]}" config --entrypoint '["/pause"]' --cmd '' --user 65535:65535 --os linux --arch amd64 "$ctr"
  buildah "${store[@]}" commit --quiet --rm "$ctr" "$ref" >/dev/null
  buildah "${store[@]}" push --quiet "$ref" "docker-archive:$archive.tmp:$ref" >/dev/null
  mv "$archive.tmp" "$archive"
fi
echo "$archive $ref"
