#!/usr/bin/env bash
# Provisions everything the single-node test (test/node) needs, each piece cached after its first build:
#   Debian packages (install-packages.sh), the control plane (test/env/build-binaries.sh), the node
#   components and the pause binary (build-node-binaries.sh), the pause image (build-pause-image.sh) and the
#   controller image from the Dockerfile (scripts/image/build.sh).
# Prints one JSON line last: {"controlPlaneBin", "nodeBin", "pauseArchive", "pauseImage", "image": {...}}.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
step() { # step NAME COMMAND...: runs it, says how long it took, prints its last stdout line; exits if it fails
  local name="$1" started=$SECONDS out
  shift
  if ! out="$("$@")"; then
    echo "provision: $name failed after $((SECONDS - started)) s (its messages are above)" >&2
    exit 1
  fi
  echo "provision: $name ready after $((SECONDS - started)) s" >&2
  printf '%s\n' "${out##*$'\n'}"
}
step "Debian packages" bash "$here/install-packages.sh" >/dev/null
control_plane_bin="$(step "kube-apiserver, etcd, kubectl, helm" bash "$root/test/env/build-binaries.sh")"
node_bin="$(step "kubelet, kube-proxy, kube-controller-manager, kube-scheduler, pause" bash "$here/build-node-binaries.sh")"
pause="$(step "pause image" bash "$here/build-pause-image.sh" "$node_bin")"
image="$(step "controller image" bash "$root/scripts/image/build.sh")"
printf '{"controlPlaneBin":"%s","nodeBin":"%s","pauseArchive":"%s","pauseImage":"%s","image":%s}\n' \
  "$control_plane_bin" "$node_bin" "${pause%% *}" "${pause##* }" "$image"
