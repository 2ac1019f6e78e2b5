#!/usr/bin/env bash
# Builds what the single-node test adds to the control plane of test/env/build-binaries.sh, from the same
# pinned k8s.io/kubernetes release (the wrapper module test/env/node/go): kubelet, kube-proxy,
# kube-controller-manager and kube-scheduler, plus the pod sandbox ("pause") binary compiled from the
# module's own build/pause/linux/pause.c. Cached outside the repository, keyed by the versions, so a second
# run costs well under a second. It is separate from build-binaries.sh so that the other suites never pay
# for it. Prints the cache directory on its last line.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
K8S_VERSION="v1.34.4"
cache_root="${LTP_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/lambda-task-pool}"
bin_dir="$cache_root/bin/node-k8s-$K8S_VERSION"
mkdir -p "$bin_dir"
log() { echo "build-node-binaries: $*" >&2; }

if ! command -v go >/dev/null 2>&1; then
  if [ -x /usr/local/go/bin/go ]; then export PATH="/usr/local/go/bin:$PATH"; else
    log "the Go toolchain is missing; it is needed to build kubelet, kube-proxy, kube-controller-manager and kube-scheduler"
    exit 1
  fi
fi
# Same flags as build-binaries.sh, so the Go build cache it filled is reused.
export GOFLAGS="${GOFLAGS:--buildvcs=false}"

k8s_minor="${K8S_VERSION#v1.}"; k8s_minor="${k8s_minor%%.*}"
ldflags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  ldflags="$ldflags -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$k8s_minor"
  ldflags="$ldflags -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
done

missing=()
for name in kube-controller-manager kube-scheduler kubelet kube-proxy; do
  [ -x "$bin_dir/$name" ] || missing+=("$name")
done
if [ ${#missing[@]} -gt 0 ]; then
  started=$SECONDS
  log "building ${missing[*]} from k8s.io/kubernetes@$K8S_VERSION (cold builds take minutes on 2 cores)"
  # One go build for all of them: shared packages are compiled once.
  pkgs=(); for name in "${missing[@]}"; do pkgs+=("k8s.io/kubernetes/cmd/$name"); done
  tmp="$(mktemp -d "$bin_dir/tmp-XXXXXX")"
  trap 'rm -rf "$tmp"' EXIT
  (cd "$here/go" && go build -trimpath -ldflags "$ldflags" -o "$tmp/" "${pkgs[@]}")
  for name in "${missing[@]}"; do mv "$tmp/$name" "$bin_dir/$name"; done
  log "built ${missing[*]} in $((SECONDS - started)) s"
fi

if [ ! -x "$bin_dir/pause" ]; then
  command -v gcc >/dev/null 2>&1 || { log "gcc is missing; it compiles the pod sandbox binary (pause.c)"; exit 1; }
  src="$(cd "$here/go" && go list -m -f '{{.Dir}}' k8s.io/kubernetes)/build/pause/linux/pause.c"
  [ -f "$src" ] || (cd "$here/go" && go mod download k8s.io/kubernetes)
  gcc -Os -Wall -Werror -static -DVERSION="$K8S_VERSION-ltp" -o "$bin_dir/pause.tmp" "$src"
  strip "$bin_dir/pause.tmp"
  mv "$bin_dir/pause.tmp" "$bin_dir/pause"
fi

echo "$bin_dir"
