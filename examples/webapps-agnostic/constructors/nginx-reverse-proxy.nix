# Process expression (any process manager): nginx as a reverse proxy with one virtual host per
# webapp (server_name = the webapp's dnsName), and a catch-all server that
# answers unknown hosts with an error page.
{ createManagedProcess, writeTextFile, nginx, stateDir, runtimeDir, cacheDir, forceDisableUserChange }:

{ port ? 80
, webapps ? [ ]
, instanceSuffix ? ""
, instanceName ? "nginx${instanceSuffix}"
, workerConnections ? 1024
}:

# Inter-dependencies (Disnix); {} in a processes model.
interDependencies:

let
  nginxConfig = import ../../nginx-reverse-proxy-config.nix {
    inherit writeTextFile stateDir runtimeDir cacheDir forceDisableUserChange;
  } { inherit port webapps instanceName workerConnections; };
  inherit (nginxConfig) configFile prefix pidFile initialize credentials;
in
createManagedProcess {
  inherit instanceName pidFile;
  description = "Nginx reverse proxy ${instanceName}";
  # nginx daemonizes by default; in the foreground it needs "daemon off;".
  process = "${nginx}/bin/nginx";
  args = [ "-c" configFile "-p" prefix "-e" "${prefix}/logs/error.log" ];
  foregroundProcessExtraArgs = [ "-g" "daemon off;" ];
  inherit initialize;
  dependencies = map (w: w.pkg) webapps;

  inherit credentials;

  overrides = {
    sysvinit.runlevels = [ 3 4 5 ];
  };
}
