//! `nixproc status` and `nixproc logs` against real deployments (sysvinit
//! and supervisord, unprivileged) of the example webapp: status shows each
//! instance running with the PID of the process really listening on its
//! port, an uptime, and `--json` that parses; a killed instance shows as
//! stopped; `logs` prints what the instance wrote, `logs -f` follows it;
//! an unknown name is an error listing the deployed ones.
//!
//! The model (written per test) runs the webapp in the foreground through
//! `/bin/sh -c 'echo …; exec webapp'`, so the instance writes a line to its
//! log first and its PID stays the webapp's.

#[path = "../../../tests/common/mod.rs"]
mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use common::*;

const WAIT: Duration = Duration::from_secs(20);

fn write_model(dir: &Path) -> PathBuf {
    let repo = repo_root();
    let model = format!(
        r#"{{ stateDir
, runtimeDir ? "${{stateDir}}/run"
, logDir ? "${{stateDir}}/log"
, cacheDir ? "${{stateDir}}/cache"
, tmpDir ? "${{stateDir}}/tmp"
, forceDisableUserChange ? false
, processManager
, ports
}}:
let
  pkgs = import {repo}/examples/host-pkgs.nix {{ }};
  nixproc = import <nixproc> {{
    inherit stateDir runtimeDir logDir cacheDir tmpDir forceDisableUserChange processManager;
  }};
  webapp = name: port: nixproc.createManagedProcess {{
    instanceName = name;
    foregroundProcess = "/bin/sh";
    args = [ "-c" "echo \"${{name}} says hello on port $PORT\"; exec ${{pkgs.webapp}}/bin/webapp" ];
    environment = {{
      PORT = port;
      INSTANCE_NAME = name;
    }};
  }};
in
{{
  webapp1 = {{ pkg = webapp "webapp1" ports.webapp1; }};
  webapp2 = {{ pkg = webapp "webapp2" ports.webapp2; }};
}}
"#,
        repo = repo.display()
    );
    let path = dir.join("model.nix");
    std::fs::write(&path, model).unwrap();
    path
}

struct Setup {
    d: Deployment,
    ports: [u16; 2],
}

fn deploy(pm: &str) -> Setup {
    let scratch = tempfile::tempdir().unwrap();
    let model = write_model(scratch.path());
    let p = free_ports(2);
    let params = format!(
        "{{ ports = {{ webapp1 = {}; webapp2 = {}; }}; }}",
        p[0], p[1]
    );
    let mut d = Deployment::new(&model, &params).with_process_manager(pm);
    // the model file must outlive the deployment (undeploy rebuilds nothing,
    // but keep it next to the state dir anyway)
    let kept = d.dir.path().join("model.nix");
    std::fs::copy(&model, &kept).unwrap();
    d.model = kept;
    d.switch_ok(&[]);
    for port in &p {
        answers(*port, "localhost", "listening on port");
    }
    Setup {
        d,
        ports: [p[0], p[1]],
    }
}

fn listener(port: u16) -> u32 {
    let mut pid = None;
    eventually(WAIT, &format!("a process listening on {port}"), || {
        pid = listener_pid(port);
        pid.is_some()
    });
    pid.unwrap()
}

fn status_json(d: &Deployment) -> Vec<serde_json::Value> {
    let out = d.nixproc(&["status", "--json"]);
    assert_success(&out, "nixproc status --json");
    serde_json::from_slice(&out.stdout).expect("status --json is JSON")
}

fn find<'v>(reports: &'v [serde_json::Value], name: &str) -> &'v serde_json::Value {
    reports
        .iter()
        .find(|r| r["name"] == name)
        .unwrap_or_else(|| panic!("{name} in {reports:?}"))
}

