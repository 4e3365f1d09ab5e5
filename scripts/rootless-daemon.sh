#!/usr/bin/env bash
# Make sure the rootless conformance Docker daemon answers on unix:///run/conformance-rootless/docker.sock.
# Does nothing when it already does. Otherwise, on a Debian machine as root: installs rootlesskit,
# slirp4netns and uidmap, creates the user conformance-rootless with a subuid/subgid range, builds
# and installs conformance-runc (crates/limits-shim, which applies CONFORMANCE_LIMITS), puts the
# daemon in a cgroup of its own with root-owned ceilings (CONFORMANCE_ROOTLESS_MEMORY bytes,
# default 3/4 of the RAM; CONFORMANCE_ROOTLESS_PIDS, default 32768) and starts dockerd-rootless.sh
# as that user in the background, waiting until it answers (log: /var/log/conformance-rootless.log).
# When it cannot, it writes the reason as one line to /run/conformance-rootless.unavailable and
# exits 1. Idempotent; quiet when there is nothing to do. A daemon that does not answer is killed
# with everything in its cgroup and started again.
set -euo pipefail

user=conformance-rootless
home=/var/lib/conformance-rootless
run_dir=/run/conformance-rootless
host="unix://$run_dir/docker.sock"
shim=/usr/local/lib/conformance/conformance-runc
daemon_log=/var/log/conformance-rootless.log
unavailable_file=/run/conformance-rootless.unavailable
cgroup_name=conformance-rootless
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

log() { printf 'rootless-daemon: %s\n' "$*" >&2; }

# The reason, as one line, where the harness looks for it; then give up.
unavailable() {
  printf '%s\n' "$*" >"$unavailable_file" 2>/dev/null || true
  log "rootless daemon unavailable: $*"
  exit 1
}

daemon_answers() {
  command -v docker >/dev/null 2>&1 &&
    timeout 10 docker -H "$host" info --format '{{json .SecurityOptions}}' 2>/dev/null | grep -q 'name=rootless'
}

# conformance-runc as this checkout builds it: the harness and the shim must agree on
# CONFORMANCE_LIMITS. Replaced by a rename, so a container starting meanwhile runs one or the
# other, and the running daemon takes the new one at its next container.
install_shim() {
  [ "$(id -u)" = 0 ] && command -v cargo >/dev/null || return 0
  (cd "$repo" && cargo build --release --quiet -p limits-shim) ||
    unavailable "cannot build conformance-runc (cargo build --release -p limits-shim)"
  local built="${CARGO_TARGET_DIR:-$repo/target}/release/conformance-runc"
  if ! cmp -s "$built" "$shim"; then
    install -D -m 0755 -o root -g root "$built" "$shim.new.$$"
    mv -f "$shim.new.$$" "$shim"
  fi
}

if daemon_answers; then
  install_shim
  rm -f "$unavailable_file"
  exit 0
fi

# One start at a time (nextest starts many test processes at once).
exec 9>/tmp/conformance-rootless.lock
flock 9
if daemon_answers; then
  rm -f "$unavailable_file"
  exit 0
fi

[ "$(id -u)" = 0 ] || unavailable "the rootless daemon does not answer and this is not root: run $0 as root"
# A daemon still running may only be slow (a loaded machine): give it a minute before replacing it.
if id -u "$user" >/dev/null 2>&1 && pgrep -u "$user" -x dockerd >/dev/null; then
  deadline=$((SECONDS + 60))
  while [ "$SECONDS" -lt "$deadline" ]; do
    if daemon_answers; then
      rm -f "$unavailable_file"
      exit 0
    fi
    sleep 1
  done
  log "the running rootless dockerd does not answer: restarting it"
fi
[ -r /etc/debian_version ] || unavailable "the rootless daemon does not answer and this is not a Debian machine"
if [ "$(cat /proc/sys/user/max_user_namespaces 2>/dev/null || echo 0)" -le 0 ] ||
  [ "$(cat /proc/sys/kernel/unprivileged_userns_clone 2>/dev/null || echo 1)" != 1 ]; then
  unavailable "no user namespaces for unprivileged users (user.max_user_namespaces, kernel.unprivileged_userns_clone)"
fi

