# Test model: hostile strings (from a JSON file the test writes) as
# arguments, environment values and descriptions of createManagedProcess
# processes, for whichever backend is deployed: a foreground process and a
# self-daemonizing one. Each dumps what it received.
{ stateDir
, runtimeDir ? "${stateDir}/run"
, logDir ? "${stateDir}/log"
, tmpDir ? "${stateDir}/tmp"
, forceDisableUserChange ? false
, processManager
, hostileFile
}:

let
  nixproc = import <nixproc> { inherit stateDir runtimeDir logDir tmpDir forceDisableUserChange processManager; };
  hostile = builtins.fromJSON (builtins.readFile hostileFile);
  dump = ''
    mkdir -p "$DUMP_DIR"
    for a in "$@"; do printf '%s\0' "$a"; done > "$DUMP_DIR/args.tmp"
    env -0 > "$DUMP_DIR/env.tmp"
    mv "$DUMP_DIR/args.tmp" "$DUMP_DIR/args"
    mv "$DUMP_DIR/env.tmp" "$DUMP_DIR/env"
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
  foreground.pkg = nixproc.createManagedProcess {
    instanceName = "hostile-fg";
    description = hostile.description;
    foregroundProcess = foregroundProgram;
    args = hostile.args;
    environment = environment "hostile-fg";
  };
  daemon.pkg = nixproc.createManagedProcess {
    instanceName = "hostile-daemon";
    description = hostile.description;
    daemon = daemonProgram;
    args = hostile.args;
    pidFile = "${runtimeDir}/hostile-daemon.pid";
    environment = environment "hostile-daemon";
  };
}
