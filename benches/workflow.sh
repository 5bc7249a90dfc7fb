#!/usr/bin/env bash
# Whole-workflow timings on the reference workload (benches/scale.nix):
# evaluation + instantiation of the profile (nix-instantiate, plugin loaded)
# and the first `nixproc build` into the store, for several N. Not a test:
# run it by hand after scripts/build.sh. Prints a Markdown table.
#   benches/workflow.sh [N ...]        (default: 10 100 1000 5000)
set -euo pipefail
cd "$(dirname "$0")/.."
command -v hyperfine >/dev/null || { echo "needs hyperfine (apt-get install hyperfine)" >&2; exit 1; }

rel=$PWD/target/release
export NIXPROC_BUILDER=$rel/nixproc-builder
sizes=("$@"); [ ${#sizes[@]} -gt 0 ] || sizes=(10 100 1000 5000)
scratch=$(mktemp -d); trap 'rm -rf "$scratch"' EXIT

instantiate() {
    echo "nix-instantiate --option plugin-files $rel/libnixproc_plugin.so --option substituters '' \
-I nixproc=$PWD/nix nix/build-profile.nix --argstr exprFile $PWD/benches/scale.nix \
--arg extraParams '{ n = $1; portBase = $2; }' --argstr stateDir $scratch/state"
}

mean() { python3 -c 'import json,sys; print("%.1f" % (json.load(open(sys.argv[1]))["results"][0]["mean"]*1000))' "$1"; }

printf '| N | instantiate (ms) | µs/process | first build (s) |\n|---:|---:|---:|---:|\n'
for n in "${sizes[@]}"; do
    # A port base unique per run makes every first build hit an empty store path.
    base=$(( (RANDOM % 20000) + 30000 ))
    hyperfine -N -w 1 -r 5 --export-json "$scratch/i.json" "$(instantiate "$n" "$base")" >/dev/null 2>&1
    ms=$(mean "$scratch/i.json")
    per=$(python3 -c "print('%.0f' % ($ms*1000/$n))")
    base=$(( base + 1 ))
    start=$(date +%s.%N)
    "$rel/nixproc" build --state-dir "$scratch/state" --extra-params "{ n = $n; portBase = $base; }" \
        benches/scale.nix >/dev/null 2>&1
    build=$(python3 -c "print('%.2f' % ($(date +%s.%N) - $start))")
    printf '| %s | %s | %s | %s |\n' "$n" "$ms" "$per" "$build"
done
