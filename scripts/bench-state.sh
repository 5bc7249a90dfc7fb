#!/usr/bin/env bash
# Snapshot and restore throughput of `nixproc state` beside plain tools:
#   * a ~1 GB directory (many small files from /usr, plus large random,
#     base64 and log-like files): nixproc snapshot/restore vs
#     `tar -c | zstd -3` / `zstd -d | tar -x`;
#   * a ~100 MB PostgreSQL database (pgbench -i -s 7 in a throw-away
#     cluster run as the postgres user): nixproc vs `pg_dump -Fc -Z0 | zstd -3`
#     / `zstd -d | pg_restore`.
# Prints a Markdown table (MB/s = data size / wall time). Needs root (the
# cluster runs as `postgres`), Debian's /usr/lib/postgresql/<v>, zstd, tar;
# uses hyperfine when installed.
#
# NIXPROC: the nixproc binary [default: $CARGO_TARGET_DIR/release/nixproc,
# else target/release/nixproc]. SIZE_MB: directory size [1024].
# RUNS: hyperfine runs [2]. KEEP=1 keeps the work directory.
#
# nixproc's restore includes its safety snapshot of the current state (it
# always takes one), so it does about twice the work of the plain restore.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
NIXPROC=${NIXPROC:-${CARGO_TARGET_DIR:-$here/target}/release/nixproc}
SIZE_MB=${SIZE_MB:-1024}
RUNS=${RUNS:-2}
[ -x "$NIXPROC" ] || { echo "no nixproc at $NIXPROC (cargo build --release -p nixproc)" >&2; exit 1; }
[ "$(id -u)" = 0 ] || { echo "run as root (the PostgreSQL cluster runs as postgres)" >&2; exit 1; }
pgbin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n1)
[ -x "$pgbin/initdb" ] || { echo "no /usr/lib/postgresql/<v>/bin" >&2; exit 1; }

work=$(mktemp -d /tmp/nixproc-bench.XXXXXX)
chmod 755 "$work"
port=$((20000 + $$ % 20000))
cleanup() {
  [ -d "$work/pg/data" ] && setpriv --reuid=postgres --regid=postgres --clear-groups \
    "$pgbin/pg_ctl" -D "$work/pg/data" -m immediate -w stop >/dev/null 2>&1 || true
  [ "${KEEP:-0}" = 1 ] || rm -rf "$work"
}
trap cleanup EXIT
log() { echo "bench-state: $*" >&2; }

# ---- data: the directory -------------------------------------------------
data=$work/live/files
mkdir -p "$data/small" "$data/large"
small_mb=$((SIZE_MB / 2))
log "copying ~${small_mb} MB of small files from /usr"
# (find is cut off by awk: no pipefail here)
(set +o pipefail
 find /usr -xdev -type f -size -256k -printf '%s\t%P\n' 2>/dev/null |
   awk -F'\t' -v max=$((small_mb * 1024 * 1024)) '{ s += $1; if (s > max) exit; print $2 }' \
   > "$work/small.list")
tar -C /usr -cf - --no-recursion -T "$work/small.list" 2>/dev/null | tar -C "$data/small" -xf -
large_mb=$(( (SIZE_MB * 1024 * 1024 - $(du -sb "$data" | cut -f1)) / 1024 / 1024 ))
third=$((large_mb / 3))
log "writing ${large_mb} MB of large files (random, base64, log-like)"
head -c $((third * 1024 * 1024)) /dev/urandom > "$data/large/random.bin"
head -c $((third * 1024 * 1024 * 3 / 4)) /dev/urandom | base64 -w 76 > "$data/large/base64.txt"
awk -v n=$((third * 1024 * 1024)) 'BEGIN { srand(1); while (s < n) {
  l = sprintf("2026-05-12T10:%02d:%02d.%03dZ INFO request id=%08x path=/api/v1/items/%d status=%d ms=%d\n",
    int(rand()*60), int(rand()*60), int(rand()*1000), int(rand()*4294967295), int(rand()*100000),
    (rand() < 0.9 ? 200 : 404), int(rand()*500)); printf "%s", l; s += length(l) } }' > "$data/large/app.log"
dir_bytes=$(du -sb "$data" | cut -f1)
dir_files=$(find "$data" -type f | wc -l)

# ---- data: the PostgreSQL database ----------------------------------------
log "starting a PostgreSQL cluster ($pgbin) and loading pgbench -s 7"
mkdir -p "$work/pg/data" "$work/pg/sock"
chown postgres:postgres "$work/pg/data" "$work/pg/sock"
as_pg() { (cd / && setpriv --reuid=postgres --regid=postgres --clear-groups "$@"); }
as_pg "$pgbin/initdb" -A trust -U postgres -E UTF8 --locale=C -D "$work/pg/data" >/dev/null
as_pg "$pgbin/pg_ctl" -D "$work/pg/data" -l "$work/pg/sock/log" -w \
  -o "-k $work/pg/sock -p $port -c listen_addresses=''" start >/dev/null
psql() { as_pg "$pgbin/psql" -X -q -A -t -h "$work/pg/sock" -p "$port" -U postgres "$@"; }
psql -d postgres -c "CREATE DATABASE bench"
as_pg "$pgbin/pgbench" -q -i -s 7 -h "$work/pg/sock" -p "$port" -U postgres bench >/dev/null 2>&1
db_bytes=$(psql -d postgres -c "SELECT pg_database_size('bench')")

# ---- a hand-made profile with the two instances ---------------------------
gen=$work/store/gen1
mkdir -p "$gen/nix-support/nixproc" "$gen/etc/rc.d/init.d" "$work/profiles"
for i in files pg; do
  printf '#!/bin/sh\n[ "$1" = status ] && exit 3\nexit 0\n' > "$gen/etc/rc.d/init.d/$i"
  chmod 755 "$gen/etc/rc.d/init.d/$i"
