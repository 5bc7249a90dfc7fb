# A stateful service and its database. Deploy version 1, write notes, switch
# to version 2 (nixproc snapshots the database and the uploads first, then
# the migration runs), and roll back with the state of version 1:
#
#   nixproc switch --state-dir ./state --force-disable-user-change processes.nix
#   curl -d 'hello' http://127.0.0.1:5080/notes; curl http://127.0.0.1:5080/
#   nixproc switch --state-dir ./state --force-disable-user-change \
#     --extra-params '{ version = 2; }' processes.nix
#   nixproc state list --state-dir ./state
#   nixproc switch --state-dir ./state --force-disable-user-change --rollback --restore-state
{ pkgs ? import ../host-pkgs.nix { inherit system; }
, system ? builtins.currentSystem
, stateDir ? "/var"
, runtimeDir ? "${stateDir}/run"
, logDir ? "${stateDir}/log"
, cacheDir ? "${stateDir}/cache"
, tmpDir ? (if stateDir == "/var" then "/tmp" else "${stateDir}/tmp")
, forceDisableUserChange ? false
, processManager
, version ? 1
, port ? 5080
, postgresqlPort ? 5432
}:

let
  nixproc = import ../../nix {
    inherit pkgs stateDir logDir runtimeDir cacheDir tmpDir forceDisableUserChange processManager;
  };
  postgresqlConstructor = import ../services-agnostic/constructors/postgresql.nix {
    inherit (nixproc) createManagedProcess;
    inherit (pkgs) postgresql;
    inherit stateDir runtimeDir forceDisableUserChange;
  };
  guestbookConstructor = import ./guestbook.nix {
    inherit (nixproc) createManagedProcess writeTextFile;
    inherit (pkgs) python3 postgresql;
    inherit stateDir runtimeDir;
  };
in
rec {
  postgresql = {
    pkg = postgresqlConstructor {
      port = postgresqlPort;
      listenAddresses = "";
      superUser = "guestbook";
    } { };
  };

  guestbook = {
    pkg = guestbookConstructor {
      inherit version port postgresqlPort;
    } { postgresqlServer = postgresql.pkg; };
  };
}
