# Test model: webapp1 ← webapp2 (depends on webapp1) ← nginx (proxies both).
# Every start and stop is appended to <stateDir>/order.log, so tests can
# check the order; `tags` changes one instance's environment (and so only
# its revision) to check that a switch restarts only that instance.
{ stateDir
, runtimeDir ? "${stateDir}/run"
, logDir ? "${stateDir}/log"
, cacheDir ? "${stateDir}/cache"
, tmpDir ? "${stateDir}/tmp"
, forceDisableUserChange ? false
, ports
, tags ? { }
, foreground ? false
, failing ? null # name of an instance whose start fails
, pkgs ? import ../../examples/host-pkgs.nix { }
}:

let
  nixproc = import <nixproc> {
    inherit stateDir runtimeDir logDir cacheDir tmpDir forceDisableUserChange;
  };
  constructors = import ../../examples/webapps-sysvinit/constructors/constructors.nix {
    inherit pkgs stateDir logDir runtimeDir cacheDir tmpDir forceDisableUserChange;
  };
  orderLog = "${stateDir}/order.log";
  program = "${pkgs.webapp}/bin/webapp";

  webapp = name: dependencies:
    let pidFile = "${runtimeDir}/${name}.pid"; in
    nixproc.createSystemVInitScript {
      instanceName = name;
      process = program;
      args = if foreground then [ ] else [ "-D" ];
      processIsDaemon = !foreground;
      environment = {
        PORT = ports.${name};
        PID_FILE = pidFile;
        INSTANCE_NAME = name;
        TAG = tags.${name} or "v1";
      } // (if failing == name then { PORT = "not-a-port"; } else { });
      initialize = "echo start ${name} >> ${orderLog}";
      instructions.stop = {
        activity = "Stopping";
        instruction = "echo stop ${name} >> ${orderLog}; killproc -p ${pidFile} ${program}";
      };
      inherit dependencies;
    };
in
rec {
  webapp1 = rec {
    port = ports.webapp1;
    dnsName = "webapp1.local";
    pkg = webapp "webapp1" [ ];
  };

  webapp2 = rec {
    port = ports.webapp2;
    dnsName = "webapp2.local";
    pkg = webapp "webapp2" [ webapp1.pkg ];
  };

  nginx = {
    port = ports.nginx;
    pkg = constructors.nginxReverseProxy {
      port = ports.nginx;
      webapps = [ webapp1 webapp2 ];
    } { };
  };
}
