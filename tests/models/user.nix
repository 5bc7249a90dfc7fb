# Test model: the webapp run as an existing unprivileged user (`nobody`),
# once self-daemonizing (start_daemon -u) and once in the foreground
# (daemonized by nixproc's helper with --user).
{ stateDir
, runtimeDir ? "${stateDir}/run"
, tmpDir ? "${stateDir}/tmp"
, forceDisableUserChange ? false
, ports
, pkgs ? import ../../examples/host-pkgs.nix { }
}:

let
  nixproc = import <nixproc> { inherit stateDir runtimeDir tmpDir forceDisableUserChange; };
  webapp = name: daemon: nixproc.createSystemVInitScript {
    instanceName = name;
    process = "${pkgs.webapp}/bin/webapp";
    args = if daemon then [ "-D" ] else [ ];
    processIsDaemon = daemon;
    user = "nobody";
    environment = {
      PORT = ports.${name};
      INSTANCE_NAME = name;
      # A process with a user keeps its PID file in tmpDir.
      PID_FILE = "${tmpDir}/${name}.pid";
    };
  };
in
{
  daemon.pkg = webapp "daemon" true;
  foreground.pkg = webapp "foreground" false;
}
