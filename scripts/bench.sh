#!/usr/bin/env bash
# Times what the harness's users wait for, and prints medians:
#   hot    - offline images present and current (build-images.sh does nothing)
#   warm   - images gone from the daemon, loaded from the recipe cache
#   cold   - images and cache gone: mmdebstrap + docker builds + cache save
#   matrix - `harness run`: every scenario × builder on the offline profile, images hot
#   matrix-cold - the same from nothing: images and cache removed first (what a fresh CI pays)
# Runs: BENCH_RUNS (default 5) for hot/warm/matrix, BENCH_COLD_RUNS (default 3) for cold.
# Destroys and rebuilds the offline images and their cache; run it on a machine you can spare.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${BENCH_RUNS:-5}
cold_runs=${BENCH_COLD_RUNS:-3}
build=fixtures/images/build-images.sh

now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
time_ms() { local s; s=$(now_ms); "$@" >/dev/null 2>&1; echo $(( $(now_ms) - s )); }
median() { sort -n | awk '{a[NR]=$1} END {m = (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2; printf "%.2f", m / 1000}'; }
all_of() { tr '\n' ' ' | awk '{for (i = 1; i <= NF; i++) printf "%s%.2f", (i > 1 ? " " : ""), $i / 1000}'; }
remove_images() { docker images --format '{{.Repository}}:{{.Tag}}' | grep '^conformance-offline/' | xargs -r docker rmi -f >/dev/null; }
cache_dir=${CONFORMANCE_IMAGE_CACHE:-/var/cache/conformance-images}

bash "$build"   # make sure everything exists before timing
cargo build --quiet --bin harness

report() { printf '%-11s median %6s s over %d run(s)  [%s]\n' "$1" "$(median <<<"$2")" "$(wc -l <<<"$2")" "$(all_of <<<"$2")"; }

hot=$(for _ in $(seq "$runs"); do time_ms bash "$build"; done)
report hot "$hot"

warm=$(for _ in $(seq "$runs"); do remove_images; time_ms bash "$build"; done)
report warm "$warm"

matrix=$(for _ in $(seq "$runs"); do time_ms target/debug/harness run; done)
report matrix "$matrix"

cold=$(for _ in $(seq "$cold_runs"); do
  remove_images
  docker builder prune -af >/dev/null 2>&1 || true
  rm -f "$cache_dir"/offline-images-*.tar.zst
  time_ms bash "$build"
done)
report cold "$cold"
matrix_cold=$(for _ in $(seq "$cold_runs"); do
  remove_images
  docker builder prune -af >/dev/null 2>&1 || true
  rm -f "$cache_dir"/offline-images-*.tar.zst
  time_ms target/debug/harness run
done)
report matrix-cold "$matrix_cold"
echo "ratios: cold/warm $(awk -v c="$(median <<<"$cold")" -v w="$(median <<<"$warm")" 'BEGIN {printf "%.1f", c / w}'), warm/hot $(awk -v w="$(median <<<"$warm")" -v h="$(median <<<"$hot")" 'BEGIN {printf "%.0f", w / (h > 0 ? h : 0.01)}')"
