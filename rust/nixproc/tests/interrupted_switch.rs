//! Killing `nixproc switch` at any point and running it again converges to
//! the requested generation (issue 6): real sysvinit deployments of the
//! webapps test model (webapp1 ← webapp2 ← nginx), with the switch SIGKILLed
//! at each fault point (`NIXPROC_FAULT=switch.<point>`).
//!
//! v1 → v2 changes webapp1 and webapp2 (their TAG), so nginx restarts as a
//! dependent: the plan stops all three and starts all three, and every
//! fault point is reached.

#[path = "../../../tests/common/mod.rs"]
mod common;

use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use common::*;

fn model() -> PathBuf {
    repo_root().join("tests/models/webapps.nix")
}

fn tags(tag: &str) -> String {
    format!("tags = {{ webapp1 = \"{tag}\"; webapp2 = \"{tag}\"; }};")
}

/// `nixproc switch` of the model at `tag` (or with `args` instead of the
/// model), killed at `fault` when given.
fn switch(d: &Deployment, p: &Ports, tag: &str, args: &[&str], fault: Option<&str>) -> Output {
    let params = params(p, &tags(tag));
    let model = model();
    let mut cmd = Command::new(nixproc_bin());
    cmd.arg("switch");
    if args.is_empty() {
        cmd.arg("--extra-params").arg(&params).arg(&model);
    } else {
        cmd.args(args);
    }
    cmd.arg("--state-dir")
        .arg(d.state_dir())
        .arg("--force-disable-user-change");
    match fault {
        Some(f) => cmd.env("NIXPROC_FAULT", f),
        None => cmd.env_remove("NIXPROC_FAULT"),
    };
    run(&mut cmd)
}

fn killed(out: &Output, point: &str) {
    assert_eq!(
        out.status.signal(),
        Some(9),
        "the switch was not killed at {point}: {}",
        out.status
    );
}

/// The webapp processes of this deployment: (instance, TAG, pid), found by
/// their environment (PID_FILE under the state dir).
fn webapps(state: &Path) -> Vec<(String, String, u32)> {
    let needle = format!("PID_FILE={}/", state.display());
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(env) = std::fs::read(entry.path().join("environ")) else {
            continue;
        };
        let env = String::from_utf8_lossy(&env);
        let vars: Vec<&str> = env.split('\0').collect();
        if !vars.iter().any(|v| v.starts_with(&needle)) || !alive(pid) {
            continue;
        }
        let get = |k: &str| {
            vars.iter()
                .find_map(|v| v.strip_prefix(k))
                .unwrap_or_default()
                .to_string()
        };
        found.push((get("INSTANCE_NAME="), get("TAG="), pid));
    }
    found.sort();
    found
}

/// Exactly one process per webapp, each with `tag`; the webapps and nginx
/// answer; the listener of each webapp port is that process.
fn runs_exactly(d: &Deployment, p: &Ports, tag: &str) {
    // A killed switch may leave a daemon that dies a moment later.
    eventually(Duration::from_secs(15), "one process per webapp", || {
        webapps(&d.state_dir()).len() == 2
    });
    let procs = webapps(&d.state_dir());
    let summary: Vec<(String, String)> = procs
        .iter()
        .map(|(n, t, _)| (n.clone(), t.clone()))
        .collect();
    assert_eq!(
        summary,
        [
            ("webapp1".to_string(), tag.to_string()),
            ("webapp2".to_string(), tag.to_string())
        ],
        "{procs:?}"
    );
    for ((_, _, pid), port) in procs.iter().zip([p.webapp1, p.webapp2]) {
        assert_eq!(listener_pid(port), Some(*pid), "port {port}");
    }
    answers(p.nginx, "webapp1.local", "webapp1");
    answers(p.nginx, "webapp2.local", "webapp2");
}

fn generations(d: &Deployment) -> Vec<String> {
    stdout(&d.nixproc(&["switch", "--list-generations"]))
        .lines()
        .map(|l| l.split_whitespace().next().unwrap_or("").to_string())
        .filter(|n| !n.is_empty())
        .collect()
}

/// Switch journals anywhere under the state dir (the profile dir is in it).
fn journals(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = e.path();
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            found.extend(journals(&path));
        } else if path.to_string_lossy().ends_with(".switch.json") {
            found.push(path);
        }
    }
    found
}

fn kill_and_rerun(point: &str) {
    let p = ports();
    let d = Deployment::new(&model(), &params(&p, &tags("v1")));
    assert_success(&switch(&d, &p, "v1", &[], None), "deploy v1");
    runs_exactly(&d, &p, "v1");
    killed(&switch(&d, &p, "v2", &[], Some(point)), point);
    let out = switch(&d, &p, "v2", &[], None);
    assert_success(&out, "rerun of the switch to v2");
    runs_exactly(&d, &p, "v2");
    assert_eq!(generations(&d).len(), 2, "{:?}", generations(&d));
    let state = d.state_dir();
    assert_eq!(journals(&state), Vec::<PathBuf>::new());
    // And once more: nothing to do, nothing changes.
    let before = webapps(&state);
    assert_success(&switch(&d, &p, "v2", &[], None), "no-op switch");
    assert_eq!(webapps(&state), before);
}

#[test]
fn killed_after_plan() {
    kill_and_rerun("switch.after-plan");
}

#[test]
fn killed_after_first_stop() {
    kill_and_rerun("switch.after-first-stop");
}

#[test]
fn killed_between_phases() {
    kill_and_rerun("switch.between-phases");
}

#[test]
fn killed_after_first_start() {
    kill_and_rerun("switch.after-first-start");
}

#[test]
fn killed_before_record() {
    kill_and_rerun("switch.before-record");
}

#[test]
fn a_killed_rollback_converges_when_rerun() {
    let p = ports();
    let d = Deployment::new(&model(), &params(&p, &tags("v1")));
    assert_success(&switch(&d, &p, "v1", &[], None), "deploy v1");
    assert_success(&switch(&d, &p, "v2", &[], None), "switch to v2");
    runs_exactly(&d, &p, "v2");
    for point in ["switch.after-first-start", "switch.between-phases"] {
        killed(
            &switch(&d, &p, "", &["--rollback"], Some(point)),
            "rollback",
        );
    }
    assert_success(&switch(&d, &p, "", &["--rollback"], None), "rollback");
    runs_exactly(&d, &p, "v1");
    assert_eq!(generations(&d).len(), 2);
    assert_eq!(journals(&d.state_dir()), Vec::<PathBuf>::new());
}
