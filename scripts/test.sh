#!/usr/bin/env bash
# Runs every test: machine set-up (idempotent), release build (the
# integration tests deploy with the real binaries), then cargo nextest over
# the whole workspace: unit tests, golden files, the plugin inside real
# nix-instantiate/nix-build, and deployments with real processes.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" = 0 ]; then
    scripts/setup.sh
else
    echo "test.sh: not root; assuming scripts/setup.sh already ran" >&2
fi
scripts/build.sh
cargo nextest run --workspace --locked --profile ci "$@"
