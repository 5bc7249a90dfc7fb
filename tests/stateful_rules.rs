//! The state rules of a switch, on a directory unit (no database needed):
//! a failed migration puts the pre-switch state back and returns to the
//! previous generation; equal schema labels roll back code only;
//! `--keep-state` keeps, a declared `rollback = "restore"` restores without
//! a flag; a restore without a snapshot of the target revision is refused
//! before anything changes.

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::*;

struct App {
    d: Deployment,
    port: u16,
}

impl App {
    fn new() -> App {
        let model = repo_root().join("tests/models/stateful-dir.nix");
        App {
            d: Deployment::new(&model, ""),
            port: free_ports(1)[0],
        }
    }

    fn params(&self, extra: &str) -> String {
        format!("{{ port = {}; {extra} }}", self.port)
    }

    fn switch(&self, extra: &str, flags: &[&str]) -> std::process::Output {
        let params = self.params(extra);
        let model = self.d.model.to_str().unwrap().to_string();
        let mut args = vec!["switch", "--extra-params", &params];
        args.extend_from_slice(flags);
        args.push(&model);
        self.d.nixproc(&args)
    }

    fn data(&self) -> PathBuf {
        self.d.state_dir().join("lib/app/data")
    }

    fn write(&self, name: &str, text: &str) {
        std::fs::write(self.data().join(name), text).unwrap();
    }

    fn read(&self, name: &str) -> Option<String> {
        std::fs::read_to_string(self.data().join(name)).ok()
    }

    /// The TAG (code version) of the process listening on the port.
    fn running_version(&self) -> String {
        let mut pid = None;
        eventually(Duration::from_secs(20), "the app listens", || {
            pid = listener_pid(self.port);
            pid.is_some()
        });
        let environ = std::fs::read(format!("/proc/{}/environ", pid.unwrap())).unwrap();
        String::from_utf8_lossy(&environ)
            .split('\0')
            .find_map(|v| v.strip_prefix("TAG=").map(str::to_string))
            .expect("TAG in the environment")
    }

    fn generations(&self) -> usize {
        let out = self.d.nixproc(&["switch", "--list-generations"]);
        assert_success(&out, "list generations");
        stdout(&out)
            .lines()
            .filter(|l| !l.trim().is_empty())
            .count()
    }
}

impl Drop for App {
    fn drop(&mut self) {
        let _ = self
            .d
            .nixproc(&["switch", "--undeploy", "--no-state-snapshot"]);
    }
}

#[test]
fn failed_migration_restores_the_state_and_the_previous_generation() {
    let app = App::new();
    assert_success(&app.switch("version = 1;", &[]), "deploy v1");
    assert_eq!(app.read("migrations").as_deref(), Some("s1\n"));
    app.write("user.txt", "written by v1\n");

    let out = app.switch("version = 2; failMigration = true;", &[]);
    assert!(!out.status.success(), "the migration fails");
    let err = stderr(&out);
    assert!(
        err.contains("migration of app to schema 's2' failed"),
        "{err}"
    );
    assert!(err.contains("migration to s2 failed on purpose"), "{err}");
    assert!(err.contains("state restored from snapshot"), "{err}");
    assert_eq!(app.running_version(), "v1");
    assert_eq!(app.read("migrations").as_deref(), Some("s1\n"));
    assert_eq!(app.read("user.txt").as_deref(), Some("written by v1\n"));
    assert_eq!(
        app.read("garbage"),
        None,
        "nothing of the failed migration is left"
    );
    assert_eq!(app.generations(), 1, "no generation was recorded");
}

#[test]
fn equal_schema_labels_roll_back_code_only() {
    let app = App::new();
    assert_success(&app.switch("version = 1; schema = \"same\";", &[]), "v1");
    assert_success(&app.switch("version = 2; schema = \"same\";", &[]), "v2");
    assert_eq!(
        app.read("migrations").as_deref(),
        Some("same\n"),
        "no migration"
    );
    app.write("user.txt", "written by v2\n");

    let out = app.d.nixproc(&["switch", "--rollback"]);
    assert_success(&out, "rollback needs no decision");
    assert!(
        stderr(&out).contains("rolling back code only"),
        "{}",
        stderr(&out)
    );
    assert_eq!(app.running_version(), "v1");
    assert_eq!(app.read("user.txt").as_deref(), Some("written by v2\n"));
}

#[test]
fn keep_state_rolls_back_code_and_keeps_the_newer_state() {
    let app = App::new();
    assert_success(&app.switch("version = 1;", &[]), "v1");
    app.write("user.txt", "v1\n");
    assert_success(&app.switch("version = 2;", &[]), "v2");
    app.write("user.txt", "v2\n");

    let out = app.d.nixproc(&["switch", "--rollback"]);
    assert!(!out.status.success(), "ask refuses");
    assert!(
        stderr(&out).contains("nothing was changed"),
        "{}",
        stderr(&out)
    );
    assert_eq!(app.running_version(), "v2");

    assert_success(
        &app.d.nixproc(&["switch", "--rollback", "--keep-state"]),
        "keep",
    );
    assert_eq!(app.running_version(), "v1");
    assert_eq!(app.read("user.txt").as_deref(), Some("v2\n"));
    assert_eq!(
        app.read("migrations").as_deref(),
        Some("s1\ns2\n"),
        "no migration on rollback"
    );
}

#[test]
fn declared_restore_policy_restores_the_target_revision_not_the_latest() {
    let app = App::new();
    let v = |n: u32| format!("version = {n}; rollback = \"restore\";");
    assert_success(&app.switch(&v(1), &[]), "v1");
    app.write("user.txt", "v1\n");
    assert_success(&app.switch(&v(2), &[]), "v2");
    app.write("user.txt", "v2\n");
    assert_success(
        &app.switch(&v(3), &[]),
        "v3 (a newer snapshot, of v2, exists now)",
    );
    app.write("user.txt", "v3\n");

    // Generation 1 is v1: its state is the snapshot taken leaving v1.
    assert_success(
        &app.d.nixproc(&["switch", "--switch-generation", "1"]),
        "to gen 1",
    );
    assert_eq!(app.running_version(), "v1");
    assert_eq!(app.read("user.txt").as_deref(), Some("v1\n"));
    assert_eq!(app.read("migrations").as_deref(), Some("s1\n"));
}

#[test]
fn restore_without_a_snapshot_of_the_target_is_refused_before_anything_changes() {
    let app = App::new();
    assert_success(&app.switch("version = 1;", &[]), "v1");
    assert_success(
        &app.switch("version = 2;", &["--no-state-snapshot"]),
        "v2 without a snapshot",
    );
    app.write("user.txt", "v2\n");
    let out = app.d.nixproc(&["switch", "--rollback", "--restore-state"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("no snapshot of revision"),
        "{}",
        stderr(&out)
    );
    assert_eq!(app.running_version(), "v2");
    assert_eq!(app.read("user.txt").as_deref(), Some("v2\n"));
}
