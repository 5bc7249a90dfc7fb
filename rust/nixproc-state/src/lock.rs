//! flock(2) locks on `<root>/lock` (global) and `instances/<i>/lock` (per
//! instance). The kernel releases them when the process dies, so a crash
//! never leaves a stale lock (unlike Disnix's `O_EXCL` lock files).
//!
//! The holder of an exclusive lock writes its pid and command line into
//! the lock file, for the "waiting for …" message of the next one.
//!
//! Which operation takes which lock (taken by [`crate::StateStore`]
//! itself, never twice by the same store):
//!
//! | operation | global `<root>/lock` | `instances/<i>/lock` |
//! |---|---|---|
//! | switch (caller, [`crate::StateStore::lock_exclusive`]) | exclusive | — |
//! | snapshot (`begin` … `commit`) | shared | exclusive |
//! | restore | exclusive | exclusive |
//! | gc, import | exclusive | — |
//! | export | shared | — |
//! | list, show, find, verify | none (objects are immutable) | — |

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use rustix::fs::FlockOperation;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockMode {
    Shared,
    Exclusive,
}

/// A held flock; released on drop (or when the process dies).
#[derive(Debug)]
pub struct FileLock {
    _file: File,
    path: PathBuf,
    mode: LockMode,
}

impl FileLock {
    pub fn path(&self) -> &Path {
        &self.path
    }
    pub fn mode(&self) -> LockMode {
        self.mode
    }
}

fn open(path: &Path) -> Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("opening lock file {}", path.display()))
}

fn op(mode: LockMode, blocking: bool) -> FlockOperation {
    match (mode, blocking) {
        (LockMode::Shared, true) => FlockOperation::LockShared,
        (LockMode::Shared, false) => FlockOperation::NonBlockingLockShared,
        (LockMode::Exclusive, true) => FlockOperation::LockExclusive,
        (LockMode::Exclusive, false) => FlockOperation::NonBlockingLockExclusive,
    }
}

fn acquired(file: File, path: &Path, mode: LockMode) -> FileLock {
    let mut file = file;
    if mode == LockMode::Exclusive {
        // Diagnostics only: a failure to write them does not matter.
        let argv: Vec<String> = std::env::args().collect();
        let _ = file.set_len(0);
        let _ = file.seek(SeekFrom::Start(0));
        let _ = writeln!(file, "pid {}\n{}", std::process::id(), argv.join(" "));
    }
    FileLock {
        _file: file,
        path: path.to_path_buf(),
        mode,
    }
}

/// Who holds (or last held) the lock, as written into the lock file.
pub fn holder(path: &Path) -> Option<String> {
    let mut s = String::new();
    File::open(path).ok()?.read_to_string(&mut s).ok()?;
    let s = s.trim().replace('\n', ": ");
    (!s.is_empty()).then_some(s)
}

/// Takes the lock without waiting; `None` when someone else holds it.
pub fn try_lock(path: &Path, mode: LockMode) -> Result<Option<FileLock>> {
    let file = open(path)?;
    match rustix::fs::flock(&file, op(mode, false)) {
        Ok(()) => Ok(Some(acquired(file, path, mode))),
        Err(rustix::io::Errno::WOULDBLOCK) => Ok(None),
        Err(e) => Err(e).with_context(|| format!("locking {}", path.display())),
    }
}

/// Takes the lock, first without waiting; when it is held, calls `waiting`
/// with a message naming the holder (when known) and then blocks.
pub fn lock(path: &Path, mode: LockMode, waiting: &dyn Fn(&str)) -> Result<FileLock> {
    if let Some(l) = try_lock(path, mode)? {
        return Ok(l);
    }
    let who = holder(path)
        .map(|h| format!(" (held by {h})"))
        .unwrap_or_default();
    waiting(&format!("waiting for the lock {}{who}", path.display()));
    let file = open(path)?;
    loop {
        match rustix::fs::flock(&file, op(mode, true)) {
            Ok(()) => return Ok(acquired(file, path, mode)),
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(e).with_context(|| format!("locking {}", path.display())),
        }
    }
}
