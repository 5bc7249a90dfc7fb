# Process expression: the example webapp as a self-daemonizing process
# (`webapp -D` forks and writes PID_FILE). Instantiatable: one call per
# instance, distinguished by port and instance name.
{ createSystemVInitScript, webapp, tmpDir }:

{ port
, instanceSuffix ? ""
, instanceName ? "webapp${instanceSuffix}"
}:

createSystemVInitScript {
  inherit instanceName;
  description = "Example web application ${instanceName}";
  process = "${webapp}/bin/webapp";
  args = [ "-D" ];
  environment = {
    PORT = port;
    # A process that declares a user keeps its PID file in tmpDir (it cannot
    # write to a root-owned runtime dir); the generator uses the same rule.
    PID_FILE = "${tmpDir}/${instanceName}.pid";
    INSTANCE_NAME = instanceName;
  };
  runlevels = [ 3 4 5 ];

  user = instanceName;
  credentials = {
    groups.${instanceName} = { };
    users.${instanceName} = {
      group = instanceName;
      description = "Webapp ${instanceName}";
    };
  };
}