fn status_shows_running_pids_and_stopped_after_kill(pm: &str) {
    let s = deploy(pm);
    let pids = s.ports.map(listener);

    let out = s.d.nixproc(&["status"]);
    assert_success(&out, "nixproc status");
    let table = stdout(&out);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 3, "{table}");
    let header: Vec<&str> = lines[0].split_whitespace().collect();
    assert_eq!(
        header,
        [
            "NAME",
            "BACKEND",
            "STATE",
            "PID",
            "UPTIME",
            "USER",
            "READINESS"
        ]
    );
    // aligned: every column starts at the header's offset
    let pid_col = lines[0].find("PID").unwrap();
    for (line, (name, pid)) in lines[1..]
        .iter()
        .zip(["webapp1", "webapp2"].iter().zip(pids))
    {
        let cells: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(
            cells[..4],
            [*name, pm, "running", &pid.to_string()],
            "{table}"
        );
        assert!(line[pid_col..].starts_with(&pid.to_string()), "{table}");
        assert!(
            cells[4].ends_with('s') || cells[4].ends_with('m'),
            "{table}"
        );
        assert_eq!(cells[6], "-", "no readiness declared: {table}");
    }

    let reports = status_json(&s.d);
    assert_eq!(reports.len(), 2);
    for (name, pid) in ["webapp1", "webapp2"].iter().zip(pids) {
        let r = find(&reports, name);
        assert_eq!(r["backend"], pm);
        assert_eq!(r["state"], "running");
        assert_eq!(r["pid"], pid, "{r}");
        assert_eq!(r["uptimeSource"], "proc");
        assert!(r["uptimeSeconds"].as_u64().unwrap() < 600, "{r}");
        assert_eq!(r["readiness"]["state"], "none");
    }

    // supervisord would restart a program that dies; stop it so it stays down.
    if pm == "supervisord" {
        let conf = s.d.state_dir().join("lib/supervisord/supervisord.conf");
        let out = run(Command::new("supervisorctl")
            .arg("-c")
            .arg(&conf)
            .args(["stop", "webapp1"]));
        assert_success(&out, "supervisorctl stop");
    } else {
        let out = run(Command::new("kill").args(["-KILL", &pids[0].to_string()]));
        assert_success(&out, "kill");
    }
    eventually(WAIT, "webapp1 gone", || !alive(pids[0]));
    let reports = status_json(&s.d);
    let r1 = find(&reports, "webapp1");
    assert_eq!(r1["state"], "stopped", "{r1}");
    assert_eq!(r1["pid"], serde_json::Value::Null);
    assert_eq!(find(&reports, "webapp2")["state"], "running");
    let table = stdout(&s.d.nixproc(&["status"]));
    assert!(
        table
            .lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>()[..4]
                == ["webapp1", pm, "stopped", "-"]),
        "{table}"
    );
}

#[test]
fn sysvinit_status() {
    status_shows_running_pids_and_stopped_after_kill("sysvinit");
}

#[test]
fn supervisord_status() {
    status_shows_running_pids_and_stopped_after_kill("supervisord");
}

/// The file `logs` reads for webapp1 (to append to it as the process would).
fn log_file(d: &Deployment) -> PathBuf {
    d.state_dir().join("log/nixproc-webapp1.log")
}

fn logs_show_and_follow(pm: &str) {
    let s = deploy(pm);
    let log = log_file(&s.d);
    eventually(WAIT, "webapp1 wrote its line", || {
        std::fs::read_to_string(&log).is_ok_and(|t| t.contains("webapp1 says hello"))
    });

    let out = s.d.nixproc(&["logs", "webapp1"]);
    assert_success(&out, "nixproc logs webapp1");
    assert_eq!(
        stdout(&out),
        format!("webapp1 says hello on port {}\n", s.ports[0])
    );
    let out = s.d.nixproc(&["logs", "webapp2", "-n", "1"]);
    assert_success(&out, "nixproc logs webapp2");
    assert!(stdout(&out).contains("webapp2 says hello"));

    // -n counts lines from the end
    let mut f = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
    use std::io::Write;
    writeln!(f, "second $(not run) `x` %s \\ é").unwrap();
    let out = s.d.nixproc(&["logs", "webapp1", "-n", "1"]);
    assert_eq!(stdout(&out), "second $(not run) `x` %s \\ é\n");

    // -f: the last line, then what is appended later
    let mut child = KillOnDrop(
        Command::new(nixproc_bin())
            .args(["logs", "webapp1", "-f", "-n", "1", "--state-dir"])
            .arg(s.d.state_dir())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap(),
    );
    let (tx, rx) = mpsc::channel();
    let reader = BufReader::new(child.0.stdout.take().unwrap());
    std::thread::spawn(move || {
        for line in reader.lines() {
            if tx.send(line.unwrap()).is_err() {
                break;
            }
        }
    });
    let first = rx.recv_timeout(WAIT).expect("logs -f prints the last line");
    assert_eq!(first, "second $(not run) `x` %s \\ é");
    writeln!(f, "appended while following").unwrap();
    let next = rx.recv_timeout(WAIT).expect("logs -f prints new lines");
    assert_eq!(next, "appended while following");
}

/// Kills the child (`logs -f` never ends by itself) even when the test
/// fails half-way.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn sysvinit_logs() {
    logs_show_and_follow("sysvinit");
}

#[test]
fn supervisord_logs() {
    logs_show_and_follow("supervisord");
}

#[test]
fn unknown_instance_is_an_error_naming_the_deployed_ones() {
    let s = deploy("sysvinit");
    let out = s.d.nixproc(&["logs", "webapp3"]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("no instance named \"webapp3\"") && err.contains("deployed: webapp1, webapp2"),
        "{err}"
    );
}

#[test]
fn nothing_deployed_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(Command::new(nixproc_bin())
        .args(["status", "--state-dir"])
        .arg(dir.path()));
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("nothing is deployed"),
        "{}",
        stderr(&out)
    );
}
