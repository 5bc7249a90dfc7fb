//! Finding, signalling and reporting processes: `killproc` and `statusproc`.
//!
//! Modelled on the LFS init-functions / LSB: a process is found through its
//! PID file when one is given, otherwise by scanning `/proc` for processes
//! whose executable is the program.

use anyhow::{bail, Context, Result};
use std::ffi::OsStr;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub const POLL: Duration = Duration::from_millis(50);

/// Exit status of `statusproc` (LSB).
pub const STATUS_RUNNING: i32 = 0;
pub const STATUS_DEAD_PIDFILE: i32 = 1;
pub const STATUS_NOT_RUNNING: i32 = 3;
/// Exit status of `killproc` sending an explicit signal to a program that is
/// not running (LSB "program is not running").
pub const KILL_NOT_RUNNING: i32 = 7;

/// Whether `pid` names a live process. Zombies count as dead: they are
/// finished and only wait for their parent to reap them.
pub fn is_alive(pid: i32) -> bool {
    if pid <= 0 {
        return false;
    }
    match std::fs::read(format!("/proc/{pid}/stat")) {
        Ok(stat) => !matches!(stat_state(&stat), Some(b'Z') | Some(b'X') | None),
        Err(_) => false,
    }
}

/// The state letter of a `/proc/<pid>/stat` line: the first field after the
/// last `)` (the command name may itself contain parentheses and spaces).
pub fn stat_state(stat: &[u8]) -> Option<u8> {
    let close = stat.iter().rposition(|&b| b == b')')?;
    stat[close + 1..]
        .iter()
        .copied()
        .find(|b| !b.is_ascii_whitespace())
}

/// What a PID file says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PidFile {
    /// The file does not exist.
    Missing,
    /// The file exists but names no live process (stale or garbage).
    Stale,
    /// The live processes named on its first line.
    Running(Vec<i32>),
}

/// Parses the first line of a PID file: whitespace-separated positive
/// integers. Anything else makes the whole file invalid (`None`).
pub fn parse_pids(text: &str) -> Option<Vec<i32>> {
    let first = text.lines().next()?;
    let pids: Option<Vec<i32>> = first
        .split_whitespace()
        .map(|w| w.parse::<i32>().ok().filter(|&p| p > 0))
        .collect();
    pids.filter(|p| !p.is_empty())
}

pub fn read_pidfile(path: &Path) -> Result<PidFile> {
    let text = match std::fs::read(path) {
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(PidFile::Missing),
        Err(e) => {
            return Err(e).with_context(|| format!("cannot read PID file {}", path.display()))
        }
    };
    let live: Vec<i32> = parse_pids(&text)
        .unwrap_or_default()
        .into_iter()
        .filter(|&p| is_alive(p))
        .collect();
    Ok(if live.is_empty() {
        PidFile::Stale
    } else {
        PidFile::Running(live)
    })
}

/// Looks `program` up like `execvp` does: a name without `/` is searched in
/// `PATH`. The result is absolute.
pub fn resolve_program(program: &OsStr) -> Result<PathBuf> {
    let p = Path::new(program);
    if program.is_empty() {
        bail!("empty program name");
    }
    if p.as_os_str().as_encoded_bytes().contains(&b'/') {
        return Ok(if p.is_absolute() {
            p.to_path_buf()
        } else {
            std::env::current_dir()
                .context("cannot determine the current directory")?
                .join(p)
        });
    }
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/bin:/bin".into());
    for dir in std::env::split_paths(&path) {
        let dir = if dir.as_os_str().is_empty() {
            PathBuf::from(".")
        } else {
            dir
        };
        let candidate = dir.join(p);
        if is_executable(&candidate) {
            return resolve_program(candidate.as_os_str());
        }
    }
    bail!("{}: command not found in PATH", p.display())
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// The live processes whose executable is `program` (compared by canonical
/// path; a replaced binary's " (deleted)" suffix is ignored).
pub fn find_by_exe(program: &OsStr) -> Vec<i32> {
    let Ok(prog) = resolve_program(program) else {
        return Vec::new();
    };
    let Ok(canonical) = std::fs::canonicalize(&prog) else {
        return Vec::new();
    };
    let me = std::process::id() as i32;
    let mut pids = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return pids;
    };
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<i32>().ok())
        else {
            continue;
        };
        if pid == me {
            continue;
        }
        let Ok(exe) = std::fs::read_link(entry.path().join("exe")) else {
            continue;
        };
        let bytes = exe.as_os_str().as_encoded_bytes();
        let bytes = bytes.strip_suffix(b" (deleted)").unwrap_or(bytes);
        if bytes == canonical.as_os_str().as_encoded_bytes() && is_alive(pid) {
            pids.push(pid);
        }
    }
    pids.sort_unstable();
    pids
}

