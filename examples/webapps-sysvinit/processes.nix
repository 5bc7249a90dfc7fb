# Processes model: two instances of the example webapp behind an nginx
# reverse proxy with virtual hosts (webapp1.local, webapp2.local).
#
#   nixproc switch --state-dir ./state --force-disable-user-change processes.nix
#   curl -H 'Host: webapp1.local' http://localhost:8080
{ pkgs ? import ../host-pkgs.nix { inherit system; }
, system ? builtins.currentSystem
, stateDir ? "/var"
, runtimeDir ? "${stateDir}/run"
, logDir ? "${stateDir}/log"
, cacheDir ? "${stateDir}/cache"
, tmpDir ? (if stateDir == "/var" then "/tmp" else "${stateDir}/tmp")
, forceDisableUserChange ? false
  # Ports, so several deployments can live side by side.
, webappPortBase ? 5000
, nginxPort ? 8080
}:

let
  constructors = import ./constructors/constructors.nix {
    inherit pkgs stateDir runtimeDir logDir cacheDir tmpDir forceDisableUserChange;
  };
in
rec {
  webapp1 = rec {
    port = webappPortBase + 1;
    dnsName = "webapp1.local";
    pkg = constructors.webapp {
      inherit port;
      instanceSuffix = "1";
    };
  };

  webapp2 = rec {
    port = webappPortBase + 2;
    dnsName = "webapp2.local";
    pkg = constructors.webapp {
      inherit port;
      instanceSuffix = "2";
    };
  };

  nginx = rec {
    port = nginxPort;
    pkg = constructors.nginxReverseProxy {
      inherit port;
      webapps = [ webapp1 webapp2 ];
    } { };
  };
}
