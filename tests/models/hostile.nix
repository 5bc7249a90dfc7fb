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
  inherit (import ./hostile-programs.nix {
    inherit (nixproc) writeScript;
    inherit stateDir runtimeDir hostileFile;
  }) hostile foregroundProgram daemonProgram environment;
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
