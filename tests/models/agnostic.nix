# Test model for every backend: the webapps-agnostic example's nginx
# reverse proxy in front of two webapps made with createManagedProcess.
# `tags` changes one webapp's environment (so only its revision);
# `nginxWorkers` changes nginx alone (nothing depends on it); `failing`
# names a webapp whose program does not exist.
{ stateDir
, runtimeDir ? "${stateDir}/run"
, logDir ? "${stateDir}/log"
, cacheDir ? "${stateDir}/cache"
, tmpDir ? "${stateDir}/tmp"
, forceDisableUserChange ? false
, processManager
, ports
, tags ? { }
, nginxWorkers ? 1024
, webappMode ? null
, failing ? null
, pkgs ? import ../../examples/host-pkgs.nix { }
}:

let
  nixproc = import <nixproc> {
    inherit stateDir runtimeDir logDir cacheDir tmpDir forceDisableUserChange processManager;
  };
  constructors = import ../../examples/webapps-agnostic/constructors/constructors.nix {
    inherit pkgs stateDir logDir runtimeDir cacheDir tmpDir forceDisableUserChange processManager;
  };

  webapp = name: port:
    let
      program = if failing == name then "${stateDir}/no-such-program" else "${pkgs.webapp}/bin/webapp";
    in
    nixproc.createManagedProcess ({
      instanceName = name;
      daemonExtraArgs = [ "-D" ];
      environment = {
        PORT = port;
        PID_FILE = "${runtimeDir}/${name}.pid";
        INSTANCE_NAME = name;
        TAG = tags.${name} or "v1";
      };
    } // (if webappMode == "daemon" then { daemon = program; }
    else if webappMode == "foreground" then { foregroundProcess = program; }
    else { process = program; }));
in
rec {
  webapp1 = {
    port = ports.webapp1;
    dnsName = "webapp1.local";
    pkg = webapp "webapp1" ports.webapp1;
  };
  webapp2 = {
    port = ports.webapp2;
    dnsName = "webapp2.local";
    pkg = webapp "webapp2" ports.webapp2;
  };
  nginx = {
    port = ports.nginx;
    pkg = constructors.nginxReverseProxy {
      port = ports.nginx;
      webapps = [ webapp1 webapp2 ];
      workerConnections = nginxWorkers;
    } { };
  };
}
