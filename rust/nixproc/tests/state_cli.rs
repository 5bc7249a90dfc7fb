//! `nixproc state …` end to end, on a hand-written profile (one sysvinit
//! instance `app` with a directory unit; its init script answers `status`
//! from a flag file and logs start/stop) registered as generation 1:
//! keygen, snapshot/list/show/verify/restore, refusal of a running
//! instance and `--stop`, tampered snapshots, missing identities, and
//! SIGKILL at every fault point of snapshot and restore.
//!
//! Uses `$NIXPROC_TEST_BIN_DIR/nixproc` when set (a release build), else
//! the binary cargo built for this test.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn nixproc() -> PathBuf {
    match std::env::var_os("NIXPROC_TEST_BIN_DIR") {
        Some(d) => PathBuf::from(d).join("nixproc"),
        None => PathBuf::from(env!("CARGO_BIN_EXE_nixproc")),
    }
}

struct Env {
    tmp: tempfile::TempDir,
}

/// Names a shell, tar or a manifest would trip over.
const HOSTILE: &str = "it's \"x\" $(touch pwned) `id`; 100% \\ é\nnext";

impl Env {
    fn new() -> Env {
        let e = Env {
            tmp: tempfile::tempdir().unwrap(),
        };
        let t = e.root();
        let profile = t.join("store/gen1");
        let script = profile.join("etc/rc.d/init.d/app");
        fs::create_dir_all(script.parent().unwrap()).unwrap();
        fs::write(
            &script,
            format!(
                "#!/bin/sh\ncase \"$1\" in\n  start) echo start >> '{log}'; touch '{flag}' ;;\n  \
                 stop) echo stop >> '{log}'; rm -f '{flag}' ;;\n  status) [ -e '{flag}' ] && exit 0; exit 3 ;;\n  \
                 *) exit 1 ;;\nesac\n",
                log = t.join("script.log").display(),
                flag = t.join("running").display()
            ),
        )
        .unwrap();
        fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
        let manifest = serde_json::json!({
            "version": 1,
            "processManager": "sysvinit",
            "instances": [{
                "key": "app",
                "name": "app",
                "description": "stateful test app",
                "revision": "rev1aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
                "dependencies": [],
                "pidFile": null,
                "logFile": null,
                "user": null,
                "backend": {"type": "sysvinit", "script": "etc/rc.d/init.d/app",
                            "startRunlevels": [3], "sequence": 1},
                "state": {"units": {"files": {"type": "directory",
                    "path": e.files().to_str().unwrap(), "consistency": "stop"}},
                    "schema": {"version": "v1"}, "rollback": "ask"}
            }]
        });
        let mpath = profile.join("nix-support/nixproc/manifest.json");
        fs::create_dir_all(mpath.parent().unwrap()).unwrap();
        fs::write(&mpath, serde_json::to_string_pretty(&manifest).unwrap()).unwrap();
        let profiles = t.join("profiles");
        fs::create_dir_all(&profiles).unwrap();
        std::os::unix::fs::symlink(&profile, profiles.join("processes-1-link")).unwrap();
        std::os::unix::fs::symlink("processes-1-link", profiles.join("processes")).unwrap();
        e.write_files("v1");
        e
    }

    fn root(&self) -> &Path {
        self.tmp.path()
    }

    fn files(&self) -> PathBuf {
        self.root().join("live/files")
    }

    fn write_files(&self, version: &str) {
        let f = self.files();
        fs::create_dir_all(f.join("sub")).unwrap();
        fs::write(f.join("version"), version).unwrap();
        fs::write(f.join("sub").join(HOSTILE), format!("{version} {HOSTILE}")).unwrap();
    }

    fn version(&self) -> Option<String> {
        let v = fs::read_to_string(self.files().join("version")).ok()?;
        let h = fs::read_to_string(self.files().join("sub").join(HOSTILE)).ok()?;
        assert_eq!(h, format!("{v} {HOSTILE}"), "one version throughout");
        Some(v)
    }

    fn cmd(&self, args: &[&str]) -> Command {
        self.cmd_on(args, &self.root().join("lib"), &self.root().join("snaps"))
    }

    /// With another lib dir (host identity) and snapshot store.
    fn cmd_on(&self, args: &[&str], lib: &Path, snaps: &Path) -> Command {
        let mut c = Command::new(nixproc());
        c.arg("state")
            .args(args)
            .arg("--profile-dir")
            .arg(self.root().join("profiles"))
            .arg("--lib-dir")
            .arg(lib)
            .arg("--snapshot-dir")
            .arg(snaps)
            .arg("--force-disable-user-change")
            .current_dir(self.root())
            .env_remove("NIXPROC_FAULT")
            .env_remove("NIXPROC_STATE_IDENTITY")
            .env_remove("NIXPROC_STATE_RECIPIENTS");
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        let o = self.run(args);
        assert!(
            o.status.success(),
            "nixproc state {args:?}: {}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8(o.stdout).unwrap()
    }

    fn fails(&self, args: &[&str]) -> String {
        let o = self.run(args);
        assert!(!o.status.success(), "nixproc state {args:?} succeeded");
        String::from_utf8_lossy(&o.stderr).into_owned()
    }

    fn snapshot(&self) -> String {
        self.ok(&["snapshot", "app"]).trim().to_string()
    }

    fn script_log(&self) -> String {
        fs::read_to_string(self.root().join("script.log")).unwrap_or_default()
    }

    fn unit_file(&self, id: &str) -> PathBuf {
        let dir = self.root().join("snaps/objects").join(id);
        fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| {
                p.file_name()
                    .unwrap()
                    .to_str()
                    .unwrap()
                    .starts_with("unit-files")
            })
            .unwrap()
    }
}

