//! The bsdrc backend end to end on Linux: a processes model
//! (`tests/bsdrc/webapps.nix`, two example webapps made with
//! `createManagedProcess`) built with the Nix plugin and deployed by
//! `nixproc switch -P bsdrc` unprivileged; the generated rc.d scripts run
//! against the rc.subr test harness (`tests/bsdrc/rc.subr`).
//!
//! Needs the release build (`scripts/build.sh`): the webapp, the static
//! builder and a plugin that has the bsdrc generator — `$NIXPROC_PLUGIN`,
//! else `target/release/libnixproc_plugin.so`.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(20);

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

fn plugin() -> PathBuf {
    let p = std::env::var_os("NIXPROC_PLUGIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("target/release/libnixproc_plugin.so"));
    assert!(
        p.exists(),
        "{} missing: run scripts/build.sh (or set NIXPROC_PLUGIN)",
        p.display()
    );
    p
}

/// The static builder: `$NIXPROC_BUILDER`, else the release build.
fn builder() -> PathBuf {
    let b = std::env::var_os("NIXPROC_BUILDER")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("target/release/nixproc-builder"));
    assert!(b.exists(), "{} missing: run scripts/build.sh", b.display());
    b
}

fn free_ports(n: usize) -> Vec<u16> {
    let ls: Vec<TcpListener> = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    ls.iter().map(|l| l.local_addr().unwrap().port()).collect()
}

fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        stat.rsplit(')')
            .next()
            .unwrap_or("")
            .split_whitespace()
            .next()
            != Some("Z")
    })
}

fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The body of `GET /` on 127.0.0.1:`port`, once something answers.
fn get(port: u16) -> String {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) {
            s.set_read_timeout(Some(Duration::from_secs(5))).ok();
            let req = "GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
            let mut resp = String::new();
            if s.write_all(req.as_bytes()).is_ok()
                && s.read_to_string(&mut resp).is_ok()
                && !resp.is_empty()
            {
                return resp;
            }
        }
        assert!(Instant::now() < deadline, "nothing answers on port {port}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// One deployment with its own state dir; undeployed when dropped.
struct Deployment {
    dir: tempfile::TempDir,
    ports: Vec<u16>,
    enable_at_boot: bool,
}

impl Deployment {
    fn new(enable_at_boot: bool) -> Self {
        Deployment {
            dir: tempfile::Builder::new()
                .prefix("nixproc-bsdrc-")
                .tempdir()
                .unwrap(),
            ports: free_ports(2),
            enable_at_boot,
        }
    }

    fn state(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    fn rc_conf(&self) -> PathBuf {
        self.dir.path().join("rc.conf")
    }

    fn target_dir(&self) -> PathBuf {
        self.dir.path().join("rc.d")
    }

    fn nixproc(&self, args: &[&str]) -> Output {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_nixproc"));
        cmd.args(args)
            .arg("--state-dir")
            .arg(self.state())
            .arg("--force-disable-user-change")
            .env("NIXPROC_PLUGIN", plugin())
            .env("NIXPROC_BUILDER", builder())
            .env("BSDRC_TARGET_DIR", self.target_dir())
            .env("BSDRC_RC_CONF", self.rc_conf())
            // The harness's load_rc_config reads it.
            .env("RC_CONF", self.rc_conf());
        cmd.output().unwrap()
    }

    fn switch(&self, tag: &str) -> Output {
        let params = format!(
            "{{ ports = {{ webapp1 = {}; webapp2 = {}; }}; tag = \"{tag}\"; }}",
            self.ports[0], self.ports[1]
        );
        let model = repo().join("tests/bsdrc/webapps.nix");
        let mut args = vec![
            "switch",
            "-P",
            "bsdrc",
            "--extra-params",
            &params,
            model.to_str().unwrap(),
        ];
        if self.enable_at_boot {
            args.insert(1, "--enable-at-boot");
        }
        self.nixproc(&args)
    }

    fn switch_ok(&self, tag: &str) {
        let out = self.switch(tag);
        assert!(
            out.status.success(),
            "nixproc switch failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn undeploy(&self) -> Output {
        let mut args = vec!["switch", "-P", "bsdrc", "--undeploy"];
        if self.enable_at_boot {
            args.insert(1, "--enable-at-boot");
        }
        self.nixproc(&args)
    }

    fn pid(&self, name: &str) -> u32 {
        let f = self.state().join(format!("run/{name}.pid"));
        let mut pid = None;
        eventually(&format!("{}", f.display()), || {
            pid = std::fs::read_to_string(&f)
                .ok()
                .and_then(|t| t.trim().parse().ok());
            pid.is_some()
        });
        pid.unwrap()
    }
}

impl Drop for Deployment {
    fn drop(&mut self) {
        if self.state().exists() {
            let _ = self.undeploy();
        }
    }
}

#[test]
fn deploy_upgrade_and_undeploy_webapps() {
    let d = Deployment::new(false);
    d.switch_ok("v1");
    for (i, name) in ["webapp1", "webapp2"].iter().enumerate() {
        let body = get(d.ports[i]);
        assert!(body.contains(name), "{name}: {body}");
        // initialize ran as the start precmd.
        let marker = d.state().join(format!("lib/{name}/marker"));
        assert_eq!(std::fs::read_to_string(marker).unwrap(), "initialized\n");
    }
    let (w1, w2) = (d.pid("webapp1"), d.pid("webapp2"));
    assert!(alive(w1) && alive(w2));
    // No rc.conf or links without --enable-at-boot.
    assert!(!d.rc_conf().exists() && !d.target_dir().exists());

    // Only webapp2 changed: it restarts, webapp1 keeps running.
    d.switch_ok("v2");
    eventually("the old webapp2 to end", || !alive(w2));
    let w2b = d.pid("webapp2");
    assert_ne!(w2, w2b);
    assert_eq!(d.pid("webapp1"), w1);
    assert!(get(d.ports[1]).contains("webapp2"));

    let out = d.undeploy();
    assert!(out.status.success(), "{out:?}");
    eventually("the webapps to end", || !alive(w1) && !alive(w2b));
    assert!(TcpStream::connect(("127.0.0.1", d.ports[0])).is_err());
}

#[test]
fn enable_at_boot_installs_and_removes() {
    let d = Deployment::new(true);
    std::fs::write(d.rc_conf(), "hostname=\"test\"\n").unwrap();
    d.switch_ok("v1");
    assert!(get(d.ports[0]).contains("webapp1"));
    assert_eq!(
        std::fs::read_to_string(d.rc_conf()).unwrap(),
        "hostname=\"test\"\nwebapp1_enabled=\"YES\"\nwebapp2_enabled=\"YES\"\n"
    );
    for name in ["webapp1", "webapp2"] {
        let link = d.target_dir().join(name);
        let target = std::fs::read_link(&link).unwrap();
        assert!(target.starts_with("/nix/store"), "{}", target.display());
    }
    let (w1, w2) = (d.pid("webapp1"), d.pid("webapp2"));

    let out = d.undeploy();
    assert!(out.status.success(), "{out:?}");
    eventually("the webapps to end", || !alive(w1) && !alive(w2));
    assert_eq!(
        std::fs::read_to_string(d.rc_conf()).unwrap(),
        "hostname=\"test\"\n"
    );
    assert!(std::fs::read_dir(d.target_dir()).unwrap().next().is_none());
}
