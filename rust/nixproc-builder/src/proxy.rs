//! `foreground-proxy`: what a process manager that wants a foreground
//! process runs when the program needs initialization as root, a user
//! switch, nice/umask/directory, or is a daemon that forks (reference §2.2,
//! contract in `.briefs/proxy-contract.md`).
//!
//! ```text
//! foreground-proxy [--escaped] [--initialize SCRIPT] [--shell SH]
//!     [--user USER] [--nice N] [--directory DIR] [--umask MASK]
//!     [--setenv NAME=VALUE]... [--wrap-daemon --pidfile FILE [--pidfile-timeout SECS]]
//!     -- PROGRAM [ARG]...
//! ```
//!
//! Fixes of the original bash proxy: `directory`, `umask` and `nice` apply
//! whether or not a daemon is wrapped (defect 21); the user switch sets the
//! supplementary groups (defect 22); the PID file wait is 30 s by default
//! instead of ~9 s; the daemon is watched directly instead of through
//! `tail --pid`; every signal a supervisor sends for control is forwarded.
//!
//! Every setup error exits with [`SETUP_FAILED`] and a message prefixed
//! `nixproc foreground-proxy: `.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::procs::{self, PidFile};
use crate::users;

/// Exit status of every proxy setup error (daemontools' convention for
/// "could not even start").
pub const SETUP_FAILED: i32 = 111;
/// Exit status when the wrapped daemon ends without being told to, or never
/// writes its PID file: the supervisor should restart it.
pub const DAEMON_GONE: i32 = 1;
/// Default `--pidfile-timeout`.
pub const DEFAULT_PIDFILE_TIMEOUT: Duration = Duration::from_secs(30);
const PREFIX: &str = "nixproc foreground-proxy";

/// `foreground-proxy --help`.
pub const HELP: &str = "Run a program for a manager that wants a foreground process.

Usage: nixproc-builder foreground-proxy [--escaped] [--initialize SCRIPT] [--shell SH]
    [--user USER] [--nice N] [--directory DIR] [--umask MASK] [--setenv NAME=VALUE]...
    [--wrap-daemon --pidfile FILE [--pidfile-timeout SECS]] -- PROGRAM [ARG]...

Sets the environment, runs SCRIPT with `SH -ec` as the caller (SH defaults to /bin/sh; a
failure stops the start), changes directory, umask (octal) and niceness (like nice -n N),
switches to USER (root only; groups from /etc/passwd and /etc/group), then execs PROGRAM.

With --wrap-daemon, PROGRAM is a daemon that forks: the proxy waits for FILE to name a
running process (SECS, default 30), stays in the foreground while it lives, forwards TERM,
INT, HUP, QUIT, USR1 and USR2 to it, exits 0 once it is gone after TERM or INT, and 1 when
it dies on its own.

--escaped: every option value, PROGRAM and ARG is C-escaped (\\n \\r \\t \\xHH \\\\).
Setup errors exit with status 111.";

/// Signals forwarded to a wrapped daemon.
const FORWARDED: [libc::c_int; 6] = [
    libc::SIGTERM,
    libc::SIGINT,
    libc::SIGHUP,
    libc::SIGQUIT,
    libc::SIGUSR1,
    libc::SIGUSR2,
];

/// The parsed command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    pub initialize: Option<OsString>,
    pub shell: OsString,
    pub user: Option<String>,
    pub nice: Option<i32>,
    pub directory: Option<PathBuf>,
    pub umask: Option<u32>,
    pub setenv: Vec<(OsString, OsString)>,
    /// `Some(pidfile)` with `--wrap-daemon`.
    pub wrap_daemon: Option<PathBuf>,
    pub pidfile_timeout: Duration,
    pub program: OsString,
    pub args: Vec<OsString>,
}

/// Options that take a value.
const VALUED: &[&str] = &[
    "--initialize",
    "--shell",
    "--user",
    "--nice",
    "--directory",
    "--umask",
    "--setenv",
    "--pidfile",
    "--pidfile-timeout",
];

