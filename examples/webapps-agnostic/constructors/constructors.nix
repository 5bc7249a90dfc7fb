# Constructors expression: composes createManagedProcess once for the
# selected process manager and injects it into every process expression.
{ pkgs
, stateDir
, logDir
, runtimeDir
, cacheDir
, tmpDir
, forceDisableUserChange
, processManager
, webappMode ? null
, ids ? { }
}:

let
  nixproc = import <nixproc> {
    inherit pkgs stateDir logDir runtimeDir cacheDir tmpDir forceDisableUserChange processManager ids;
  };
in
{
  webapp = import ./webapp.nix {
    inherit (nixproc) createManagedProcess;
    inherit (pkgs) webapp;
    inherit tmpDir webappMode;
  };

  nginxReverseProxy = import ./nginx-reverse-proxy.nix {
    inherit (nixproc) createManagedProcess writeTextFile;
    inherit (pkgs) nginx;
    inherit stateDir runtimeDir cacheDir forceDisableUserChange;
  };
}
