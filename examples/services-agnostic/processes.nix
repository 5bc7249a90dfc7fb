# Real system services, any process manager: two PostgreSQL servers side by
# side and an nginx serving a static page. Ports, uids and gids come from
# ids.nix, which `nixproc id-assign` writes (and keeps stable):
#
#   nixproc id-assign --id-resources idresources.nix --ids ids.nix --output-file ids.nix processes.nix
#   nixproc switch -P supervisord --state-dir ./state --force-disable-user-change processes.nix
#   psql -h 127.0.0.1 -p "$(nix-instantiate --eval -A ids.postgresqlPorts.postgresql1 ids.nix)" postgres
#
# Before any assignment exists every port reads 0 (so id-assign can
# evaluate the model the first time); deploying needs the real ids.
{ pkgs ? import ../host-pkgs.nix { inherit system; }
, system ? builtins.currentSystem
, stateDir ? "/var"
, runtimeDir ? "${stateDir}/run"
, logDir ? "${stateDir}/log"
, cacheDir ? "${stateDir}/cache"
, tmpDir ? (if stateDir == "/var" then "/tmp" else "${stateDir}/tmp")
, forceDisableUserChange ? false
, processManager
, ids ? (if builtins.pathExists ./ids.nix then (import ./ids.nix).ids else { })
}:

let
  constructors = import ./constructors/constructors.nix {
    inherit pkgs stateDir runtimeDir logDir cacheDir tmpDir forceDisableUserChange processManager ids;
  };
  idOf = resource: instance: ids.${resource}.${instance} or 0;
in
rec {
  postgresql1 = rec {
    port = idOf "postgresqlPorts" "postgresql1";
    pkg = constructors.postgresql {
      inherit port;
      instanceSuffix = "1";
    } { };
    requiresUniqueIdsFor = [ "postgresqlPorts" "uids" "gids" ];
  };

  postgresql2 = rec {
    port = idOf "postgresqlPorts" "postgresql2";
    pkg = constructors.postgresql {
      inherit port;
      instanceSuffix = "2";
    } { };
    requiresUniqueIdsFor = [ "postgresqlPorts" "uids" "gids" ];
  };

  nginx = rec {
    port = idOf "nginxPorts" "nginx";
    pkg =
      let site = constructors.nginxStaticSite {
        instanceName = "nginx";
        inherit port forceDisableUserChange;
      };
      in constructors.nginx { inherit (site) configFile pidFile; } { };
    requiresUniqueIdsFor = [ "nginxPorts" "uids" "gids" ];
  };
}
