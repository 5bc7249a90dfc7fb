# Processes model written once for every process manager: two instances of
# the example webapp behind an nginx reverse proxy (virtual hosts
# webapp1.local and webapp2.local), all made with createManagedProcess.
#
#   nixproc switch -P supervisord --state-dir ./state --force-disable-user-change processes.nix
#   curl -H 'Host: webapp1.local' http://localhost:8080
#
# processManager has no default: the tools always pass the one deployed.
{ pkgs ? import ../host-pkgs.nix { inherit system; }
, system ? builtins.currentSystem
, stateDir ? "/var"
, runtimeDir ? "${stateDir}/run"
, logDir ? "${stateDir}/log"
, cacheDir ? "${stateDir}/cache"
, tmpDir ? (if stateDir == "/var" then "/tmp" else "${stateDir}/tmp")
, forceDisableUserChange ? false
, processManager
  # "foreground", "daemon" or null (both known; each backend picks its
  # preferred mode, reference §3.11).
, webappMode ? null
, webappPortBase ? 5000
, nginxPort ? 8080
}:

let
  constructors = import ./constructors/constructors.nix {
    inherit pkgs stateDir runtimeDir logDir cacheDir tmpDir forceDisableUserChange processManager webappMode;
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
