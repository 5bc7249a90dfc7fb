//! Run-time subcommands with real processes: daemonize, start-daemon,
//! killproc, statusproc, and the init-functions shell library.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_nixproc-builder");

fn builder() -> Command {
    let mut c = Command::new(BIN);
    c.env_remove("NIXPROC_START_TIMEOUT")
        .env_remove("NIXPROC_STOP_TIMEOUT");
    c
}

fn run(cmd: &mut Command) -> Output {
    cmd.output().expect("run nixproc-builder")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn code(o: &Output) -> i32 {
    o.status.code().expect("exited")
}

fn wait_until(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn stat_field(pid: i32, n: usize) -> Option<String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let close = stat.rfind(')')?;
    stat[close + 1..]
        .split_whitespace()
        .nth(n)
        .map(str::to_string)
}

fn alive(pid: i32) -> bool {
    matches!(stat_field(pid, 0).as_deref(), Some(s) if s != "Z" && s != "X")
}

fn read_pid(p: &Path) -> i32 {
    std::fs::read_to_string(p)
        .unwrap()
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("PID file {} is not a PID", p.display()))
}

fn is_root() -> bool {
    // SAFETY: no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// Kills a process when dropped, so failing tests leave nothing behind.
struct Reaper(i32);
impl Drop for Reaper {
    fn drop(&mut self) {
        // SAFETY: signalling a PID this test started.
        unsafe { libc::kill(self.0, libc::SIGKILL) };
    }
}

fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, format!("#!/bin/sh\n{body}")).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    p
}

/// A self-daemonizing program: forks `sleep 1000` and writes its PID file
/// (after an optional delay).
fn forker(dir: &Path) -> PathBuf {
    script(
        dir,
        "forker",
        r#"pidfile=$1
delay=${2:-0}
sleep 1000 </dev/null >/dev/null 2>&1 &
pid=$!
if [ "$delay" != 0 ]; then
  ( sleep "$delay"; echo "$pid" > "$pidfile" ) </dev/null >/dev/null 2>&1 &
else
  echo "$pid" > "$pidfile"
fi
"#,
    )
}

fn daemonize_sleep(dir: &Path, pidfile: &Path) -> (i32, Reaper) {
    let o = run(builder()
        .arg("daemonize")
        .arg("--pidfile")
        .arg(pidfile)
        .arg("--output")
        .arg(dir.join("log"))
        .args(["--", "sleep", "1000"]));
    assert_eq!(code(&o), 0, "stderr: {}", text(&o.stderr));
    let pid = read_pid(pidfile);
    (pid, Reaper(pid))
}

