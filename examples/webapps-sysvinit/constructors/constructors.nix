# Constructors expression: composes createSystemVInitScript once and injects
# it into every process expression (nix-processmgmt convention §1.2).
{ pkgs
, stateDir
, logDir
, runtimeDir
, cacheDir
, tmpDir
, forceDisableUserChange
, ids ? { }
}:

let
  nixproc = import <nixproc> {
    inherit pkgs stateDir logDir runtimeDir cacheDir tmpDir forceDisableUserChange ids;
  };
in
{
  webapp = import ./webapp.nix {
    inherit (nixproc) createSystemVInitScript;
    inherit (pkgs) webapp;
    inherit tmpDir;
  };

  nginxReverseProxy = import ./nginx-reverse-proxy.nix {
    inherit (nixproc) createSystemVInitScript writeTextFile;
    inherit (pkgs) nginx;
    inherit stateDir runtimeDir cacheDir forceDisableUserChange;
  };
}
