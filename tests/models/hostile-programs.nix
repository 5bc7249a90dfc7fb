# What the hostile-string models share: the strings (from the JSON file the
# test writes) and two programs that dump the arguments and environment
# they received — one staying in the foreground, one daemonizing itself
# (writing $PID_FILE).
{ writeScript, stateDir, runtimeDir, hostileFile }:

let
  dump = ''
    mkdir -p "$DUMP_DIR"
    for a in "$@"; do printf '%s\0' "$a"; done > "$DUMP_DIR/args.tmp"
    env -0 > "$DUMP_DIR/env.tmp"
    mv "$DUMP_DIR/args.tmp" "$DUMP_DIR/args"
    mv "$DUMP_DIR/env.tmp" "$DUMP_DIR/env"
  '';
in
rec {
  hostile = builtins.fromJSON (builtins.readFile hostileFile);
  foregroundProgram = writeScript "dump-foreground" ''
    #!/bin/sh
    ${dump}
    exec sleep 600
  '';
  daemonProgram = writeScript "dump-daemon" ''
    #!/bin/sh
    ${dump}
    sleep 600 >/dev/null 2>&1 </dev/null &
    echo $! > "$PID_FILE"
  '';
  environment = name: hostile.env // {
    DUMP_DIR = "${stateDir}/dump-${name}";
    PID_FILE = "${runtimeDir}/${name}.pid";
  };
}
