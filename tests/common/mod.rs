//! Shared harness of the integration tests: the real `nixproc` binary (from
//! `target/release`, built by scripts/build.sh), a private state directory
//! per test, free ports, and what a user would check (HTTP answers, PIDs).
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("repo root")
}

/// `target/release`, where scripts/build.sh leaves nixproc, the plugin, the
/// static builder and the webapp.
pub fn release_dir() -> PathBuf {
    let dir = std::env::var_os("NIXPROC_TEST_BIN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("target/release"));
    for f in [
        "nixproc",
        "libnixproc_plugin.so",
        "nixproc-builder",
        "webapp",
    ] {
        assert!(
            dir.join(f).exists(),
            "{} missing: run scripts/build.sh before the integration tests",
            dir.join(f).display()
        );
    }
    dir
}

pub fn nixproc_bin() -> PathBuf {
    release_dir().join("nixproc")
}

/// Free TCP ports on 127.0.0.1 (bound once and released, so other tests
/// running in parallel do not get the same ones from the kernel).
pub fn free_ports(n: usize) -> Vec<u16> {
    let listeners: Vec<TcpListener> = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0").expect("bind"))
        .collect();
    listeners
        .iter()
        .map(|l| l.local_addr().unwrap().port())
        .collect()
}

/// One deployment under test: its own state dir (profiles included), torn
/// down (undeployed) when dropped so no process outlives a failed test.
pub struct Deployment {
    pub dir: tempfile::TempDir,
    pub model: PathBuf,
    pub extra_params: String,
    /// Pass --force-disable-user-change (the default for tests).
    pub unprivileged: bool,
    /// `-P` for switch/build/deploy (None: nixproc's default, sysvinit).
    pub process_manager: Option<String>,
    /// Run nixproc as this unprivileged user, through a private nix-daemon.
    pub as_user: Option<(String, std::sync::Arc<NixDaemon>)>,
}

impl Deployment {
    pub fn new(model: &Path, extra_params: &str) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("nixproc-it-")
            .tempdir()
            .expect("tempdir");
        Deployment {
            dir,
            model: model.to_path_buf(),
            extra_params: extra_params.to_string(),
            unprivileged: true,
            process_manager: None,
            as_user: None,
        }
    }

    /// A deployment made by a normal user (not root), as on a machine with
    /// a multi-user Nix: nixproc runs as `user` (created if needed) and
    /// reaches the store through a private nix-daemon. Needs root to set up.
    pub fn unprivileged_user(model: &Path, extra_params: &str, user: &str) -> Self {
        assert!(is_root(), "setting up another user needs root");
        ensure_user(user);
        let mut d = Deployment::new(model, extra_params);
        let owned = Command::new("chown")
            .args(["-R", user])
            .arg(d.dir.path())
            .status()
            .unwrap();
        assert!(owned.success());
        d.as_user = Some((user.to_string(), std::sync::Arc::new(NixDaemon::start())));
        d
    }

    pub fn with_process_manager(mut self, pm: &str) -> Self {
        self.process_manager = Some(pm.to_string());
        self
    }

    /// A deployment that switches users (needs root). Its directory is
    /// made traversable, so processes running as other users reach it.
    pub fn privileged(model: &Path, extra_params: &str) -> Self {
        use std::os::unix::fs::PermissionsExt;
        let mut d = Deployment::new(model, extra_params);
        std::fs::set_permissions(d.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        d.unprivileged = false;
        d
    }

    pub fn state_dir(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    /// `nixproc <args>` with this deployment's state dir.
    pub fn nixproc(&self, args: &[&str]) -> Output {
        let mut cmd = match &self.as_user {
            None => Command::new(nixproc_bin()),
            Some((user, daemon)) => {
                let mut c = Command::new("runuser");
                c.args(["-u", user, "--", "env"])
                    .arg("NIX_REMOTE=daemon")
                    .arg(format!(
                        "NIX_DAEMON_SOCKET_PATH={}",
                        daemon.socket().display()
                    ))
                    .arg(format!("HOME={}", self.dir.path().display()))
                    .arg(nixproc_bin())
                    .current_dir(self.dir.path());
                c
            }
        };
        cmd.args(args).arg("--state-dir").arg(self.state_dir());
        let takes_pm = matches!(args.first(), Some(&("switch" | "build" | "deploy")));
        if let (Some(pm), true) = (&self.process_manager, takes_pm) {
            cmd.arg("--process-manager").arg(pm);
        }
        if self.unprivileged {
            cmd.arg("--force-disable-user-change");
        }
        run(&mut cmd)
    }

    pub fn switch(&self, extra: &[&str]) -> Output {
        let mut args = vec!["switch", "--extra-params", &self.extra_params];
        args.extend_from_slice(extra);
        let model = self.model.to_str().unwrap().to_string();
        args.push(&model);
        self.nixproc(&args)
    }

    pub fn switch_ok(&self, extra: &[&str]) -> Output {
        let out = self.switch(extra);
        assert_success(&out, "nixproc switch");
        out
    }

    pub fn undeploy(&self) -> Output {
        self.nixproc(&["switch", "--undeploy"])
    }

    pub fn pid_of(&self, pid_file: &str) -> Option<u32> {
        let p = self.state_dir().join(pid_file);
        std::fs::read_to_string(p).ok()?.trim().parse().ok()
    }
}

impl Drop for Deployment {
    fn drop(&mut self) {
        if self.state_dir().exists() {
            let _ = self.undeploy();
        }
    }
}

/// A nix-daemon of its own (own socket), for nixproc runs by normal users;
/// killed when dropped. Builds run as the daemon's user, as on a
/// multi-user install.
pub struct NixDaemon {
    dir: tempfile::TempDir,
    child: std::process::Child,
}

impl NixDaemon {
    pub fn start() -> NixDaemon {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::Builder::new()
            .prefix("nixproc-daemon-")
            .tempdir()
            .unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let socket = dir.path().join("socket");
        let child = Command::new("nix-daemon")
            .env("NIX_DAEMON_SOCKET_PATH", &socket)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("nix-daemon starts");
        let d = NixDaemon { dir, child };
        eventually(Duration::from_secs(10), "the nix-daemon socket", || {
            socket.exists()
        });
        d
    }

    pub fn socket(&self) -> PathBuf {
        self.dir.path().join("socket")
    }
}

impl Drop for NixDaemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Creates a normal user (with a home) unless it exists.
pub fn ensure_user(user: &str) {
    let exists = Command::new("getent")
        .args(["passwd", user])
        .output()
        .unwrap()
        .status
        .success();
    if !exists {
        let made = Command::new("useradd")
            // A system account (uid from the system range), so it never
            // takes a uid that tests creating accounts with fixed ids use.
            .args(["-r", "-m", "-U", "-s", "/bin/sh", user])
            .status()
            .unwrap();
        // A parallel test may have made it in the meantime.
        let exists = Command::new("getent")
            .args(["passwd", user])
            .output()
            .unwrap()
            .status
            .success();
        assert!(made.success() || exists, "useradd {user}");
    }
}

/// `n` consecutive free TCP ports on 127.0.0.1 (for pools such as
/// idresources.nix ranges).
pub fn free_port_range(n: u16) -> u16 {
    for _ in 0..50 {
        let base = free_ports(1)[0];
        if base.checked_add(n).is_none() {
            continue;
        }
        let all: Option<Vec<TcpListener>> = (base..base + n)
            .map(|p| TcpListener::bind(("127.0.0.1", p)).ok())
            .collect();
        if all.is_some() {
            return base;
        }
    }
    panic!("no {n} consecutive free ports found");
}

pub fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// The real uid of a process.
pub fn uid_of(pid: u32) -> u32 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|u| u.parse().ok())
        .expect("Uid line")
}

