#!/usr/bin/env bash
# Builds everything a deployment needs into target/release:
#   nixproc                  the CLI (+ the original tools' names as links)
#   libnixproc_plugin.so     the Nix plugin (needs the Nix headers: scripts/setup.sh)
#   nixproc-builder          the static builder / run-time helper (+crt-static,
#                            so it also runs inside Nix's build sandbox)
#   webapp                   the example web application
set -euo pipefail
cd "$(dirname "$0")/.."
# CARGO_TARGET_DIR is honoured (the outputs then land in $CARGO_TARGET_DIR/release).
out="${CARGO_TARGET_DIR:-target}/release"

# --quiet: errors and warnings only; a failure stops here (set -e), so a
# stale binary from an earlier build is never tested by mistake.
cargo build --release --locked --quiet

# crt-static cannot apply to the cdylib, so the builder is a separate rustc run.
cargo rustc --release --locked --quiet -p nixproc-builder --bin nixproc-builder -- -C target-feature=+crt-static
if ! ldd "$out/nixproc-builder" 2>&1 | grep -Eq 'statically linked|not a dynamic executable'; then
    echo "build.sh: $out/nixproc-builder is not statically linked" >&2
    exit 1
fi

# The original tool names answer through argv[0].
for name in nixproc-build nixproc-init-state \
    nixproc-sysvinit-switch nixproc-sysvinit-deploy \
    nixproc-supervisord-switch nixproc-supervisord-deploy nixproc-supervisord-deploy-stateless \
    nixproc-systemd-switch nixproc-systemd-deploy \
    nixproc-s6-rc-switch nixproc-s6-rc-deploy \
    nixproc-bsdrc-switch nixproc-bsdrc-deploy \
    nixproc-launchd-switch nixproc-launchd-deploy \
    nixproc-cygrunsrv-switch nixproc-cygrunsrv-deploy \
    nixproc-docker-switch nixproc-docker-deploy \
    nixproc-disnix-switch nixproc-disnix-deploy \
    nixproc-id-assign nixproc-generate-config; do
    ln -sfn nixproc "$out/$name"
done
echo "build.sh: built $(realpath "$out")/{nixproc,libnixproc_plugin.so,nixproc-builder,webapp}" >&2
