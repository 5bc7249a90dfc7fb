#!/usr/bin/env bash
# The main job: deploy examples/webapps-sysvinit unprivileged into a local
# state dir (./.state) with the default process manager (sysvinit), and show
# nginx answering for each virtual host. Leaves it running; undeploy with:
#   target/release/nixproc switch --state-dir .state --force-disable-user-change --undeploy
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" = 0 ]; then scripts/setup.sh; fi
scripts/build.sh

state=${NIXPROC_DEMO_STATE_DIR:-$PWD/.state}
nixproc=target/release/nixproc
set -x
"$nixproc" switch --state-dir "$state" --force-disable-user-change examples/webapps-sysvinit/processes.nix
curl -sS --fail-with-body --retry 5 --retry-connrefused --retry-delay 1 -H 'Host: webapp1.local' http://localhost:8080
curl -sS --fail-with-body --retry 5 --retry-connrefused --retry-delay 1 -H 'Host: webapp2.local' http://localhost:8080
"$nixproc" switch --state-dir "$state" --force-disable-user-change --list-generations
