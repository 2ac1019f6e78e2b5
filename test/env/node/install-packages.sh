#!/usr/bin/env bash
# Installs, from Debian's packages, what the single-node cluster and the image build need and the machine
# lacks: containerd (with ctr), runc, the CNI plugins (bridge, host-local, loopback, portmap), iptables and
# conntrack (kube-proxy), buildah (the image build) and debootstrap (the base root filesystem).
# Needs root. A second run finds everything present and costs well under a second.
set -euo pipefail

# command-or-file  package
wanted=(
  "containerd containerd"
  "ctr containerd"
  "runc runc"
  "/usr/lib/cni/bridge containernetworking-plugins"
  "/usr/lib/cni/host-local containernetworking-plugins"
  "/usr/lib/cni/loopback containernetworking-plugins"
  "/usr/lib/cni/portmap containernetworking-plugins"
  "iptables iptables"
  "conntrack conntrack"
  "buildah buildah"
  "debootstrap debootstrap"
)
missing=()
for entry in "${wanted[@]}"; do
  what="${entry%% *}" package="${entry##* }"
  if [[ "$what" == /* ]]; then [ -x "$what" ] && continue; else command -v "$what" >/dev/null 2>&1 && continue; fi
  [[ " ${missing[*]} " == *" $package "* ]] || missing+=("$package")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
  echo "install-packages: the node test needs these Debian packages and only root can install them: ${missing[*]}" >&2
  exit 1
fi
echo "install-packages: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
# Package scripts must not start daemons: the test starts its own containerd with its own state directories.
policy=/usr/sbin/policy-rc.d
added_policy=
if [ ! -e "$policy" ]; then printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy" && added_policy=1; fi
trap 'if [ -n "$added_policy" ]; then rm -f "$policy"; fi' EXIT
if ! apt-get install -y -q --no-install-recommends "${missing[@]}" >/tmp/ltp-apt-install.log 2>&1; then
  apt-get update -q >/tmp/ltp-apt-update.log 2>&1 || { cat /tmp/ltp-apt-update.log >&2; exit 1; }
  apt-get install -y -q --no-install-recommends "${missing[@]}" >/tmp/ltp-apt-install.log 2>&1 || {
    tail -30 /tmp/ltp-apt-install.log >&2; echo "install-packages: apt-get install ${missing[*]} failed" >&2; exit 1; }
fi
echo "install-packages: installed ${missing[*]}" >&2
