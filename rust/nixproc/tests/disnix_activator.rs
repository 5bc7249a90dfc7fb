//! The disnix backend end to end: `nixproc switch -P disnix` of the webapp
//! model (tests/models/agnostic.nix) unprivileged, the services adapter
//! (nix/disnix/services-adapter.nix) evaluated the way Disnix evaluates a
//! services expression, and a component package built on its own.
//!
//! The binaries: this package's `nixproc`, and the plugin, the static
//! builder and the webapp from `$NIXPROC_TEST_BIN_DIR` or `target/release`
//! (scripts/build.sh) — they must include the disnix generator.

use std::fs;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(20);

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

fn bin_dir() -> PathBuf {
    let dir = std::env::var_os("NIXPROC_TEST_BIN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("target/release"));
    for f in ["libnixproc_plugin.so", "nixproc-builder", "webapp"] {
        assert!(
            dir.join(f).exists(),
            "{} missing: run scripts/build.sh (or set NIXPROC_TEST_BIN_DIR)",
            dir.join(f).display()
        );
    }
    dir
}

/// Environment for `nixproc` and `nix-*`: plugin, builder, webapp.
fn with_toolchain(cmd: &mut Command) -> &mut Command {
    let bin = bin_dir();
    cmd.env("NIXPROC_PLUGIN", bin.join("libnixproc_plugin.so"))
        .env("NIXPROC_BUILDER", bin.join("nixproc-builder"))
        .env("NIXPROC_WEBAPP", bin.join("webapp"))
}

/// `nix-instantiate`/`nix-build` with the plugin and `<nixproc>`.
fn nix(program: &str) -> Command {
    let mut cmd = Command::new(program);
    with_toolchain(&mut cmd);
    cmd.arg("--option")
        .arg("plugin-files")
        .arg(bin_dir().join("libnixproc_plugin.so"))
        .args(["--option", "substituters", "", "-I"])
        .arg(format!("nixproc={}", repo_root().join("nix").display()));
    cmd
}

fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().expect("command runs");
    eprintln!(
        "$ {:?}\n--- stdout\n{}--- stderr\n{}",
        cmd,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn ok(out: &Output, what: &str) -> String {
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn free_ports(n: usize) -> Vec<u16> {
    let listeners: Vec<TcpListener> = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    listeners
        .iter()
        .map(|l| l.local_addr().unwrap().port())
        .collect()
}

/// The body of GET / with a Host header, when something answers in time.
fn http_get(port: u16, host: &str) -> Option<String> {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) {
            s.set_read_timeout(Some(Duration::from_secs(5))).ok();
            let req = format!("GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
            let mut resp = String::new();
            if s.write_all(req.as_bytes()).is_ok()
                && s.read_to_string(&mut resp).is_ok()
                && resp.starts_with("HTTP/1.1 200")
            {
                return Some(resp);
            }
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Alive and not a zombie (PID 1 may reap late).
fn alive(pid: u32) -> bool {
    let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    let state = stat[stat.rfind(')').unwrap() + 1..]
        .split_whitespace()
        .next()
        .map(str::to_string);
    !matches!(state.as_deref(), Some("Z") | Some("X") | None)
}

/// One deployment with its own state dir; undeployed on drop.
struct Deployment {
    dir: tempfile::TempDir,
    ports: Vec<u16>,
}

impl Deployment {
    fn new() -> Self {
        Deployment {
            dir: tempfile::Builder::new()
                .prefix("nixproc-disnix-")
                .tempdir()
                .unwrap(),
            ports: free_ports(3),
        }
    }

    fn state(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    fn nixproc(&self, args: &[&str]) -> Output {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_nixproc"));
        with_toolchain(&mut cmd);
        cmd.args(args)
            .arg("--process-manager")
            .arg("disnix")
            .arg("--state-dir")
            .arg(self.state())
            .arg("--force-disable-user-change");
        run(&mut cmd)
    }

    fn switch(&self, extra_params: &str) -> String {
        let params = format!(
            "{{ ports = {{ webapp1 = {}; webapp2 = {}; nginx = {}; }}; {extra_params} }}",
            self.ports[0], self.ports[1], self.ports[2]
        );
        let model = repo_root().join("tests/models/agnostic.nix");
        let out = self.nixproc(&["switch", "--extra-params", &params, model.to_str().unwrap()]);
        ok(&out, "nixproc switch -P disnix");
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    fn profile(&self) -> PathBuf {
        fs::canonicalize(self.state().join("lib/nixproc/profiles/processes")).unwrap()
    }

    fn pid(&self, name: &str) -> Option<u32> {
        fs::read_to_string(self.state().join(format!("run/{name}.pid")))
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    fn answers(&self, webapp: &str) -> bool {
        http_get(self.ports[2], &format!("{webapp}.local")).is_some()
    }
}

impl Drop for Deployment {
    fn drop(&mut self) {
        if self.state().exists() {
            let _ = self.nixproc(&["switch", "--undeploy"]);
        }
    }
}

#[test]
fn webapps_deploy_upgrade_and_undeploy() {
    let d = Deployment::new();
    d.switch("");
    assert!(d.answers("webapp1") && d.answers("webapp2"));

    // Every component file of the profile names the profile's own wrapper
    // (the output placeholder was rewritten when the profile was built).
    let profile = d.profile();
    for name in ["webapp1", "webapp2", "nginx"] {
        let component =
            fs::read_to_string(profile.join(format!("etc/dysnomia/process/{name}"))).unwrap();
        let wrapper = profile.join(format!("bin/{name}-process-wrapper"));
        assert_eq!(
            component,
            format!(
                "process={}\npidFile={}\n",
                wrapper.display(),
                d.state().join(format!("run/{name}.pid")).display()
            )
        );
        assert!(wrapper.exists());
    }
    let pids: Vec<u32> = ["webapp1", "webapp2", "nginx"]
        .iter()
        .map(|n| d.pid(n).unwrap_or_else(|| panic!("no PID file of {n}")))
        .collect();
    assert!(pids.iter().all(|p| alive(*p)));

    // Only webapp1's environment changes: only it (and nginx, which
    // depends on it) restarts; webapp2 keeps running.
    d.switch("tags = { webapp1 = \"v2\"; };");
    assert!(d.answers("webapp1") && d.answers("webapp2"));
    assert_ne!(d.pid("webapp1"), Some(pids[0]));
    assert_eq!(d.pid("webapp2"), Some(pids[1]));
    assert!(!alive(pids[0]));
    let pids: Vec<u32> = ["webapp1", "webapp2", "nginx"]
        .iter()
        .map(|n| d.pid(n).unwrap())
        .collect();

    ok(&d.nixproc(&["switch", "--undeploy"]), "undeploy");
    for (name, pid) in ["webapp1", "webapp2", "nginx"].iter().zip(&pids) {
        assert!(!alive(*pid), "{name} still runs");
        assert_eq!(d.pid(name), None, "{name} left its PID file");
    }
}

#[test]
fn foreground_webapps_are_daemonized_with_a_log() {
    let d = Deployment::new();
    d.switch("webappMode = \"foreground\";");
    assert!(d.answers("webapp1"));
    let pid = d.pid("webapp1").expect("the daemonizer wrote the PID file");
    assert!(alive(pid));
    assert!(d.state().join("log/nixproc-webapp1.log").exists());
    let wrapper = fs::read_to_string(d.profile().join("bin/webapp1-process-wrapper")).unwrap();
    assert!(wrapper.contains(" daemonize --output "), "{wrapper}");
    ok(&d.nixproc(&["switch", "--undeploy"]), "undeploy");
    assert!(!alive(pid));
}

#[test]
fn a_failing_start_is_reported_and_rolled_back() {
    let d = Deployment::new();
    let params = format!(
        "{{ ports = {{ webapp1 = {}; webapp2 = {}; nginx = {}; }}; failing = \"webapp2\"; }}",
        d.ports[0], d.ports[1], d.ports[2]
    );
    let model = repo_root().join("tests/models/agnostic.nix");
    let out = d.nixproc(&["switch", "--extra-params", &params, model.to_str().unwrap()]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("webapp2: cannot start"), "{err}");
    assert!(err.contains("no-such-program"), "{err}");
    // webapp1 had started and was stopped again.
    assert_eq!(d.pid("webapp1"), None);
}

/// A services expression summarized as JSON (what Disnix reads of it).
fn services_summary(process_manager: &str) -> serde_json::Value {
    let expr = format!(
        r#"let s = import {root}/tests/disnix/services.nix {{ stateDir = "/tmp/nixproc-disnix-eval"; processManager = "{process_manager}"; }}; in
        builtins.mapAttrs (k: v: {{
          inherit (v) name type;
          port = v.port or null;
          dependsOn = builtins.attrNames v.dependsOn;
          activatesAfter = builtins.attrNames v.activatesAfter;
          activatesAfterNames = map (d: d.name) (builtins.attrValues v.activatesAfter);
          pkg = v.pkg.outPath;
          pkgName = v.pkg.name;
        }}) s"#,
        root = repo_root().display()
    );
    let out = run(nix("nix-instantiate").args(["--eval", "--strict", "--json", "-E", &expr]));
    serde_json::from_str(&ok(&out, "nix-instantiate --eval --strict")).unwrap()
}

#[test]
fn services_adapter_gives_a_disnix_services_model() {
    let s = services_summary("disnix");
    let keys: Vec<&String> = s.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["api", "store", "web"]);
    for (key, name, after) in [
        ("store", "kv-store", vec![]),
        ("api", "kv-api", vec!["store"]),
        ("web", "kv-web", vec!["api", "store"]),
    ] {
        let v = &s[key];
        assert_eq!(v["name"], key, "{v}");
        assert_eq!(v["type"], "process", "{v}");
        assert_eq!(v["pkgName"], name, "{v}");
        assert_eq!(v["dependsOn"], serde_json::json!([]), "{v}");
        assert_eq!(v["activatesAfter"], serde_json::json!(after), "{v}");
        assert_eq!(v["activatesAfterNames"], serde_json::json!(after), "{v}");
        let pkg = v["pkg"].as_str().unwrap();
        assert!(
            pkg.starts_with("/nix/store/") && pkg.ends_with(&format!("-{name}")),
            "{pkg}"
        );
    }
    // Other instance attributes stay.
    assert_eq!(s["store"]["port"], 7001);
    // The type follows the process manager (reference §4.5).
    let s = services_summary("sysvinit");
    assert_eq!(s["web"]["type"], "sysvinit-script");
}

#[test]
fn services_adapter_errors() {
    let eval = |expr: &str| {
        let out = run(nix("nix-instantiate").args(["--eval", "--strict", "-E", expr]));
        assert!(!out.status.success());
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let adapter = repo_root().join("nix/disnix/services-adapter.nix");
    let e = eval(&format!(
        "import {} {{ exprFile = {}/tests/disnix/processes.nix; processManager = \"upstart\"; }}",
        adapter.display(),
        repo_root().display()
    ));
    assert!(
        e.contains("no Dysnomia module for process manager 'upstart'"),
        "{e}"
    );
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("model.nix");
    fs::write(&model, "{ a = { port = 1; }; }").unwrap();
    let e = eval(&format!(
        "(import {} {{ exprFile = {}; }}).a.type",
        adapter.display(),
        model.display()
    ));
    assert!(
        e.contains("instance 'a' of the processes model has no 'pkg' attribute"),
        "{e}"
    );
}

#[test]
fn built_component_names_its_own_out_path() {
    let expr = format!(
        "(import {}/tests/disnix/services.nix {{ stateDir = \"/tmp/nixproc-disnix-eval\"; }}).web.pkg",
        repo_root().display()
    );
    let out = run(nix("nix-build").args(["--no-out-link", "-E", &expr]));
    let path = PathBuf::from(ok(&out, "nix-build").trim());
    let component = fs::read_to_string(path.join("etc/dysnomia/process/kv-web")).unwrap();
    let wrapper = path.join("bin/kv-web-process-wrapper");
    assert_eq!(
        component,
        format!(
            "process={}\npidFile=/tmp/nixproc-disnix-eval/run/kv-web.pid\n",
            wrapper.display()
        )
    );
    let text = fs::read_to_string(&wrapper).unwrap();
    assert!(text.starts_with("#!"), "{text}");
    assert!(text.contains("-- /bin/sleep 1000\n"), "{text}");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        fs::metadata(&wrapper).unwrap().permissions().mode() & 0o777,
        0o555
    );
}