#[test]
fn daemonize_writes_the_program_pid_and_detaches() {
    let tmp = tempfile::tempdir().unwrap();
    let pf = tmp.path().join("sleep.pid");
    let (pid, _r) = daemonize_sleep(tmp.path(), &pf);
    assert!(alive(pid));
    // The PID is the exec'd program itself.
    let exe = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap();
    let sleep = std::fs::canonicalize(
        std::env::split_paths(&std::env::var_os("PATH").unwrap())
            .map(|d| d.join("sleep"))
            .find(|p| p.exists())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(exe, sleep);
    // Detached: not our child, in its own session, not a session leader.
    let me = std::process::id() as i32;
    let ppid: i32 = stat_field(pid, 1).unwrap().parse().unwrap();
    assert_ne!(ppid, me);
    let sid: i32 = stat_field(pid, 3).unwrap().parse().unwrap();
    let my_sid: i32 = stat_field(me, 3).unwrap().parse().unwrap();
    assert_ne!(sid, my_sid);
    assert_ne!(sid, pid);
    // stdin is /dev/null, stdout/stderr the log.
    assert_eq!(
        std::fs::read_link(format!("/proc/{pid}/fd/0")).unwrap(),
        PathBuf::from("/dev/null")
    );
    assert_eq!(
        std::fs::read_link(format!("/proc/{pid}/fd/1")).unwrap(),
        tmp.path().join("log")
    );
    assert_eq!(
        std::fs::metadata(tmp.path().join("log"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o640
    );
    // Only stdio is inherited. The program may hold a descriptor of its own
    // for a moment while it starts (libc opening locale files), so wait for
    // it to settle at three: a leaked descriptor never goes away.
    let fds = || {
        std::fs::read_dir(format!("/proc/{pid}/fd"))
            .unwrap()
            .map(|e| std::fs::read_link(e.unwrap().path()).unwrap_or_default())
            .collect::<Vec<_>>()
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while fds().len() != 3 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(fds().len(), 3, "{:?}", fds());

    // A second daemonize sees it running.
    let o = run(builder()
        .arg("daemonize")
        .arg("--pidfile")
        .arg(&pf)
        .args(["--", "sleep", "1000"]));
    assert_eq!(code(&o), 0);
    assert!(
        text(&o.stdout).contains("already running"),
        "{}",
        text(&o.stdout)
    );
    assert_eq!(read_pid(&pf), pid);

    // statusproc, killproc, statusproc.
    let o = run(builder().arg("statusproc").arg("-p").arg(&pf).arg("sleep"));
    assert_eq!(code(&o), 0);
    assert_eq!(
        text(&o.stdout),
        format!("sleep is running with Process ID(s) {pid}.\n")
    );
    let o = run(builder().arg("killproc").arg("-p").arg(&pf).arg("sleep"));
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    assert!(!alive(pid));
    assert!(!pf.exists());
    let o = run(builder()
        .arg("statusproc")
        .arg("-p")
        .arg(&pf)
        .arg("/bin/sleep"));
    assert_eq!(code(&o), 3);
    assert_eq!(text(&o.stdout), "sleep is not running.\n");
    // Stopping a stopped service succeeds.
    let o = run(builder().arg("killproc").arg("-p").arg(&pf).arg("sleep"));
    assert_eq!(code(&o), 0);
    assert!(text(&o.stdout).contains("sleep is not running"));
}

#[test]
fn daemonize_options_directory_umask_and_log() {
    let tmp = tempfile::tempdir().unwrap();
    let pf = tmp.path().join("p.pid");
    let work = tmp.path().join("work");
    std::fs::create_dir(&work).unwrap();
    let o = run(builder()
        .arg("daemonize")
        .arg("--pidfile")
        .arg(&pf)
        .arg("--output")
        .arg(tmp.path().join("log"))
        .arg("--directory")
        .arg(&work)
        .args(["--umask", "027", "--nice", "3", "--"])
        .args([
            "sh",
            "-c",
            "pwd; umask; touch made; echo to-stderr >&2; exec sleep 1000",
        ]));
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    let pid = read_pid(&pf);
    let _r = Reaper(pid);
    wait_until("the log", Duration::from_secs(10), || {
        std::fs::read_to_string(tmp.path().join("log"))
            .map(|l| l.contains("to-stderr"))
            .unwrap_or(false)
    });
    let log = std::fs::read_to_string(tmp.path().join("log")).unwrap();
    assert!(log.contains(&format!("{}\n", work.display())), "{log}");
    assert!(log.contains("0027"), "{log}");
    assert_eq!(
        std::fs::metadata(work.join("made"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o640
    );
    let nice: i32 = stat_field(pid, 16).unwrap().parse().unwrap();
    let my_nice: i32 = stat_field(std::process::id() as i32, 16)
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(nice, (my_nice + 3).min(19));
}

#[test]
fn daemonize_reports_exec_failure() {
    let tmp = tempfile::tempdir().unwrap();
    let pf = tmp.path().join("p.pid");
    let o = run(builder().arg("daemonize").arg("--pidfile").arg(&pf).args([
        "--",
        "/nonexistent/program",
        "x",
    ]));
    assert_eq!(code(&o), 1);
    let err = text(&o.stderr);
    assert!(
        err.starts_with("nixproc-builder: cannot execute /nonexistent/program: "),
        "{err}"
    );
    assert!(!pf.exists(), "PID file of a failed start must not remain");

    let o = run(builder().args(["daemonize", "--", "no-such-program-in-path"]));
    assert_eq!(code(&o), 1);
    assert!(text(&o.stderr).contains("no-such-program-in-path"));

    let o = run(builder()
        .arg("daemonize")
        .arg("--output")
        .arg(tmp.path().join("no/such/dir/log"))
        .args(["--", "true"]));
    assert_eq!(code(&o), 1);
    assert!(
        text(&o.stderr).contains("cannot open log file"),
        "{}",
        text(&o.stderr)
    );
}

const HOSTILE: &[&str] = &[
    "it's \"quoted\"",
    "$(touch /tmp/nixproc-pwned)",
    "`id`",
    "a; rm -rf /nonexistent",
    "line1\nline2\n",
    "100% %s %n",
    " leading and trailing ",
    "-f",
    "--",
    "",
    "\\back\\slash*?[x]",
];

#[test]
fn daemonize_passes_hostile_values_verbatim() {
    let tmp = tempfile::tempdir().unwrap();
    let args_out = tmp.path().join("args");
    let env_out = tmp.path().join("env");
    let mut cmd = builder();
    cmd.arg("daemonize")
        .arg("--pidfile")
        .arg(tmp.path().join("p.pid"))
        .arg("--")
        .arg("sh")
        .arg("-c")
        .arg(r#"printf '%s\0' "$@" > "$ARGS_OUT.tmp"; printf '%s' "$HOSTILE" > "$ENV_OUT.tmp"; mv "$ENV_OUT.tmp" "$ENV_OUT"; mv "$ARGS_OUT.tmp" "$ARGS_OUT""#)
        .arg("sh")
        .args(HOSTILE)
        .env("ARGS_OUT", &args_out)
        .env("ENV_OUT", &env_out)
        .env("HOSTILE", HOSTILE.join("|"));
    let o = run(&mut cmd);
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    wait_until("the dump", Duration::from_secs(10), || args_out.exists());
    let mut expected = Vec::new();
    for a in HOSTILE {
        expected.extend_from_slice(a.as_bytes());
        expected.push(0);
    }
    assert_eq!(std::fs::read(&args_out).unwrap(), expected);
    assert_eq!(
        std::fs::read_to_string(&env_out).unwrap(),
        HOSTILE.join("|")
    );
    assert!(!Path::new("/tmp/nixproc-pwned").exists());
}

#[test]
fn daemonize_drops_privileges_to_nobody() {
    if !is_root() {
        eprintln!("SKIPPED: daemonize_drops_privileges_to_nobody needs root");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let pf = tmp.path().join("p.pid");
    let o = run(builder()
        .arg("daemonize")
        .arg("--pidfile")
        .arg(&pf)
        .args(["--user", "nobody", "--", "sleep", "1000"]));
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    let pid = read_pid(&pf);
    let _r = Reaper(pid);
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .unwrap()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    };
    assert_eq!(field("Uid:"), "65534 65534 65534 65534");
    assert_eq!(field("Gid:"), "65534 65534 65534 65534");
    assert_eq!(field("Groups:"), "65534");
    // killproc as root can stop it.
    let o = run(builder().arg("killproc").arg("-p").arg(&pf).arg("sleep"));
    assert_eq!(code(&o), 0);
    assert!(!alive(pid));

    // An unknown user is a clear error.
    let o = run(builder().args(["daemonize", "--user", "no-such-user-x", "--", "true"]));
    assert_eq!(code(&o), 1);
    assert!(text(&o.stderr).contains("unknown user 'no-such-user-x'"));
}

#[test]
fn non_root_cannot_switch_user() {
    if !is_root() {
        eprintln!("SKIPPED: non_root_cannot_switch_user needs root to become nobody");
        return;
    }
    use std::os::unix::process::CommandExt;
    for sub in [
        vec!["start-daemon", "-u", "root", "true"],
        vec!["daemonize", "--user", "root", "--", "true"],
    ] {
        let o = run(builder().args(&sub).uid(65534).gid(65534));
        assert_eq!(code(&o), 1, "{sub:?}");
        let err = text(&o.stderr);
        assert!(
            err.starts_with("nixproc-builder: cannot switch to user 'root': only root"),
            "{err}"
        );
    }
    // Switching to oneself is allowed.
    let o = run(builder()
        .args(["start-daemon", "-u", "nobody", "true"])
        .uid(65534)
        .gid(65534));
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
}

#[test]
fn start_daemon_as_other_user() {
    if !is_root() {
        eprintln!("SKIPPED: start_daemon_as_other_user needs root");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let shared = tmp.path().join("shared");
    std::fs::create_dir(&shared).unwrap();
    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o777)).unwrap();
    let out = shared.join("id");
    let o = run(builder()
        .args(["start-daemon", "-f", "-u", "nobody", "-n", "2", "sh", "-c"])
        .arg(r#"echo "$(id -u) $(id -g) $(id -G)" > "$1""#)
        .arg("sh")
        .arg(&out));
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    assert_eq!(
        std::fs::read_to_string(&out).unwrap(),
        "65534 65534 65534\n"
    );
}

#[test]
fn start_daemon_waits_for_the_pid_file() {
    let tmp = tempfile::tempdir().unwrap();
    let forker = forker(tmp.path());
    let pf = tmp.path().join("f.pid");
    let started = Instant::now();
    let o = run(builder()
        .args(["start-daemon", "-f", "-p"])
        .arg(&pf)
        .arg(&forker)
        .arg(&pf)
        .arg("0.3"));
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    assert!(started.elapsed() >= Duration::from_millis(250));
    let pid = read_pid(&pf);
    let _r = Reaper(pid);
    assert!(alive(pid));

    // Without -f, a live PID file means "already running": nothing is run.
    let marker = tmp.path().join("ran");
    let o = run(builder()
        .args(["start-daemon", "-p"])
        .arg(&pf)
        .arg("sh")
        .arg("-c")
        .arg(r#"touch "$1""#)
        .arg("sh")
        .arg(&marker));
    assert_eq!(code(&o), 0);
    assert!(text(&o.stdout).contains("already running"));
    assert!(!marker.exists());

    let o = run(builder().arg("killproc").arg("-p").arg(&pf).arg("sleep"));
    assert_eq!(code(&o), 0);
    assert!(!alive(pid));
}

#[test]
fn start_daemon_times_out_and_propagates_failure() {
    let tmp = tempfile::tempdir().unwrap();
    let pf = tmp.path().join("never.pid");
    let o = run(builder()
        .env("NIXPROC_START_TIMEOUT", "0.4")
        .args(["start-daemon", "-f", "-p"])
        .arg(&pf)
        .arg("true"));
    assert_eq!(code(&o), 1);
    assert_eq!(
        text(&o.stderr),
        format!(
            "nixproc-builder: true exited successfully but {} did not appear within 0.4s\n",
            pf.display()
        )
    );

    // A stale PID file (dead PID) does not count.
    std::fs::write(&pf, "999999999\n").unwrap();
    let o = run(builder()
        .env("NIXPROC_START_TIMEOUT", "0.2")
        .args(["start-daemon", "-p"])
        .arg(&pf)
        .arg("true"));
    assert_eq!(code(&o), 1);

    // (-f: without it, any running sh would count as "already running".)
    let o = run(builder().args(["start-daemon", "-f", "sh", "-c", "exit 3"]));
    assert_eq!(code(&o), 3);
    let o = run(builder().args(["start-daemon", "/nonexistent/prog"]));
    assert_eq!(code(&o), 1);
    assert!(text(&o.stderr).starts_with("nixproc-builder: cannot execute /nonexistent/prog"));
}

#[test]
fn killproc_signals_and_escalates() {
    let tmp = tempfile::tempdir().unwrap();
    let pf = tmp.path().join("t.pid");
    let hups = tmp.path().join("hups");
    let o = run(builder()
        .arg("daemonize")
        .arg("--pidfile")
        .arg(&pf)
        .args(["--", "sh", "-c"])
        .arg(r#"trap 'echo hup >> "$1"' HUP; trap '' TERM; while :; do sleep 0.05; done"#)
        .arg("sh")
        .arg(&hups));
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    let pid = read_pid(&pf);
    let _r = Reaper(pid);
    std::thread::sleep(Duration::from_millis(200)); // let the traps be set

    // One at a time: pending signals of one kind do not queue.
    for (n, sig) in ["-HUP", "HUP", "-1"].into_iter().enumerate() {
        let o = run(builder()
            .arg("killproc")
            .arg("-p")
            .arg(&pf)
            .arg("sh")
            .arg(sig));
        assert_eq!(code(&o), 0, "{sig}: {}", text(&o.stderr));
        wait_until("a HUP", Duration::from_secs(10), || {
            std::fs::read_to_string(&hups)
                .map(|s| s.lines().count() == n + 1)
                .unwrap_or(false)
        });
    }
    let o = run(builder()
        .arg("killproc")
        .arg("-p")
        .arg(&pf)
        .arg("sh")
        .arg("-BOGUS"));
    assert_eq!(code(&o), 1);
    assert!(text(&o.stderr).contains("invalid signal '-BOGUS'"));

    // TERM is ignored: KILL after the timeout.
    let started = Instant::now();
    let o = run(builder()
        .env("NIXPROC_STOP_TIMEOUT", "0.5")
        .arg("killproc")
        .arg("-p")
        .arg(&pf)
        .arg("sh"));
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    assert!(started.elapsed() >= Duration::from_millis(450));
    assert!(!alive(pid));
    assert!(!pf.exists());

    // Signalling a program that is not running: LSB status 7.
    let o = run(builder()
        .arg("killproc")
        .arg("-p")
        .arg(&pf)
        .arg("sh")
        .arg("-HUP"));
    assert_eq!(code(&o), 7);
}

#[test]
fn stale_pid_files() {
    let tmp = tempfile::tempdir().unwrap();
    let pf = tmp.path().join("stale.pid");
    for content in ["999999999\n", "garbage\n", ""] {
        std::fs::write(&pf, content).unwrap();
        let o = run(builder()
            .arg("statusproc")
            .arg("-p")
            .arg(&pf)
            .arg("/usr/bin/prog"));
        assert_eq!(code(&o), 1, "{content:?}");
        assert_eq!(
            text(&o.stdout),
            format!("prog is not running but {} exists.\n", pf.display())
        );
        let o = run(builder()
            .arg("killproc")
            .arg("-p")
            .arg(&pf)
            .arg("/usr/bin/prog"));
        assert_eq!(code(&o), 0);
        assert_eq!(text(&o.stdout), "/usr/bin/prog is not running\n");
        assert!(!pf.exists(), "stale PID file must be removed");
    }
    // A zombie is not running.
    let mut child = Command::new("true").spawn().unwrap();
    let zpid = child.id() as i32;
    wait_until("zombie", Duration::from_secs(5), || !alive(zpid));
    std::fs::write(&pf, format!("{zpid}\n")).unwrap();
    let o = run(builder().arg("statusproc").arg("-p").arg(&pf).arg("true"));
    assert_eq!(code(&o), 1);
    child.wait().unwrap();
}

#[test]
fn discovery_by_executable_without_pid_file() {
    let tmp = tempfile::tempdir().unwrap();
    // A private copy of sleep, so other tests' sleeps are not found.
    let sleep_src = std::env::split_paths(&std::env::var_os("PATH").unwrap())
        .map(|d| d.join("sleep"))
        .find(|p| p.exists())
        .unwrap();
    let mine = tmp.path().join("mysleep");
    std::fs::copy(&sleep_src, &mine).unwrap();
    let pf = tmp.path().join("m.pid");

    let o = run(builder().arg("statusproc").arg(&mine));
    assert_eq!(code(&o), 3);
    assert_eq!(text(&o.stdout), "mysleep is not running.\n");

    let mut o = run(builder()
        .arg("daemonize")
        .arg("--pidfile")
        .arg(&pf)
        .arg("--")
        .arg(&mine)
        .arg("1000"));
    for _ in 0..20 {
        // ETXTBSY right after the copy is possible; retry.
        if code(&o) == 0 {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
        o = run(builder()
            .arg("daemonize")
            .arg("--pidfile")
            .arg(&pf)
            .arg("--")
            .arg(&mine)
            .arg("1000"));
    }
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    let pid = read_pid(&pf);
    let _r = Reaper(pid);

    let o = run(builder().arg("statusproc").arg(&mine));
    assert_eq!(code(&o), 0);
    assert_eq!(
        text(&o.stdout),
        format!("mysleep is running with Process ID(s) {pid}.\n")
    );
    // start-daemon without -f and -p sees it by executable.
    let o = run(builder().arg("start-daemon").arg(&mine).arg("1000"));
    assert_eq!(code(&o), 0);
    assert!(text(&o.stdout).contains("already running"));

    let o = run(builder().arg("killproc").arg(&mine));
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    assert!(!alive(pid));
    // The PID file was not named, so it stays.
    assert!(pf.exists());
}

#[test]
fn usage_errors_are_prefixed() {
    let o = run(builder().arg("no-such-subcommand"));
    assert_eq!(code(&o), 1);
    assert!(text(&o.stderr).starts_with("nixproc-builder: "));
    let o = run(builder().arg("--help"));
    assert_eq!(code(&o), 0);
    let help = text(&o.stdout);
    for sub in [
        "build",
        "start-daemon",
        "daemonize",
        "killproc",
        "statusproc",
    ] {
        assert!(help.contains(sub), "{help}");
    }
}

// ---------------------------------------------------------------------------
// init-functions.sh

fn init_functions(dir: &Path) -> PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../nix/sysvinit/init-functions.sh");
    let text = std::fs::read_to_string(&src).unwrap();
    assert!(text.contains("@helper@"));
    let p = dir.join("init-functions");
    std::fs::write(&p, text.replace("@helper@", BIN)).unwrap();
    p
}

#[test]
fn init_functions_parse_in_sh_and_dash() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../nix/sysvinit/init-functions.sh");
    for shell in ["sh", "dash"] {
        let o = Command::new(shell).arg("-n").arg(&src).output().unwrap();
        assert!(o.status.success(), "{shell} -n: {}", text(&o.stderr));
    }
    // Only the documented functions are defined, nothing else.
    let text = std::fs::read_to_string(&src).unwrap();
    let mut defined: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_suffix("() {"))
        .collect();
    defined.sort_unstable();
    assert_eq!(
        defined,
        [
            "evaluate_retval",
            "killproc",
            "log_failure_msg",
            "log_info_msg",
            "log_success_msg",
            "start_daemon",
            "statusproc"
        ]
    );
}

#[test]
fn init_functions_drive_a_daemon() {
    let tmp = tempfile::tempdir().unwrap();
    let funcs = init_functions(tmp.path());
    let forker = forker(tmp.path());
    let pf = tmp.path().join("svc.pid");
    let script = r#"
set -u
. "$FUNCS"
log_info_msg "Starting svc..."
start_daemon -f -p "$PF" "$FORKER" "$PF" 0.2
evaluate_retval
echo "start=$?"
statusproc -p "$PF" sleep
echo "status=$?"
log_info_msg "Reloading svc..."
killproc -p "$PF" sleep -CONT
evaluate_retval
log_info_msg "Stopping svc..."
killproc -p "$PF" sleep
evaluate_retval
echo "stop=$?"
statusproc -p "$PF" sleep
echo "status=$?"
false
evaluate_retval
echo "fail=$?"
log_success_msg "all" "good"
log_failure_msg 'not $(bad)'
"#;
    for shell in ["sh", "dash"] {
        let o = Command::new(shell)
            .arg("-c")
            .arg(script)
            .env("FUNCS", &funcs)
            .env("FORKER", &forker)
            .env("PF", &pf)
            .output()
            .unwrap();
        let out = text(&o.stdout);
        assert!(o.status.success(), "{shell}: {out}\n{}", text(&o.stderr));
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines[0], "Starting svc... [  OK  ]", "{out}");
        assert_eq!(lines[1], "start=0");
        assert!(
            lines[2].starts_with("sleep is running with Process ID(s) "),
            "{out}"
        );
        assert_eq!(lines[3], "status=0");
        assert_eq!(lines[4], "Reloading svc... [  OK  ]");
        assert_eq!(lines[5], "Stopping svc... [  OK  ]");
        assert_eq!(lines[6], "stop=0");
        assert_eq!(lines[7], "sleep is not running.");
        assert_eq!(lines[8], "status=3");
        assert_eq!(lines[9], " [ FAIL ]");
        assert_eq!(lines[10], "fail=1");
        assert_eq!(lines[11], "all good [  OK  ]");
        assert_eq!(lines[12], "not $(bad) [ FAIL ]");
        assert!(!pf.exists());
    }
}

/// Options after PROGRAM are the program's own, even when the helper has an
/// option of the same name (`nginx -p <prefix>` under `start-daemon -p`).
#[test]
fn options_after_the_program_belong_to_it() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("argv");
    let prog = script(
        tmp.path(),
        "dump",
        r#"out=$1; shift; printf '%s\n' "$@" > "$out.tmp"; mv "$out.tmp" "$out""#,
    );
    let pf = tmp.path().join("p.pid");
    let o = run(builder()
        .arg("daemonize")
        .arg("--pidfile")
        .arg(&pf)
        .arg(&prog)
        .arg(&out)
        .args(["--pidfile", "x", "-p", "y", "--user", "z"]));
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    wait_until("the dump", Duration::from_secs(10), || out.exists());
    assert_eq!(
        std::fs::read_to_string(&out).unwrap(),
        "--pidfile\nx\n-p\ny\n--user\nz\n"
    );

    std::fs::remove_file(&out).unwrap();
    let o = run(builder()
        .arg("start-daemon")
        .arg("-f")
        .arg(&prog)
        .arg(&out)
        .args(["-p", "y", "-f"]));
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "-p\ny\n-f\n");
}