#[test]
fn keygen_writes_the_host_identity_once() {
    let e = Env::new();
    let out = e.ok(&["keygen"]);
    assert!(out.trim().starts_with("age1"), "{out}");
    let id = e.root().join("lib/nixproc/state-identity.txt");
    let text = fs::read_to_string(&id).unwrap();
    assert!(text.contains("AGE-SECRET-KEY-1"));
    assert_eq!(
        fs::metadata(&id).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let err = e.fails(&["keygen"]);
    assert!(err.contains("state-identity.txt"), "{err}");
    assert_eq!(fs::read_to_string(&id).unwrap(), text, "not overwritten");
}

#[test]
fn snapshot_list_show_verify_restore() {
    let e = Env::new();
    let id = e
        .ok(&["snapshot", "app", "--tag", "before-import"])
        .trim()
        .to_string();
    assert!(id.contains("-app-"), "{id}");
    e.write_files("v2");
    fs::write(e.files().join("newer-file"), "x").unwrap();

    let list = e.ok(&["list"]);
    assert!(list.starts_with("ID"), "{list}");
    assert!(list.contains(&id) && list.contains("manual") && list.contains("rev1aaaaaaaa"));
    let json: serde_json::Value = serde_json::from_str(&e.ok(&["list", "app", "--json"])).unwrap();
    assert_eq!(json.as_array().unwrap().len(), 1);
    assert_eq!(json[0]["schema"], "v1");
    let show: serde_json::Value = serde_json::from_str(&e.ok(&["show", &id, "--json"])).unwrap();
    assert_eq!(show["tag"], "before-import");
    assert_eq!(show["units"]["files"]["type"], "directory");
    assert!(show["recipients"][0].as_str().unwrap().starts_with("age1"));
    assert!(e.ok(&["show", &id]).contains("units:\n  files: directory"));
    assert!(e.ok(&["verify", "--all"]).contains(&format!("{id}: ok")));
    assert!(e.ok(&["verify", "--deep", &id]).contains("ok"));

    // Without --yes and without a terminal: refused, nothing changed.
    let err = e.fails(&["restore", "app", &id]);
    assert!(err.contains("pass --yes"), "{err}");
    assert!(err.contains("state written since"), "{err}");
    assert_eq!(e.version().as_deref(), Some("v2"));
    // A selector is required (no silent "latest").
    assert!(e.fails(&["restore", "app", "--yes"]).contains("required"));

    let out = e.ok(&["restore", "app", &id, "--yes"]);
    assert!(out.contains("restored files of app"), "{out}");
    assert_eq!(e.version().as_deref(), Some("v1"));
    assert!(!e.files().join("newer-file").exists());
    assert!(!e.root().join("pwned").exists());
    // The safety snapshot holds v2.
    let json: serde_json::Value = serde_json::from_str(&e.ok(&["list", "--json"])).unwrap();
    let safety = json
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["reason"] == "pre-restore")
        .expect("a safety snapshot");
    e.ok(&["restore", "app", safety["id"].as_str().unwrap(), "--yes"]);
    assert_eq!(e.version().as_deref(), Some("v2"));
    assert!(e.files().join("newer-file").exists());
    // --latest and --revision (a prefix) select too.
    e.ok(&["restore", "app", "--revision", "rev1aaa", "--yes"]);
    e.ok(&["restore", "app", "--latest", "--yes"]);

    // export → import into another store.
    let exported = e.root().join("snap.tar");
    e.ok(&["export", &id, "-o", exported.to_str().unwrap()]);
    let other = e.root().join("other-snaps");
    let o = e
        .cmd_on(
            &["import", exported.to_str().unwrap()],
            &e.root().join("lib"),
            &other,
        )
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), id);
}

#[test]
fn a_running_instance_is_refused_unless_stop() {
    let e = Env::new();
    let id = e.snapshot();
    e.write_files("v2");
    fs::write(e.root().join("running"), "").unwrap();
    let err = e.fails(&["restore", "app", &id, "--yes"]);
    assert!(err.contains("instance app is running"), "{err}");
    assert!(err.contains("--stop"), "{err}");
    assert_eq!(e.version().as_deref(), Some("v2"));
    assert!(e.fails(&["snapshot", "app"]).contains("is running"));

    e.ok(&["restore", "app", &id, "--yes", "--stop"]);
    assert_eq!(e.version().as_deref(), Some("v1"));
    assert_eq!(e.script_log(), "stop\nstart\n");
    assert!(e.root().join("running").exists(), "started again");
}

