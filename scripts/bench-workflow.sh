#!/usr/bin/env bash
# Whole-workflow figures of the reference workload (examples/bench: N webapps
# in dependency chains of 10 behind one nginx), per N and backend. Not a
# test and never run by scripts/test.sh: run it by hand after the build.
# Prints a Markdown table (docs/performance.md explains the columns).
#
#   scripts/bench-workflow.sh [N ...]          default: 10 100 1000 5000
#
# Environment:
#   NIXPROC_BIN_DIR   nixproc, nixproc-builder, libnixproc_plugin.so, webapp
#                     (default: target/release)
#   BENCH_BACKENDS    backends to measure (default: sysvinit supervisord systemd;
#                     all but docker work: nginx's initialize script needs a
#                     shell from the store inside a container, which the
#                     host package set has not)
#   BENCH_RUNS        hyperfine runs per evaluation figure (default: 5)
#   BENCH_BUILD_MAX   largest N whose first build is measured (default: 5000)
#
# Columns:
#   eval µs/process   CPU time (user+sys) of `nix-instantiate --eval --strict`
#                     forcing the profile's drvPath with the plugin loaded,
#                     minus the same for N = 0 (start-up, the Nix layer, the
#                     nginx instance, the builder copied into the store),
#                     divided by N. CPU time, not wall time: it hardly
#                     depends on other load on the machine.
#   eval wall (s)     wall time of that evaluation, start-up included
#   first build (s)   `nix-build` of the profile into an empty store (a fresh
#                     chroot store per run: `--store DIR`), wall time
#   drvs              derivations that build writes (`nix-store -qR` of the
#                     profile's .drv, .drv files only)
#   no-op switch (s)  `nixproc switch --dry-run -o PROFILE` of the built
#                     profile: evaluation + planning of an unchanged profile,
#                     nothing started (wall time)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

bin=${NIXPROC_BIN_DIR:-$root/target/release}
backends=(${BENCH_BACKENDS:-sysvinit supervisord systemd})
runs=${BENCH_RUNS:-5}
build_max=${BENCH_BUILD_MAX:-5000}
sizes=("$@")
[ ${#sizes[@]} -gt 0 ] || sizes=(10 100 1000 5000)

for f in nixproc nixproc-builder libnixproc_plugin.so webapp; do
    [ -e "$bin/$f" ] || { echo "bench-workflow: $bin/$f is missing (scripts/build.sh)" >&2; exit 1; }
done
command -v hyperfine >/dev/null || { echo "bench-workflow: needs hyperfine (scripts/setup.sh installs it)" >&2; exit 1; }

# Resolved: builtins.path would copy a symlink itself into the store.
export NIXPROC_BUILDER=$(readlink -f "$bin/nixproc-builder") NIXPROC_WEBAPP=$(readlink -f "$bin/webapp")
export NIXPROC_PLUGIN=$(readlink -f "$bin/libnixproc_plugin.so") NIXPROC=$root/nix
plugin=(--option plugin-files "$NIXPROC_PLUGIN")
scratch=$(mktemp -d /tmp/nixproc-bench-XXXXXX)
trap 'chmod -R u+w "$scratch" 2>/dev/null; rm -rf "$scratch"' EXIT
state=$scratch/state

# The profile expression for backend $1 and size $2.
profile_expr() {
    printf '(import %s/nix/build-profile.nix { exprFile = %s/examples/bench/processes.nix; processManager = "%s"; stateDir = "%s"; forceDisableUserChange = true; extraParams = { n = %s; }; })' \
        "$root" "$root" "$1" "$state" "$2"
}

# Mean user+sys seconds and mean wall seconds of a hyperfine run.
cpu_wall() {
    python3 -c 'import json,sys; r=json.load(open(sys.argv[1]))["results"][0]; print("%.6f %.6f" % (r["user"]+r["system"], r["mean"]))' "$1"
}

hf() { # hf OUT.json COMMAND
    hyperfine -N -w 1 -r "$runs" --export-json "$1" "$2" >/dev/null 2>&1
}

# Plugin load: `nix-instantiate --eval -E 1` with and without the plugin
# (30 runs each: the difference is about a millisecond).
runs_saved=$runs; runs=30
hf "$scratch/bare.json" "nix-instantiate --eval -E 1"
hf "$scratch/empty.json" "nix-instantiate --option plugin-files $NIXPROC_PLUGIN --eval -E 1"
runs=$runs_saved
read -r bare_cpu bare_wall < <(cpu_wall "$scratch/bare.json")
read -r empty_cpu empty_wall < <(cpu_wall "$scratch/empty.json")
printf 'Plugin load: %.1f ms wall (%.1f ms CPU) added to `nix-instantiate --eval -E 1` (%.1f ms without the plugin)\n\n' \
    "$(python3 -c "print(($empty_wall-$bare_wall)*1000)")" \
    "$(python3 -c "print(($empty_cpu-$bare_cpu)*1000)")" \
    "$(python3 -c "print($bare_wall*1000)")"

printf '| backend | N | eval µs/process | eval wall (s) | first build (s) | drvs | no-op switch (s) |\n'
printf '|---|---:|---:|---:|---:|---:|---:|\n'
for pm in "${backends[@]}"; do
    hf "$scratch/eval0.json" "nix-instantiate ${plugin[*]} --option substituters '' -I nixproc=$root/nix --eval --strict -E '$(profile_expr "$pm" 0).drvPath'"
    read -r zero_cpu _ < <(cpu_wall "$scratch/eval0.json")
    for n in "${sizes[@]}"; do
        expr="$(profile_expr "$pm" "$n").drvPath"
        hf "$scratch/eval.json" "nix-instantiate ${plugin[*]} --option substituters '' -I nixproc=$root/nix --eval --strict -E '$expr'"
        read -r cpu wall < <(cpu_wall "$scratch/eval.json")
        per=$(python3 -c "print('%.1f' % (max(0.0, $cpu - $zero_cpu) * 1e6 / $n))")

        build=- drvs=-
        if [ "$n" -le "$build_max" ]; then
            store=$(mktemp -d "$scratch/store-XXXXXX")
            start=$(date +%s.%N)
            nix-build --store "$store" "${plugin[@]}" --option substituters '' -I "nixproc=$root/nix" \
                --no-out-link -E "$(profile_expr "$pm" "$n")" >/dev/null 2>"$scratch/build.log" \
                || { cat "$scratch/build.log" >&2; exit 1; }
            build=$(python3 -c "print('%.2f' % ($(date +%s.%N) - $start))")
            drvs=$(find "$store/nix/store" -maxdepth 1 -name '*.drv' | wc -l)
            chmod -R u+w "$store"; rm -rf "$store"
        fi

        # No-op switch: plan the built profile against itself.
        profile=$("$bin/nixproc" build -P "$pm" --state-dir "$state" --force-disable-user-change \
            --extra-params "{ n = $n; }" examples/bench/processes.nix 2>/dev/null)
        start=$(date +%s.%N)
        "$bin/nixproc" switch --dry-run -P "$pm" --state-dir "$state" --force-disable-user-change \
            -o "$profile" --extra-params "{ n = $n; }" examples/bench/processes.nix >/dev/null 2>&1
        switch=$(python3 -c "print('%.2f' % ($(date +%s.%N) - $start))")

        printf '| %s | %s | %s | %.2f | %s | %s | %s |\n' "$pm" "$n" "$per" "$wall" "$build" "$drvs" "$switch"
    done
done
