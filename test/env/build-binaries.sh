#!/usr/bin/env bash
# Builds the pinned control-plane binaries (kube-apiserver, etcd, kubectl, helm) from Go modules,
# as docs/architecture.md §8 describes, and caches them outside the repository, keyed by the pinned versions.
# A second run finds them in the cache and costs well under a second.
#
# Prints the cache directory that holds the four binaries on its last line.
# Honours KUBEBUILDER_ASSETS: when it already holds kube-apiserver and etcd, those are not built.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
K8S_VERSION="v1.34.4"
ETCD_VERSION="v3.6.4"
HELM_VERSION="v3.19.0"
cache_root="${LTP_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/lambda-task-pool}"
bin_dir="$cache_root/bin/k8s-$K8S_VERSION-etcd-$ETCD_VERSION-helm-$HELM_VERSION"
mkdir -p "$bin_dir"

if ! command -v go >/dev/null 2>&1; then
  if [ -x /usr/local/go/bin/go ]; then export PATH="/usr/local/go/bin:$PATH"; else
    echo "build-binaries: the Go toolchain is missing; it is needed to build kube-apiserver and etcd" >&2
    exit 1
  fi
fi
export GOFLAGS="${GOFLAGS:--buildvcs=false}"

log() { echo "build-binaries: $*" >&2; }

build() { # build NAME MODULE_DIR PACKAGE LDFLAGS
  local name="$1" dir="$2" pkg="$3" ldflags="$4"
  if [ -x "$bin_dir/$name" ]; then return 0; fi
  local started=$SECONDS
  log "building $name from $pkg (cold builds take minutes on 2 cores)"
  (cd "$here/go/$dir" && go build -trimpath -ldflags "$ldflags" -o "$bin_dir/$name.tmp" "$pkg")
  mv "$bin_dir/$name.tmp" "$bin_dir/$name"
  log "built $name in $((SECONDS - started)) s"
}

k8s_minor="${K8S_VERSION#v1.}"; k8s_minor="${k8s_minor%%.*}"
k8s_ldflags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  k8s_ldflags="$k8s_ldflags -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$k8s_minor"
  k8s_ldflags="$k8s_ldflags -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
done

assets="${KUBEBUILDER_ASSETS:-}"
if [ -n "$assets" ] && [ -x "$assets/kube-apiserver" ] && [ -x "$assets/etcd" ]; then
  log "using kube-apiserver and etcd from KUBEBUILDER_ASSETS=$assets"
  ln -sf "$assets/kube-apiserver" "$bin_dir/kube-apiserver"
  ln -sf "$assets/etcd" "$bin_dir/etcd"
  [ -x "$assets/kubectl" ] && ln -sf "$assets/kubectl" "$bin_dir/kubectl"
fi

build kube-apiserver kube k8s.io/kubernetes/cmd/kube-apiserver "$k8s_ldflags"
build etcd etcd go.etcd.io/etcd/server/v3 "-s -w"
build kubectl kube k8s.io/kubernetes/cmd/kubectl "$k8s_ldflags"
build helm helm helm.sh/helm/v3/cmd/helm "-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION"

echo "$bin_dir"