/// Parses the arguments after `foreground-proxy`.
pub fn parse(argv: &[OsString]) -> Result<Options> {
    let mut escaped = false;
    let mut wrap = false;
    let mut valued: Vec<(&'static str, OsString)> = Vec::new();
    let mut it = argv.iter();
    let mut command: Option<Vec<OsString>> = None;
    while let Some(arg) = it.next() {
        let bytes = arg.as_bytes();
        if bytes == b"--" {
            command = Some(it.by_ref().cloned().collect());
            break;
        }
        match bytes {
            b"--escaped" => escaped = true,
            b"--wrap-daemon" => wrap = true,
            _ => {
                let (name, inline) = match bytes.iter().position(|&b| b == b'=') {
                    Some(i) if bytes.starts_with(b"--") => {
                        (&bytes[..i], Some(OsStr::from_bytes(&bytes[i + 1..])))
                    }
                    _ => (bytes, None),
                };
                let Some(&opt) = VALUED.iter().find(|o| o.as_bytes() == name) else {
                    bail!(
                        "unknown option {:?} (the program and its arguments follow `--`)",
                        arg.to_string_lossy()
                    );
                };
                let value = match inline {
                    Some(v) => v.to_os_string(),
                    None => it
                        .next()
                        .with_context(|| format!("{opt} needs a value"))?
                        .clone(),
                };
                valued.push((opt, value));
            }
        }
    }
    let Some(command) = command else {
        bail!("missing `-- PROGRAM [ARG]...`");
    };
    let decode = |what: &str, v: &OsStr| -> Result<OsString> {
        let out = if escaped {
            let s = v
                .to_str()
                .with_context(|| format!("{what}: escaped value is not UTF-8: {v:?}"))?;
            let plain =
                nixproc_core::quote::c_unescape(s).map_err(|e| anyhow::anyhow!("{what}: {e}"))?;
            OsString::from(plain)
        } else {
            v.to_os_string()
        };
        if out.as_bytes().contains(&0) {
            bail!("{what} contains a NUL byte");
        }
        Ok(out)
    };

    let mut opts = Options {
        initialize: None,
        shell: OsString::from("/bin/sh"),
        user: None,
        nice: None,
        directory: None,
        umask: None,
        setenv: Vec::new(),
        wrap_daemon: None,
        pidfile_timeout: DEFAULT_PIDFILE_TIMEOUT,
        program: OsString::new(),
        args: Vec::new(),
    };
    let mut pidfile = None;
    for (opt, raw) in &valued {
        let v = decode(opt, raw)?;
        let text = || -> Result<String> {
            v.clone()
                .into_string()
                .map_err(|v| anyhow::anyhow!("{opt}: not UTF-8: {v:?}"))
        };
        match *opt {
            "--initialize" => opts.initialize = Some(v),
            "--shell" => opts.shell = v,
            "--user" => {
                let u = text()?;
                if u.is_empty() {
                    bail!("--user: empty user name");
                }
                opts.user = Some(u);
            }
            "--nice" => {
                let t = text()?;
                opts.nice = Some(
                    t.trim()
                        .parse()
                        .ok()
                        .with_context(|| format!("--nice: {t:?} is not an integer"))?,
                );
            }
            "--directory" => opts.directory = Some(PathBuf::from(v)),
            "--umask" => opts.umask = Some(parse_umask(&text()?)?),
            "--setenv" => {
                let b = v.as_bytes();
                let eq = b
                    .iter()
                    .position(|&c| c == b'=')
                    .filter(|&i| i > 0)
                    .with_context(|| {
                        format!(
                            "--setenv: expected NAME=VALUE, got {:?}",
                            v.to_string_lossy()
                        )
                    })?;
                opts.setenv.push((
                    OsString::from_vec(b[..eq].to_vec()),
                    OsString::from_vec(b[eq + 1..].to_vec()),
                ));
            }
            "--pidfile" => pidfile = Some(PathBuf::from(v)),
            "--pidfile-timeout" => {
                let t = text()?;
                opts.pidfile_timeout = t
                    .trim()
                    .parse::<f64>()
                    .ok()
                    .filter(|s| s.is_finite() && *s >= 0.0)
                    .map(Duration::from_secs_f64)
                    .with_context(|| {
                        format!("--pidfile-timeout: {t:?} is not a number of seconds")
                    })?;
            }
            _ => unreachable!("every valued option is handled"),
        }
    }
    match (wrap, pidfile) {
        (true, Some(p)) => opts.wrap_daemon = Some(p),
        (true, None) => bail!("--wrap-daemon needs --pidfile FILE"),
        (false, Some(_)) => bail!("--pidfile only makes sense with --wrap-daemon"),
        (false, None) => {}
    }
    let mut command = command.into_iter();
    let program = command.next().context("missing PROGRAM after `--`")?;
    opts.program = decode("PROGRAM", &program)?;
    if opts.program.is_empty() {
        bail!("empty PROGRAM");
    }
    opts.args = command
        .map(|a| decode("an argument", &a))
        .collect::<Result<_>>()?;
    Ok(opts)
}

/// A umask of 1 to 4 octal digits.
pub fn parse_umask(s: &str) -> Result<u32> {
    if s.is_empty() || s.len() > 4 || !s.bytes().all(|b| (b'0'..=b'7').contains(&b)) {
        bail!("--umask: {s:?} is not 1 to 4 octal digits");
    }
    Ok(u32::from_str_radix(s, 8)? & 0o777)
}

/// `nixproc-builder foreground-proxy ARGS`: never returns on success in exec
/// mode; otherwise the exit status.
pub fn main(argv: &[OsString]) -> i32 {
    if argv.first().is_some_and(|a| a == "--help" || a == "-h") {
        println!("{HELP}");
        return 0;
    }
    let opts = match parse(argv) {
        Ok(o) => o,
        Err(e) => return setup_error(&e),
    };
    match run(&opts) {
        Ok(code) => code,
        Err(e) => setup_error(&e),
    }
}

fn setup_error(e: &anyhow::Error) -> i32 {
    eprintln!("{PREFIX}: {e:#}");
    SETUP_FAILED
}

fn run(opts: &Options) -> Result<i32> {
    for (name, value) in &opts.setenv {
        // The process is single-threaded: nothing else reads the
        // environment concurrently.
        std::env::set_var(name, value);
    }
    if let Some(script) = &opts.initialize {
        let status = std::process::Command::new(&opts.shell)
            .arg("-ec")
            .arg(script)
            .status()
            .with_context(|| {
                format!(
                    "cannot run the initialization with {}",
                    opts.shell.to_string_lossy()
                )
            })?;
        if !status.success() {
            let code = exit_code(status);
            eprintln!("{PREFIX}: initialization failed ({status}); not starting the program");
            return Ok(code);
        }
    }
    if let Some(dir) = &opts.directory {
        std::env::set_current_dir(dir)
            .with_context(|| format!("cannot change directory to {}", dir.display()))?;
    }
    if let Some(mask) = opts.umask {
        // SAFETY: umask has no preconditions.
        unsafe { libc::umask(mask as libc::mode_t) };
    }
    if let Some(n) = opts.nice {
        apply_nice(n).with_context(|| format!("cannot adjust the nice value by {n}"))?;
    }
    if let Some(user) = &opts.user {
        if let Some(creds) = users::prepare_switch(user)? {
            users::switch_to(&creds)
                .with_context(|| format!("cannot switch to user '{}'", creds.name))?;
        }
    }
    match &opts.wrap_daemon {
        None => {
            let err = std::process::Command::new(&opts.program)
                .args(&opts.args)
                .exec();
            Err(err).with_context(|| format!("cannot execute {}", opts.program.to_string_lossy()))
        }
        Some(pidfile) => wrap_daemon(opts, pidfile),
    }
}

fn exit_code(status: std::process::ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0))
}

