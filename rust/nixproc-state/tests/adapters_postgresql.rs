//! The postgresql-database adapter against a real, throw-away PostgreSQL
//! cluster (Debian's /usr/lib/postgresql/<newest>), run as the `postgres`
//! system user (the server refuses root) with a private socket directory.
//! Skipped when PostgreSQL, root or the postgres user is missing.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use nixproc_core::lifecycle::{Consistency, StateUnit, UnitKind};
use nixproc_state::adapters::{adapter_for, UnitContext};
use nixproc_state::RunAs;

/// A running cluster; stopped and removed on drop.
struct Cluster {
    dir: tempfile::TempDir,
    bin: PathBuf,
    port: u16,
    run_as: RunAs,
}

fn newest_postgresql() -> Option<PathBuf> {
    let mut versions: Vec<(u32, PathBuf)> = fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| {
            let e = e.ok()?;
            let v = e.file_name().to_str()?.parse().ok()?;
            e.path().join("bin/initdb").exists().then(|| (v, e.path()))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, p)| p)
}

fn postgres_account() -> Option<RunAs> {
    let passwd = fs::read_to_string("/etc/passwd").ok()?;
    let line = passwd.lines().find(|l| l.starts_with("postgres:"))?;
    let f: Vec<&str> = line.split(':').collect();
    Some(RunAs {
        user: "postgres".into(),
        uid: f[2].parse().ok()?,
        gid: f[3].parse().ok()?,
        home: None,
    })
}

impl Cluster {
    fn start() -> Option<Cluster> {
        if !rustix::process::geteuid().is_root() {
            eprintln!("skipping: PostgreSQL tests run as root (to become postgres)");
            return None;
        }
        let (Some(pkg), Some(run_as)) = (newest_postgresql(), postgres_account()) else {
            eprintln!("skipping: no /usr/lib/postgresql/<v>/bin or no postgres user");
            return None;
        };
        let dir = tempfile::Builder::new()
            .prefix("nixproc-pg")
            .tempdir_in("/tmp")
            .unwrap();
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
        let data = dir.path().join("data");
        let sock = dir.path().join("sock");
        for d in [&data, &sock] {
            fs::create_dir(d).unwrap();
            rustix::fs::chown(
                d,
                Some(rustix::fs::Uid::from_raw(run_as.uid)),
                Some(rustix::fs::Gid::from_raw(run_as.gid)),
            )
            .unwrap();
        }
        // The socket directory is private, so any port number is free.
        let port = 20000 + (std::process::id() % 20000) as u16;
        let c = Cluster {
            bin: pkg.join("bin"),
            dir,
            port,
            run_as,
        };
        c.as_postgres("initdb")
            .args([
                "-A",
                "trust",
                "-U",
                "postgres",
                "-E",
                "UTF8",
                "--locale=C",
                "-D",
            ])
            .arg(&data)
            .output()
            .map(|o| {
                assert!(
                    o.status.success(),
                    "initdb: {}",
                    String::from_utf8_lossy(&o.stderr)
                )
            })
            .unwrap();
        let st = c
            .as_postgres("pg_ctl")
            .arg("-D")
            .arg(&data)
            .arg("-l")
            .arg(sock.join("log"))
            .arg("-w")
            .arg("-o")
            .arg(format!(
                "-k {} -p {port} -c listen_addresses='' -c fsync=off",
                sock.display()
            ))
            .arg("start")
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(st.success(), "pg_ctl start");
        Some(c)
    }

    fn as_postgres(&self, tool: &str) -> Command {
        let mut c = Command::new(self.bin.join(tool));
        c.uid(self.run_as.uid)
            .gid(self.run_as.gid)
            .current_dir("/")
            .env_remove("PGDATABASE");
        c
    }

    fn sock(&self) -> PathBuf {
        self.dir.path().join("sock")
    }

