//! Starting processes: `start-daemon` (programs that daemonize themselves)
//! and `daemonize` (foreground programs turned into daemons; replaces
//! libslack `daemon`).

use crate::procs::{self, PidFile};
use crate::users::{self, Credentials};
use anyhow::{bail, Context, Result};
use std::ffi::{CString, OsStr, OsString};
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Options of `start-daemon`.
#[derive(Debug, Clone, Default)]
pub struct StartOptions {
    pub force: bool,
    pub nice: Option<i32>,
    pub pidfile: Option<PathBuf>,
    pub user: Option<String>,
}

/// Applies a nice increment. Only makes system calls.
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

fn prepare_user(user: Option<&str>) -> Result<Option<Credentials>> {
    user.map(users::prepare_switch)
        .transpose()
        .map(Option::flatten)
}

/// `start-daemon [-f] [-n NICE] [-p PIDFILE] [-u USER] PROGRAM [ARGS...]`.
pub fn start_daemon(opts: &StartOptions, program: &OsStr, args: &[OsString]) -> Result<i32> {
    let name = program.to_string_lossy().into_owned();
    if !opts.force {
        let running = match &opts.pidfile {
            Some(pf) => match procs::read_pidfile(pf)? {
                PidFile::Running(p) => p,
                _ => Vec::new(),
            },
            None => procs::find_by_exe(program),
        };
        if !running.is_empty() {
            println!("{name} is already running");
            return Ok(0);
        }
    }
    let creds = prepare_user(opts.user.as_deref())?;
    let mut cmd = std::process::Command::new(program);
    cmd.args(args);
    let nice = opts.nice;
    // SAFETY: the closure only makes system calls (setpriority, setgroups,
    // setgid, setuid) on data prepared before the fork.
    unsafe {
        cmd.pre_exec(move || {
            if let Some(n) = nice {
                apply_nice(n)?;
            }
            if let Some(c) = &creds {
                users::switch_to(c)?;
            }
            Ok(())
        });
    }
    let status = cmd
        .status()
        .with_context(|| format!("cannot execute {name}"))?;
    if !status.success() {
        let code = status
            .code()
            .unwrap_or_else(|| 128 + status.signal().unwrap_or(0));
        eprintln!("nixproc-builder: {name} failed: {status}");
        return Ok(code);
    }
    if let Some(pf) = &opts.pidfile {
        let timeout = procs::timeout_from_env("NIXPROC_START_TIMEOUT", 10)?;
        let deadline = Instant::now() + timeout;
        loop {
            if let PidFile::Running(_) = procs::read_pidfile(pf)? {
                break;
            }
            if Instant::now() >= deadline {
                bail!(
                    "{name} exited successfully but {} did not appear within {}s",
                    pf.display(),
                    timeout.as_secs_f64()
                );
            }
            std::thread::sleep(procs::POLL);
        }
    }
    Ok(0)
}

/// Options of `daemonize`.
#[derive(Debug, Clone, Default)]
pub struct DaemonizeOptions {
    pub output: Option<PathBuf>,
    pub pidfile: Option<PathBuf>,
    pub user: Option<String>,
    pub nice: Option<i32>,
    pub directory: Option<PathBuf>,
    pub umask: Option<u32>,
}

/// Parses an octal umask such as `022` or `0027`.
pub fn parse_umask(s: &str) -> Result<u32> {
    match u32::from_str_radix(s, 8) {
        Ok(m) if m <= 0o777 && !s.is_empty() => Ok(m),
        _ => bail!("invalid umask '{s}' (expected octal, e.g. 022)"),
    }
}

fn cstring(s: &OsStr, what: &str) -> Result<CString> {
    CString::new(s.as_bytes()).with_context(|| format!("{what} contains a NUL byte"))
}

fn absolute(p: &Path) -> Result<PathBuf> {
    Ok(if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir()?.join(p)
    })
}

/// Failure stages reported by the daemon child through the status pipe.
#[repr(u8)]
#[derive(Clone, Copy)]
enum Stage {
    Output = 1,
    PidFile = 2,
    Directory = 3,
    Nice = 4,
    Stdio = 5,
    User = 6,
    Exec = 7,
    Fork = 8,
    Setsid = 9,
}

/// The daemon side: report `err` at `stage` and exit. Never returns.
fn child_fail(pipe: &OwnedFd, stage: Stage, err: &std::io::Error) -> ! {
    let code = err.raw_os_error().unwrap_or(0);
    let mut msg = [0u8; 5];
    msg[0] = stage as u8;
    msg[1..].copy_from_slice(&code.to_ne_bytes());
    // SAFETY: writing a stack buffer to an open descriptor, then _exit.
    unsafe {
        libc::write(pipe.as_raw_fd(), msg.as_ptr().cast(), msg.len());
        libc::_exit(127);
    }
}

fn last_err() -> std::io::Error {
    std::io::Error::last_os_error()
}

