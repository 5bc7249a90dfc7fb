//! End to end with the process-manager-agnostic example: one model
//! (createManagedProcess), deployed unprivileged under every backend this
//! machine can run — real supervisord, real s6-svscan, sysvinit scripts —
//! checked the way a user would: the webapps answer through nginx, a switch
//! restarts only what changed, undeploy leaves nothing running (the process
//! manager's own daemon included).

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::*;

const WAIT: Duration = Duration::from_secs(20);

fn model() -> PathBuf {
    repo_root().join("tests/models/agnostic.nix")
}

fn listener(port: u16) -> u32 {
    let mut pid = None;
    eventually(WAIT, &format!("a process listening on {port}"), || {
        pid = listener_pid(port);
        pid.is_some()
    });
    pid.unwrap()
}

fn switch_with(d: &Deployment, p: &Ports, extra: &str) {
    let params = params(p, extra);
    let model = model();
    let out = d.nixproc(&["switch", "--extra-params", &params, model.to_str().unwrap()]);
    assert_success(&out, &format!("switch with {extra}"));
}

/// The process manager's own daemon for this deployment, if it has one.
fn manager_pids(d: &Deployment, pm: &str) -> Vec<u32> {
    let state = d.state_dir().to_string_lossy().into_owned();
    let needle = match pm {
        "supervisord" => "supervisord",
        "s6-rc" => "s6-svscan",
        _ => return Vec::new(),
    };
    pids_matching(needle)
        .into_iter()
        .filter(|pid| {
            let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            String::from_utf8_lossy(&cmd).contains(&state)
        })
        .collect()
}

fn deploy_switch_undeploy(pm: &str, webapp_mode: &str) {
    let p = ports();
    let mode = format!("webappMode = {webapp_mode};");
    let d = Deployment::new(&model(), &params(&p, &mode)).with_process_manager(pm);
    d.switch_ok(&[]);

    answers(
        p.nginx,
        "webapp1.local",
        &format!("webapp1 listening on port: {}", p.webapp1),
    );
    answers(
        p.nginx,
        "webapp2.local",
        &format!("webapp2 listening on port: {}", p.webapp2),
    );
    let (status, body) = http_get(p.nginx, "unknown.local", WAIT).expect("catch-all answers");
    assert_eq!(status, 404, "{body}");
    if pm != "sysvinit" {
        assert!(
            !manager_pids(&d, pm).is_empty(),
            "nixproc started {pm} under the state dir"
        );
    }

    let (w1, w2, ng) = (listener(p.webapp1), listener(p.webapp2), listener(p.nginx));

    // Only nginx changes (nothing depends on it): the webapps keep running.
    switch_with(&d, &p, &format!("{mode} nginxWorkers = 512;"));
    answers(p.nginx, "webapp1.local", "webapp1");
    assert_eq!(listener(p.webapp1), w1, "webapp1 untouched");
    assert_eq!(listener(p.webapp2), w2, "webapp2 untouched");
    eventually(WAIT, "the old nginx is gone", || !alive(ng));
    let ng2 = listener(p.nginx);
    assert_ne!(ng2, ng, "nginx restarted");

    // webapp2 changes: it restarts and nginx with it (its dependent);
    // webapp1 stays.
    switch_with(
        &d,
        &p,
        &format!("{mode} nginxWorkers = 512; tags = {{ webapp2 = \"v2\"; }};"),
    );
    answers(p.nginx, "webapp2.local", "webapp2");
    assert_eq!(listener(p.webapp1), w1, "webapp1 untouched");
    eventually(WAIT, "the old webapp2 is gone", || !alive(w2));
    assert_ne!(listener(p.webapp2), w2);

    let all = [listener(p.webapp1), listener(p.webapp2), listener(p.nginx)];
    assert_success(&d.undeploy(), "undeploy");
    eventually(WAIT, "every process gone", || {
        all.iter().all(|p| !alive(*p))
    });
    assert!(port_closed(p.nginx) && port_closed(p.webapp1) && port_closed(p.webapp2));
    eventually(WAIT, "the process manager gone", || {
        manager_pids(&d, pm).is_empty()
    });
    let state = d.state_dir().to_string_lossy().into_owned();
    assert!(pids_matching(&state).is_empty(), "processes left behind");
}

#[test]
fn supervisord_deploy_switch_undeploy() {
    deploy_switch_undeploy("supervisord", "null");
}

#[test]
fn supervisord_daemon_only_webapps_run_through_the_foreground_proxy() {
    deploy_switch_undeploy("supervisord", "\"daemon\"");
}

#[test]
fn s6_rc_deploy_switch_undeploy() {
    deploy_switch_undeploy("s6-rc", "null");
}

#[test]
fn s6_rc_daemon_only_webapps_are_oneshots() {
    deploy_switch_undeploy("s6-rc", "\"daemon\"");
}

#[test]
fn sysvinit_deploy_switch_undeploy() {
    deploy_switch_undeploy("sysvinit", "null");
}

#[test]
fn sysvinit_foreground_only_webapps_are_daemonized() {
    deploy_switch_undeploy("sysvinit", "\"foreground\"");
}