#[test]
fn an_altered_byte_is_refused_before_anything_live_changes() {
    let e = Env::new();
    let id = e.snapshot();
    e.write_files("v2");
    let unit = e.unit_file(&id);
    let mut bytes = fs::read(&unit).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x01;
    fs::set_permissions(&unit, fs::Permissions::from_mode(0o644)).unwrap();
    fs::write(&unit, bytes).unwrap();

    let o = e.run(&["verify", "--all"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stdout).contains(&id));
    let err = e.fails(&["restore", "app", &id, "--yes"]);
    assert!(!err.is_empty());
    assert_eq!(e.version().as_deref(), Some("v2"), "live state untouched");
    let leftovers: Vec<_> = fs::read_dir(e.root().join("live"))
        .unwrap()
        .map(|d| d.unwrap().file_name())
        .collect();
    assert_eq!(leftovers, ["files"], "no stage left next to the live dir");
}

#[test]
fn a_snapshot_for_another_recipient_needs_its_identity() {
    let e = Env::new();
    // An offline key: its identity lives elsewhere.
    let offline_lib = e.root().join("offline");
    let o = e
        .cmd_on(&["keygen"], &offline_lib, &e.root().join("snaps"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let recipient = String::from_utf8(o.stdout).unwrap().trim().to_string();
    let id = e
        .ok(&["snapshot", "app", "--recipient", &recipient])
        .trim()
        .to_string();
    e.write_files("v2");

    // Another host (its own fresh identity), without -i: refused.
    let other_host = |extra: &[&str]| {
        e.cmd_on(
            &["restore", "app", &id, "--yes"],
            &e.root().join("other-host"),
            &e.root().join("snaps"),
        )
        .args(extra)
        .output()
        .unwrap()
    };
    let o = other_host(&[]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.to_lowercase().contains("identit"), "{err}");
    assert_eq!(e.version().as_deref(), Some("v2"));

    let key = offline_lib.join("nixproc/state-identity.txt");
    let o = other_host(&["-i", key.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(e.version().as_deref(), Some("v1"));
}

/// SIGKILL at each point: the directory is all-old or all-new (after the
/// next state command settles a restore cut between its renames),
/// `verify --all` passes and `gc` clears the leftovers.
#[test]
fn killed_at_every_fault_point() {
    let snapshot_points = [
        "snapshot.unit-written",
        "snapshot.before-rename",
        "snapshot.after-rename",
        "snapshot.before-refs",
    ];
    let restore_points = [
        "restore.staged",
        "restore.between-units",
        "directory.between-renames",
    ];
    for point in snapshot_points {
        let e = Env::new();
        let o = e
            .cmd(&["snapshot", "app"])
            .env("NIXPROC_FAULT", point)
            .output()
            .unwrap();
        assert_eq!(o.status.signal(), Some(9), "{point}: killed");
        assert_eq!(e.version().as_deref(), Some("v1"), "{point}");
        e.ok(&["verify", "--all"]);
        e.ok(&["gc", "--keep", "0"]);
        let tmp = e.root().join("snaps/tmp");
        let left = fs::read_dir(&tmp).map(|d| d.count()).unwrap_or(0);
        assert_eq!(left, 0, "{point}: gc cleared tmp/");
        // A later snapshot works.
        e.snapshot();
    }
    for point in restore_points {
        let e = Env::new();
        let id = e.snapshot();
        e.write_files("v2");
        let o = e
            .cmd(&["restore", "app", &id, "--yes"])
            .env("NIXPROC_FAULT", point)
            .output()
            .unwrap();
        if o.status.signal() != Some(9) {
            // restore.between-units needs two units; one unit never gets there.
            assert!(
                o.status.success(),
                "{point}: {}",
                String::from_utf8_lossy(&o.stderr)
            );
        }
        // The next state command settles an interrupted swap first.
        e.ok(&["snapshot", "app"]);
        let v = e.version();
        assert!(
            v.as_deref() == Some("v1") || v.as_deref() == Some("v2"),
            "{point}: {v:?}"
        );
        e.ok(&["verify", "--all"]);
        e.ok(&["gc", "--keep", "0"]);
        let stray: Vec<_> = fs::read_dir(e.root().join("live"))
            .unwrap()
            .map(|d| d.unwrap().file_name())
            .collect();
        assert_eq!(
            stray,
            ["files"],
            "{point}: nothing left next to the live dir"
        );
        // And the restore can be done now.
        e.ok(&["restore", "app", &id, "--yes"]);
        assert_eq!(e.version().as_deref(), Some("v1"), "{point}");
    }
}
