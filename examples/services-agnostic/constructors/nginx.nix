# Process expression: an nginx instance running a given configuration
# (reference §7.4). nginx drops privileges itself (the configuration's
# `user` directive), so no `user` is set here; the instance's user and group
# are declared for it.
{ createManagedProcess, nginx, stateDir, cacheDir, forceDisableUserChange }:

{ configFile
, dependencies ? [ ]
, instanceSuffix ? ""
, instanceName ? "nginx${instanceSuffix}"
  # Where the configuration writes its PID file.
, pidFile ? null
}:

# Inter-dependencies (Disnix); {} in a processes model.
_interDependencies:

let
  prefix = "${stateDir}/${instanceName}";
  cache = "${cacheDir}/${instanceName}";
in
createManagedProcess {
  inherit instanceName pidFile dependencies;
  description = "Nginx ${instanceName}";
  process = "${nginx}/bin/nginx";
  args = [ "-p" prefix "-c" configFile "-e" "${prefix}/logs/error.log" ];
  foregroundProcessExtraArgs = [ "-g" "daemon off;" ];
  initialize = ''
    mkdir -p ${prefix}/logs ${cache}
  '' + (if forceDisableUserChange then "" else ''
    chown ${instanceName}:${instanceName} ${prefix}/logs ${cache}
  '');
  credentials = {
    groups.${instanceName} = { };
    users.${instanceName} = {
      group = instanceName;
      description = "Nginx ${instanceName}";
    };
  };
  overrides = {
    sysvinit.runlevels = [ 3 4 5 ];
  };
}