done
cat > "$gen/nix-support/nixproc/manifest.json" <<EOF
{ "version": 1, "processManager": "sysvinit", "instances": [
  { "key": "files", "name": "files", "description": "bench directory", "revision": "bench-files-1",
    "dependencies": [], "pidFile": null, "logFile": null, "user": null,
    "backend": {"type": "sysvinit", "script": "etc/rc.d/init.d/files", "startRunlevels": [3], "sequence": 1},
    "state": {"units": {"files": {"type": "directory", "path": "$data", "consistency": "stop"}}, "rollback": "ask"} },
  { "key": "pg", "name": "pg", "description": "bench database", "revision": "bench-pg-1",
    "dependencies": [], "pidFile": null, "logFile": null, "user": null,
    "backend": {"type": "sysvinit", "script": "etc/rc.d/init.d/pg", "startRunlevels": [3], "sequence": 2},
    "state": {"units": {"db": {"type": "postgresql-database", "database": "bench",
      "host": "$work/pg/sock", "port": $port, "user": "postgres",
      "package": "$(dirname "$pgbin")", "consistency": "online"}}, "rollback": "ask"} } ] }
EOF
ln -s "$gen" "$work/profiles/processes-1-link"
ln -s processes-1-link "$work/profiles/processes"
snaps=$work/snaps
np() {
  "$NIXPROC" state "$@" --profile-dir "$work/profiles" --lib-dir "$work/lib" \
    --snapshot-dir "$snaps" --force-disable-user-change
}
np keygen >/dev/null

# ---- timing ----------------------------------------------------------------
declare -a rows
# measure NAME BYTES PREPARE COMMAND: mean wall seconds.
measure() {
  local name=$1 bytes=$2 prepare=$3 cmd=$4 secs
  log "timing: $name"
  if command -v hyperfine >/dev/null; then
    hyperfine --runs "$RUNS" --prepare "$prepare" --export-json "$work/h.json" \
      --shell bash --style none "$cmd" >/dev/null 2>&1 ||
      { echo "failed: $cmd" >&2; exit 1; }
    secs=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["results"][0]["mean"])' "$work/h.json")
  else
    bash -c "$prepare"
    local t0 t1
    t0=$(date +%s.%N)
    bash -c "$cmd"
    t1=$(date +%s.%N)
    secs=$(echo "$t1 - $t0" | bc -l)
  fi
  rows+=("$(awk -v n="$name" -v b="$bytes" -v s="$secs" \
    'BEGIN { printf "| %s | %.0f | %.2f | %.0f |", n, b / 1048576, s, b / 1048576 / s }')")
}
export -f np
export NIXPROC work snaps pgbin port data

out=$work/plain
measure "directory: tar -c \| zstd -3 (plain)" "$dir_bytes" "rm -f $out.tar.zst" \
  "tar -C '$data' -cf - . | zstd -3 -q -o $out.tar.zst"
measure "directory: zstd -d \| tar -x (plain)" "$dir_bytes" "rm -rf $out.d; mkdir $out.d" \
  "zstd -d -q -c $out.tar.zst | tar -C $out.d -xf -"
measure "directory: nixproc state snapshot" "$dir_bytes" "rm -rf '$snaps'" \
  "np snapshot files >/dev/null"
np snapshot files > "$work/files.id"
cp -a "$snaps" "$work/snaps.base"
measure "directory: nixproc state restore (+ safety snapshot)" "$dir_bytes" \
  "rm -rf '$snaps'; cp -a '$work/snaps.base' '$snaps'" \
  "np restore files $(cat "$work/files.id") --yes >/dev/null 2>&1"

pgdump() { as_pg "$pgbin/pg_dump" -Fc -Z0 -h "$work/pg/sock" -p "$port" -U postgres "$@"; }
export -f pgdump as_pg
measure "postgresql: pg_dump -Fc -Z0 \| zstd -3 (plain)" "$db_bytes" "rm -f $out.pgdump.zst" \
  "pgdump -d bench | zstd -3 -q -o $out.pgdump.zst"
measure "postgresql: zstd -d \| pg_restore (plain)" "$db_bytes" \
  "as_pg $pgbin/dropdb -h $work/pg/sock -p $port -U postgres --if-exists plain; as_pg $pgbin/createdb -h $work/pg/sock -p $port -U postgres plain" \
  "zstd -d -q -c $out.pgdump.zst | as_pg $pgbin/pg_restore -h $work/pg/sock -p $port -U postgres -d plain"
rm -rf "$snaps"
measure "postgresql: nixproc state snapshot" "$db_bytes" "rm -rf '$snaps'" \
  "np snapshot pg >/dev/null"
np snapshot pg > "$work/pg.id"
rm -rf "$work/snaps.base"; cp -a "$snaps" "$work/snaps.base"
measure "postgresql: nixproc state restore (+ safety snapshot)" "$db_bytes" \
  "rm -rf '$snaps'; cp -a '$work/snaps.base' '$snaps'" \
  "np restore pg $(cat "$work/pg.id") --yes >/dev/null 2>&1"

echo
echo "Directory: $((dir_bytes / 1048576)) MB in $dir_files files; PostgreSQL: pgbench -s 7, $((db_bytes / 1048576)) MB."
echo "$(nproc) CPUs; $( (command -v hyperfine >/dev/null && echo "hyperfine, $RUNS runs, mean") || echo "one run, date +%s.%N")."
echo
echo "| operation | MB | seconds | MB/s |"
echo "|---|---:|---:|---:|"
printf '%s\n' "${rows[@]}"