/// Parses a signal given as `-HUP`, `HUP`, `SIGHUP`, `-1` or `1`.
pub fn parse_signal(s: &str) -> Result<i32> {
    let t = s.strip_prefix('-').unwrap_or(s);
    if let Ok(n) = t.parse::<i32>() {
        if (0..=64).contains(&n) {
            return Ok(n);
        }
        bail!("invalid signal '{s}'");
    }
    let upper = t.to_ascii_uppercase();
    let name = upper.strip_prefix("SIG").unwrap_or(&upper);
    let sig = match name {
        "HUP" => libc::SIGHUP,
        "INT" => libc::SIGINT,
        "QUIT" => libc::SIGQUIT,
        "ILL" => libc::SIGILL,
        "TRAP" => libc::SIGTRAP,
        "ABRT" | "IOT" => libc::SIGABRT,
        "BUS" => libc::SIGBUS,
        "FPE" => libc::SIGFPE,
        "KILL" => libc::SIGKILL,
        "USR1" => libc::SIGUSR1,
        "SEGV" => libc::SIGSEGV,
        "USR2" => libc::SIGUSR2,
        "PIPE" => libc::SIGPIPE,
        "ALRM" => libc::SIGALRM,
        "TERM" => libc::SIGTERM,
        "STKFLT" => libc::SIGSTKFLT,
        "CHLD" | "CLD" => libc::SIGCHLD,
        "CONT" => libc::SIGCONT,
        "STOP" => libc::SIGSTOP,
        "TSTP" => libc::SIGTSTP,
        "TTIN" => libc::SIGTTIN,
        "TTOU" => libc::SIGTTOU,
        "URG" => libc::SIGURG,
        "XCPU" => libc::SIGXCPU,
        "XFSZ" => libc::SIGXFSZ,
        "VTALRM" => libc::SIGVTALRM,
        "PROF" => libc::SIGPROF,
        "WINCH" => libc::SIGWINCH,
        "IO" | "POLL" => libc::SIGIO,
        "PWR" => libc::SIGPWR,
        "SYS" => libc::SIGSYS,
        _ => bail!("invalid signal '{s}'"),
    };
    Ok(sig)
}

fn send(pid: i32, sig: i32) -> std::io::Result<()> {
    // SAFETY: kill has no memory-safety preconditions.
    if unsafe { libc::kill(pid, sig) } == 0 {
        Ok(())
    } else {
        let e = std::io::Error::last_os_error();
        // Gone in the meantime: nothing left to signal.
        if e.raw_os_error() == Some(libc::ESRCH) {
            Ok(())
        } else {
            Err(e)
        }
    }
}

/// Seconds from the environment variable `var`, or `default`.
pub fn timeout_from_env(var: &str, default: u64) -> Result<Duration> {
    match std::env::var(var) {
        Ok(v) if !v.trim().is_empty() => {
            let secs: f64 = v
                .trim()
                .parse()
                .ok()
                .filter(|s: &f64| s.is_finite() && *s >= 0.0)
                .with_context(|| format!("{var}={v:?} is not a number of seconds"))?;
            Ok(Duration::from_secs_f64(secs))
        }
        _ => Ok(Duration::from_secs(default)),
    }
}

fn base_name(program: &OsStr) -> String {
    let p = Path::new(program);
    p.file_name()
        .unwrap_or(program)
        .to_string_lossy()
        .into_owned()
}

/// The live processes of `program`, and whether a PID file exists.
fn discover(pidfile: Option<&Path>, program: &OsStr) -> Result<(Vec<i32>, bool)> {
    match pidfile {
        Some(pf) => Ok(match read_pidfile(pf)? {
            PidFile::Missing => (Vec::new(), false),
            PidFile::Stale => (Vec::new(), true),
            PidFile::Running(p) => (p, true),
        }),
        None => Ok((find_by_exe(program), false)),
    }
}

fn remove_pidfile(pidfile: Option<&Path>) -> Result<()> {
    if let Some(pf) = pidfile {
        match std::fs::remove_file(pf) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(e).with_context(|| format!("cannot remove PID file {}", pf.display()))
            }
        }
    }
    Ok(())
}

