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
  inherit (import ./hostile-programs.nix {
    inherit (nixproc) writeScript;
    inherit stateDir runtimeDir hostileFile;
  }) hostile foregroundProgram daemonProgram environment;
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