    fn psql(&self, db: &str, sql: &str) -> String {
        let out = self
            .as_postgres("psql")
            .args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h"])
            .arg(self.sock())
            .arg("-p")
            .arg(self.port.to_string())
            .arg("-d")
            .arg(db)
            .arg("-c")
            .arg(sql)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "psql {sql}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    }

    /// A session connected to `db` that stays (until killed).
    fn idle_session(&self, db: &str) -> Child {
        self.as_postgres("psql")
            .args(["-X", "-q", "-h"])
            .arg(self.sock())
            .arg("-p")
            .arg(self.port.to_string())
            .arg("-d")
            .arg(db)
            .arg("-c")
            .arg("SELECT pg_sleep(120)")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    }

    fn unit(&self, database: &str) -> StateUnit {
        StateUnit {
            kind: UnitKind::PostgresqlDatabase {
                database: database.into(),
                host: Some(self.sock().to_str().unwrap().into()),
                port: Some(self.port),
                user: Some("postgres".into()),
                credentials_file: None,
                package: Some(self.bin.parent().unwrap().to_str().unwrap().into()),
            },
            consistency: Consistency::Online,
        }
    }

    fn databases(&self) -> Vec<String> {
        self.psql(
            "postgres",
            "SELECT datname FROM pg_database WHERE NOT datistemplate ORDER BY 1",
        )
        .lines()
        .map(str::to_string)
        .collect()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = self
            .as_postgres("pg_ctl")
            .arg("-D")
            .arg(self.dir.path().join("data"))
            .args(["-m", "immediate", "-w", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

fn ctx<'a>(scratch: &'a Path, run_as: &'a RunAs) -> UnitContext<'a> {
    UnitContext {
        instance: "shop",
        unit: "db",
        run_as: Some(run_as),
        scratch,
    }
}

/// A database whose name needs quoting everywhere, owned by another role.
const DB: &str = "shop's \"db\" $(x); %é";

fn setup(c: &Cluster) {
    c.psql("postgres", "CREATE ROLE shopowner");
    c.psql(
        "postgres",
        "CREATE DATABASE \"shop's \"\"db\"\" $(x); %é\" OWNER shopowner",
    );
    c.psql(
        DB,
        "CREATE TABLE items (id int PRIMARY KEY, name text); \
         ALTER TABLE items OWNER TO shopowner; \
         INSERT INTO items VALUES (1, 'one'), (2, 'it''s `two`'), (3, E'three\\nlines')",
    );
}

#[test]
fn postgresql_round_trip_removes_everything_newer() {
    let Some(c) = Cluster::start() else { return };
    setup(&c);
    let scratch = tempfile::tempdir().unwrap();
    let cx = ctx(scratch.path(), &c.run_as);
    let a = adapter_for(&c.unit(DB));
    assert_eq!(a.extension(), "pgdump");
    let mut snap = Vec::new();
    a.capture(&cx, &mut snap).unwrap();
    assert!(snap.starts_with(b"PGDMP"), "custom-format archive");

    c.psql(
        DB,
        "INSERT INTO items VALUES (4, 'newer'); CREATE TABLE later (x int); \
         ALTER TABLE items ADD COLUMN migrated bool",
    );
    let mut session = c.idle_session(DB);
    std::thread::sleep(std::time::Duration::from_millis(300));

    let staged = a.stage(&cx, &mut &snap[..]).unwrap();
    assert_eq!(
        c.psql(DB, "SELECT count(*) FROM items"),
        "4",
        "stage is not live"
    );
    staged.apply(&cx).unwrap();
    let _ = session.kill();
    let _ = session.wait();

    assert_eq!(
        c.psql(DB, "SELECT string_agg(name, '|' ORDER BY id) FROM items"),
        "one|it's `two`|three\nlines"
    );
    assert_eq!(c.psql(DB, "SELECT to_regclass('later') IS NULL"), "t");
    assert_eq!(
        c.psql(
            DB,
            "SELECT count(*) FROM information_schema.columns WHERE column_name = 'migrated'"
        ),
        "0"
    );
    // Owners of the database and its objects are kept.
    assert_eq!(
        c.psql(
            "postgres",
            "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = current_database() \
             OR datname LIKE 'shop%' ORDER BY datname DESC LIMIT 1"
        ),
        "shopowner"
    );
    assert_eq!(
        c.psql(
            DB,
            "SELECT tableowner FROM pg_tables WHERE tablename = 'items'"
        ),
        "shopowner"
    );
    // Only the restored database remains (no new/old copies).
    assert_eq!(c.databases(), ["postgres", DB]);
    assert_eq!(
        fs::read_dir(scratch.path()).unwrap().count(),
        0,
        "stage file removed"
    );
}

#[test]
fn a_damaged_dump_never_touches_the_live_database() {
    let Some(c) = Cluster::start() else { return };
    setup(&c);
    let scratch = tempfile::tempdir().unwrap();
    let cx = ctx(scratch.path(), &c.run_as);
    let a = adapter_for(&c.unit(DB));
    let mut snap = Vec::new();
    a.capture(&cx, &mut snap).unwrap();
    c.psql(DB, "INSERT INTO items VALUES (4, 'live')");

    // Garbage: refused at stage.
    let e = a.stage(&cx, &mut &b"not a dump at all"[..]).err().unwrap();
    let msg = format!("{e:#}");
    assert!(msg.contains("not a readable pg_dump archive"), "{msg}");
    assert!(msg.contains("pg_restore failed"), "{msg}");

    // Cut short: refused (pg_restore reads the piped archive to its end).
    let cut = &snap[..snap.len() * 3 / 4];
    assert!(
        a.stage(&cx, &mut &cut[..]).is_err(),
        "a cut dump is refused"
    );

    // A sound archive that does not load (it names a role that is gone):
    // the load into the new database fails, the live one is unchanged and
    // no half-made database remains.
    c.psql("postgres", "CREATE ROLE gone");
    c.psql(
        DB,
        "CREATE TABLE extra (x int); ALTER TABLE extra OWNER TO gone",
    );
    let mut unloadable = Vec::new();
    a.capture(&cx, &mut unloadable).unwrap();
    c.psql(DB, "DROP TABLE extra");
    c.psql("postgres", "DROP ROLE gone");
    let staged = a.stage(&cx, &mut &unloadable[..]).unwrap();
    let e = staged.apply(&cx).expect_err("the load fails");
    let msg = format!("{e:#}");
    assert!(msg.contains("the live database is unchanged"), "{msg}");
    assert!(msg.contains("pg_restore failed"), "{msg}");
    assert!(msg.contains("role \"gone\" does not exist"), "{msg}");
    assert_eq!(c.psql(DB, "SELECT count(*) FROM items"), "4");
    assert_eq!(c.databases(), ["postgres", DB]);
}

#[test]
fn restoring_into_a_cluster_without_the_database_creates_it() {
    let Some(c) = Cluster::start() else { return };
    setup(&c);
    let scratch = tempfile::tempdir().unwrap();
    let cx = ctx(scratch.path(), &c.run_as);
    let a = adapter_for(&c.unit(DB));
    let mut snap = Vec::new();
    a.capture(&cx, &mut snap).unwrap();
    c.psql(
        "postgres",
        &format!("DROP DATABASE \"{}\"", DB.replace('"', "\"\"")),
    );
    a.stage(&cx, &mut &snap[..]).unwrap().apply(&cx).unwrap();
    assert_eq!(c.psql(DB, "SELECT count(*) FROM items"), "3");

    // A database that does not exist cannot be dumped: the error shows
    // pg_dump's own words.
    let e = adapter_for(&c.unit("nosuchdb"))
        .capture(&cx, &mut Vec::new())
        .unwrap_err();
    let msg = format!("{e:#}");
    assert!(msg.contains("pg_dump failed (exit status 1)"), "{msg}");
    assert!(msg.contains("\"nosuchdb\" does not exist"), "{msg}");
    assert!(msg.contains("state unit db of shop"), "{msg}");
}