fn apply_nice(inc: i32) -> std::io::Result<()> {
    // SAFETY: errno is thread-local; nice is a plain system call.
    unsafe {
        *libc::__errno_location() = 0;
        if libc::nice(inc) == -1 && *libc::__errno_location() != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

fn signal_set(signals: &[libc::c_int]) -> libc::sigset_t {
    // SAFETY: sigemptyset/sigaddset initialise and fill a local set.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for &s in signals {
            libc::sigaddset(&mut set, s);
        }
        set
    }
}

/// Waits up to `timeout` for one of `set` (blocked); `None` on timeout.
fn wait_signal(set: &libc::sigset_t, timeout: Duration) -> Option<libc::c_int> {
    let ts = libc::timespec {
        tv_sec: timeout.as_secs() as libc::time_t,
        tv_nsec: libc::c_long::from(timeout.subsec_nanos() as i32),
    };
    // SAFETY: valid set and timespec; a null siginfo is allowed.
    let sig = unsafe { libc::sigtimedwait(set, std::ptr::null_mut(), &ts) };
    (sig > 0).then_some(sig)
}

fn send(pid: i32, sig: libc::c_int) {
    // SAFETY: kill has no memory-safety preconditions; a vanished process
    // (ESRCH) is fine.
    unsafe { libc::kill(pid, sig) };
}

