# Process expression: the guestbook, a service with state — a PostgreSQL
# database and a directory of uploaded files — declared so that nixproc
# snapshots it before a switch changes it and can bring it back on rollback.
#
# Version 2 migrates irreversibly: table `notes` becomes `entries` (and is
# dropped), uploads move into `by-id/`. Version 1 cannot run on that state;
# only a restore of the snapshot taken before the upgrade takes it back.
{ createManagedProcess, writeTextFile, python3, postgresql, stateDir, runtimeDir }:

{ instanceName ? "guestbook"
, version ? 1
, port ? 5080
, database ? "guestbook"
  # The PostgreSQL instance (socket directory and port) and the role to use.
, postgresqlInstance ? "postgresql"
, postgresqlPort ? 5432
, role ? "guestbook"
}:

# The PostgreSQL process it uses (inter-dependency).
{ postgresqlServer }:

let
  socketDir = "${runtimeDir}/${postgresqlInstance}";
  uploads = "${stateDir}/lib/${instanceName}/uploads";
  psql = "${postgresql}/bin/psql";
  env = "PGHOST=${socketDir} PGPORT=${toString postgresqlPort} PGUSER=${role}";

  app = writeTextFile { name = "guestbook.py"; text = builtins.readFile ./guestbook.py; };

  # Every migration is idempotent and creates the database on first use.
  migrations = {
    "1" = ''
      CREATE TABLE IF NOT EXISTS notes (id serial PRIMARY KEY, body text NOT NULL);
    '';
    "2" = ''
      CREATE TABLE IF NOT EXISTS entries (id serial PRIMARY KEY, title text NOT NULL, body text NOT NULL);
      DO $$ BEGIN
        IF to_regclass('notes') IS NOT NULL THEN
          INSERT INTO entries (title, body) SELECT 'note', body FROM notes ORDER BY id;
          DROP TABLE notes;
        END IF;
      END $$;
    '';
  };
  moveUploads = {
    "1" = "";
    "2" = ''
      mkdir -p ${uploads}/by-id
      find ${uploads} -maxdepth 1 -type f -exec mv {} ${uploads}/by-id/ \;
    '';
  };
  v = toString version;

  migrate = writeTextFile {
    name = "guestbook-migrate-v${v}";
    executable = true;
    text = ''
      #!/bin/sh
      set -eu
      export ${env}
      if ! ${psql} -X -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = '${database}'" | grep -q 1; then
        ${postgresql}/bin/createdb ${database}
      fi
      ${psql} -X -q -v ON_ERROR_STOP=1 -d ${database} <<'SQL'
      ${migrations.${v}}
      SQL
      ${moveUploads.${v}}
    '';
  };
in
createManagedProcess {
  inherit instanceName;
  description = "Guestbook v${v}";
  foregroundProcess = "${python3}/bin/python3";
  args = [ app (toString port) ];
  environment = {
    GUESTBOOK_VERSION = v;
    GUESTBOOK_PSQL = psql;
    GUESTBOOK_UPLOADS = uploads;
    PGHOST = socketDir;
    PGPORT = postgresqlPort;
    PGUSER = role;
    PGDATABASE = database;
  };
  initialize = ''
    mkdir -p ${uploads}
  '';
  dependencies = [ postgresqlServer ];

  state = {
    db = {
      type = "postgresql-database";
      inherit database;
      package = postgresql;
      host = socketDir;
      port = postgresqlPort;
      user = role;
    };
    uploads = {
      type = "directory";
      path = uploads;
    };
  };
  schema = {
    version = "guestbook-${v}";
    migrate = "${migrate}";
  };
  # On rollback, nixproc asks (--restore-state or --keep-state).
  rollback = "ask";

  readiness.checks = [{ type = "http"; url = "http://127.0.0.1:${toString port}/files"; }];
}
