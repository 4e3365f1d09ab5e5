#!/usr/bin/env bash
# Times what the harness's users wait for, and prints medians:
#   images  - the offline images: hot (present and current: build-images.sh does nothing), warm
#             (gone from the daemon, loaded from the recipe cache), cold (images and cache gone:
#             mmdebstrap + docker builds + cache save)
#   matrix  - `harness run`: every scenario × builder on the offline profile, images present;
#             then where the plan time went (`harness timings`: harness overhead share and each
#             phase's median over every plan of every run)
#   cold    - the same matrix from nothing: images and cache removed first (what a fresh CI pays),
#             with its own phase table
# BENCH_PARTS picks the parts (default "images matrix cold"; `BENCH_PARTS=matrix` leaves the
# images alone, e.g. on a machine others use). Runs: BENCH_RUNS (default 3) for hot/warm/matrix,
# BENCH_COLD_RUNS (default 2) for cold. CONFORMANCE_JOBS sets the plans run at once (default 2).
# The runs' reports stay in reports/bench-<stamp>-{warm,cold}-N/.
# `images` and `cold` destroy and rebuild the offline images and their cache: run them on a
# machine you can spare.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${BENCH_RUNS:-3}
cold_runs=${BENCH_COLD_RUNS:-2}
parts=" ${BENCH_PARTS:-images matrix cold} "
build=fixtures/images/build-images.sh
cache_dir=${CONFORMANCE_IMAGE_CACHE:-/var/cache/conformance-images}
stamp=$(date -u +%Y%m%dT%H%M%S)

now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
# Prints the command's wall time in ms; its output goes to $log, a failure is noted there.
log=$(mktemp)
time_ms() {
  local s; s=$(now_ms)
  "$@" >>"$log" 2>&1 || echo "bench: exit $? from $*" >>"$log"
  echo $(( $(now_ms) - s ))
}
median() { sort -n | awk '{a[NR]=$1} END {m = (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2; printf "%.2f", m / 1000}'; }
all_of() { tr '\n' ' ' | awk '{for (i = 1; i <= NF; i++) printf "%s%.2f", (i > 1 ? " " : ""), $i / 1000}'; }
report() { printf '%-12s median %7s s over %d run(s)  [%s]\n' "$1" "$(median <<<"$2")" "$(wc -l <<<"$2")" "$(all_of <<<"$2")"; }
remove_images() { docker images --format '{{.Repository}}:{{.Tag}}' | grep '^conformance-offline/' | xargs -r docker rmi -f >/dev/null; }
remove_everything() {
  remove_images
  docker builder prune -af >/dev/null 2>&1 || true
  rm -f "$cache_dir"/offline-images-*.tar.zst
}
has() { [[ $parts == *" $1 "* ]]; }

bash "$build" >/dev/null   # make sure everything exists before timing
cargo build --quiet --bin harness
harness=${CARGO_TARGET_DIR:-target}/debug/harness
echo "bench $stamp: load $(cut -d' ' -f1-3 /proc/loadavg), $(nproc) cores, jobs ${CONFORMANCE_JOBS:-2}"

if has images; then
  hot=$(for _ in $(seq "$runs"); do time_ms bash "$build"; done)
  report images-hot "$hot"
  warm=$(for _ in $(seq "$runs"); do remove_images; time_ms bash "$build"; done)
  report images-warm "$warm"
  cold=$(for _ in $(seq "$cold_runs"); do remove_everything; time_ms bash "$build"; done)
  report images-cold "$cold"
  echo "ratios: cold/warm $(awk -v c="$(median <<<"$cold")" -v w="$(median <<<"$warm")" 'BEGIN {printf "%.1f", c / w}'), warm/hot $(awk -v w="$(median <<<"$warm")" -v h="$(median <<<"$hot")" 'BEGIN {printf "%.0f", w / (h > 0 ? h : 0.01)}')"
fi

if has matrix; then
  bash "$build" >/dev/null
  matrix=$(for i in $(seq "$runs"); do time_ms "$harness" run --run-id "bench-$stamp-warm-$i"; done)
  report matrix-warm "$matrix"
  "$harness" timings --title "matrix, warm" reports/bench-"$stamp"-warm-*
fi

if has cold; then
  matrix_cold=$(for i in $(seq "$cold_runs"); do
    remove_everything
    time_ms "$harness" run --run-id "bench-$stamp-cold-$i"
  done)
  report matrix-cold "$matrix_cold"
  "$harness" timings --title "matrix, cold" reports/bench-"$stamp"-cold-*
fi
echo "load at the end $(cut -d' ' -f1-3 /proc/loadavg); command output in $log"
