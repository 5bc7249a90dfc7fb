# Process expression: a PostgreSQL server instance. Several instances run
# side by side, each with its own data directory, socket directory, port and
# (when users can be switched) its own system user.
{ createManagedProcess, postgresql, stateDir, runtimeDir, forceDisableUserChange }:

{ instanceSuffix ? ""
, instanceName ? "postgresql${instanceSuffix}"
, port ? 5432
  # Addresses to listen on besides the unix socket ("" for none).
, listenAddresses ? "127.0.0.1"
  # Name of the superuser role initdb creates (default: the account running it).
, superUser ? null
}:

# Inter-dependencies (Disnix); {} in a processes model.
_interDependencies:

let
  user = instanceName;
  group = instanceName;
  dataDir = "${stateDir}/db/${instanceName}";
  socketDir = "${runtimeDir}/${instanceName}";
  # initdb and postgres refuse to run as root: as root, initialize runs
  # initdb as the instance's user.
  asUser = if forceDisableUserChange then "" else "/usr/sbin/runuser -u ${user} -- ";
in
createManagedProcess {
  inherit instanceName user;
  description = "PostgreSQL server ${instanceName}";
  # postgres runs in the foreground; backends preferring daemons (sysvinit)
  # daemonize it with nixproc's helper.
  foregroundProcess = "${postgresql}/bin/postgres";
  args = [
    "-D" dataDir
    "-p" (toString port)
    "-k" socketDir
    "-c" "listen_addresses=${listenAddresses}"
  ];
  initialize = ''
    mkdir -m 0700 -p ${dataDir}
    mkdir -m 0755 -p ${socketDir}
    ${if forceDisableUserChange then "" else ''
      chown ${user}:${group} ${dataDir} ${socketDir}
    ''}
    if [ ! -e ${dataDir}/PG_VERSION ]; then
      ${asUser}${postgresql}/bin/initdb -D ${dataDir} --no-locale -E UTF8 --auth=trust ${if superUser == null then "" else "-U ${superUser}"} >/dev/null
    fi
  '';

  credentials = {
    groups.${group} = { };
    users.${user} = {
      inherit group;
      description = "PostgreSQL server ${instanceName}";
      homeDir = dataDir;
    };
  };

  # Dependents (and migrations) start once the server accepts connections,
  # not merely once the process runs.
  readiness.checks = [{
    type = "command";
    command = "${postgresql}/bin/pg_isready -q -h ${socketDir} -p ${toString port}";
  }];

  overrides = {
    sysvinit.runlevels = [ 3 4 5 ];
  };
}
