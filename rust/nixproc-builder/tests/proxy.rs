//! `foreground-proxy` with real processes (contract:
//! .briefs/proxy-contract.md, reference §2.2).

use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use nixproc_core::quote::c_escape;

const BIN: &str = env!("CARGO_BIN_EXE_nixproc-builder");
const WAIT: Duration = Duration::from_secs(15);

fn proxy() -> Command {
    let mut c = Command::new(BIN);
    c.arg("foreground-proxy");
    c
}

fn run(cmd: &mut Command) -> Output {
    cmd.output().expect("run nixproc-builder")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn is_root() -> bool {
    // SAFETY: no preconditions.
    unsafe { libc::geteuid() == 0 }
}

fn alive(pid: i32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    let state = stat[stat.rfind(')').unwrap() + 1..]
        .split_whitespace()
        .next()
        .map(str::to_string);
    !matches!(state.as_deref(), Some("Z") | Some("X") | None)
}

fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A running proxy, killed (with its process group) when dropped.
struct Running {
    child: Child,
    pidfile: std::path::PathBuf,
}

impl Running {
    fn spawn(cmd: &mut Command, pidfile: &Path) -> Self {
        // Own process group, so cleanup can kill stray daemons too.
        use std::os::unix::process::CommandExt;
        let child = cmd
            .process_group(0)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        Running {
            child,
            pidfile: pidfile.to_path_buf(),
        }
    }

    fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    fn daemon_pid(&self) -> i32 {
        let mut pid = 0;
        wait_until("the daemon's PID file", || {
            pid = std::fs::read_to_string(&self.pidfile)
                .ok()
                .and_then(|s| s.trim().parse().ok())
                .unwrap_or(0);
            pid > 0
        });
        pid
    }

    fn signal(&self, sig: i32) {
        // SAFETY: signalling our own child.
        unsafe { libc::kill(self.pid(), sig) };
    }

    /// Waits for the proxy to exit; returns its exit code and stderr.
    fn finish(mut self) -> (i32, String) {
        let deadline = Instant::now() + WAIT;
        let status = loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                break st;
            }
            assert!(Instant::now() < deadline, "the proxy did not exit");
            std::thread::sleep(Duration::from_millis(20));
        };
        let mut err = String::new();
        use std::io::Read;
        self.child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut err)
            .unwrap();
        (status.code().expect("exited normally"), err)
    }

    fn still_running_after(&mut self, d: Duration) -> bool {
        std::thread::sleep(d);
        self.child.try_wait().unwrap().is_none()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        // SAFETY: killing the process group we created.
        unsafe { libc::kill(-self.pid(), libc::SIGKILL) };
        if let Ok(s) = std::fs::read_to_string(&self.pidfile) {
            if let Ok(p) = s.trim().parse::<i32>() {
                // SAFETY: the test daemon we started.
                unsafe { libc::kill(p, libc::SIGKILL) };
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn script(dir: &Path, name: &str, body: &str) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, format!("#!/bin/sh\n{body}")).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    p
}

/// Prints its PID, then every argument NUL-terminated.
const PRINT_ARGS: &str = "printf '%s\\n' \"$$\"; for a in \"$@\"; do printf '%s\\0' \"$a\"; done\n";

fn hostile() -> Vec<&'static str> {
    vec![
        "plain",
        "with space",
        "quote ' \" mix",
        "$(echo pwned) `echo pwned` ${HOME}",
        "semi; rm -rf / ; &&",
        "new\nline\ttab\r",
        "100% * ? [a] ~ # !",
        "\\backslash\\n",
        "--",
        "--user",
        "",
        "ünïcødé ✓",
    ]
}

fn printed_args(stdout: &[u8]) -> (i32, Vec<String>) {
    let nl = stdout.iter().position(|&b| b == b'\n').unwrap();
    let pid = text(&stdout[..nl]).parse().unwrap();
    let rest = &stdout[nl + 1..];
    let args = rest
        .split(|&b| b == 0)
        .map(text)
        .collect::<Vec<_>>()
        .split_last()
        .map(|(_, a)| a.to_vec())
        .unwrap_or_default();
    (pid, args)
}

