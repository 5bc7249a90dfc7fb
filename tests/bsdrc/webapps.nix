# Test model for the bsdrc backend on Linux: two instances of the example
# webapp (self-daemonizing, so rc.subr's `command` + `pidfile`) made with
# createManagedProcess, the second depending on the first. The scripts
# source the rc.subr test harness of this directory instead of FreeBSD's
# /etc/rc.subr (referenced in place, not copied: the daemon(8) shim finds
# the static helper relative to itself). `tag` changes webapp2 only.
{ stateDir
, runtimeDir ? "${stateDir}/run"
, logDir ? "${stateDir}/log"
, cacheDir ? "${stateDir}/cache"
, tmpDir ? "${stateDir}/tmp"
, forceDisableUserChange ? false
, processManager
, ports
, tag ? "v1"
, pkgs ? import ../../examples/host-pkgs.nix { }
}:

let
  nixproc = import <nixproc> {
    inherit stateDir runtimeDir logDir cacheDir tmpDir forceDisableUserChange processManager;
    rcSubr = toString ./rc.subr;
    bsdDaemon = toString ./daemon;
  };
  webapp = name: deps: nixproc.createManagedProcess {
    instanceName = name;
    description = "Webapp ${name} (it's \"bsdrc\")";
    # daemon, not process: the composition's daemon(8) must never be taken
    # for the process's daemon executable.
    daemon = "${pkgs.webapp}/bin/webapp";
    daemonArgs = [ "-D" ];
    dependencies = deps;
    initialize = ''
      mkdir -p ${stateDir}/lib/${name}
      echo initialized > ${stateDir}/lib/${name}/marker
    '';
    environment = {
      PORT = ports.${name};
      PID_FILE = "${runtimeDir}/${name}.pid";
      INSTANCE_NAME = name;
      TAG = if name == "webapp2" then tag else "v1";
    };
  };
in
rec {
  webapp1 = {
    port = ports.webapp1;
    pkg = webapp "webapp1" [ ];
  };
  webapp2 = {
    port = ports.webapp2;
    pkg = webapp "webapp2" [ webapp1.pkg ];
  };
}
