#!/usr/bin/env bash
# Prepares the host for the single-node cluster whose state lives in DIR, and records what it was before,
# so that host-cleanup.sh can put everything back (docs/node-test.md):
#  - the bridge the pods' veths join, with the node's address (pods reach the API server, Postgres and the
#    Lambda runtime there; they get no default route, so nothing they send can leave the machine);
#  - the cgroup (v1) root the kubelet puts pods under;
#  - snapshots of the sysctls the kubelet changes, of the KUBE-*/CNI-* iptables chains, and of
#    /var/log/pods and /var/log/containers (paths the kubelet always uses).
# Usage: host-setup.sh DIR OWNER_PID BRIDGE NODE_CIDR CGROUP_ROOT   (e.g. ... ltpbr0 10.244.0.1/24 ltp-node)
set -euo pipefail
dir="${1:?DIR}" owner="${2:?OWNER_PID}" bridge="${3:?BRIDGE}" cidr="${4:?NODE_CIDR}" cgroup_root="${5:?CGROUP_ROOT}"
host="$dir/host"
mkdir -p "$host"
fail() { echo "host-setup: $*" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || fail "the kubelet, containerd and the pod network need root"

echo "$owner" >"$host/owner.pid"
echo "$bridge" >"$host/bridge"
echo "$cgroup_root" >"$host/cgroup-root"

# Sysctls the kubelet (setupKernelTunables), kube-proxy and the CNI plugins may write.
for key in vm/overcommit_memory vm/panic_on_oom kernel/panic kernel/panic_on_oops kernel/keys/root_maxkeys \
  kernel/keys/root_maxbytes net/ipv4/ip_forward net/ipv4/conf/all/route_localnet \
  net/bridge/bridge-nf-call-iptables net/bridge/bridge-nf-call-ip6tables; do
  [ -r "/proc/sys/$key" ] && echo "$key $(cat "/proc/sys/$key")"
done >"$host/sysctl.before"

for cmd in iptables ip6tables; do
  command -v "$cmd-save" >/dev/null 2>&1 || continue
  for table in filter nat mangle raw; do
    "$cmd-save" -t "$table" 2>/dev/null | sed -n "s/^:\([^ ]*\) .*/$cmd $table \1/p"
  done
done >"$host/iptables-chains.before"

for d in /var/log/pods /var/log/containers; do [ -e "$d" ] && echo "$d"; done >"$host/varlog.before"

# The pod network's bridge, with the node's address on it.
if ip link show "$bridge" >/dev/null 2>&1; then
  fail "the bridge $bridge already exists: another node test is running, or one was killed (bash test/env/node/host-cleanup.sh --stale)"
fi
network="$(python3 -c "import ipaddress,sys; print(ipaddress.ip_interface(sys.argv[1]).network)" "$cidr" 2>/dev/null || true)"
if [ -n "$network" ] && ip route show | grep -q "^$network "; then fail "the host already routes $network; the node test needs it for its pods"; fi
ip link add "$bridge" type bridge
echo created >"$host/bridge.created"
ip addr add "$cidr" dev "$bridge"
ip link set "$bridge" up

# The cgroup root (cgroup v1: one per controller hierarchy; cpuset needs its cpus and mems filled in).
for hierarchy in /sys/fs/cgroup/*/; do
  [ -d "$hierarchy" ] || continue
  mkdir -p "$hierarchy$cgroup_root"
done
if [ -f /sys/fs/cgroup/cpuset/cpuset.cpus ]; then
  cat /sys/fs/cgroup/cpuset/cpuset.cpus >"/sys/fs/cgroup/cpuset/$cgroup_root/cpuset.cpus"
  cat /sys/fs/cgroup/cpuset/cpuset.mems >"/sys/fs/cgroup/cpuset/$cgroup_root/cpuset.mems"
fi
