# Process expression of the benchmark: the example webapp (see
# examples/webapps-agnostic/constructors/webapp.nix) with dependencies on
# other instances, for any process manager.
{ createManagedProcess, webapp, tmpDir, webappUsers ? false }:

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
    PID_FILE = "${tmpDir}/${instanceName}.pid";
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
