//! The sqlite adapter against the real `sqlite3`: online capture, restore
//! by rename, refusal of damaged snapshots, hostile paths, run_as.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use nixproc_core::lifecycle::{Consistency, StateUnit, UnitKind};
use nixproc_state::adapters::{adapter_for, UnitContext};
use nixproc_state::RunAs;

fn sqlite_unit(path: &Path, package: Option<&str>) -> StateUnit {
    StateUnit {
        kind: UnitKind::Sqlite {
            path: path.to_str().unwrap().to_string(),
            package: package.map(str::to_string),
        },
        consistency: Consistency::Online,
    }
}

fn sql(db: &Path, script: &str) -> String {
    let out = Command::new("sqlite3")
        .arg(db)
        .arg(script)
        .output()
        .expect("sqlite3 runs");
    assert!(
        out.status.success(),
        "sqlite3 {script}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// A directory whose name has everything a shell or sqlite's dot-command
/// parser would trip over.
fn hostile_dir(base: &Path) -> PathBuf {
    let d = base.join("it's \"data\" $(touch pwned) `id`; 100% \\ é\nline");
    fs::create_dir_all(&d).unwrap();
    d
}

fn ctx<'a>(scratch: &'a Path, run_as: Option<&'a RunAs>) -> UnitContext<'a> {
    UnitContext {
        instance: "app",
        unit: "db",
        run_as,
        scratch,
    }
}

/// Files in `dir` other than the database and its sidecars.
fn leftovers(dir: &Path, db: &str) -> Vec<String> {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with(db))
        .collect()
}

#[test]
fn sqlite_round_trip_drops_newer_writes_and_tables() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = hostile_dir(tmp.path());
    let db = dir.join("app.sqlite");
    sql(
        &db,
        "PRAGMA journal_mode=WAL; CREATE TABLE t (v TEXT); \
         INSERT INTO t VALUES ('one'), ('it''s $(x) `y`;%\\ é');",
    );
    let scratch = tempfile::tempdir().unwrap();
    let unit = sqlite_unit(&db, None);
    let a = adapter_for(&unit);
    assert_eq!(a.extension(), "sqlite");
    let mut snap = Vec::new();
    a.capture(&ctx(scratch.path(), None), &mut snap).unwrap();
    assert!(snap.starts_with(b"SQLite format 3\0"));
    assert_eq!(leftovers(&dir, "app.sqlite"), Vec::<String>::new());

    sql(
        &db,
        "INSERT INTO t VALUES ('newer'); CREATE TABLE later (x);",
    );
    let staged = a.stage(&ctx(scratch.path(), None), &mut &snap[..]).unwrap();
    // Staging touched nothing live.
    assert_eq!(sql(&db, "SELECT count(*) FROM t"), "3");
    staged.apply(&ctx(scratch.path(), None)).unwrap();
    assert_eq!(
        sql(&db, "SELECT v FROM t ORDER BY rowid"),
        "one\nit's $(x) `y`;%\\ é"
    );
    assert_eq!(
        sql(
            &db,
            "SELECT count(*) FROM sqlite_master WHERE name = 'later'"
        ),
        "0"
    );
    assert_eq!(sql(&db, "PRAGMA integrity_check"), "ok");
    assert_eq!(leftovers(&dir, "app.sqlite"), Vec::<String>::new());
    assert!(!dir.join("pwned").exists() && !Path::new("pwned").exists());
}

#[test]
fn a_damaged_snapshot_is_refused_at_stage_and_the_database_is_untouched() {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("live.db");
    sql(&db, "CREATE TABLE t (v); INSERT INTO t VALUES (1), (2);");
    let before = fs::read(&db).unwrap();
    let a = adapter_for(&sqlite_unit(&db, None));
    let scratch = tempfile::tempdir().unwrap();
    let c = ctx(scratch.path(), None);

    let mut snap = Vec::new();
    a.capture(&c, &mut snap).unwrap();
    // Not a database at all.
    let e = a
        .stage(&c, &mut &b"this is not sqlite"[..])
        .err()
        .expect("garbage is refused");
    let msg = format!("{e:#}");
    assert!(msg.contains("state unit db of app"), "{msg}");
    // A database with a damaged b-tree page.
    let mut bad = snap.clone();
    let page = 4096.min(bad.len() - 16);
    for b in &mut bad[page..page + 16] {
        *b = 0xff;
    }
    assert!(a.stage(&c, &mut &bad[..]).is_err());
    assert_eq!(fs::read(&db).unwrap(), before);
    assert_eq!(leftovers(tmp.path(), "live.db"), Vec::<String>::new());
}

#[test]
fn an_absent_database_round_trips_as_absent() {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("later.db");
    let a = adapter_for(&sqlite_unit(&db, None));
    let scratch = tempfile::tempdir().unwrap();
    let c = ctx(scratch.path(), None);
    let mut snap = Vec::new();
    a.capture(&c, &mut snap).unwrap();
    assert!(snap.is_empty());
    sql(&db, "CREATE TABLE t (v);");
    a.stage(&c, &mut &snap[..]).unwrap().apply(&c).unwrap();
    assert!(!db.exists());
}

