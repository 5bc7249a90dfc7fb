# Reference workload for whole-workflow timings: N instances of the example
# webapp, each with its own port, in dependency chains of 10 (webapp i
# depends on webapp i-1 unless i-1 is a multiple of 10), plus one nginx
# reverse proxy that proxies and depends on all N.
#
#   nixproc build --extra-params '{ n = 1000; }' benches/scale.nix
{ stateDir ? "/var"
, runtimeDir ? "${stateDir}/run"
, logDir ? "${stateDir}/log"
, cacheDir ? "${stateDir}/cache"
, tmpDir ? (if stateDir == "/var" then "/tmp" else "${stateDir}/tmp")
, forceDisableUserChange ? false
, n ? 100
, portBase ? 20000
, pkgs ? import ../examples/host-pkgs.nix { }
}:

let
  constructors = import ../examples/webapps-sysvinit/constructors/constructors.nix {
    inherit pkgs stateDir logDir runtimeDir cacheDir tmpDir forceDisableUserChange;
  };
  nixproc = import ../nix { inherit stateDir runtimeDir logDir cacheDir tmpDir forceDisableUserChange; };

  webapp = i:
    let name = "webapp${toString i}"; in {
      name = name;
      value = rec {
        port = portBase + i;
        dnsName = "${name}.local";
        pkg = nixproc.createSystemVInitScript {
          instanceName = name;
          process = "${pkgs.webapp}/bin/webapp";
          args = [ "-D" ];
          environment = { PORT = port; PID_FILE = "${runtimeDir}/${name}.pid"; INSTANCE_NAME = name; };
          dependencies =
            if i > 1 && (i - 1) - ((i - 1) / 10) * 10 != 0
            then [ webapps."webapp${toString (i - 1)}".pkg ]
            else [ ];
        };
      };
    };

  webapps = builtins.listToAttrs (builtins.genList (i: webapp (i + 1)) n);
in
webapps // {
  nginx = {
    port = portBase;
    pkg = constructors.nginxReverseProxy {
      port = portBase;
      webapps = builtins.attrValues webapps;
    } { };
  };
}