pub fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().expect("command runs");
    eprintln!(
        "$ {:?}\n--- stdout\n{}--- stderr\n{}",
        cmd,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

pub fn assert_success(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// GET http://127.0.0.1:port/ with a Host header; the body on 2xx/4xx, or
/// None when nothing answers. Retries for up to `wait`.
pub fn http_get(port: u16, host: &str, wait: Duration) -> Option<(u16, String)> {
    let deadline = Instant::now() + wait;
    loop {
        if let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) {
            s.set_read_timeout(Some(Duration::from_secs(5))).ok();
            let req = format!("GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
            if s.write_all(req.as_bytes()).is_ok() {
                let mut resp = String::new();
                if s.read_to_string(&mut resp).is_ok() && !resp.is_empty() {
                    let status = resp
                        .split_whitespace()
                        .nth(1)
                        .and_then(|c| c.parse().ok())
                        .unwrap_or(0);
                    let body = resp.split("\r\n\r\n").nth(1).unwrap_or("").to_string();
                    return Some((status, body));
                }
            }
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

pub fn port_closed(port: u16) -> bool {
    TcpStream::connect(("127.0.0.1", port)).is_err()
}

pub fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            // state is the field after the parenthesised comm
            let state = stat
                .rsplit(')')
                .next()
                .unwrap_or("")
                .split_whitespace()
                .next();
            state != Some("Z")
        }
        Err(_) => false,
    }
}

/// Waits until `cond` holds (or panics with `what` after `wait`).
pub fn eventually(wait: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + wait;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Processes whose command line contains `needle` (to prove nothing is left).
pub fn pids_matching(needle: &str) -> Vec<u32> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        if let Ok(cmd) = std::fs::read(entry.path().join("cmdline")) {
            let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
            if cmd.contains(needle) && alive(pid) {
                found.push(pid);
            }
        }
    }
    found
}

/// The PID of the process listening on 127.0.0.1:`port` (TCP), found through
/// /proc/net/tcp and the processes' descriptors — works whatever the
/// backend, PID file or not.
pub fn listener_pid(port: u16) -> Option<u32> {
    let tcp = std::fs::read_to_string("/proc/net/tcp").ok()?;
    let inode = tcp.lines().skip(1).find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        let local_port = u16::from_str_radix(f.get(1)?.rsplit(':').next()?, 16).ok()?;
        // state 0A = LISTEN
        (local_port == port && f.get(3) == Some(&"0A")).then(|| f.get(9).map(|s| s.to_string()))?
    })?;
    let needle = format!("socket:[{inode}]");
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(fds) = std::fs::read_dir(entry.path().join("fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            if std::fs::read_link(fd.path()).is_ok_and(|t| t.to_string_lossy() == needle)
                && alive(pid)
            {
                return Some(pid);
            }
        }
    }
    None
}

/// The ports of the webapps test models (webapp1, webapp2 and the nginx
/// proxying both).
pub struct Ports {
    pub webapp1: u16,
    pub webapp2: u16,
    pub nginx: u16,
}

pub fn ports() -> Ports {
    let p = free_ports(3);
    Ports {
        webapp1: p[0],
        webapp2: p[1],
        nginx: p[2],
    }
}

/// `--extra-params` for the webapps test models: the ports plus `extra`.
pub fn params(p: &Ports, extra: &str) -> String {
    format!(
        "{{ ports = {{ webapp1 = {}; webapp2 = {}; nginx = {}; }}; {extra} }}",
        p.webapp1, p.webapp2, p.nginx
    )
}

/// Asserts that `host` on `port` answers 200 with `expect` in the body.
pub fn answers(port: u16, host: &str, expect: &str) {
    let (status, body) = http_get(port, host, Duration::from_secs(20))
        .unwrap_or_else(|| panic!("nothing answers on port {port} for {host}"));
    assert_eq!(status, 200, "status for {host}: {body}");
    assert!(
        body.contains(expect),
        "body for {host} lacks {expect:?}: {body}"
    );
}
