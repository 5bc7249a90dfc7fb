//! `sqlite`: one SQLite database file.
//!
//! * **capture**: `sqlite3 <db> ".backup x.sqlite"` — SQLite's online
//!   backup API, consistent while the service writes — run in a private
//!   directory created next to the database (so the tool can run as the
//!   service's account, which can always write there; no path goes through
//!   the dot-command parser: the backup name is relative to the tool's
//!   working directory). The copy is then streamed out. A database file that
//!   does not exist is captured as an empty stream, and restoring an empty
//!   stream removes the database (the state was "no database yet").
//! * **stage**: the stream is written to a temporary file in the database's
//!   directory (same file system: the apply is a rename) and checked with
//!   `PRAGMA integrity_check`.
//! * **apply**: the old database is checkpointed (best effort, so a crash
//!   leaves it whole), its `-wal`/`-shm`/`-journal` files are removed (a
//!   stale WAL would be replayed onto the new file), and the staged file is
//!   renamed over it.
//!
//! A restore requires the writer to be stopped: the switch and `nixproc
//! state restore` stop the instance first. Replacing the file under a
//! running process would leave it writing to the unlinked old inode.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use nixproc_core::lifecycle::{StateUnit, UnitKind};

use super::tool::{self, Cmd};
use super::{Adapter, StagedRestore, UnitContext};

pub struct Sqlite {
    unit: StateUnit,
}

impl Sqlite {
    pub fn new(unit: &StateUnit) -> Self {
        Sqlite { unit: unit.clone() }
    }

    fn parts(&self) -> (&Path, Option<&str>) {
        match &self.unit.kind {
            UnitKind::Sqlite { path, package } => (Path::new(path), package.as_deref()),
            other => unreachable!("sqlite adapter for a {other:?} unit"),
        }
    }

    fn sqlite3(&self, ctx: &UnitContext) -> Result<PathBuf> {
        tool::locate("sqlite3", self.parts().1, ctx)
    }
}

/// `<dir>/.<file>.nixproc-<what>-<unique>`: a temporary name next to the
/// database.
fn sibling(live: &Path, what: &str) -> Result<PathBuf> {
    let (dir, name) = split(live)?;
    Ok(dir.join(format!(".{name}.nixproc-{what}-{}", tool::unique())))
}

fn split(live: &Path) -> Result<(&Path, String)> {
    let dir = live
        .parent()
        .with_context(|| format!("{} has no directory", live.display()))?;
    let name = live
        .file_name()
        .with_context(|| format!("{} has no file name", live.display()))?
        .to_string_lossy()
        .into_owned();
    Ok((dir, name))
}

/// `<db>-wal`, `<db>-shm`, `<db>-journal`.
fn sidecars(db: &Path) -> [PathBuf; 3] {
    let with = |suffix: &str| {
        let mut s = db.as_os_str().to_owned();
        s.push(suffix);
        PathBuf::from(s)
    };
    [with("-wal"), with("-shm"), with("-journal")]
}

fn remove_if_present(p: &Path) -> Result<()> {
    match fs::remove_file(p) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).with_context(|| format!("removing {}", p.display())),
    }
}

/// Removes a temporary directory (and what the tool left in it) on drop.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