#[test]
fn exec_mode_keeps_argv_byte_for_byte_and_the_pid() {
    let tmp = tempfile::tempdir().unwrap();
    let prog = script(tmp.path(), "print-args", PRINT_ARGS);
    let args = hostile();
    let child = proxy()
        .arg("--")
        .arg(&prog)
        .args(&args)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let proxy_pid = child.id() as i32;
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let (pid, got) = printed_args(&out.stdout);
    assert_eq!(got, args);
    assert_eq!(pid, proxy_pid, "the program replaces the proxy (exec)");
}

#[test]
fn escaped_mode_decodes_program_args_and_setenv() {
    let tmp = tempfile::tempdir().unwrap();
    let prog = script(
        tmp.path(),
        "print args\nand env",
        &format!("printf '%s\\0' \"$HOSTILE\"\n{PRINT_ARGS}"),
    );
    let args = hostile();
    let env_value = "a\nb 'c' \"d\" $(e) \\n %";
    let out = run(proxy()
        .arg("--escaped")
        .arg("--setenv")
        .arg(c_escape(&format!("HOSTILE={env_value}")))
        .arg("--")
        .arg(c_escape(prog.to_str().unwrap()))
        .args(args.iter().map(|a| c_escape(a))));
    assert!(out.status.success(), "{}", text(&out.stderr));
    let nul = out.stdout.iter().position(|&b| b == 0).unwrap();
    assert_eq!(text(&out.stdout[..nul]), env_value);
    let (_, got) = printed_args(&out.stdout[nul + 1..]);
    assert_eq!(got, args);
    // Every escaped value is one line.
    for a in &args {
        assert!(!c_escape(a).contains('\n'));
    }
}

#[test]
fn setenv_is_set_before_initialize_and_program() {
    let out = run(proxy()
        .args(["--setenv", "GREETING=hello world", "--setenv", "EMPTY="])
        .args(["--initialize", "echo \"init: $GREETING\""])
        .args([
            "--",
            "sh",
            "-c",
            "echo \"prog: $GREETING\"; echo \"${EMPTY-unset}.\"",
        ]));
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "init: hello world\nprog: hello world\n.\n"
    );
}

#[test]
fn initialize_runs_first_and_its_failure_stops_the_start() {
    let tmp = tempfile::tempdir().unwrap();
    let marker = tmp.path().join("initialized");
    let started = tmp.path().join("started");
    let out = run(proxy()
        .arg("--initialize")
        .arg(format!("mkdir -p '{}'", marker.display()))
        .arg("--")
        .arg("sh")
        .arg("-c")
        .arg("test -d \"$1\" && touch \"$2\"")
        .arg("sh")
        .arg(&marker)
        .arg(&started));
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(started.exists(), "the program ran after the initialization");

    std::fs::remove_file(&started).unwrap();
    // -e: the first failing command ends the script.
    let out = run(proxy()
        .arg("--initialize")
        .arg("false\necho not reached")
        .arg("--")
        .arg("touch")
        .arg(&started));
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(text(&out.stdout), "");
    assert!(!started.exists(), "the program must not start");
    let err = text(&out.stderr);
    assert!(
        err.contains("nixproc foreground-proxy: initialization failed"),
        "{err}"
    );

    let out = run(proxy().args(["--initialize", "exit 7", "--", "true"]));
    assert_eq!(out.status.code(), Some(7));

    // --shell picks the interpreter.
    let out = run(proxy().args([
        "--shell",
        "/bin/bash",
        "--initialize",
        "echo \"${BASH_VERSION:+bash}\"",
        "--",
        "true",
    ]));
    assert_eq!(text(&out.stdout), "bash\n");
}

#[test]
fn directory_umask_and_nice_apply_in_exec_mode() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = std::fs::canonicalize(tmp.path()).unwrap();
    let out = run(proxy()
        .arg("--directory")
        .arg(&dir)
        .args(["--umask", "027", "--nice", "5"])
        .args(["--", "sh", "-c", "pwd; umask; nice"]));
    assert!(out.status.success(), "{}", text(&out.stderr));
    // SAFETY: reading our own niceness.
    let base = unsafe { libc::getpriority(libc::PRIO_PROCESS, 0) };
    assert_eq!(
        text(&out.stdout),
        format!("{}\n0027\n{}\n", dir.display(), base + 5)
    );
}

