# Process expression of the benchmark: the example webapp (see
# examples/webapps-agnostic/constructors/webapp.nix) with dependencies on
# other instances, for any process manager.
{ createManagedProcess, webapp, runtimeDir, tmpDir, webappUsers ? false }:

{ instanceName
, port
, dependencies ? [ ]
}:

createManagedProcess ({
  inherit instanceName dependencies;
  description = "Example web application ${instanceName}";
  process = "${webapp}/bin/webapp";
  daemonExtraArgs = [ "-D" ];
  environment = {
    PORT = port;
    # Where the generators expect the PID file of a daemon: the runtime dir,
    # or tmpDir for a process that declares a user (it cannot write to a
    # root-owned runtime dir).
    PID_FILE = "${if webappUsers then tmpDir else runtimeDir}/${instanceName}.pid";
    INSTANCE_NAME = instanceName;
  };
  overrides = {
    sysvinit.runlevels = [ 3 4 5 ];
  };
}
// (if webappUsers then {
  user = instanceName;
  credentials = {
    groups.${instanceName} = { };
    users.${instanceName} = {
      group = instanceName;
      description = "Webapp ${instanceName}";
    };
  };
} else { }))