/// Writes `pid` to `path` atomically (temp file + rename), mode 0644.
pub fn write_pidfile(path: &Path, pid: i32) -> std::io::Result<()> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let file_name = path.file_name().ok_or_else(|| {
        std::io::Error::new(std::io::ErrorKind::InvalidInput, "PID file has no name")
    })?;
    let mut tmp_name = OsString::from(".");
    tmp_name.push(file_name);
    tmp_name.push(format!(".tmp{pid}"));
    let tmp = dir.join(tmp_name);
    let result = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o644)
            .open(&tmp)?;
        f.set_permissions(std::fs::Permissions::from_mode(0o644))?;
        writeln!(f, "{pid}")?;
        drop(f);
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Marks every descriptor above 2 close-on-exec, so the program inherits
/// only stdin, stdout and stderr.
fn cloexec_all_fds() {
    // SAFETY: close_range with CLOSE_RANGE_CLOEXEC only changes fd flags.
    let r = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            3u32,
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        )
    };
    if r == 0 {
        return;
    }
    // Older kernels: walk the open descriptors.
    if let Ok(dir) = std::fs::read_dir("/proc/self/fd") {
        let fds: Vec<i32> = dir
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse().ok())
            .filter(|&fd| fd > 2)
            .collect();
        for fd in fds {
            // SAFETY: setting FD_CLOEXEC on a (possibly already closed) fd.
            unsafe {
                let flags = libc::fcntl(fd, libc::F_GETFD);
                if flags >= 0 {
                    libc::fcntl(fd, libc::F_SETFD, flags | libc::FD_CLOEXEC);
                }
            }
        }
    }
}

/// Everything the daemon child needs, prepared before forking.
struct Prepared {
    program: CString,
    argv: Vec<CString>,
    output: Option<PathBuf>,
    pidfile: Option<PathBuf>,
    creds: Option<Credentials>,
    nice: Option<i32>,
    directory: Option<PathBuf>,
    umask: Option<u32>,
}

/// `daemonize [OPTIONS] -- PROGRAM [ARGS...]`. Returns the exit status.
pub fn daemonize(opts: &DaemonizeOptions, program: &OsStr, args: &[OsString]) -> Result<i32> {
    let name = program.to_string_lossy().into_owned();
    if let Some(pf) = &opts.pidfile {
        if let PidFile::Running(pids) = procs::read_pidfile(pf)? {
            let pids: Vec<String> = pids.iter().map(|p| p.to_string()).collect();
            println!("{name} is already running (PID {})", pids.join(" "));
            return Ok(0);
        }
    }
    let resolved = procs::resolve_program(program)?;
    let mut argv = vec![cstring(program, "program name")?];
    for a in args {
        argv.push(cstring(a, "an argument")?);
    }
    let prepared = Prepared {
        program: cstring(resolved.as_os_str(), "program path")?,
        argv,
        output: opts.output.as_deref().map(absolute).transpose()?,
        pidfile: opts.pidfile.as_deref().map(absolute).transpose()?,
        creds: prepare_user(opts.user.as_deref())?,
        nice: opts.nice,
        directory: opts.directory.clone(),
        umask: opts.umask,
    };

    let mut fds = [0i32; 2];
    // SAFETY: pipe2 writes two descriptors into the array.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(last_err()).context("cannot create a pipe");
    }
    // SAFETY: both descriptors were just created and are owned here only.
    let (read_end, write_end) =
        unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };

    // This process is single-threaded (the CLI never starts threads), so
    // the children may allocate after fork.
    // SAFETY: fork in a single-threaded process.
    let first = unsafe { libc::fork() };
    if first < 0 {
        return Err(last_err()).context("cannot fork");
    }
    if first == 0 {
        drop(read_end);
        // SAFETY: setsid/fork/_exit are plain system calls.
        unsafe {
            if libc::setsid() < 0 {
                child_fail(&write_end, Stage::Setsid, &last_err());
            }
            let second = libc::fork();
            if second < 0 {
                child_fail(&write_end, Stage::Fork, &last_err());
            }
            if second > 0 {
                libc::_exit(0);
            }
        }
        run_daemon_child(&prepared, write_end);
    }
    drop(write_end);
    // Reap the intermediate process.
    let mut st = 0;
    // SAFETY: waiting for our own child.
    unsafe { libc::waitpid(first, &mut st, 0) };

    let mut report = Vec::new();
    let mut file = std::fs::File::from(read_end);
    file.read_to_end(&mut report)
        .context("cannot read the daemon's status")?;
    if report.is_empty() {
        // The pipe closed on exec: the program runs.
        return Ok(0);
    }
    if report.len() < 5 {
        bail!("{name}: the daemon process failed before starting");
    }
    let errno = i32::from_ne_bytes([report[1], report[2], report[3], report[4]]);
    let err = std::io::Error::from_raw_os_error(errno);
    let show = |p: &Option<PathBuf>| {
        p.as_deref()
            .map(|p| p.display().to_string())
            .unwrap_or_default()
    };
    let what = match report[0] {
        x if x == Stage::Output as u8 => format!("cannot open log file {}", show(&opts.output)),
        x if x == Stage::PidFile as u8 => format!("cannot write PID file {}", show(&opts.pidfile)),
        x if x == Stage::Directory as u8 => {
            format!("cannot change directory to {}", show(&opts.directory))
        }
        x if x == Stage::Nice as u8 => "cannot set the nice value".to_string(),
        x if x == Stage::Stdio as u8 => "cannot redirect standard input/output".to_string(),
        x if x == Stage::User as u8 => {
            format!(
                "cannot switch to user {}",
                opts.user.as_deref().unwrap_or("")
            )
        }
        x if x == Stage::Exec as u8 => format!("cannot execute {name}"),
        x if x == Stage::Fork as u8 => "cannot fork".to_string(),
        x if x == Stage::Setsid as u8 => "cannot create a session".to_string(),
        _ => "the daemon process failed".to_string(),
    };
    bail!("{what}: {err}")
}