# --- packages ------------------------------------------------------------------------------------
if ! command -v rootlesskit >/dev/null || ! command -v slirp4netns >/dev/null || ! command -v newuidmap >/dev/null; then
  log "installing rootlesskit slirp4netns uidmap"
  export DEBIAN_FRONTEND=noninteractive
  # From the default suite only (never `-t trixie`).
  { apt-get update -qq && apt-get install -y -qq --no-install-recommends rootlesskit slirp4netns uidmap >/dev/null; } ||
    unavailable "cannot install rootlesskit slirp4netns uidmap with apt-get"
fi
rootless_sh=/usr/share/docker.io/contrib/dockerd-rootless.sh
[ -x "$rootless_sh" ] || rootless_sh="$(command -v dockerd-rootless.sh || true)"
[ -n "$rootless_sh" ] || unavailable "dockerd-rootless.sh not found (install docker.io: scripts/docker-bootstrap.sh)"
command -v docker >/dev/null || unavailable "no docker CLI (install docker.io: scripts/docker-bootstrap.sh)"

# --- the user and its subordinate ids ------------------------------------------------------------
if ! id -u "$user" >/dev/null 2>&1; then
  log "creating the system user $user"
  useradd --system --home-dir "$home" --shell /usr/sbin/nologin --user-group "$user"
fi
uid="$(id -u "$user")"
gid="$(id -g "$user")"
install -d -m 0700 -o "$user" -g "$gid" "$home"
touch /etc/subuid /etc/subgid
if ! grep -q "^$user:" /etc/subuid || ! grep -q "^$user:" /etc/subgid; then
  # The first 65536 ids from 300000 on that no range in either file overlaps.
  start="$(cat /etc/subuid /etc/subgid |
    awk -F: -v u="$user" 'BEGIN { m = 300000 } $1 != u && $2 + $3 > m { m = $2 + $3 } END { print m }')"
  grep -q "^$user:" /etc/subuid || echo "$user:$start:65536" >>/etc/subuid
  grep -q "^$user:" /etc/subgid || echo "$user:$start:65536" >>/etc/subgid
  log "gave $user the subordinate ids $start-$((start + 65535))"
fi

# --- /dev/net/tun, which slirp4netns opens as the user -------------------------------------------
if ! [ -c /dev/net/tun ]; then
  mkdir -p /dev/net
  mknod /dev/net/tun c 10 200 2>/dev/null || unavailable "/dev/net/tun is missing and cannot be created"
fi
chmod 0666 /dev/net/tun || unavailable "cannot make /dev/net/tun usable (chmod 0666)"

# --- conformance-runc ----------------------------------------------------------------------------
install_shim
[ -x "$shim" ] || unavailable "$shim is missing and there is no cargo to build it"

# --- the cgroup: ceilings root sets, children the user makes -------------------------------------
mem_total="$(awk '/^MemTotal:/ { printf "%.0f", int($2 * 3 / 4) * 1024 }' /proc/meminfo)"
memory="${CONFORMANCE_ROOTLESS_MEMORY:-$mem_total}"
pids="${CONFORMANCE_ROOTLESS_PIDS:-32768}"
[[ "$memory" =~ ^[1-9][0-9]*$ ]] || unavailable "CONFORMANCE_ROOTLESS_MEMORY=$memory is not a number of bytes"
[[ "$pids" =~ ^[1-9][0-9]*$ ]] || unavailable "CONFORMANCE_ROOTLESS_PIDS=$pids is not a number of processes"

cgroup_dirs=()
if [ -f /sys/fs/cgroup/cgroup.controllers ]; then
  cgroup_v2=1
  cgroup_dirs=("/sys/fs/cgroup/$cgroup_name")
else
  cgroup_v2=
  while read -r _ mnt fstype _; do
    [ "$fstype" = cgroup ] && cgroup_dirs+=("$mnt/$cgroup_name")
  done </proc/self/mounts
fi
[ "${#cgroup_dirs[@]}" -gt 0 ] || unavailable "no cgroup hierarchy is mounted"

# Whatever a killed daemon left in its cgroup (its containers' processes run as subordinate ids,
# so killing the user's processes does not end them) goes before a new daemon starts.
leftover_pids() {
  local dir
  for dir in "${cgroup_dirs[@]}"; do
    [ -d "$dir" ] && find "$dir" -name cgroup.procs -exec cat {} +
  done | sort -un | grep -vx "$$" || true
}
for _ in $(seq 1 40); do
  stale="$(leftover_pids)"
  [ -z "$stale" ] && break
  # shellcheck disable=SC2086
  kill -KILL $stale 2>/dev/null || true
  sleep 0.25
