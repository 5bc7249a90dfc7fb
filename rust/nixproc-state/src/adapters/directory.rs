//! `directory` units: a deterministic tar of the tree ([`crate::archive`]).
//!
//! **Capture.** The tree under `path` without the `exclude` globs. A
//! directory that does not exist is captured as *absent*: an empty stream
//! (a real archive is never empty: it holds at least the root entry and
//! the end-of-archive blocks). Restoring an absent capture removes the
//! live directory, so a rollback to "before the service ever wrote here"
//! is exact.
//!
//! **Restore.** *Stage*: unpack into a fresh `<parent>/.<name>.nixproc-restore-<rand>`
//! (same file system as the live directory, so the swap is a rename; the
//! parent is created when missing). *Apply*: rename live →
//! `<parent>/.<name>.nixproc-old-<rand>`, rename stage → live, fsync the
//! parent, remove the old tree. The staged tree is flushed with `syncfs`
//! before it is renamed in, so a power cut cannot make half-written files
//! live. The top directory's mode (and owner, as
//! root) come from the archive's root entry.
//!
//! **Crash between the renames** (fault point `directory.between-renames`):
//! live is missing and an `-old-` tree holds the old state. [`recover`]
//! (run by every snapshot, restore and [`crate::StateStore::recover`] of
//! the unit before anything else) *undoes* the restore: it renames the old
//! tree back. When live exists, `-old-` leftovers are a completed swap
//! whose cleanup was cut short and are removed; `-restore-` stages are
//! always removed. So after any crash the directory is entirely old or
//! entirely new.

use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use nixproc_core::lifecycle::{StateUnit, UnitKind};

use super::{Adapter, StagedRestore, UnitContext};
use crate::archive;
use crate::faults;
use crate::store::{fsync_dir, random_hex, PeekEmpty};

pub struct Directory {
    path: PathBuf,
    exclude: Vec<String>,
}

impl Directory {
    pub fn new(unit: &StateUnit) -> Self {
        match &unit.kind {
            UnitKind::Directory { path, exclude } => Directory {
                path: PathBuf::from(path),
                exclude: exclude.clone(),
            },
            other => panic!("directory adapter for a {other:?} unit"),
        }
    }
}

fn split(path: &Path) -> Result<(PathBuf, String)> {
    let parent = path.parent().filter(|p| !p.as_os_str().is_empty());
    let name = path.file_name();
    match (parent, name) {
        (Some(p), Some(n)) => Ok((p.to_path_buf(), n.to_string_lossy().into_owned())),
        _ => bail!(
            "{} cannot be restored (no parent directory)",
            path.display()
        ),
    }
}

