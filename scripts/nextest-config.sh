#!/usr/bin/env bash
# Prints the path of a nextest config file that is .config/nextest.toml with the `docker` test
# group's limit (scenario, cleanup, secrets, faults, isolation, TLS and other Docker tests at
# once: each starts a registry, a DinD daemon when a step may use one, and plugin containers)
# set from CONFORMANCE_JOBS (default 2, the file's own), the setting `harness run --jobs` reads
# too. Nextest reads no environment variable for a test group's max-threads, so the file is
# generated:
#   cargo nextest run --config-file "$(CONFORMANCE_JOBS=6 scripts/nextest-config.sh)"
# (`just test` does this). The file goes under the cargo target directory.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
jobs=${1:-${CONFORMANCE_JOBS:-2}}
if ! [[ $jobs =~ ^[1-9][0-9]{0,3}$ ]]; then
  echo "nextest-config: CONFORMANCE_JOBS must be a positive integer, not \`$jobs\`" >&2
  exit 2
fi
target=${CARGO_TARGET_DIR:-$root/target}
out=$target/nextest/config-docker-$jobs.toml
mkdir -p "$target/nextest"
tmp=$(mktemp "$out.XXXXXX")
sed -E "s/^docker = \{ max-threads = [0-9]+ \}/docker = { max-threads = $jobs }/" \
  "$root/.config/nextest.toml" >"$tmp"
if ! grep -q "^docker = { max-threads = $jobs }" "$tmp"; then
  rm -f "$tmp"
  echo "nextest-config: .config/nextest.toml has no \`docker = { max-threads = N }\` line" >&2
  exit 2
fi
mv "$tmp" "$out"
echo "$out"
