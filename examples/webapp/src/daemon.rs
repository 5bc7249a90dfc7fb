//! Daemon mode (`-D`), systemd daemon(7) style.

use crate::{bind, serve, signals, Config, Fatal};
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

/// Whether `pid` names a live process (zombies count as dead).
pub fn is_alive(pid: i32) -> bool {
    if pid <= 0 {
        return false;
    }
    match std::fs::read(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            let Some(close) = stat.iter().rposition(|&b| b == b')') else {
                return false;
            };
            let state = stat[close + 1..].iter().find(|b| !b.is_ascii_whitespace());
            !matches!(state, Some(b'Z') | Some(b'X') | None)
        }
        Err(_) if !Path::new("/proc/self").exists() => {
            // No /proc: ask the kernel.
            // SAFETY: signal 0 only checks for existence.
            let r = unsafe { libc::kill(pid, 0) };
            r == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
        }
        Err(_) => false,
    }
}

/// The PID a PID file names, if it is a positive integer.
pub fn read_pid(path: &Path) -> Option<i32> {
    let text = std::fs::read_to_string(path).ok()?;
    text.lines()
        .next()?
        .trim()
        .parse()
        .ok()
        .filter(|&p: &i32| p > 0)
}

/// Writes our PID atomically (temp file + rename), mode 0644, replacing a
/// stale file.
pub fn write_pid_file(path: &Path, pid: i32) -> std::io::Result<()> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path.file_name().ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "PID_FILE has no file name",
        )
    })?;
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
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

/// Removes the PID file if it still names us (a newer instance may own it).
pub fn remove_pid_file(path: &Path, pid: i32) {
    if read_pid(path) == Some(pid) {
        let _ = std::fs::remove_file(path);
    }
}

fn last_err() -> std::io::Error {
    std::io::Error::last_os_error()
}

/// Reports a start-up failure to the original process and exits.
fn fail(pipe: &OwnedFd, msg: &str) -> ! {
    let mut report = vec![1u8];
    report.extend_from_slice(msg.as_bytes());
    // SAFETY: writing a buffer to an open descriptor, then _exit.
    unsafe {
        libc::write(pipe.as_raw_fd(), report.as_ptr().cast(), report.len());
        libc::_exit(1);
    }
}

/// Closes every inherited descriptor above 2 except `keep` (the original
/// program's fix 39 failure: it closed nothing).
fn close_inherited(keep: i32) {
    let fds: Vec<i32> = match std::fs::read_dir("/proc/self/fd") {
        Ok(dir) => dir
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse().ok())
            .collect(),
        Err(_) => {
            // SAFETY: sysconf has no preconditions.
            let max = unsafe { libc::sysconf(libc::_SC_OPEN_MAX) };
            let max = if max <= 0 {
                1024
            } else {
                max.min(65536) as i32
            };
            (3..max).collect()
        }
    };
    for fd in fds {
        if fd > 2 && fd != keep {
            // SAFETY: closing descriptors nobody in this process uses (the
            // read_dir handle is already dropped).
            unsafe { libc::close(fd) };
        }
    }
}

/// Runs in daemon mode. Returns only in the original process, with its
/// result.
pub fn run(cfg: Config) -> Result<(), Fatal> {
    let pid_file = cfg
        .pid_file
        .clone()
        .expect("daemon mode requires PID_FILE (checked by config)");
    if let Some(pid) = read_pid(&pid_file) {
        if is_alive(pid) {
            return Err(Fatal(format!(
                "already running with PID {pid} (according to {})",
                pid_file.display()
            )));
        }
    }

    let mut fds = [0i32; 2];
    // SAFETY: pipe2 fills the array.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(Fatal(format!("cannot create a pipe: {}", last_err())));
    }
    // SAFETY: fresh descriptors owned only here.
    let (read_end, write_end) =
        unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };

    // No thread has been started yet, so forking is safe.
    // SAFETY: fork in a single-threaded process.
    let first = unsafe { libc::fork() };
    if first < 0 {
        return Err(Fatal(format!("cannot fork: {}", last_err())));
    }
    if first > 0 {
        drop(write_end);
        let mut st = 0;
        // SAFETY: reaping our own child.
        unsafe { libc::waitpid(first, &mut st, 0) };
        let mut report = Vec::new();
        let _ = std::fs::File::from(read_end).read_to_end(&mut report);
        return match report.first() {
            Some(0) => Ok(()),
            Some(_) => Err(Fatal(String::from_utf8_lossy(&report[1..]).into_owned())),
            None => Err(Fatal("the daemon exited during start-up".into())),
        };
    }

    // Intermediate child: new session, then the daemon.
    drop(read_end);
    // SAFETY: plain system calls.
    unsafe {
        if libc::setsid() < 0 {
            fail(
                &write_end,
                &format!("cannot create a session: {}", last_err()),
            );
        }
        let second = libc::fork();
        if second < 0 {
            fail(&write_end, &format!("cannot fork: {}", last_err()));
        }
        if second > 0 {
            libc::_exit(0);
        }
    }

    // The daemon. Working directory and umask stay as the process manager
    // set them.
    close_inherited(write_end.as_raw_fd());
    // SAFETY: resetting the signal mask of this single-threaded process.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
    }
    if let Err(e) = signals::install() {
        fail(&write_end, &format!("cannot install signal handlers: {e}"));
    }
    let listener = match bind(cfg.addr) {
        Ok(l) => l,
        Err(Fatal(msg)) => fail(&write_end, &msg),
    };
    // SAFETY: getpid has no preconditions.
    let pid = unsafe { libc::getpid() };
    // The check above ran in the original process; check again as the
    // daemon, right before taking the file over.
    if let Some(other) = read_pid(&pid_file) {
        if other != pid && is_alive(other) {
            fail(
                &write_end,
                &format!(
                    "already running with PID {other} (according to {})",
                    pid_file.display()
                ),
            );
        }
    }
    if let Err(e) = write_pid_file(&pid_file, pid) {
        fail(
            &write_end,
            &format!("cannot write PID file {}: {e}", pid_file.display()),
        );
    }
    // stdio → /dev/null.
    match std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
    {
        Ok(null) => {
            // SAFETY: duplicating a valid descriptor onto 0, 1, 2.
            unsafe {
                libc::dup2(null.as_raw_fd(), 0);
                libc::dup2(null.as_raw_fd(), 1);
                libc::dup2(null.as_raw_fd(), 2);
            }
        }
        Err(e) => {
            remove_pid_file(&pid_file, pid);
            fail(&write_end, &format!("cannot open /dev/null: {e}"));
        }
    }
    // Ready.
    let mut pipe = std::fs::File::from(write_end);
    let _ = pipe.write_all(&[0]);
    drop(pipe);

    serve(listener, cfg.site);
    remove_pid_file(&pid_file, pid);
    std::process::exit(0);
}
