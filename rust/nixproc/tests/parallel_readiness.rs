//! Readiness checks in real switches (issue 6): sysvinit deployments of
//! tests/models/readiness.nix (webapp1 ← webapp2, each with a readiness
//! check), unprivileged.

#[path = "../../../tests/common/mod.rs"]
mod common;

use std::path::PathBuf;

use common::*;

fn model() -> PathBuf {
    repo_root().join("tests/models/readiness.nix")
}

fn params(p: &Ports, extra: &str) -> String {
    format!(
        "{{ ports = {{ webapp1 = {}; webapp2 = {}; }}; {extra} }}",
        p.webapp1, p.webapp2
    )
}

fn switch(d: &Deployment, params: &str) -> std::process::Output {
    let model = model();
    d.nixproc(&[
        "switch",
        "--jobs",
        "4",
        "--extra-params",
        params,
        model.to_str().unwrap(),
    ])
}

fn position(lines: &[&str], prefix: &str) -> usize {
    lines
        .iter()
        .position(|l| l.starts_with(prefix))
        .unwrap_or_else(|| panic!("no line {prefix:?} in {lines:#?}"))
}

#[test]
fn a_dependent_starts_only_after_its_dependency_is_ready() {
    let p = ports();
    let d = Deployment::new(&model(), &params(&p, ""));
    let out = switch(&d, &params(&p, ""));
    assert_success(&out, "deploy");
    let err = stderr(&out);
    let lines: Vec<&str> = err.lines().collect();
    let waiting = position(
        &lines,
        &format!(
            "nixproc: waiting for webapp1 to be ready (tcp 127.0.0.1:{})",
            p.webapp1
        ),
    );
    let ready = position(&lines, "nixproc: webapp1 is ready (");
    let starting2 = position(&lines, "nixproc: starting webapp2 (added)");
    assert!(waiting < ready && ready < starting2, "{err}");
    position(
        &lines,
        &format!(
            "nixproc: waiting for webapp2 to be ready (http http://127.0.0.1:{}/)",
            p.webapp2
        ),
    );
    position(&lines, "nixproc: webapp2 is ready (");
    answers(p.webapp1, "localhost", "webapp1");
    answers(p.webapp2, "localhost", "webapp2");
}

#[test]
fn a_readiness_timeout_fails_the_switch_names_the_check_and_rolls_back() {
    let p = ports();
    let dead = free_ports(1)[0];
    let d = Deployment::new(&model(), &params(&p, ""));
    assert_success(&switch(&d, &params(&p, "")), "deploy v1");
    let v1 = (d.pid_of("run/webapp1.pid"), d.pid_of("run/webapp2.pid"));
    let bad = params(&p, &format!("tag = \"v2\"; deadPort = {dead};"));
    let out = switch(&d, &bad);
    assert!(!out.status.success(), "the switch must fail");
    let err = stderr(&out);
    assert!(
        err.contains(&format!(
            "starting webapp1 (changed) failed: webapp1 is not ready: tcp 127.0.0.1:{dead}: \
             connection refused after 2 s"
        )),
        "{err}"
    );
    assert!(
        err.contains("the previous generation's processes are running again"),
        "{err}"
    );
    assert!(!err.contains("starting webapp2 (changed)"), "{err}");
    // The previous generation runs: new processes (they were restarted)
    // with the v1 environment, answering; still one generation.
    let now = (d.pid_of("run/webapp1.pid"), d.pid_of("run/webapp2.pid"));
    for pid in [now.0, now.1] {
        let pid = pid.expect("a PID file");
        assert!(alive(pid));
        let env = std::fs::read(format!("/proc/{pid}/environ")).unwrap();
        assert!(String::from_utf8_lossy(&env).contains("TAG=v1"));
    }
    assert_ne!(now.0, v1.0, "webapp1 was stopped and started again");
    answers(p.webapp1, "localhost", "webapp1");
    answers(p.webapp2, "localhost", "webapp2");
    let gens = stdout(&d.nixproc(&["switch", "--list-generations"]));
    assert_eq!(gens.lines().count(), 1, "{gens}");
}
