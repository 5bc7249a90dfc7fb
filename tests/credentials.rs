//! Users and groups declared by a model are created before its processes
//! start (with the uid/gid of `ids`) and removed when nothing deployed
//! declares them any more. Needs root: skipped otherwise (CI runs as root).

mod common;

use common::*;

fn getent(db: &str, name: &str) -> Option<String> {
    let out = std::process::Command::new("getent")
        .args([db, name])
        .output()
        .unwrap();
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// Removes a leftover account of an earlier, interrupted run.
fn clean(account: &str) {
    let _ = std::process::Command::new("userdel").arg(account).output();
    let _ = std::process::Command::new("groupdel").arg(account).output();
}

fn declared_accounts_live_and_die_with_the_deployment(pm: &str, account: &str, uid: u32) {
    if !is_root() {
        eprintln!("skipped: creating users needs root");
        return;
    }
    clean(account);
    let port = free_ports(1)[0];
    let model = repo_root().join("tests/models/credentials.nix");
    let d = Deployment::privileged(
        &model,
        &format!("{{ port = {port}; account = \"{account}\"; uid = {uid}; }}"),
    )
    .with_process_manager(pm);
    let out = d.switch_ok(&[]);
    let err = stderr(&out);
    assert!(err.contains(&format!("created group {account}")), "{err}");
    assert!(err.contains(&format!("created user {account}")), "{err}");

    let user = getent("passwd", account).expect("the user exists");
    let fields: Vec<&str> = user.split(':').collect();
    assert_eq!(fields[2], uid.to_string(), "uid from ids: {user}");
    assert_eq!(fields[3], uid.to_string(), "primary group from ids: {user}");
    assert_eq!(fields[4], "nixproc credentials test");
    let group = getent("group", account).expect("the group exists");
    assert!(group.starts_with(&format!("{account}:x:{uid}:")), "{group}");
    // createHomeDir made the home directory, owned by the user.
    let home = d.state_dir().join(format!("home/{account}"));
    use std::os::unix::fs::MetadataExt;
    assert_eq!(std::fs::metadata(&home).unwrap().uid(), uid);

    answers(port, "x", &format!("listening on port: {port}"));
    let pid = listener_pid(port).expect("a listener");
    assert_eq!(uid_of(pid), uid, "the process runs as the declared user");

    // A second switch of the same profile changes no account.
    let out = d.switch_ok(&[]);
    assert!(!stderr(&out).contains("created user"), "{}", stderr(&out));

    let out = d.undeploy();
    assert_success(&out, "undeploy");
    let err = stderr(&out);
    assert!(err.contains(&format!("removed user {account}")), "{err}");
    assert!(err.contains(&format!("removed group {account}")), "{err}");
    eventually(std::time::Duration::from_secs(10), "process gone", || {
        !alive(pid)
    });
    assert_eq!(getent("passwd", account), None, "user removed");
    assert_eq!(getent("group", account), None, "group removed");
}

#[test]
fn sysvinit_creates_and_removes_declared_accounts() {
    declared_accounts_live_and_die_with_the_deployment("sysvinit", "npcred-sysv", 23451);
}

#[test]
fn supervisord_creates_and_removes_declared_accounts() {
    declared_accounts_live_and_die_with_the_deployment("supervisord", "npcred-sup", 23452);
}

#[test]
fn an_existing_account_is_used_but_never_removed() {
    if !is_root() {
        eprintln!("skipped: creating users needs root");
        return;
    }
    let account = "npcred-pre";
    clean(account);
    let made = std::process::Command::new("useradd")
        // A system account: its uid is picked from the system range, away
        // from the fixed uids the other tests create in parallel.
        .args(["-r", "-M", "-U", account])
        .status()
        .unwrap();
    assert!(made.success());
    let port = free_ports(1)[0];
    let model = repo_root().join("tests/models/credentials.nix");
    let d = Deployment::privileged(
        &model,
        &format!("{{ port = {port}; account = \"{account}\"; uid = 23453; }}"),
    );
    let out = d.switch_ok(&[]);
    assert!(!stderr(&out).contains("created user"), "{}", stderr(&out));
    answers(port, "x", &format!("listening on port: {port}"));
    assert_success(&d.undeploy(), "undeploy");
    assert!(
        getent("passwd", account).is_some(),
        "a user nixproc did not create stays"
    );
    clean(account);
}