impl Adapter for Sqlite {
    fn extension(&self) -> &'static str {
        "sqlite"
    }

    fn capture(&self, ctx: &UnitContext, out: &mut dyn Write) -> Result<()> {
        let (live, _) = self.parts();
        if fs::symlink_metadata(live).is_err() {
            // No database yet: the empty stream stands for "absent".
            return Ok(());
        }
        let sqlite3 = self.sqlite3(ctx)?;
        let dir = TempDir(sibling(live, "capture")?);
        fs::DirBuilder::new()
            .mode(0o700)
            .create(&dir.0)
            .with_context(|| format!("creating {}", dir.0.display()))?;
        tool::give_to_run_as(&dir.0, ctx)?;
        let mut cmd = Cmd::new("sqlite3", sqlite3);
        cmd.arg(live).arg(".backup main x.sqlite");
        cmd.cwd = Some(dir.0.clone());
        cmd.run(ctx, None)?;
        let copy = dir.0.join("x.sqlite");
        let mut f = File::open(&copy)
            .with_context(|| format!("sqlite3 .backup of {} wrote no copy", live.display()))?;
        io::copy(&mut f, out)
            .with_context(|| format!("streaming the backup of {}", live.display()))?;
        Ok(())
    }

    fn stage(&self, ctx: &UnitContext, input: &mut dyn Read) -> Result<Box<dyn StagedRestore>> {
        let (live, package) = self.parts();
        let path = sibling(live, "restore")?;
        let mut staged = Staged {
            live: live.to_path_buf(),
            staged: Some(path.clone()),
            package: package.map(str::to_string),
        };
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .with_context(|| format!("creating {}", path.display()))?;
        let n = io::copy(input, &mut f).with_context(|| format!("writing {}", path.display()))?;
        f.sync_all()?;
        drop(f);
        if n == 0 {
            // The database did not exist when the snapshot was taken.
            remove_if_present(&path)?;
            staged.staged = None;
            return Ok(Box::new(staged));
        }
        // The restored file gets the live file's owner and mode, else
        // belongs to the service's account.
        match fs::metadata(live) {
            Ok(m) => {
                fs::set_permissions(&path, fs::Permissions::from_mode(m.mode() & 0o7777))?;
                tool::chown_if_root(&path, m.uid(), m.gid())?;
            }
            Err(_) => tool::give_to_run_as(&path, ctx)?,
        }
        let mut cmd = Cmd::new("sqlite3", self.sqlite3(ctx)?);
        cmd.arg(&path).arg("PRAGMA integrity_check;");
        let report = cmd.run(ctx, None).with_context(|| {
            format!(
                "the snapshot of state unit {} of {} is not a readable SQLite database",
                ctx.unit, ctx.instance
            )
        })?;
        let report = String::from_utf8_lossy(&report);
        if report.trim() != "ok" {
            bail!(
                "the snapshot of state unit {} of {} fails SQLite's integrity check: {}",
                ctx.unit,
                ctx.instance,
                tool::tail(report.trim(), 1000)
            );
        }
        for s in sidecars(&path) {
            remove_if_present(&s)?;
        }
        Ok(Box::new(staged))
    }
}

/// A checked copy next to the live database.
struct Staged {
    live: PathBuf,
    /// `None`: the database is to be absent.
    staged: Option<PathBuf>,
    package: Option<String>,
}

impl Staged {
    /// Folds the old database's WAL into it and rolls back a hot journal,
    /// so removing them below loses nothing even if we crash before the
    /// rename. Best effort: a damaged database (the reason to restore)
    /// may refuse.
    fn settle_old(&self, ctx: &UnitContext) {
        if !self.live.exists() {
            return;
        }
        let Ok(sqlite3) = tool::locate("sqlite3", self.package.as_deref(), ctx) else {
            return;
        };
        let mut cmd = Cmd::new("sqlite3", sqlite3);
        cmd.arg(&self.live).arg("PRAGMA wal_checkpoint(TRUNCATE);");
        if let Err(e) = cmd.run(ctx, None) {
            eprintln!(
                "nixproc: warning: could not checkpoint {} before replacing it: {e:#}",
                self.live.display()
            );
        }
    }
}

impl StagedRestore for Staged {
    fn apply(mut self: Box<Self>, ctx: &UnitContext) -> Result<()> {
        self.settle_old(ctx);
        for s in sidecars(&self.live) {
            remove_if_present(&s)?;
        }
        match self.staged.take() {
            Some(staged) => {
                if let Err(e) = fs::rename(&staged, &self.live) {
                    let _ = fs::remove_file(&staged);
                    return Err(e).with_context(|| {
                        format!("renaming {} to {}", staged.display(), self.live.display())
                    });
                }
            }
            None => remove_if_present(&self.live)?,
        }
        let (dir, _) = split(&self.live)?;
        File::open(dir)
            .and_then(|d| d.sync_all())
            .with_context(|| format!("syncing {}", dir.display()))?;
        Ok(())
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        if let Some(p) = self.staged.take() {
            let _ = fs::remove_file(&p);
            for s in sidecars(&p) {
                let _ = fs::remove_file(s);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sidecars_are_the_sqlite_names() {
        let s = sidecars(Path::new("/var/lib/app/db.sqlite"));
        assert_eq!(s[0], Path::new("/var/lib/app/db.sqlite-wal"));
        assert_eq!(s[1], Path::new("/var/lib/app/db.sqlite-shm"));
        assert_eq!(s[2], Path::new("/var/lib/app/db.sqlite-journal"));
    }

    #[test]
    fn temporary_names_stay_next_to_the_database_and_hidden() {
        let p = sibling(Path::new("/var/lib/app/db.sqlite"), "restore").unwrap();
        assert_eq!(p.parent().unwrap(), Path::new("/var/lib/app"));
        let name = p.file_name().unwrap().to_str().unwrap();
        assert!(name.starts_with(".db.sqlite.nixproc-restore-"), "{name}");
    }
}
