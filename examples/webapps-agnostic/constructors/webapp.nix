# Process expression: the example webapp, for any process manager. It can
# run in the foreground (`webapp`) or daemonize itself (`webapp -D`, which
# writes PID_FILE); each backend picks its preferred mode unless webappMode
# restricts it.
{ createManagedProcess, webapp, tmpDir, webappMode ? null }:

{ port
, instanceSuffix ? ""
, instanceName ? "webapp${instanceSuffix}"
}:

let
  executable = "${webapp}/bin/webapp";
in
createManagedProcess ({
  inherit instanceName;
  description = "Example web application ${instanceName}";
  daemonExtraArgs = [ "-D" ];
  environment = {
    PORT = port;
    # A process that declares a user keeps its PID file in tmpDir (it cannot
    # write to a root-owned runtime dir); the generators use the same rule.
    PID_FILE = "${tmpDir}/${instanceName}.pid";
    INSTANCE_NAME = instanceName;
  };
  user = instanceName;
  credentials = {
    groups.${instanceName} = { };
    users.${instanceName} = {
      group = instanceName;
      description = "Webapp ${instanceName}";
    };
  };
  overrides = {
    sysvinit.runlevels = [ 3 4 5 ];
  };
}
// (if webappMode == "foreground" then { foregroundProcess = executable; }
else if webappMode == "daemon" then { daemon = executable; }
else if webappMode == null then { process = executable; }
else throw "webappMode must be \"foreground\", \"daemon\" or null, not ${toString webappMode}"))