#[test]
fn a_webapp_that_cannot_start_fails_the_switch_and_rolls_back() {
    for pm in ["supervisord", "s6-rc", "sysvinit"] {
        let p = ports();
        let d = Deployment::new(&model(), &params(&p, "")).with_process_manager(pm);
        d.switch_ok(&[]);
        let w1 = listener(p.webapp1);
        let out = d.switch(&[]); // same generation: nothing to do
        assert_success(&out, "no-op switch");

        let params = params(&p, "failing = \"webapp2\";");
        let model = model();
        let out = d.nixproc(&["switch", "--extra-params", &params, model.to_str().unwrap()]);
        assert!(
            !out.status.success(),
            "{pm}: a switch with a broken webapp2 must fail"
        );
        assert!(
            stderr(&out).contains("webapp2"),
            "{pm}: error names webapp2: {}",
            stderr(&out)
        );
        // The previous generation runs again.
        answers(p.nginx, "webapp2.local", "webapp2");
        answers(p.nginx, "webapp1.local", "webapp1");
        assert_eq!(listener(p.webapp1), w1, "{pm}: webapp1 untouched");
        let gens = stdout(&d.nixproc(&["switch", "--list-generations"]));
        assert_eq!(
            gens.lines().count(),
            1,
            "{pm}: no generation recorded: {gens}"
        );
    }
}

#[test]
fn supervisord_stateless_runs_in_the_foreground_until_terminated() {
    let p = ports();
    let d = Deployment::new(&model(), &params(&p, ""));
    let mut child = std::process::Command::new(nixproc_bin())
        .args([
            "supervisord-stateless",
            "--force-disable-user-change",
            "--state-dir",
        ])
        .arg(d.state_dir())
        .arg("--extra-params")
        .arg(&d.extra_params)
        .arg(model())
        .spawn()
        .expect("nixproc supervisord-stateless starts");
    // supervisord starts every program at once (no readiness in stateless
    // mode): nginx may answer 502 until the webapps listen.
    for host in ["webapp1.local", "webapp2.local"] {
        eventually(WAIT, "nginx reaches the webapps", || {
            matches!(http_get(p.nginx, host, WAIT), Some((200, _)))
        });
    }
    answers(p.nginx, "webapp1.local", "webapp1");
    answers(p.nginx, "webapp2.local", "webapp2");
    let pids = [listener(p.webapp1), listener(p.webapp2), listener(p.nginx)];
    // nixproc exec'd supervisord: the signal goes straight to it.
    rustix::process::kill_process(
        rustix::process::Pid::from_raw(child.id() as i32).unwrap(),
        rustix::process::Signal::TERM,
    )
    .unwrap();
    let status = child.wait().unwrap();
    assert!(
        status.success(),
        "supervisord exits cleanly on TERM: {status}"
    );
    eventually(WAIT, "every program stopped", || {
        pids.iter().all(|p| !alive(*p))
    });
    // Stateless: no generation recorded.
    let gens = stdout(&d.nixproc(&["switch", "--list-generations"]));
    assert!(gens.trim().is_empty(), "{gens}");
}

#[test]
fn a_failed_first_deployment_leaves_no_process_manager_behind() {
    for pm in ["supervisord", "s6-rc"] {
        let p = ports();
        let d = Deployment::new(&model(), &params(&p, "failing = \"webapp2\";"))
            .with_process_manager(pm);
        let out = d.switch(&[]);
        assert!(!out.status.success(), "{pm}: the first switch must fail");
        assert!(stderr(&out).contains("webapp2"), "{pm}: {}", stderr(&out));
        eventually(WAIT, "the process manager stopped", || {
            manager_pids(&d, pm).is_empty()
        });
        assert!(port_closed(p.webapp1), "{pm}: webapp1 was stopped again");
        let state = d.state_dir().to_string_lossy().into_owned();
        eventually(WAIT, "nothing left", || pids_matching(&state).is_empty());
    }
}

/// Two consecutive free ports after a base (the example's webappPortBase
/// convention), plus one more for nginx.
fn example_ports() -> (u16, u16) {
    for _ in 0..50 {
        let base = free_ports(1)[0];
        let free = |p: u16| std::net::TcpListener::bind(("127.0.0.1", p)).is_ok();
        if base < 65000 && free(base + 1) && free(base + 2) {
            return (base, free_ports(1)[0]);
        }
    }
    panic!("no free consecutive ports");
}

#[test]
fn the_webapps_agnostic_example_itself_deploys_under_supervisord_and_s6() {
    let example = repo_root().join("examples/webapps-agnostic/processes.nix");
    for pm in ["supervisord", "s6-rc"] {
        let (base, nginx) = example_ports();
        let d = Deployment::new(
            &example,
            &format!("{{ webappPortBase = {base}; nginxPort = {nginx}; }}"),
        )
        .with_process_manager(pm);
        d.switch_ok(&[]);
        answers(
            nginx,
            "webapp1.local",
            &format!("webapp1 listening on port: {}", base + 1),
        );
        answers(
            nginx,
            "webapp2.local",
            &format!("webapp2 listening on port: {}", base + 2),
        );
        assert_success(&d.undeploy(), "undeploy");
        eventually(WAIT, "the process manager gone", || {
            manager_pids(&d, pm).is_empty()
        });
        assert!(port_closed(nginx) && port_closed(base + 1) && port_closed(base + 2));
    }
}
