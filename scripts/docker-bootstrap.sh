#!/usr/bin/env bash
# Make sure a Docker daemon answers. Does nothing when one already does (a laptop with Docker
# Desktop, a CI runner). Otherwise, on a Debian machine as root: installs Docker Engine from
# Debian's packages (trixie's docker.io and docker-buildx, pinned low so nothing else moves to
# trixie) and starts dockerd in the background, waiting until it answers.
# Idempotent; quiet when there is nothing to do.
set -euo pipefail

log() { printf 'docker-bootstrap: %s\n' "$*" >&2; }

daemon_answers() { command -v docker >/dev/null 2>&1 && timeout 10 docker version >/dev/null 2>&1; }

if daemon_answers; then
  exit 0
fi

# One bootstrap at a time (nextest starts many test processes at once).
exec 9>/tmp/conformance-docker-bootstrap.lock
flock 9
if daemon_answers; then
  exit 0
fi

if [ "$(id -u)" != 0 ]; then
  log "no docker daemon answers and this is not root: start Docker yourself (or run this script as root on Debian)"
  exit 1
fi
if ! [ -r /etc/debian_version ]; then
  log "no docker daemon answers and this is not a Debian machine: install and start Docker yourself"
  exit 1
fi

if ! command -v dockerd >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  . /etc/os-release
  pkgs="docker.io docker-buildx"
  if [ "${VERSION_CODENAME:-}" = bookworm ]; then
    # bookworm's docker.io (20.10) is too old for current bollard: take trixie's, and only the
    # packages named here (never `-t trixie`, which would upgrade half the system).
    if ! grep -rqs 'trixie' /etc/apt/sources.list /etc/apt/sources.list.d/; then
      log "adding a trixie apt source at pin priority 100"
      cat >/etc/apt/sources.list.d/docker-bootstrap-trixie.sources <<'SRC'
Types: deb
URIs: http://deb.debian.org/debian
Suites: trixie
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
      cat >/etc/apt/preferences.d/docker-bootstrap-trixie <<'PIN'
Package: *
Pin: release n=trixie
Pin-Priority: 100
PIN
    fi
    pkgs="docker.io/trixie docker-buildx/trixie"
    command -v docker >/dev/null 2>&1 || pkgs="$pkgs docker-cli/trixie"
  fi
  log "installing Docker Engine from Debian's packages ($pkgs)"
  apt-get update -qq
  # shellcheck disable=SC2086
  apt-get install -y -qq --no-install-recommends $pkgs iptables >/dev/null
fi

if ! pgrep -x dockerd >/dev/null 2>&1; then
  log "starting dockerd (log: /var/log/dockerd-bootstrap.log)"
  # The lock is this script's, not the daemon's (9>&-): a later bootstrap must not wait on dockerd.
  nohup dockerd >/var/log/dockerd-bootstrap.log 2>&1 </dev/null 9>&- &
fi
for _ in $(seq 1 120); do
  if daemon_answers; then
    log "docker daemon answers"
    exit 0
  fi
  sleep 0.5
done
log "dockerd did not answer within 60 s; see /var/log/dockerd-bootstrap.log"
tail -n 20 /var/log/dockerd-bootstrap.log >&2 || true
exit 1
