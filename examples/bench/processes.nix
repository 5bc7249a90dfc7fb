# The reference workload of the speed benchmarks (issue 6): `n` instances of
# the example webapp, each with its own port, in dependency chains of 10
# (webapp i depends on webapp i-1 unless i-1 is a multiple of 10), plus one
# nginx reverse proxy that proxies to and depends on all of them. Written
# once with createManagedProcess, so it builds for every process manager.
#
#   nixproc build -P sysvinit --extra-params '{ n = 20; }' examples/bench/processes.nix
#   scripts/bench-workflow.sh 10 100 1000 5000
#
# The webapps run as the deploying user (no per-instance account), so a
# benchmark deployment needs no root; `webappUsers = true` gives each its
# own user and group as in examples/webapps-agnostic.
{ pkgs ? import ../host-pkgs.nix { inherit system; }
, system ? builtins.currentSystem
, stateDir ? "/var"
, runtimeDir ? "${stateDir}/run"
, logDir ? "${stateDir}/log"
, cacheDir ? "${stateDir}/cache"
, tmpDir ? (if stateDir == "/var" then "/tmp" else "${stateDir}/tmp")
, forceDisableUserChange ? false
, processManager
, n ? 100
, webappPortBase ? 20000
, nginxPort ? 8080
, webappUsers ? false
}:

let
  nixproc = import ../../nix {
    inherit pkgs stateDir runtimeDir logDir cacheDir tmpDir forceDisableUserChange processManager;
  };

  webapp = import ./webapp.nix {
    inherit (nixproc) createManagedProcess;
    inherit (pkgs) webapp;
    inherit runtimeDir tmpDir webappUsers;
  };

  nginxReverseProxy = import ../webapps-agnostic/constructors/nginx-reverse-proxy.nix {
    inherit (nixproc) createManagedProcess writeTextFile;
    inherit (pkgs) nginx;
    inherit stateDir runtimeDir cacheDir forceDisableUserChange;
  };

  # 1-based index i; chains of 10: 1..10, 11..20, …
  instance = i:
    let key = "webapp${toString i}"; in {
      name = key;
      value = rec {
        port = webappPortBase + i;
        dnsName = "${key}.local";
        pkg = webapp {
          instanceName = key;
          inherit port;
          dependencies =
            if i > 1 && (i - 1) - ((i - 1) / 10) * 10 != 0
            then [ webapps."webapp${toString (i - 1)}".pkg ]
            else [ ];
        };
      };
    };

  webapps = builtins.listToAttrs (builtins.genList (i: instance (i + 1)) n);
in
webapps // {
  nginx = {
    port = nginxPort;
    pkg = nginxReverseProxy {
      port = nginxPort;
      webapps = builtins.attrValues webapps;
    } { };
  };
}
