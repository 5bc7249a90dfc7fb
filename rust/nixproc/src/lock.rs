//! The profile lock: an exclusive `flock` on `<profile dir>/<name>.lock`,
//! held for a whole switch, rollback or generation operation, so two
//! switches never race on the profile and the process manager (defect 13 of
//! the original).
//!
//! It is the same file and lock kind `nix-env` uses for the profile, and it
//! follows Nix's protocol for lock files deleted by their holder (Nix writes
//! a byte into a lock file before unlinking it): a lock taken on a file that
//! is stale — non-empty, or no longer the file at the path — is retried.

use std::fs::{File, OpenOptions, TryLockError};
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// What to do when another process holds the lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LockMode {
    /// Wait until it is released.
    #[default]
    Wait,
    /// Fail with [`LockError::Busy`].
    NoWait,
}

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("another nixproc switch holds {}; try again later or wait for it", .path.display())]
    Busy { path: PathBuf },
    #[error("locking {}: {source}", .path.display())]
    Io { path: PathBuf, source: io::Error },
}

/// A held lock; released when dropped.
#[derive(Debug)]
pub struct ProfileLock {
    file: File,
    path: PathBuf,
}

impl ProfileLock {
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for ProfileLock {
    fn drop(&mut self) {
        let _ = self.file.unlock();
    }
}

/// Takes an exclusive lock on `path` (created if missing). With
/// [`LockMode::Wait`], `on_wait` is called once before blocking, so the
/// caller can say what it waits for.
pub fn acquire(path: &Path, mode: LockMode, on_wait: &dyn Fn()) -> Result<ProfileLock, LockError> {
    let io_err = |source| LockError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut waited = false;
    loop {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(io_err)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => match mode {
                LockMode::NoWait => {
                    return Err(LockError::Busy {
                        path: path.to_path_buf(),
                    })
                }
                LockMode::Wait => {
                    if !waited {
                        on_wait();
                        waited = true;
                    }
                    file.lock().map_err(io_err)?;
                }
            },
            Err(TryLockError::Error(e)) => return Err(io_err(e)),
        }
        match staleness(&file, path).map_err(io_err)? {
            Staleness::Fresh => {
                return Ok(ProfileLock {
                    file,
                    path: path.to_path_buf(),
                })
            }
            // The previous holder deleted the file; lock the new one.
            Staleness::Unlinked => {}
            // Marked stale but still in place (a leftover): we hold its
            // lock, so nobody else uses it; replace it.
            Staleness::Marked => match std::fs::remove_file(path) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_err(e)),
            },
        }
    }
}

enum Staleness {
    Fresh,
    Unlinked,
    Marked,
}

fn staleness(file: &File, path: &Path) -> io::Result<Staleness> {
    let held = file.metadata()?;
    let same = match std::fs::metadata(path) {
        Ok(now) => now.ino() == held.ino() && now.dev() == held.dev(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => false,
        Err(e) => return Err(e),
    };
    Ok(match (same, held.len() != 0) {
        (false, _) => Staleness::Unlinked,
        (true, true) => Staleness::Marked,
        (true, false) => Staleness::Fresh,
    })
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{mpsc, Arc};
    use std::time::Duration;

    use super::*;

    #[test]
    fn no_wait_fails_while_held() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("processes.lock");
        let first = acquire(&path, LockMode::NoWait, &|| {}).unwrap();
        let err = acquire(&path, LockMode::NoWait, &|| {}).unwrap_err();
        assert!(matches!(err, LockError::Busy { .. }));
        assert!(err.to_string().starts_with("another nixproc switch holds "));
        drop(first);
        acquire(&path, LockMode::NoWait, &|| {}).unwrap();
    }

    #[test]
    fn wait_blocks_until_released_and_says_so() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("processes.lock");
        let first = acquire(&path, LockMode::Wait, &|| {}).unwrap();
        let said = Arc::new(AtomicBool::new(false));
        let (tx, rx) = mpsc::channel();
        let t = {
            let (path, said) = (path.clone(), said.clone());
            std::thread::spawn(move || {
                let l = acquire(&path, LockMode::Wait, &|| {
                    said.store(true, Ordering::SeqCst)
                })
                .unwrap();
                tx.send(()).unwrap();
                drop(l);
            })
        };
        // Still blocked while the first lock is held.
        assert!(rx.recv_timeout(Duration::from_millis(300)).is_err());
        assert!(said.load(Ordering::SeqCst));
        drop(first);
        rx.recv_timeout(Duration::from_secs(10)).unwrap();
        t.join().unwrap();
    }

    #[test]
    fn stale_lock_file_is_retried() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("processes.lock");
        // A holder that marks the file stale and deletes it, as Nix does.
        std::fs::write(&path, "d").unwrap();
        let l = acquire(&path, LockMode::NoWait, &|| {}).unwrap();
        // The non-empty file was replaced by a fresh one.
        assert_eq!(std::fs::metadata(l.path()).unwrap().len(), 0);
    }
}
