# Test model: a webapp running as a user (and group) that only exists
# because the model declares it, with ids from an ids.nix-style set.
# `withUser = false` drops the instance, so undeploying it must remove the
# accounts again.
{ stateDir
, runtimeDir ? "${stateDir}/run"
, tmpDir ? "${stateDir}/tmp"
, forceDisableUserChange ? false
, processManager ? "sysvinit"
, port
, account
, uid
, pkgs ? import ../../examples/host-pkgs.nix { }
}:

let
  ids = { uids.${account} = uid; gids.${account} = uid; };
  nixproc = import <nixproc> {
    inherit stateDir runtimeDir tmpDir forceDisableUserChange processManager ids;
  };
in
{
  webapp.pkg = nixproc.createManagedProcess {
    instanceName = "credwebapp";
    process = "${pkgs.webapp}/bin/webapp";
    foregroundProcessExtraArgs = [ ];
    daemonExtraArgs = [ "-D" ];
    user = account;
    environment = {
      PORT = port;
      PID_FILE = "${tmpDir}/credwebapp.pid";
    };
    credentials = {
      groups.${account} = { };
      users.${account} = {
        group = account;
        description = "nixproc credentials test";
        homeDir = "${stateDir}/home/${account}";
        createHomeDir = true;
      };
    };
  };
}
