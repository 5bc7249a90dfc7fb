# Constructors of real system services, written once for every process
# manager (createManagedProcess). `ids` is the `ids` set of an ids.nix made
# by `nixproc id-assign`: it gives users and groups stable uids/gids.
{ pkgs
, stateDir
, logDir
, runtimeDir
, cacheDir
, tmpDir
, forceDisableUserChange
, processManager
, ids ? { }
}:

let
  nixproc = import <nixproc> {
    inherit pkgs stateDir logDir runtimeDir cacheDir tmpDir forceDisableUserChange processManager ids;
  };
in
{
  postgresql = import ./postgresql.nix {
    inherit (nixproc) createManagedProcess;
    inherit (pkgs) postgresql;
    inherit stateDir runtimeDir forceDisableUserChange;
  };

  nginx = import ./nginx.nix {
    inherit (nixproc) createManagedProcess;
    inherit (pkgs) nginx;
    inherit stateDir cacheDir forceDisableUserChange;
  };

  # A static nginx site, to have nginx answer without any backend.
  nginxStaticSite = import ./nginx-static-site.nix {
    inherit (nixproc) writeTextFile;
    inherit stateDir runtimeDir cacheDir;
  };
}