#[test]
fn setup_errors_exit_111_with_a_message() {
    for (args, expect) in [
        (vec!["--bogus", "--", "true"], "unknown option \"--bogus\""),
        (vec!["true"], "unknown option \"true\""),
        (vec!["--escaped", "--", "a\\q"], "bad escape"),
        (vec!["--umask", "999", "--", "true"], "octal"),
        (vec!["--wrap-daemon", "--", "true"], "needs --pidfile"),
        (
            vec!["--", "/nonexistent/program"],
            "cannot execute /nonexistent/program",
        ),
        (
            vec!["--directory", "/nonexistent/dir", "--", "true"],
            "cannot change directory to /nonexistent/dir",
        ),
        (
            vec!["--user", "no-such-user-xyz", "--", "true"],
            "unknown user 'no-such-user-xyz'",
        ),
    ] {
        let out = run(proxy().args(&args));
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(111), "{args:?}: {err}");
        assert!(err.starts_with("nixproc foreground-proxy: "), "{err}");
        assert!(err.contains(expect), "{args:?}: {err}");
    }
}

#[test]
fn user_switch_sets_uid_gid_and_supplementary_groups() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let init_owner = tmp.path().join("init");
    let out = run(proxy()
        .arg("--user")
        .arg("nobody")
        .arg("--initialize")
        .arg(format!("id -u > '{}'", init_owner.display()))
        .args(["--", "sh", "-c", "id -u; id -g; id -G"]));
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "65534\n65534\n65534\n");
    assert_eq!(
        std::fs::read_to_string(&init_owner).unwrap(),
        "0\n",
        "initialize runs as root"
    );
}

fn sleeping_daemon(dir: &Path) -> std::path::PathBuf {
    // Forks a sleep, writes its PID, returns at once.
    script(
        dir,
        "daemon",
        "sleep 300 </dev/null >/dev/null 2>&1 &\necho $! > \"$1\"\n",
    )
}

#[test]
fn wrap_daemon_blocks_until_the_daemon_dies_then_exits_1() {
    let tmp = tempfile::tempdir().unwrap();
    let pidfile = tmp.path().join("d.pid");
    let daemon = sleeping_daemon(tmp.path());
    let mut p = Running::spawn(
        proxy()
            .args(["--wrap-daemon", "--pidfile"])
            .arg(&pidfile)
            .arg("--")
            .arg(&daemon)
            .arg(&pidfile),
        &pidfile,
    );
    let pid = p.daemon_pid();
    assert!(alive(pid));
    assert!(p.still_running_after(Duration::from_millis(300)));
    // SAFETY: the test's daemon.
    unsafe { libc::kill(pid, libc::SIGKILL) };
    let (code, err) = p.finish();
    assert_eq!(code, 1, "{err}");
    assert!(err.contains(&format!("(PID {pid}) exited")), "{err}");
}

#[test]
fn wrap_daemon_forwards_signals_and_exits_0_after_term() {
    let tmp = tempfile::tempdir().unwrap();
    let pidfile = tmp.path().join("d.pid");
    let log = tmp.path().join("log");
    let daemon = script(
        tmp.path(),
        "daemon",
        &format!(
            "sh -c 'trap \"echo hup >> {log}\" HUP; trap \"echo term >> {log}; exit 0\" TERM; \
             echo $$ > {pid}; while :; do sleep 0.05; done' </dev/null >/dev/null 2>&1 &\n",
            log = log.display(),
            pid = pidfile.display()
        ),
    );
    let p = Running::spawn(
        proxy()
            .args(["--wrap-daemon", "--pidfile"])
            .arg(&pidfile)
            .arg("--")
            .arg(&daemon),
        &pidfile,
    );
    let pid = p.daemon_pid();
    p.signal(libc::SIGHUP);
    wait_until("the forwarded HUP", || {
        std::fs::read_to_string(&log).unwrap_or_default() == "hup\n"
    });
    assert!(alive(pid));
    p.signal(libc::SIGTERM);
    let (code, err) = p.finish();
    assert_eq!(code, 0, "{err}");
    assert_eq!(std::fs::read_to_string(&log).unwrap(), "hup\nterm\n");
    assert!(!alive(pid));
}

