# A processes model whose instance keys differ from the process names
# (defect 28 of the original: Disnix required them to be equal): a store,
# an api that depends on it, and a web front that depends on both.
{ stateDir ? "/var"
, runtimeDir ? "${stateDir}/run"
, logDir ? "${stateDir}/log"
, tmpDir ? "${stateDir}/tmp"
, forceDisableUserChange ? false
, processManager
}:

let
  nixproc = import ../../nix {
    inherit stateDir runtimeDir logDir tmpDir forceDisableUserChange processManager;
  };
  sleeper = name: dependencies: nixproc.createManagedProcess {
    inherit dependencies;
    instanceName = name;
    foregroundProcess = "/bin/sleep";
    args = [ "1000" ];
  };
in
rec {
  store = {
    port = 7001;
    pkg = sleeper "kv-store" [ ];
  };
  api = {
    pkg = sleeper "kv-api" [ store.pkg ];
  };
  web = {
    pkg = sleeper "kv-web" [ api.pkg store.pkg ];
  };
}