#[test]
fn a_stale_wal_of_the_old_database_is_not_replayed_onto_the_restored_one() {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("w.db");
    sql(
        &db,
        "PRAGMA journal_mode=WAL; CREATE TABLE t (v); INSERT INTO t VALUES ('old');",
    );
    let a = adapter_for(&sqlite_unit(&db, None));
    let scratch = tempfile::tempdir().unwrap();
    let c = ctx(scratch.path(), None);
    let mut snap = Vec::new();
    a.capture(&c, &mut snap).unwrap();
    // A writer that died (SIGKILL) with committed data in its WAL.
    let mut writer = Command::new("sqlite3")
        .arg(&db)
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let stdin = writer.stdin.as_mut().unwrap();
        stdin
            .write_all(b"INSERT INTO t VALUES ('after');\n")
            .unwrap();
        stdin.flush().unwrap();
    }
    let wal = tmp.path().join("w.db-wal");
    for _ in 0..500 {
        if fs::metadata(&wal).is_ok_and(|m| m.len() > 1000) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    writer.kill().unwrap();
    writer.wait().unwrap();
    assert!(
        fs::metadata(&wal).unwrap().len() > 1000,
        "the WAL holds the write"
    );
    fs::write(db.with_extension("db-journal"), b"").unwrap();
    a.stage(&c, &mut &snap[..]).unwrap().apply(&c).unwrap();
    assert_eq!(sql(&db, "SELECT group_concat(v) FROM t"), "old");
    for s in ["w.db-wal", "w.db-shm", "w.db-journal"] {
        assert!(!tmp.path().join(s).exists(), "{s} remains");
    }
}

#[test]
fn tool_failures_name_the_tool_the_status_and_stderr() {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("not-a.db");
    fs::write(&db, vec![b'x'; 8192]).unwrap();
    let scratch = tempfile::tempdir().unwrap();
    let c = ctx(scratch.path(), None);
    let e = adapter_for(&sqlite_unit(&db, None))
        .capture(&c, &mut Vec::new())
        .unwrap_err();
    let msg = format!("{e:#}");
    assert!(msg.contains("sqlite3 failed (exit status"), "{msg}");
    assert!(msg.contains("not a database"), "{msg}");

    let e = adapter_for(&sqlite_unit(&db, Some("/nonexistent/sqlite")))
        .capture(&c, &mut Vec::new())
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "sqlite3 not found (looked in /nonexistent/sqlite/bin, the `package` of state unit db \
         of app)"
    );
}

#[test]
fn the_package_bin_directory_provides_the_tool() {
    let tmp = tempfile::tempdir().unwrap();
    let pkg = tmp.path().join("pkg");
    fs::create_dir_all(pkg.join("bin")).unwrap();
    std::os::unix::fs::symlink(which("sqlite3"), pkg.join("bin/sqlite3")).unwrap();
    let db = tmp.path().join("p.db");
    sql(&db, "CREATE TABLE t (v); INSERT INTO t VALUES (42);");
    let scratch = tempfile::tempdir().unwrap();
    let mut snap = Vec::new();
    adapter_for(&sqlite_unit(&db, pkg.to_str()))
        .capture(&ctx(scratch.path(), None), &mut snap)
        .unwrap();
    assert!(snap.starts_with(b"SQLite format 3\0"));
}

fn which(name: &str) -> PathBuf {
    std::env::split_paths(&std::env::var_os("PATH").unwrap())
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("{name} on PATH"))
}

/// As root, the tool runs as the service's account and the restored file
/// keeps the live file's owner.
#[test]
fn run_as_the_services_account() {
    if !rustix::process::geteuid().is_root() {
        eprintln!("skipping run_as test: not root");
        return;
    }
    let nobody = RunAs {
        user: "nobody".into(),
        uid: 65534,
        gid: 65534,
        home: None,
    };
    let tmp = tempfile::Builder::new()
        .prefix("nixproc-sqlite")
        .tempdir_in("/tmp")
        .unwrap();
    fs::set_permissions(
        tmp.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let dir = tmp.path().join("svc");
    fs::create_dir(&dir).unwrap();
    let db = dir.join("s.db");
    sql(
        &db,
        "PRAGMA journal_mode=WAL; CREATE TABLE t (v); INSERT INTO t VALUES (1);",
    );
    for p in [&dir, &db] {
        rustix::fs::chown(
            p,
            Some(rustix::fs::Uid::from_raw(65534)),
            Some(rustix::fs::Gid::from_raw(65534)),
        )
        .unwrap();
    }
    let scratch = tempfile::tempdir().unwrap();
    let c = ctx(scratch.path(), Some(&nobody));
    let a = adapter_for(&sqlite_unit(&db, None));
    let mut snap = Vec::new();
    a.capture(&c, &mut snap).unwrap();
    sql(&db, "INSERT INTO t VALUES (2);");
    a.stage(&c, &mut &snap[..]).unwrap().apply(&c).unwrap();
    assert_eq!(sql(&db, "SELECT count(*) FROM t"), "1");
    let m = fs::metadata(&db).unwrap();
    assert_eq!((m.uid(), m.gid()), (65534, 65534));
}