/// `killproc [-p PIDFILE] PROGRAM [SIGNAL]`. Returns the exit status.
pub fn killproc(pidfile: Option<&Path>, program: &OsStr, signal: Option<&str>) -> Result<i32> {
    let signal = signal.map(parse_signal).transpose()?;
    let name = program.to_string_lossy();
    let (pids, pidfile_exists) = discover(pidfile, program)?;
    if pids.is_empty() {
        if pidfile_exists {
            // Stale: the process is gone, its PID file must go too.
            remove_pidfile(pidfile)?;
        }
        println!("{name} is not running");
        return Ok(if signal.is_some() {
            KILL_NOT_RUNNING
        } else {
            0
        });
    }
    if let Some(sig) = signal {
        for &pid in &pids {
            send(pid, sig)
                .with_context(|| format!("cannot send signal {sig} to {name} (PID {pid})"))?;
        }
        return Ok(0);
    }
    for &pid in &pids {
        send(pid, libc::SIGTERM).with_context(|| format!("cannot stop {name} (PID {pid})"))?;
    }
    let timeout = timeout_from_env("NIXPROC_STOP_TIMEOUT", 10)?;
    if !wait_dead(&pids, timeout) {
        for &pid in &pids {
            if is_alive(pid) {
                eprintln!(
                    "nixproc-builder: {name} (PID {pid}) did not stop within {}s, sending KILL",
                    timeout.as_secs_f64()
                );
                send(pid, libc::SIGKILL)
                    .with_context(|| format!("cannot kill {name} (PID {pid})"))?;
            }
        }
        if !wait_dead(&pids, Duration::from_secs(5)) {
            bail!("{name} (PID(s) {}) survived SIGKILL", join(&pids));
        }
    }
    remove_pidfile(pidfile)?;
    Ok(0)
}

fn wait_dead(pids: &[i32], timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if pids.iter().all(|&p| !is_alive(p)) {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(POLL);
    }
}

fn join(pids: &[i32]) -> String {
    pids.iter()
        .map(|p| p.to_string())
        .collect::<Vec<_>>()
        .join(" ")
}

/// `statusproc [-p PIDFILE] PROGRAM`. Returns the exit status.
pub fn statusproc(pidfile: Option<&Path>, program: &OsStr) -> Result<i32> {
    let base = base_name(program);
    let (pids, pidfile_exists) = discover(pidfile, program)?;
    let mut out = std::io::stdout().lock();
    if !pids.is_empty() {
        writeln!(out, "{base} is running with Process ID(s) {}.", join(&pids))?;
        Ok(STATUS_RUNNING)
    } else if pidfile_exists {
        let pf = pidfile.map(|p| p.display().to_string()).unwrap_or_default();
        writeln!(out, "{base} is not running but {pf} exists.")?;
        Ok(STATUS_DEAD_PIDFILE)
    } else {
        writeln!(out, "{base} is not running.")?;
        Ok(STATUS_NOT_RUNNING)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pid_parsing() {
        assert_eq!(parse_pids("123\n"), Some(vec![123]));
        assert_eq!(parse_pids(" 12 34 \nxyz"), Some(vec![12, 34]));
        assert_eq!(parse_pids(""), None);
        assert_eq!(parse_pids("\n123"), None);
        assert_eq!(parse_pids("0"), None);
        assert_eq!(parse_pids("-5"), None);
        assert_eq!(parse_pids("12abc"), None);
        assert_eq!(parse_pids("99999999999"), None);
    }

    #[test]
    fn stat_fields() {
        let stat = b"42 (we ird) name)) S 7 42 42 0 -1";
        assert_eq!(stat_state(stat), Some(b'S'));
        assert_eq!(stat_state(b"1 (x) Z 0"), Some(b'Z'));
        assert_eq!(stat_state(b"garbage"), None);
    }

    #[test]
    fn signals() {
        assert_eq!(parse_signal("-HUP").unwrap(), libc::SIGHUP);
        assert_eq!(parse_signal("HUP").unwrap(), libc::SIGHUP);
        assert_eq!(parse_signal("sigterm").unwrap(), libc::SIGTERM);
        assert_eq!(parse_signal("-1").unwrap(), 1);
        assert_eq!(parse_signal("9").unwrap(), 9);
        assert!(parse_signal("-BOGUS").is_err());
        assert!(parse_signal("-100").is_err());
    }

    #[test]
    fn liveness() {
        assert!(is_alive(std::process::id() as i32));
        assert!(!is_alive(0));
        assert!(!is_alive(-1));
        // A reaped child is dead; an unreaped one is a zombie, also dead.
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id() as i32;
        let deadline = Instant::now() + Duration::from_secs(5);
        while is_alive(pid) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(!is_alive(pid), "zombie must count as dead");
        child.wait().unwrap();
        assert!(!is_alive(pid));
    }

    #[test]
    fn program_resolution() {
        let sh = resolve_program(OsStr::new("sh")).unwrap();
        assert!(sh.is_absolute());
        assert!(resolve_program(OsStr::new("no-such-program-xyz")).is_err());
        assert!(resolve_program(OsStr::new("")).is_err());
        let rel = resolve_program(OsStr::new("./x")).unwrap();
        assert!(rel.is_absolute());
    }
}