/// Settles a restore of `path` interrupted by a crash (see the module
/// doc). Returns a line per action taken.
pub fn recover(path: &Path) -> Result<Vec<String>> {
    let (parent, name) = split(path)?;
    let entries = match fs::read_dir(&parent) {
        Ok(it) => it,
        Err(_) => return Ok(Vec::new()),
    };
    let old_prefix = format!(".{name}.nixproc-old-");
    let stage_prefix = format!(".{name}.nixproc-restore-");
    let mut olds = Vec::new();
    let mut stages = Vec::new();
    for e in entries.flatten() {
        let n = e.file_name().to_string_lossy().into_owned();
        if n.starts_with(&old_prefix) {
            olds.push(e.path());
        } else if n.starts_with(&stage_prefix) {
            stages.push(e.path());
        }
    }
    let mut done = Vec::new();
    let live_exists = fs::symlink_metadata(path).is_ok();
    if !live_exists && !olds.is_empty() {
        if olds.len() > 1 {
            bail!(
                "{} is missing and several interrupted restores left old copies ({}); \
                 move the right one back by hand",
                path.display(),
                olds.iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        let old = olds.pop().expect("one");
        fs::rename(&old, path)
            .with_context(|| format!("moving {} back to {}", old.display(), path.display()))?;
        fsync_dir(&parent)?;
        done.push(format!(
            "{}: an interrupted restore was undone (the previous content is back)",
            path.display()
        ));
    }
    for p in olds.into_iter().chain(stages) {
        archive::remove_tree(&p).with_context(|| format!("removing {}", p.display()))?;
        done.push(format!(
            "{}: removed the leftover {}",
            path.display(),
            p.display()
        ));
    }
    Ok(done)
}

impl Adapter for Directory {
    fn extension(&self) -> &'static str {
        "tar"
    }

    fn capture(&self, _ctx: &UnitContext, out: &mut dyn Write) -> Result<()> {
        recover(&self.path)?;
        match fs::symlink_metadata(&self.path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e).with_context(|| format!("reading {}", self.path.display())),
            Ok(m) if !m.is_dir() => bail!("{} is not a directory", self.path.display()),
            Ok(_) => {}
        }
        let report = archive::pack(&self.path, &self.exclude, out)?;
        for s in &report.skipped {
            eprintln!("nixproc: {}: {s}", self.path.display());
        }
        Ok(())
    }

    fn stage(&self, ctx: &UnitContext, input: &mut dyn Read) -> Result<Box<dyn StagedRestore>> {
        let (parent, name) = split(&self.path)?;
        let mut input = PeekEmpty::new(input);
        if input.is_empty()? {
            return Ok(Box::new(Staged {
                live: self.path.clone(),
                parent,
                name,
                stage: None,
            }));
        }
        fs::create_dir_all(&parent).with_context(|| format!("creating {}", parent.display()))?;
        let stage = parent.join(format!(".{name}.nixproc-restore-{}", random_hex()));
        fs::DirBuilder::new()
            .mode(0o700)
            .create(&stage)
            .with_context(|| format!("creating {}", stage.display()))?;
        let staged = Staged {
            live: self.path.clone(),
            parent,
            name,
            stage: Some(stage.clone()),
        };
        // On error `staged` is dropped and removes the stage.
        archive::unpack(&mut input, &stage).with_context(|| {
            format!(
                "unit {} of {}: unpacking into {}",
                ctx.unit,
                ctx.instance,
                stage.display()
            )
        })?;
        Ok(Box::new(staged))
    }
}

struct Staged {
    live: PathBuf,
    parent: PathBuf,
    name: String,
    /// `None`: the directory was absent when captured.
    stage: Option<PathBuf>,
}

impl StagedRestore for Staged {
    fn apply(mut self: Box<Self>, _ctx: &UnitContext) -> Result<()> {
        if let Some(stage) = &self.stage {
            // The staged files are durable before they become live (one
            // syncfs instead of an fsync per file).
            let f =
                fs::File::open(stage).with_context(|| format!("opening {}", stage.display()))?;
            rustix::fs::syncfs(&f).with_context(|| format!("syncing {}", stage.display()))?;
        }
        let old = self
            .parent
            .join(format!(".{}.nixproc-old-{}", self.name, random_hex()));
        let had_live = fs::symlink_metadata(&self.live).is_ok();
        if had_live {
            fs::rename(&self.live, &old)
                .with_context(|| format!("moving {} aside", self.live.display()))?;
        }
        faults::point("directory.between-renames");
        if let Some(stage) = self.stage.take() {
            if let Err(e) = fs::rename(&stage, &self.live) {
                // Put the old state back: nothing changed.
                if had_live {
                    let _ = fs::rename(&old, &self.live);
                }
                let _ = archive::remove_tree(&stage);
                return Err(e).with_context(|| {
                    format!("moving the restored tree to {}", self.live.display())
                });
            }
        }
        fsync_dir(&self.parent)?;
        if had_live {
            archive::remove_tree(&old).with_context(|| format!("removing {}", old.display()))?;
        }
        Ok(())
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        if let Some(s) = &self.stage {
            let _ = archive::remove_tree(s);
        }
    }
}
