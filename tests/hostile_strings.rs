//! Hostile strings in arguments, environment values and descriptions reach
//! the process byte for byte, for a foreground process and a daemon:
//! through sysvinit init scripts, and through createManagedProcess under
//! every backend this machine runs (sysvinit, supervisord, s6); systemd
//! units with the same strings pass `systemd-analyze verify`.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::*;

const HOSTILE: &[&str] = &[
    "plain",
    "with space",
    "single ' quote",
    "double \" quote",
    "$(touch /tmp/nixproc-pwned-subst)",
    "`touch /tmp/nixproc-pwned-backtick`",
    "semi; touch /tmp/nixproc-pwned-semi",
    "new\nline",
    "percent %s %n %% %i",
    "back\\slash \\n",
    "${HOME} $HOME",
    "",
    "-D",
    "--",
    "tab\there & | > < * ? [a] ~ # !",
];

fn dumped_args(path: &std::path::Path) -> Vec<String> {
    let raw = std::fs::read(path).expect("args dump");
    let mut v: Vec<String> = raw
        .split(|b| *b == 0)
        .map(|s| String::from_utf8(s.to_vec()).unwrap())
        .collect();
    v.pop(); // after the last NUL
    v
}

fn dumped_env(path: &std::path::Path) -> BTreeMap<String, String> {
    let raw = std::fs::read(path).expect("env dump");
    raw.split(|b| *b == 0)
        .filter_map(|e| {
            let e = String::from_utf8(e.to_vec()).ok()?;
            let (k, v) = e.split_once('=')?;
            Some((k.to_string(), v.to_string()))
        })
        .collect()
}

fn hostile_file(dir: &std::path::Path) -> (std::path::PathBuf, BTreeMap<String, String>) {
    let env: BTreeMap<String, String> = HOSTILE
        .iter()
        .enumerate()
        .map(|(i, s)| (format!("H_{i}"), s.to_string()))
        .collect();
    let spec = serde_json::json!({
        "args": HOSTILE,
        "env": env,
        "description": "desc ' \" $(touch /tmp/nixproc-pwned-desc) `x` ; \n % %i $HOME",
    });
    let file = dir.join("hostile.json");
    std::fs::write(&file, spec.to_string()).unwrap();
    (file, env)
}

fn check_dumps(d: &Deployment, env: &BTreeMap<String, String>, what: &str) {
    for name in ["hostile-fg", "hostile-daemon"] {
        let dir = d.state_dir().join(format!("dump-{name}"));
        eventually(Duration::from_secs(15), "dump written", || {
            dir.join("env").exists()
        });
        assert_eq!(
            dumped_args(&dir.join("args")),
            HOSTILE,
            "{what} {name}: args"
        );
        let got = dumped_env(&dir.join("env"));
        for (k, v) in env {
            assert_eq!(got.get(k), Some(v), "{what} {name}: environment {k}");
        }
    }
    for marker in ["subst", "backtick", "semi", "desc"] {
        let p = format!("/tmp/nixproc-pwned-{marker}");
        assert!(
            !std::path::Path::new(&p).exists(),
            "{what}: {p}: a hostile string was executed"
        );
    }
}

#[test]
fn hostile_strings_reach_the_process_verbatim() {
    let tmp = tempfile::tempdir().unwrap();
    let (file, env) = hostile_file(tmp.path());
    let model = repo_root().join("tests/models/hostile.nix");
    let d = Deployment::new(
        &model,
        &format!("{{ hostileFile = \"{}\"; }}", file.display()),
    );
    d.switch_ok(&[]);
    check_dumps(&d, &env, "createSystemVInitScript");
    assert_success(&d.undeploy(), "undeploy");
}

fn through_managed_process(pm: &str) {
    let tmp = tempfile::tempdir().unwrap();
    let (file, env) = hostile_file(tmp.path());
    let model = repo_root().join("tests/models/hostile-agnostic.nix");
    let d = Deployment::new(
        &model,
        &format!("{{ hostileFile = \"{}\"; }}", file.display()),
    )
    .with_process_manager(pm);
    d.switch_ok(&[]);
    check_dumps(&d, &env, pm);
    assert_success(&d.undeploy(), "undeploy");
}

#[test]
fn hostile_strings_through_sysvinit_managed_process() {
    through_managed_process("sysvinit");
}

#[test]
fn hostile_strings_through_supervisord() {
    through_managed_process("supervisord");
}

#[test]
fn hostile_strings_through_s6() {
    through_managed_process("s6-rc");
}

/// systemd cannot run here (not PID 1), but its units must be valid: the
/// same model's units pass `systemd-analyze verify`.
#[test]
fn hostile_systemd_units_verify() {
    let tmp = tempfile::tempdir().unwrap();
    let (file, _) = hostile_file(tmp.path());
    let model = repo_root().join("tests/models/hostile-agnostic.nix");
    let d = Deployment::new(
        &model,
        &format!("{{ hostileFile = \"{}\"; }}", file.display()),
    )
    .with_process_manager("systemd");
    let out = d.nixproc(&[
        "build",
        "--extra-params",
        &d.extra_params,
        model.to_str().unwrap(),
    ]);
    assert_success(&out, "build for systemd");
    let profile = std::path::PathBuf::from(stdout(&out).trim());
    let units = profile.join("etc/systemd/system");
    let files: Vec<_> = std::fs::read_dir(&units)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "service"))
        .collect();
    assert_eq!(files.len(), 2, "{files:?}");
    let mut cmd = std::process::Command::new("systemd-analyze");
    cmd.args(["verify", "--man=no"])
        .args(&files)
        .env("SYSTEMD_UNIT_PATH", format!("{}:", units.display()));
    let out = run(&mut cmd);
    assert_success(&out, "systemd-analyze verify");
    let err = stderr(&out);
    assert!(
        !err.contains("nix-process-hostile"),
        "warnings about our units: {err}"
    );
}
