#!/usr/bin/env bash
# Puts the host back after the single-node cluster whose state lives in DIR (see host-setup.sh), and then
# checks that nothing is left: no process started for it (containerd shims included), no mount under DIR
# (pod volumes, container root filesystems, network namespaces), no bridge, no KUBE-*/CNI-* iptables chain
# that was not there before, no changed sysctl, no cgroup, no pod log link. Exits 1, naming what is left,
# when something could not be removed.
#
#   host-cleanup.sh DIR       after a run (the test calls it once its daemons have stopped)
#   host-cleanup.sh --stale   every /tmp/ltp-node-state-* whose owner process is gone (a killed run)
set -uo pipefail

cleanup_dir() {
  local dir="$1" host="$1/host" left=()
  # Only a folder host-setup.sh prepared is ever touched.
  [ -f "$host/owner.pid" ] || { echo "host-cleanup: $dir is not a node test's state folder (no host/owner.pid)" >&2; return 1; }

  # 1. Processes: anything whose command line names DIR (the daemons, and containerd-shim-runc-v2, which
  #    is given the containerd socket under DIR and outlives containerd by design). Then what runs in the
  #    pods' cgroups (container processes of a shim that died first).
  local pids
  pids="$(pgrep -f -- "$dir/" || true)"
  if [ -n "$pids" ]; then kill -TERM $pids 2>/dev/null; sleep 2; pids="$(pgrep -f -- "$dir/" || true)"; [ -n "$pids" ] && kill -KILL $pids 2>/dev/null; fi
  local cgroup_root
  cgroup_root="$(cat "$host/cgroup-root" 2>/dev/null || true)"
  if [ -n "$cgroup_root" ] && [ -d "/sys/fs/cgroup/pids/$cgroup_root" ]; then
    find "/sys/fs/cgroup/pids/$cgroup_root" -name cgroup.procs -exec cat {} + 2>/dev/null | xargs -r kill -KILL 2>/dev/null
  fi
  sleep 0.5

  # 2. Mounts under DIR, deepest first (kubelet volumes and its own bind mount, overlay root filesystems,
  #    network namespaces' nsfs mounts, shm).
  local m
  for _ in 1 2 3; do
    findmnt -rn -o TARGET | grep -F -- "$dir/" | sort -r | while read -r m; do umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null; done
    findmnt -rn -o TARGET | grep -qF -- "$dir" || break
  done
  findmnt -rn -o TARGET | grep -qxF -- "$dir" && umount -l "$dir" 2>/dev/null

  # 3. iptables: rules jumping to, and chains named, KUBE-* or CNI-* that were not there before.
  local cmd table chain line before="$host/iptables-chains.before"
  for cmd in iptables ip6tables; do
    command -v "$cmd-save" >/dev/null 2>&1 || continue
    for table in filter nat mangle raw; do
      local new=()
      while read -r chain; do
        grep -qxF "$cmd $table $chain" "$before" 2>/dev/null || new+=("$chain")
      done < <("$cmd-save" -t "$table" 2>/dev/null | sed -n 's/^:\(\(KUBE\|CNI\)-[^ ]*\) .*/\1/p')
      [ ${#new[@]} -eq 0 ] && continue
      for chain in "${new[@]}"; do
        "$cmd-save" -t "$table" 2>/dev/null | grep -E -- "^-A [^ ]+ .*-j $chain( |\$)" | while read -r line; do
          eval "$cmd -t $table ${line/#-A/-D}" 2>/dev/null
        done
      done
      for chain in "${new[@]}"; do "$cmd" -t "$table" -F "$chain" 2>/dev/null; done
      for chain in "${new[@]}"; do "$cmd" -t "$table" -X "$chain" 2>/dev/null; done
    done
  done

  # 4. The bridge (the pods' veths went with their network namespaces).
  local bridge
  bridge="$(cat "$host/bridge" 2>/dev/null || true)"
  if [ -n "$bridge" ] && [ -f "$host/bridge.created" ] && ip link show "$bridge" >/dev/null 2>&1; then
    ip link del "$bridge" 2>/dev/null
  fi

  # 5. Sysctls back to what they were.
  local key value
  while read -r key value; do
    [ -n "$key" ] && [ "$(cat "/proc/sys/$key" 2>/dev/null)" != "$value" ] && echo "$value" >"/proc/sys/$key" 2>/dev/null
  done <"$host/sysctl.before"

  # 6. The cgroup root, deepest first.
  if [ -n "$cgroup_root" ]; then
    for hierarchy in /sys/fs/cgroup/*/; do
      [ -d "$hierarchy$cgroup_root" ] && find "$hierarchy$cgroup_root" -depth -type d -exec rmdir {} \; 2>/dev/null
    done
  fi

  # 7. Pod log links the kubelet made in /var/log/containers, and the two folders if it created them.
  find /var/log/containers -maxdepth 1 -type l -lname "$dir/*" -delete 2>/dev/null
  for m in /var/log/pods /var/log/containers; do
    grep -qxF "$m" "$host/varlog.before" 2>/dev/null || rmdir "$m" 2>/dev/null
  done

  # What is left, if anything.
  pids="$(pgrep -af -- "$dir/" || true)"; [ -n "$pids" ] && left+=("processes: $pids")
  m="$(findmnt -rn -o TARGET | grep -F -- "$dir" || true)"; [ -n "$m" ] && left+=("mounts: $m")
  [ -n "$bridge" ] && [ -f "$host/bridge.created" ] && ip link show "$bridge" >/dev/null 2>&1 && left+=("bridge $bridge")
  for cmd in iptables ip6tables; do
    command -v "$cmd-save" >/dev/null 2>&1 || continue
    for table in filter nat mangle raw; do
      while read -r chain; do
        grep -qxF "$cmd $table $chain" "$before" 2>/dev/null || left+=("$cmd -t $table chain $chain")
      done < <("$cmd-save" -t "$table" 2>/dev/null | sed -n 's/^:\(\(KUBE\|CNI\)-[^ ]*\) .*/\1/p')
    done
  done
  while read -r key value; do
    [ -n "$key" ] && [ "$(cat "/proc/sys/$key" 2>/dev/null)" != "$value" ] && left+=("sysctl $key=$(cat "/proc/sys/$key") (was $value)")
  done <"$host/sysctl.before"
  if [ -n "$cgroup_root" ]; then
    for hierarchy in /sys/fs/cgroup/*/; do [ -d "$hierarchy$cgroup_root" ] && left+=("cgroup $hierarchy$cgroup_root"); done
  fi
  if [ ${#left[@]} -gt 0 ]; then
    echo "host-cleanup: could not remove everything the node test left in $dir:" >&2
    printf '  %s\n' "${left[@]}" >&2
    return 1
  fi
  rm -rf "$dir"
}

[ "$(id -u)" -eq 0 ] || { echo "host-cleanup: needs root" >&2; exit 1; }
case "${1:-}" in
  --stale)
    status=0
    for d in /tmp/ltp-node-state-*; do
      [ -f "$d/host/owner.pid" ] || continue
      owner="$(cat "$d/host/owner.pid" 2>/dev/null || true)"
      if [ -n "$owner" ] && kill -0 "$owner" 2>/dev/null; then continue; fi
      echo "host-cleanup: removing what a killed node test left in $d" >&2
      cleanup_dir "$d" || status=1
    done
    exit $status ;;
  /*) cleanup_dir "${1%/}" ;;
  *) echo "usage: host-cleanup.sh DIR | --stale" >&2; exit 2 ;;
esac
