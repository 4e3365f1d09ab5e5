#!/usr/bin/env bash
# Measures how often `validate-release` raises an alarm for an identical image on this machine:
# N validations of a role's offline image against the same image under a second tag (A/A), each
# with the repetitions validate-release picks, and the count of each answer. Any answer but
# "may replace" is a false alarm (inconclusive counted apart).
#   scripts/false-alarms.sh [N] [FILTER]      e.g. scripts/false-alarms.sh 20 build_scan_push::clean::buildx
# ROLE (default buildx) picks the role; extra validate-release flags go in FALSE_ALARM_ARGS.
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-20}
filter=${2:-build_scan_push::clean::buildx}
role=${ROLE:-buildx}
scripts/docker-bootstrap.sh >/dev/null
# This checkout's image, by its recipe key (the last line the build prints): another
# checkout's build never moves it.
key=$(bash fixtures/images/build-images.sh | tail -n 1)
image="conformance-offline/plugin-$role:offline-$key"
same="conformance-offline/plugin-$role:same-image-$key"
docker tag "$image" "$same"
cargo build --quiet --bin harness
log=$(mktemp -d)
# A copy: rebuilding the checkout during the measurement does not change what is measured.
cp target/debug/harness "$log/harness"
harness="$log/harness"

may=0 not=0 unsure=0 other=0
for i in $(seq 1 "$n"); do
  code=0
  # shellcheck disable=SC2086
  "$harness" validate-release "$role" "$image" "$same" --filter "$filter" ${FALSE_ALARM_ARGS:-} \
    >"$log/$i.out" 2>"$log/$i.err" || code=$?
  answer=$(grep -E " may (replace|NOT replace|or may not replace) " "$log/$i.out" | tail -1 || true)
  case "$code" in
    0) may=$((may + 1)) ;;
    1) not=$((not + 1)) ;;
    3) unsure=$((unsure + 1)) ;;
    *) other=$((other + 1)); answer="exit $code: $(tail -1 "$log/$i.err")" ;;
  esac
  echo "validation $i/$n: ${answer:-no answer}"
done
echo "A/A validations of $filter ($role): $n; may replace $may, may NOT replace $not (false alarms), inconclusive $unsure, errors $other"
echo "outputs in $log"
