//! End to end with the sysvinit backend: real nix-build with the plugin,
//! real init scripts, real processes (the example webapp and nginx),
//! unprivileged (own state dir, --force-disable-user-change).

mod common;

use std::time::Duration;

use common::*;

const WAIT: Duration = Duration::from_secs(15);

fn model() -> std::path::PathBuf {
    repo_root().join("tests/models/webapps.nix")
}

fn order_log(d: &Deployment) -> Vec<String> {
    std::fs::read_to_string(d.state_dir().join("order.log"))
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn deploy_answers_through_nginx_then_undeploy_stops_everything_in_order() {
    let p = ports();
    let d = Deployment::new(&model(), &params(&p, ""));
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
    assert_eq!(status, 404);
    assert!(body.contains("unavailable"), "{body}");

    let pid1 = d.pid_of("run/webapp1.pid").expect("webapp1 pid file");
    let pid2 = d.pid_of("run/webapp2.pid").expect("webapp2 pid file");
    let nginx = d.pid_of("run/nginx.pid").expect("nginx pid file");
    assert!(alive(pid1) && alive(pid2) && alive(nginx));
    assert_eq!(order_log(&d), ["start webapp1", "start webapp2"]);

    let out = d.undeploy();
    assert_success(&out, "undeploy");
    // Dependents stop before their dependencies.
    assert_eq!(
        order_log(&d),
        [
            "start webapp1",
            "start webapp2",
            "stop webapp2",
            "stop webapp1"
        ]
    );
    eventually(WAIT, "all processes gone", || {
        !alive(pid1) && !alive(pid2) && !alive(nginx)
    });
    assert!(port_closed(p.nginx) && port_closed(p.webapp1) && port_closed(p.webapp2));
    let state = d.state_dir().to_string_lossy().into_owned();
    assert!(pids_matching(&state).is_empty(), "processes left behind");
}

fn switch_tag(d: &Deployment, p: &Ports, tag: &str, extra: &[&str]) {
    let params = params(p, &format!("tags = {{ webapp2 = \"{tag}\"; }};"));
    let mut args = vec!["switch", "--extra-params", &params];
    args.extend_from_slice(extra);
    let model = model();
    args.push(model.to_str().unwrap());
    assert_success(&d.nixproc(&args), &format!("switch to {tag}"));
}

fn tag_of(pid: u32) -> String {
    let env = std::fs::read(format!("/proc/{pid}/environ")).unwrap();
    String::from_utf8_lossy(&env)
        .split('\0')
        .find_map(|kv| kv.strip_prefix("TAG="))
        .unwrap_or_default()
        .to_string()
}

#[test]
fn changing_one_instance_restarts_it_and_its_dependents_only_and_rollback_walks_back() {
    let p = ports();
    let d = Deployment::new(&model(), &params(&p, ""));
    d.switch_ok(&[]);
    answers(p.nginx, "webapp2.local", "webapp2");
    let pid = |f: &str| d.pid_of(f).expect("pid file");
    let (w1, w2, ng) = (
        pid("run/webapp1.pid"),
        pid("run/webapp2.pid"),
        pid("run/nginx.pid"),
    );

    // webapp2 changes: it restarts, and so does nginx, which depends on it;
    // webapp1 is not touched.
    switch_tag(&d, &p, "v2", &[]);
    answers(p.nginx, "webapp2.local", "webapp2");
    let (w2_v2, ng_v2) = (pid("run/webapp2.pid"), pid("run/nginx.pid"));
    assert_ne!(w2, w2_v2, "webapp2 was restarted");
    assert!(!alive(w2), "old webapp2 process is gone");
    assert_eq!(tag_of(w2_v2), "v2");
    assert_ne!(ng, ng_v2, "nginx (a dependent) was restarted");
    assert_eq!(pid("run/webapp1.pid"), w1, "webapp1 untouched");
    assert!(alive(w1));

    // With --no-restart-dependents only the changed instance restarts.
    switch_tag(&d, &p, "v3", &["--no-restart-dependents"]);
    let w2_v3 = pid("run/webapp2.pid");
    assert_ne!(w2_v3, w2_v2);
    assert_eq!(tag_of(w2_v3), "v3");
    assert_eq!(pid("run/nginx.pid"), ng_v2, "nginx untouched");
    assert_eq!(pid("run/webapp1.pid"), w1, "webapp1 untouched");
    assert_eq!(
        order_log(&d),
        [
            "start webapp1",
            "start webapp2",
            "stop webapp2",
            "start webapp2",
            "stop webapp2",
            "start webapp2"
        ]
    );
    let gens = stdout(&d.nixproc(&["switch", "--list-generations"]));
    assert_eq!(gens.lines().count(), 3, "three generations: {gens}");

    // Rollbacks walk back one generation at a time, without new generations.
    assert_success(&d.nixproc(&["switch", "--rollback"]), "rollback to 2");
    assert_eq!(tag_of(pid("run/webapp2.pid")), "v2");
    assert_success(&d.nixproc(&["switch", "--rollback"]), "rollback to 1");
    let w2_back = pid("run/webapp2.pid");
    assert_eq!(tag_of(w2_back), "v1");
    assert!(alive(w2_back) && !alive(w2_v3));
    assert_eq!(pid("run/webapp1.pid"), w1, "webapp1 never touched");
    answers(p.nginx, "webapp2.local", "webapp2");
    let gens = stdout(&d.nixproc(&["switch", "--list-generations"]));
    assert_eq!(gens.lines().count(), 3, "{gens}");
    let current: Vec<&str> = gens.lines().filter(|l| l.contains("current")).collect();
    assert_eq!(current.len(), 1, "{gens}");
    assert!(current[0].trim_start().starts_with('1'), "{gens}");

    // And forward again to a chosen generation.
    assert_success(
        &d.nixproc(&["switch", "--switch-generation", "3"]),
        "switch-generation 3",
    );
    assert_eq!(tag_of(pid("run/webapp2.pid")), "v3");
}

#[test]
fn foreground_processes_are_daemonized_by_nixproc() {
    let p = ports();
    let d = Deployment::new(&model(), &params(&p, "foreground = true;"));
    d.switch_ok(&[]);
    answers(p.nginx, "webapp1.local", "webapp1");
    let pid = d
        .pid_of("run/webapp1.pid")
        .expect("pid file written by the helper");
    let cmdline = std::fs::read_to_string(format!("/proc/{pid}/cmdline")).unwrap();
    assert!(
        cmdline.contains("webapp"),
        "the PID is the webapp itself: {cmdline}"
    );
    assert!(
        !cmdline.contains("-D"),
        "runs in foreground mode: {cmdline}"
    );
    // Detached: its own session, not a child of nixproc.
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let ppid: u32 = stat
        .rsplit(')')
        .next()
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    assert_ne!(ppid, std::process::id());
    assert_success(&d.undeploy(), "undeploy");
    eventually(WAIT, "webapp1 stopped", || !alive(pid));
}

#[test]
fn failed_start_returns_to_the_previous_generation() {
    let p = ports();
    let d = Deployment::new(&model(), &params(&p, ""));
    d.switch_ok(&[]);
    let w1 = d.pid_of("run/webapp1.pid").unwrap();
    let w2 = d.pid_of("run/webapp2.pid").unwrap();

    // webapp2 changes and cannot start (PORT is not a number).
    let out = d.nixproc(&[
        "switch",
        "--extra-params",
        &params(
            &p,
            r#"failing = "webapp2"; tags = { webapp2 = "broken"; };"#,
        ),
        model().to_str().unwrap(),
    ]);
    assert!(!out.status.success(), "switch must fail");
    let err = stderr(&out);
    assert!(err.contains("webapp2"), "error names the instance: {err}");

    // The old webapp2 runs again, webapp1 was never touched, still generation 1.
    answers(p.nginx, "webapp2.local", "webapp2");
    let w2_after = d.pid_of("run/webapp2.pid").expect("old webapp2 restored");
    assert!(alive(w2_after));
    assert!(!alive(w2) || w2_after == w2);
    assert_eq!(d.pid_of("run/webapp1.pid"), Some(w1));
    let gens = stdout(&d.nixproc(&["switch", "--list-generations"]));
    assert_eq!(gens.lines().count(), 1, "no generation recorded: {gens}");
}

#[test]
fn dry_run_prints_the_plan_and_changes_nothing() {
    let p = ports();
    let d = Deployment::new(&model(), &params(&p, ""));
    let out = d.switch(&["--dry-run"]);
    assert_success(&out, "dry run");
    let plan = stdout(&out);
    for name in ["webapp1", "webapp2", "nginx"] {
        assert!(plan.contains(name), "plan mentions {name}: {plan}");
    }
    let start1 = plan.find("webapp1").unwrap();
    let start2 = plan.find("webapp2").unwrap();
    assert!(start1 < start2, "webapp1 starts before webapp2:\n{plan}");
    assert!(http_get(p.nginx, "webapp1.local", Duration::ZERO).is_none());
    assert!(!d.state_dir().join("order.log").exists());
}

#[test]
fn build_prints_only_the_store_path_on_stdout() {
    let p = ports();
    let d = Deployment::new(&model(), &params(&p, ""));
    let out = d.nixproc(&[
        "build",
        "--extra-params",
        &params(&p, ""),
        model().to_str().unwrap(),
    ]);
    assert_success(&out, "build");
    let path = stdout(&out);
    let path = path.trim();
    assert!(
        path.starts_with("/nix/store/") && !path.contains('\n'),
        "{path:?}"
    );
    let profile = std::path::Path::new(path);
    assert!(profile.join("etc/rc.d/init.d/webapp1").exists());
    assert!(profile.join("etc/rc.d/rc3.d").read_dir().unwrap().count() >= 3);
    let manifest =
        std::fs::read_to_string(profile.join("nix-support/nixproc/manifest.json")).unwrap();
    let m: serde_json::Value = serde_json::from_str(&manifest).unwrap();
    let names: Vec<&str> = m["instances"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["webapp1", "webapp2", "nginx"], "dependency order");
}

#[test]
fn processes_run_as_their_declared_user_when_user_change_is_allowed() {
    if !is_root() {
        eprintln!("skipped: switching users needs root");
        return;
    }
    let p = free_ports(2);
    let model = repo_root().join("tests/models/user.nix");
    let d = Deployment::privileged(
        &model,
        &format!(
            "{{ ports = {{ daemon = {}; foreground = {}; }}; }}",
            p[0], p[1]
        ),
    );
    d.switch_ok(&[]);
    let nobody = 65534;
    for (name, port) in [("daemon", p[0]), ("foreground", p[1])] {
        answers(port, "x", &format!("{name} listening on port: {port}"));
        let pid = d
            .pid_of(&format!("tmp/{name}.pid"))
            .expect("pid file in tmpDir");
        assert_eq!(uid_of(pid), nobody, "{name} runs as nobody");
    }
    // The tmp dir was created world-writable for them (user change allowed).
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(d.state_dir().join("tmp"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o7777, 0o1777);
    assert_success(&d.undeploy(), "undeploy");
    assert!(port_closed(p[0]) && port_closed(p[1]));
}

#[test]
fn original_tool_names_work_through_argv0() {
    let p = ports();
    let d = Deployment::new(&model(), &params(&p, ""));
    let bin = release_dir();
    let params = params(&p, "");
    let state = d.state_dir();
    let run_tool = |tool: &str, args: &[&str]| {
        let mut cmd = std::process::Command::new(bin.join(tool));
        cmd.current_dir(d.dir.path())
            .args([
                "--state-dir",
                state.to_str().unwrap(),
                "--force-disable-user-change",
            ])
            .args(args);
        run(&mut cmd)
    };
    // nixproc-build makes a `result` link by default, like the original.
    let out = run_tool(
        "nixproc-build",
        &["--extra-params", &params, model().to_str().unwrap()],
    );
    assert_success(&out, "nixproc-build");
    assert!(d
        .dir
        .path()
        .join("result/nix-support/nixproc/manifest.json")
        .exists());

    let out = run_tool(
        "nixproc-sysvinit-switch",
        &["--extra-params", &params, model().to_str().unwrap()],
    );
    assert_success(&out, "nixproc-sysvinit-switch");
    answers(p.nginx, "webapp1.local", "webapp1");
    let out = run_tool("nixproc-sysvinit-switch", &["--undeploy"]);
    assert_success(&out, "nixproc-sysvinit-switch --undeploy");
    assert!(port_closed(p.nginx));
    let out = run_tool("nixproc-sysvinit-switch", &["--delete-generations", "old"]);
    assert_success(&out, "--delete-generations old");
    let gens = stdout(&run_tool(
        "nixproc-sysvinit-switch",
        &["--list-generations"],
    ));
    assert_eq!(
        gens.lines().count(),
        1,
        "only the current generation is left: {gens}"
    );
}
