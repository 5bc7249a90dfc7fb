//! examples/stateful end to end, with a real PostgreSQL: deploy the
//! guestbook v1, write notes and a file, switch to v2 (a snapshot is taken
//! automatically, the irreversible migration runs), write more, roll back
//! with --restore-state: v1 runs against exactly the v1 rows and files, and
//! the safety snapshot taken before the restore holds the v2 data — read
//! with the external age, zstd, pg_restore and tar tools, as a user without
//! nixproc would. Deployed by a normal user (PostgreSQL refuses root)
//! through a private nix-daemon, as in services_agnostic.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;

const USER: &str = "nixproc-test";

/// One HTTP/1.0 request to the guestbook: (status, body).
fn request(port: u16, method: &str, path: &str, body: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok();
    let req = format!(
        "{method} {path} HTTP/1.0\r\nHost: localhost\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).ok()?;
    let mut resp = String::new();
    s.read_to_string(&mut resp).ok()?;
    let status = resp.split_whitespace().nth(1)?.parse().ok()?;
    Some((
        status,
        resp.split("\r\n\r\n").nth(1).unwrap_or("").to_string(),
    ))
}

fn get(port: u16, path: &str) -> String {
    let (status, body) = request(port, "GET", path, "").expect("the guestbook answers");
    assert_eq!(status, 200, "GET {path}: {body}");
    body
}

fn send(port: u16, method: &str, path: &str, body: &str) {
    let (status, answer) = request(port, method, path, body).expect("the guestbook answers");
    assert_eq!(status, 201, "{method} {path}: {answer}");
}

/// Waits until GET / answers 200 with the first line `guestbook v<v>`.
fn wait_for_version(port: u16, v: u32) {
    eventually(
        Duration::from_secs(60),
        &format!("guestbook v{v} answers"),
        || {
            matches!(request(port, "GET", "/", ""),
                Some((200, b)) if b.starts_with(&format!("guestbook v{v}\n")))
        },
    );
}

/// `nixproc state list --json` as objects.
fn snapshots(d: &Deployment) -> Vec<serde_json::Value> {
    let out = d.nixproc(&["state", "list", "--json"]);
    assert_success(&out, "nixproc state list --json");
    serde_json::from_slice(&out.stdout).expect("state list --json is JSON")
}

fn snapshot_dir(d: &Deployment) -> PathBuf {
    d.state_dir().join("lib/nixproc/snapshots")
}

/// age -d -i <host identity> FILE | zstd -d | <then>, as a user without
/// nixproc would read a unit.
fn read_unit(d: &Deployment, file: &Path, then: &str) -> String {
    let identity = d.state_dir().join("lib/nixproc/state-identity.txt");
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "age -d -i '{}' '{}' | zstd -dq | {then}",
            identity.display(),
            file.display()
        ))
        .stderr(Stdio::inherit())
        .output()
        .unwrap();
    assert!(out.status.success(), "reading {} failed", file.display());
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn upgrade_then_roll_back_with_state(pm: &str) {
    if !is_root() {
        eprintln!("skipped: setting up the unprivileged user and nix-daemon needs root");
        return;
    }
    let model = repo_root().join("examples/stateful/processes.nix");
    let d = Deployment::unprivileged_user(&model, "", USER).with_process_manager(pm);
    let ports = free_ports(2);
    let (app, pg) = (ports[0], ports[1]);
    let params = |v: u32| format!("{{ version = {v}; port = {app}; postgresqlPort = {pg}; }}");
    let model_arg = model.to_str().unwrap();

    // v1: the migration creates the database and its table.
    let out = d.nixproc(&["switch", "--extra-params", &params(1), model_arg]);
    assert_success(&out, "deploying v1");
    wait_for_version(app, 1);
    send(app, "POST", "/notes", "one");
    send(app, "POST", "/notes", "two 'quoted' $(x)");
    send(app, "PUT", "/files/a.txt", "uploaded by v1");
    let v1_page = "guestbook v1\none\ntwo 'quoted' $(x)\n";
    assert_eq!(get(app, "/"), v1_page);
    assert_eq!(get(app, "/files"), "a.txt\n");
    assert!(
        snapshots(&d).is_empty(),
        "a first deployment snapshots nothing"
    );

    // v2: snapshot first, then the irreversible migration.
    let out = d.nixproc(&["switch", "--extra-params", &params(2), model_arg]);
    assert_success(&out, "upgrading to v2");
    assert!(
        stderr(&out).contains("guestbook: snapshot"),
        "{}",
        stderr(&out)
    );
    wait_for_version(app, 2);
    assert_eq!(
        get(app, "/"),
        "guestbook v2\nnote: one\nnote: two 'quoted' $(x)\n"
    );
    assert_eq!(get(app, "/files"), "a.txt\n", "v2 moved the file to by-id/");
    send(app, "POST", "/notes", "three (v2)");
    send(app, "PUT", "/files/b.txt", "uploaded by v2");
    let snaps = snapshots(&d);
    assert_eq!(snaps.len(), 1, "{snaps:?}");
    let pre_switch = &snaps[0];
    assert_eq!(pre_switch["instance"], "guestbook");
    assert_eq!(pre_switch["reason"], "pre-switch");
    assert_eq!(pre_switch["schema"], "guestbook-1");
    assert_eq!(pre_switch["generation"], 1);

    // A rollback changes the schema: nixproc asks, and changes nothing.
    let out = d.nixproc(&["switch", "--rollback"]);
    assert!(!out.status.success(), "a rollback without a state decision");
    let err = stderr(&out);
    assert!(
        err.contains("--restore-state") && err.contains("--keep-state"),
        "{err}"
    );
    assert!(
        err.contains("guestbook-2") && err.contains("guestbook-1"),
        "{err}"
    );
    assert!(
        get(app, "/").contains("three (v2)"),
        "v2 still runs untouched"
    );

    // Code and state back: v1 against exactly the v1 rows and files.
    let out = d.nixproc(&["switch", "--rollback", "--restore-state"]);
    assert_success(&out, "rolling back with --restore-state");
    wait_for_version(app, 1);
    assert_eq!(get(app, "/"), v1_page);
    assert_eq!(get(app, "/files"), "a.txt\n");

    // The safety snapshot holds the v2 state, readable without nixproc.
    let snaps = snapshots(&d);
    let safety = snaps
        .iter()
        .find(|s| s["reason"] == "pre-restore")
        .unwrap_or_else(|| panic!("no safety snapshot in {snaps:?}"));
    assert_eq!(safety["schema"], "guestbook-2");
    let object = snapshot_dir(&d)
        .join("objects")
        .join(safety["id"].as_str().unwrap());
    let unit = |name: &str| object.join(safety["units"][name]["file"].as_str().unwrap());
    let dump = read_unit(&d, &unit("db"), "pg_restore -f -");
    assert!(
        dump.contains("three (v2)"),
        "the v2 rows are in the safety snapshot"
    );
    let files = read_unit(&d, &unit("uploads"), "tar -t");
    assert!(files.contains("by-id/b.txt"), "{files}");

    // Every snapshot verifies (keyless and deep).
    let out = d.nixproc(&["state", "verify", "--all", "--deep"]);
    assert_success(&out, "nixproc state verify --all --deep");

    let out = d.nixproc(&["switch", "--undeploy"]);
    assert_success(&out, "undeploy");
    assert!(port_closed(app));
}

#[test]
fn sysvinit_upgrade_then_roll_back_with_state() {
    upgrade_then_roll_back_with_state("sysvinit");
}

#[test]
fn supervisord_upgrade_then_roll_back_with_state() {
    upgrade_then_roll_back_with_state("supervisord");
}
