# Test model for the state rules of a switch, without a database: one
# webapp whose state is a directory. `version` is the code (TAG in its
# environment), `schema` the state's label; the migration appends to
# data/migrations and, with failMigration, leaves garbage and fails.
{ stateDir
, runtimeDir ? "${stateDir}/run"
, logDir ? "${stateDir}/log"
, cacheDir ? "${stateDir}/cache"
, tmpDir ? "${stateDir}/tmp"
, forceDisableUserChange ? false
, processManager ? "sysvinit"
, port
, version ? 1
, schema ? "s${toString version}"
, failMigration ? false
, rollback ? "ask"
, pkgs ? import ../../examples/host-pkgs.nix { }
}:

let
  nixproc = import <nixproc> {
    inherit stateDir runtimeDir logDir cacheDir tmpDir forceDisableUserChange processManager;
  };
  data = "${stateDir}/lib/app/data";
  migrate = nixproc.writeScript "app-migrate" ''
    #!/bin/sh
    set -e
    echo "${schema}" >> ${data}/migrations
    ${if failMigration then ''
      echo garbage > ${data}/garbage
      echo "migration to ${schema} failed on purpose" >&2
      exit 1
    '' else ""}
  '';
in
{
  app = {
    pkg = nixproc.createManagedProcess {
      instanceName = "app";
      foregroundProcess = "${pkgs.webapp}/bin/webapp";
      environment = {
        PORT = port;
        TAG = "v${toString version}";
      };
      initialize = "mkdir -p ${data}";
      state.data = { type = "directory"; path = data; };
      schema = { version = schema; migrate = "${migrate}"; };
      inherit rollback;
      readiness.checks = [{ type = "tcp"; inherit port; }];
    };
  };
}