/// Reaps every finished child (the starter, and daemons re-parented to us
/// as subreaper); returns the starter's status when it is among them.
fn reap(starter: i32) -> Option<libc::c_int> {
    let mut starter_status = None;
    loop {
        let mut st = 0;
        // SAFETY: waitpid on our own children with a valid status pointer.
        let pid = unsafe { libc::waitpid(-1, &mut st, libc::WNOHANG) };
        if pid <= 0 {
            return starter_status;
        }
        if pid == starter {
            starter_status = Some(st);
        }
    }
}

fn wait_status_code(st: libc::c_int) -> i32 {
    if libc::WIFEXITED(st) {
        libc::WEXITSTATUS(st)
    } else if libc::WIFSIGNALED(st) {
        128 + libc::WTERMSIG(st)
    } else {
        1
    }
}

/// Runs a daemon that forks and stays in the foreground while it lives.
fn wrap_daemon(opts: &Options, pidfile: &std::path::Path) -> Result<i32> {
    let name = opts.program.to_string_lossy().into_owned();
    let shown = pidfile.display().to_string();
    // A PID file naming a dead process is left over from an earlier run.
    if let Ok(PidFile::Stale) = procs::read_pidfile(pidfile) {
        let _ = std::fs::remove_file(pidfile);
    }
    // The daemon's double fork re-parents it to the nearest subreaper: make
    // that us, so it does not linger as a zombie under a PID 1 that does
    // not reap (its death is still seen through /proc).
    // SAFETY: prctl with integer arguments.
    unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };

    let mut all = FORWARDED.to_vec();
    all.push(libc::SIGCHLD);
    let set = signal_set(&all);
    // Block the signals before the daemon exists, so none is lost.
    let mut previous = signal_set(&[]);
    // SAFETY: valid sets; the process is single-threaded.
    unsafe { libc::sigprocmask(libc::SIG_BLOCK, &set, &mut previous) };

    let mut cmd = std::process::Command::new(&opts.program);
    cmd.args(&opts.args);
    // SAFETY: the closure only makes a system call. The daemon must not
    // inherit the blocked signals (it would ignore TERM).
    unsafe {
        cmd.pre_exec(move || {
            if libc::sigprocmask(libc::SIG_SETMASK, &previous, std::ptr::null_mut()) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let starter = cmd
        .spawn()
        .with_context(|| format!("cannot execute {name}"))?;
    let starter_pid = starter.id() as i32;
    // The child is reaped by `reap` (waitpid(-1)), not through `Child`.
    drop(starter);

    let started = Instant::now();
    let mut starter_running = true;
    let mut daemon: Option<i32> = None;
    let mut terminating = false;
    let mut announced = false;
    let mut pending: Vec<libc::c_int> = Vec::new();
    loop {
        if let Some(sig) = wait_signal(&set, procs::POLL) {
            if sig != libc::SIGCHLD {
                match daemon {
                    Some(pid) => send(pid, sig),
                    // Not known yet: deliver once the PID file names it
                    // (TERM and INT are covered by `terminating`).
                    None if sig != libc::SIGTERM && sig != libc::SIGINT => pending.push(sig),
                    None => {}
                }
                if sig == libc::SIGTERM || sig == libc::SIGINT {
                    terminating = true;
                }
            }
        }
        if let Some(st) = reap(starter_pid) {
            starter_running = false;
            let code = wait_status_code(st);
            if code != 0 && daemon.is_none() {
                if terminating {
                    return Ok(0);
                }
                eprintln!("{PREFIX}: {name} failed (exit status {code})");
                return Ok(code);
            }
        }
        match daemon {
            Some(pid) => {
                if !procs::is_alive(pid) {
                    if terminating {
                        return Ok(0);
                    }
                    eprintln!("{PREFIX}: {name} (PID {pid}) exited");
                    return Ok(DAEMON_GONE);
                }
            }
            None => match procs::read_pidfile(pidfile) {
                Ok(PidFile::Running(pids)) => {
                    let pid = pids[0];
                    daemon = Some(pid);
                    for sig in pending.drain(..) {
                        send(pid, sig);
                    }
                    if terminating {
                        send(pid, libc::SIGTERM);
                    }
                }
                other => {
                    if let Err(e) = other {
                        eprintln!("{PREFIX}: {e:#}");
                    }
                    if started.elapsed() >= opts.pidfile_timeout {
                        // Told to stop before the daemon could be found:
                        // nothing is left to stop.
                        if terminating {
                            return Ok(0);
                        }
                        if starter_running {
                            send(starter_pid, libc::SIGTERM);
                        }
                        eprintln!(
                            "{PREFIX}: {name}: {shown} did not name a running process within {}s; giving up",
                            opts.pidfile_timeout.as_secs_f64()
                        );
                        return Ok(DAEMON_GONE);
                    }
                    if !announced && !starter_running {
                        eprintln!("{PREFIX}: waiting for {shown}");
                        announced = true;
                    }
                }
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<OsString> {
        a.iter().map(OsString::from).collect()
    }

    #[test]
    fn parses_every_option() {
        let o = parse(&args(&[
            "--initialize",
            "mkdir -p /x",
            "--shell=/bin/bash",
            "--user",
            "web",
            "--nice",
            "-5",
            "--directory",
            "/srv",
            "--umask",
            "027",
            "--setenv",
            "A=b=c",
            "--setenv",
            "EMPTY=",
            "--wrap-daemon",
            "--pidfile",
            "/run/x.pid",
            "--pidfile-timeout",
            "2.5",
            "--",
            "prog",
            "--flag",
            "--",
        ]))
        .unwrap();
        assert_eq!(o.initialize.as_deref(), Some(OsStr::new("mkdir -p /x")));
        assert_eq!(o.shell, "/bin/bash");
        assert_eq!(o.user.as_deref(), Some("web"));
        assert_eq!(o.nice, Some(-5));
        assert_eq!(o.directory, Some(PathBuf::from("/srv")));
        assert_eq!(o.umask, Some(0o27));
        assert_eq!(
            o.setenv,
            vec![("A".into(), "b=c".into()), ("EMPTY".into(), "".into())]
        );
        assert_eq!(o.wrap_daemon, Some(PathBuf::from("/run/x.pid")));
        assert_eq!(o.pidfile_timeout, Duration::from_millis(2500));
        assert_eq!(o.program, "prog");
        assert_eq!(o.args, args(&["--flag", "--"]));
    }

    #[test]
    fn escaped_values_are_decoded() {
        let o = parse(&args(&[
            "--escaped",
            "--setenv",
            "K=a\\nb",
            "--initialize",
            "echo \\\\",
            "--",
            "p\\trog",
            "x\\x01y",
        ]))
        .unwrap();
        assert_eq!(o.setenv, vec![("K".into(), "a\nb".into())]);
        assert_eq!(o.initialize.as_deref(), Some(OsStr::new("echo \\")));
        assert_eq!(o.program, "p\trog");
        assert_eq!(o.args, args(&["x\x01y"]));
        // Without --escaped nothing is decoded.
        let o = parse(&args(&["--", "a\\nb"])).unwrap();
        assert_eq!(o.program, "a\\nb");
    }

    #[test]
    fn bad_command_lines_are_errors() {
        let err = |a: &[&str]| format!("{:#}", parse(&args(a)).unwrap_err());
        assert!(err(&["prog"]).contains("unknown option \"prog\""));
        assert!(err(&["--bogus", "--", "p"]).contains("unknown option \"--bogus\""));
        assert!(err(&["--user"]).contains("--user needs a value"));
        assert!(err(&[]).contains("missing `-- PROGRAM"));
        assert!(err(&["--"]).contains("missing PROGRAM"));
        assert!(err(&["--wrap-daemon", "--", "p"]).contains("needs --pidfile"));
        assert!(err(&["--pidfile", "x", "--", "p"]).contains("only makes sense"));
        assert!(err(&["--umask", "8", "--", "p"]).contains("octal"));
        assert!(err(&["--umask", "00022", "--", "p"]).contains("octal"));
        assert!(err(&["--nice", "x", "--", "p"]).contains("not an integer"));
        assert!(err(&["--setenv", "=v", "--", "p"]).contains("NAME=VALUE"));
        assert!(err(&["--setenv", "novalue", "--", "p"]).contains("NAME=VALUE"));
        assert!(err(&["--escaped", "--", "a\\q"]).contains("PROGRAM: bad escape"));
        assert!(err(&["--escaped", "--", "p", "\\x00"]).contains("NUL byte"));
        assert!(err(&["--pidfile-timeout", "-1", "--", "p"]).contains("number of seconds"));
    }

    #[test]
    fn umask_digits() {
        assert_eq!(parse_umask("0").unwrap(), 0);
        assert_eq!(parse_umask("022").unwrap(), 0o22);
        assert_eq!(parse_umask("0077").unwrap(), 0o77);
        assert!(parse_umask("").is_err());
        assert!(parse_umask("-1").is_err());
    }
}
