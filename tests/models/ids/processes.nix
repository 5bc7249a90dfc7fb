# Test model for `nixproc id-assign`: webapps and a proxy asking for unique
# ports, uids and gids, reading them back from ./ids.nix the way
# nix-processmgmt's services-agnostic example does (0 until assigned).
#
# * `webapps` (via --extra-params) adds and removes instances;
# * users and groups are only wanted for system deployments (stateDir /var,
#   user change allowed), so forwarding of --state-dir and
#   --force-disable-user-change shows in the requirements;
# * `broken` adds an instance whose pkg throws: id-assign must never force
#   a pkg.
{ stateDir ? "/var"
, runtimeDir ? "${stateDir}/run"
, forceDisableUserChange ? false
, processManager
, webapps ? [ "webapp1" "webapp2" ]
, broken ? false
, wrongProperty ? false
}:

let
  ids = if builtins.pathExists ./ids.nix then (import ./ids.nix).ids else { };

  nixproc = import <nixproc> { inherit stateDir runtimeDir forceDisableUserChange processManager ids; };

  system = stateDir == "/var" && !forceDisableUserChange;

  webapp = name: {
    name = name;
    value = rec {
      port = ids.webappPorts.${name} or 0;
      requiresUniqueIdsFor = [ "webappPorts" ] ++ (if system then [ "uids" "gids" ] else [ ]);
      pkg = nixproc.createManagedProcess {
        instanceName = name;
        process = "/bin/sleep";
        args = [ "1000" ];
        environment.PORT = port;
      };
    };
  };
in
builtins.listToAttrs (map webapp webapps) // {
  "nginx proxy" = {
    port = ids.proxyPorts."nginx proxy" or 0;
    requiresUniqueIdsFor = [ "proxyPorts" ];
    pkg = throw "the pkg of a process must not be forced by id-assign";
  };
  # No requiresUniqueIdsFor: gets nothing.
  plain = {
    pkg = nixproc.createManagedProcess { instanceName = "plain"; process = "/bin/true"; };
  };
} // (if broken then {
  broken = {
    requiresUniqueIdsFor = [ "webappPorts" ];
    pkg = throw "forced!";
  };
} else { }) // (if wrongProperty then {
  wrong = {
    requiresUniqueIdsFor = "webappPorts";
    pkg = throw "forced!";
  };
} else { })
