# Test model: hostile strings (read from a JSON file the test writes) passed
# as arguments and environment values to a foreground process (daemonized by
# nixproc) and to a self-daemonizing one. Each dumps what it received.
{ stateDir
, runtimeDir ? "${stateDir}/run"
, tmpDir ? "${stateDir}/tmp"
, forceDisableUserChange ? false
, hostileFile
}:

let
  nixproc = import <nixproc> { inherit stateDir runtimeDir tmpDir forceDisableUserChange; };
  hostile = builtins.fromJSON (builtins.readFile hostileFile);
  dump = ''
    mkdir -p "$DUMP_DIR"
    for a in "$@"; do printf '%s\0' "$a"; done > "$DUMP_DIR/args"
    env -0 > "$DUMP_DIR/env"
  '';
  foregroundProgram = nixproc.writeScript "dump-foreground" ''
    #!/bin/sh
    ${dump}
    exec sleep 600
  '';
  daemonProgram = nixproc.writeScript "dump-daemon" ''
    #!/bin/sh
    ${dump}
    sleep 600 >/dev/null 2>&1 </dev/null &
    echo $! > "$PID_FILE"
  '';
  environment = name: hostile.env // {
    DUMP_DIR = "${stateDir}/dump-${name}";
    PID_FILE = "${runtimeDir}/${name}.pid";
  };
in
{
  foreground.pkg = nixproc.createSystemVInitScript {
    instanceName = "hostile-fg";
    description = hostile.description;
    process = foregroundProgram;
    processIsDaemon = false;
    args = hostile.args;
    environment = environment "hostile-fg";
  };
  daemon.pkg = nixproc.createSystemVInitScript {
    instanceName = "hostile-daemon";
    description = hostile.description;
    process = daemonProgram;
    args = hostile.args;
    environment = environment "hostile-daemon";
  };
}