/// The final child: set up the process and exec the program. On any
/// failure, report through `pipe` and `_exit`; on success the pipe closes
/// on exec.
fn run_daemon_child(p: &Prepared, pipe: OwnedFd) -> ! {
    // SAFETY (whole function): system calls on descriptors and memory owned
    // here; the process is a single-threaded fork child.
    unsafe {
        // A clean signal state: nothing blocked, SIGPIPE (ignored by the
        // Rust runtime) and everything else back to default.
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
        for sig in 1..32 {
            if sig != libc::SIGKILL && sig != libc::SIGSTOP {
                libc::signal(sig, libc::SIG_DFL);
            }
        }
    }
    cloexec_all_fds();

    // Open the log before dropping privileges: /var/log is root's.
    let out_fd = match &p.output {
        Some(path) => {
            use std::os::unix::fs::OpenOptionsExt;
            match std::fs::OpenOptions::new()
                .append(true)
                .create(true)
                .mode(0o640)
                .open(path)
            {
                Ok(f) => OwnedFd::from(f),
                Err(e) => child_fail(&pipe, Stage::Output, &e),
            }
        }
        None => match std::fs::OpenOptions::new().write(true).open("/dev/null") {
            Ok(f) => OwnedFd::from(f),
            Err(e) => child_fail(&pipe, Stage::Stdio, &e),
        },
    };
    let null_in = match std::fs::File::open("/dev/null") {
        Ok(f) => OwnedFd::from(f),
        Err(e) => child_fail(&pipe, Stage::Stdio, &e),
    };

    // SAFETY: getpid has no preconditions; the PID survives exec.
    let pid = unsafe { libc::getpid() };
    if let Some(pf) = &p.pidfile {
        if let Err(e) = write_pidfile(pf, pid) {
            child_fail(&pipe, Stage::PidFile, &e);
        }
    }
    let fail = |stage: Stage, e: &std::io::Error| -> ! {
        if let Some(pf) = &p.pidfile {
            let _ = std::fs::remove_file(pf);
        }
        child_fail(&pipe, stage, e)
    };
    if let Some(dir) = &p.directory {
        if let Err(e) = std::env::set_current_dir(dir) {
            fail(Stage::Directory, &e);
        }
    }
    // SAFETY: plain system calls.
    unsafe {
        if let Some(m) = p.umask {
            libc::umask(m as libc::mode_t);
        }
        if let Some(n) = p.nice {
            if let Err(e) = apply_nice(n) {
                fail(Stage::Nice, &e);
            }
        }
        if libc::dup2(null_in.as_raw_fd(), 0) < 0
            || libc::dup2(out_fd.as_raw_fd(), 1) < 0
            || libc::dup2(out_fd.as_raw_fd(), 2) < 0
        {
            fail(Stage::Stdio, &last_err());
        }
    }
    drop(null_in);
    drop(out_fd);
    if let Some(c) = &p.creds {
        if let Err(e) = users::switch_to(c) {
            fail(Stage::User, &e);
        }
    }
    let mut argv: Vec<*const libc::c_char> = p.argv.iter().map(|a| a.as_ptr()).collect();
    argv.push(std::ptr::null());
    // SAFETY: NUL-terminated argv of valid C strings; the environment is
    // inherited unchanged (execv uses `environ`).
    unsafe { libc::execv(p.program.as_ptr(), argv.as_ptr()) };
    fail(Stage::Exec, &last_err())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn umask_parsing() {
        assert_eq!(parse_umask("022").unwrap(), 0o22);
        assert_eq!(parse_umask("0027").unwrap(), 0o27);
        assert!(parse_umask("").is_err());
        assert!(parse_umask("9").is_err());
        assert!(parse_umask("1777").is_err());
    }

    #[test]
    fn pidfile_is_atomic_and_0644() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        let pf = tmp.path().join("x.pid");
        std::fs::write(&pf, "garbage").unwrap();
        write_pidfile(&pf, 1234).unwrap();
        assert_eq!(std::fs::read_to_string(&pf).unwrap(), "1234\n");
        assert_eq!(
            std::fs::metadata(&pf).unwrap().permissions().mode() & 0o777,
            0o644
        );
        assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 1);
    }
}