#[test]
fn wrap_daemon_applies_directory_umask_nice_and_env() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = std::fs::canonicalize(tmp.path()).unwrap();
    let pidfile = dir.join("d.pid");
    let report = dir.join("report");
    let daemon = script(
        &dir,
        "daemon",
        &format!(
            "{{ pwd; umask; nice; echo \"$X\"; }} > {report}\n\
             sleep 300 </dev/null >/dev/null 2>&1 &\necho $! > {pid}\n",
            report = report.display(),
            pid = pidfile.display()
        ),
    );
    let p = Running::spawn(
        proxy()
            .arg("--directory")
            .arg(&dir)
            .args(["--umask", "077", "--nice", "3", "--setenv", "X=y z"])
            .args(["--wrap-daemon", "--pidfile"])
            .arg(&pidfile)
            .arg("--")
            .arg(&daemon),
        &pidfile,
    );
    let pid = p.daemon_pid();
    // SAFETY: reading our own niceness.
    let base = unsafe { libc::getpriority(libc::PRIO_PROCESS, 0) };
    assert_eq!(
        std::fs::read_to_string(&report).unwrap(),
        format!("{}\n0077\n{}\ny z\n", dir.display(), base + 3)
    );
    p.signal(libc::SIGTERM);
    let (code, _) = p.finish();
    assert_eq!(code, 0);
    assert!(!alive(pid));
}

#[test]
fn wrap_daemon_exits_with_the_starters_failure() {
    let out = run(proxy().args([
        "--wrap-daemon",
        "--pidfile",
        "/nonexistent/x.pid",
        "--",
        "sh",
        "-c",
        "echo cannot bind >&2; exit 3",
    ]));
    assert_eq!(out.status.code(), Some(3));
    let err = text(&out.stderr);
    assert!(err.contains("cannot bind"), "{err}");
    assert!(err.contains("failed (exit status 3)"), "{err}");
}

#[test]
fn wrap_daemon_times_out_when_no_pid_file_appears() {
    let tmp = tempfile::tempdir().unwrap();
    let pidfile = tmp.path().join("never.pid");
    let started = Instant::now();
    let out = run(proxy()
        .args(["--wrap-daemon", "--pidfile-timeout", "0.5", "--pidfile"])
        .arg(&pidfile)
        .args(["--", "true"]));
    assert_eq!(out.status.code(), Some(1));
    assert!(started.elapsed() < Duration::from_secs(5));
    let err = text(&out.stderr);
    let shown = pidfile.display().to_string();
    assert_eq!(
        err.matches(&format!("waiting for {shown}")).count(),
        1,
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "{shown} did not name a running process within 0.5s"
        )),
        "{err}"
    );
}

#[test]
fn wrap_daemon_as_another_user() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let pidfile = tmp.path().join("d.pid");
    let daemon = sleeping_daemon(tmp.path());
    let p = Running::spawn(
        proxy()
            .args(["--user", "nobody", "--wrap-daemon", "--pidfile"])
            .arg(&pidfile)
            .arg("--")
            .arg(&daemon)
            .arg(&pidfile),
        &pidfile,
    );
    let pid = p.daemon_pid();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let uid_line = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    assert!(
        uid_line.split_whitespace().skip(1).all(|u| u == "65534"),
        "{uid_line}"
    );
    let groups = status.lines().find(|l| l.starts_with("Groups:")).unwrap();
    assert_eq!(
        groups.split_whitespace().skip(1).collect::<Vec<_>>(),
        ["65534"]
    );
    p.signal(libc::SIGTERM);
    let (code, err) = p.finish();
    assert_eq!(code, 0, "{err}");
}

#[test]
fn non_utf8_arguments_pass_through_unescaped_mode() {
    use std::ffi::OsStr;
    let tmp = tempfile::tempdir().unwrap();
    let prog = script(tmp.path(), "print-args", PRINT_ARGS);
    let raw = OsStr::from_bytes(b"\xff\xfe raw");
    let out = run(proxy().arg("--").arg(&prog).arg(raw));
    assert!(out.status.success());
    let nl = out.stdout.iter().position(|&b| b == b'\n').unwrap();
    assert_eq!(&out.stdout[nl + 1..], b"\xff\xfe raw\0");
}