done
[ -z "$(leftover_pids)" ] || unavailable "processes of an earlier daemon in the cgroup $cgroup_name do not end"
for dir in "${cgroup_dirs[@]}"; do
  if [ -d "$dir" ]; then
    find "$dir" -mindepth 1 -depth -type d -exec rmdir {} + 2>/dev/null || true
  fi
done

write() { printf '%s\n' "$2" >"$1" 2>/dev/null || unavailable "cannot write $2 to $1"; }
if [ -n "$cgroup_v2" ]; then
  # Untested here (this machine is cgroup v1 hybrid): the v2 equivalent of the v1 set-up below.
  dir="${cgroup_dirs[0]}"
  mkdir -p "$dir"
  write /sys/fs/cgroup/cgroup.subtree_control "+memory +pids +cpu"
  write "$dir/memory.max" "$memory"
  write "$dir/pids.max" "$pids"
  chown "$uid:$gid" "$dir" "$dir/cgroup.procs" "$dir/cgroup.subtree_control" "$dir/cgroup.threads"
else
  for dir in "${cgroup_dirs[@]}"; do
    mkdir -p "$dir"
    if [ -f "$dir/cpuset.cpus" ]; then
      [ -n "$(cat "$dir/cpuset.cpus")" ] || write "$dir/cpuset.cpus" "$(cat "$dir/../cpuset.cpus")"
      [ -n "$(cat "$dir/cpuset.mems")" ] || write "$dir/cpuset.mems" "$(cat "$dir/../cpuset.mems")"
    fi
    [ -f "$dir/memory.limit_in_bytes" ] && write "$dir/memory.limit_in_bytes" "$memory"
    [ -f "$dir/pids.max" ] && write "$dir/pids.max" "$pids"
    # The user may make children and move processes, not raise the ceilings (root-owned files).
    chown "$uid:$gid" "$dir" "$dir/cgroup.procs" "$dir/tasks"
  done
fi

# --- the daemon ----------------------------------------------------------------------------------
install -d -m 0700 -o "$user" -g "$gid" "$run_dir"
if grep -q " $run_dir" /proc/self/mounts; then
  unavailable "something is mounted below $run_dir"
fi
# A killed daemon's rootlesskit state (lock, child pid), pid file, socket and containerd state.
find "$run_dir" -mindepth 1 -delete
rm -f "$unavailable_file"

# Mounts the harness makes after the daemon started (each plan's workspace is a file system of
# its own) must reach the daemon's mount namespace: rootlesskit makes it a slave of the host's,
# which receives nothing from a private root (this VM's; systemd makes / shared).
if [ "$(findmnt -no PROPAGATION / 2>/dev/null)" = private ]; then
  mount --make-rshared / || unavailable "cannot make / a shared mount (mount --make-rshared /)"
fi

log "starting the rootless dockerd as $user (log: $daemon_log)"
[ -f "$daemon_log" ] && mv -f "$daemon_log" "$daemon_log.1"
(
  # The lock is this script's, not the daemon's.
  exec 9>&-
  # Into the cgroup first: the daemon and all it starts inherit it.
  for dir in "${cgroup_dirs[@]}"; do
    printf '%s\n' "$BASHPID" >"$dir/cgroup.procs"
  done
  exec setsid setpriv --reuid="$uid" --regid="$gid" --init-groups --reset-env \
    env HOME="$home" XDG_RUNTIME_DIR="$run_dir" USER="$user" LOGNAME="$user" \
    PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    "$rootless_sh" --data-root "$home/docker" --host "$host" \
    --add-runtime "conformance=$shim" --default-runtime conformance
) </dev/null >"$daemon_log" 2>&1 &
daemon_pid=$!

for _ in $(seq 1 120); do
  if daemon_answers; then
    log "rootless docker daemon answers"
    exit 0
  fi
  kill -0 "$daemon_pid" 2>/dev/null || break
  sleep 0.5
done
reason="$(grep -v '^\s*$' "$daemon_log" | tail -n 1 | cut -c1-300)"
tail -n 20 "$daemon_log" >&2 || true
if kill -0 "$daemon_pid" 2>/dev/null; then
  unavailable "the rootless dockerd did not answer within 60 s (log $daemon_log: $reason)"
fi
unavailable "the rootless dockerd exited (log $daemon_log: $reason)"
