# Test model for readiness checks: webapp1 ← webapp2 (sysvinit, daemons).
# webapp1 declares a tcp check on its own port (passes once it listens) or,
# with `deadPort`, on a port nothing listens on (the start times out after
# 2 s and the switch rolls back). webapp2 waits for webapp1 to be ready and
# declares an http check of its own port.
{ stateDir
, runtimeDir ? "${stateDir}/run"
, logDir ? "${stateDir}/log"
, cacheDir ? "${stateDir}/cache"
, tmpDir ? "${stateDir}/tmp"
, forceDisableUserChange ? false
, ports
, tag ? "v1"
, deadPort ? null
, pkgs ? import ../../examples/host-pkgs.nix { }
}:

let
  nixproc = import <nixproc> {
    inherit stateDir runtimeDir logDir cacheDir tmpDir forceDisableUserChange;
  };
  program = "${pkgs.webapp}/bin/webapp";

  webapp = name: dependencies: readiness:
    nixproc.createSystemVInitScript {
      instanceName = name;
      process = program;
      args = [ "-D" ];
      environment = {
        PORT = ports.${name};
        PID_FILE = "${runtimeDir}/${name}.pid";
        INSTANCE_NAME = name;
        TAG = tag;
      };
      inherit dependencies readiness;
    };
in
rec {
  webapp1 = {
    port = ports.webapp1;
    pkg = webapp "webapp1" [ ] {
      checks = [{ type = "tcp"; port = if deadPort == null then ports.webapp1 else deadPort; }];
      timeout = 2;
      interval = 50;
    };
  };

  webapp2 = {
    port = ports.webapp2;
    pkg = webapp "webapp2" [ webapp1.pkg ] {
      checks = [{ type = "http"; url = "http://127.0.0.1:${toString ports.webapp2}/"; }];
    };
  };
}
