//! The state directory layout (`--state-dir` and friends) and
//! `init-state`, which creates it.
//!
//! Defaults follow the processes model's own defaults, so passing them all
//! to Nix changes nothing: runtime/log/cache/spool/lock/lib are
//! `<state>/<dir>`, tmp is `/tmp` when state is `/var` and `<state>/tmp`
//! otherwise.

use std::fs;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::Serialize;

pub const DEFAULT_STATE_DIR: &str = "/var";

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StateDirs {
    pub state: PathBuf,
    pub runtime: PathBuf,
    pub log: PathBuf,
    pub tmp: PathBuf,
    pub cache: PathBuf,
    pub spool: PathBuf,
    pub lock: PathBuf,
    pub lib: PathBuf,
}

/// Directories given explicitly (`--runtime-dir`, …, or `NIXPROC_*_DIR`);
/// `None` takes the default derived from the state dir.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StateDirOverrides {
    pub runtime: Option<PathBuf>,
    pub log: Option<PathBuf>,
    pub tmp: Option<PathBuf>,
    pub cache: Option<PathBuf>,
    pub spool: Option<PathBuf>,
    pub lock: Option<PathBuf>,
    pub lib: Option<PathBuf>,
}

impl Default for StateDirs {
    fn default() -> Self {
        StateDirs::from_state_dir(DEFAULT_STATE_DIR, &StateDirOverrides::default())
    }
}

impl StateDirs {
    pub fn from_state_dir(state: impl Into<PathBuf>, overrides: &StateDirOverrides) -> Self {
        let state = state.into();
        let or = |o: &Option<PathBuf>, sub: &str| o.clone().unwrap_or_else(|| state.join(sub));
        let tmp = overrides.tmp.clone().unwrap_or_else(|| {
            if state == Path::new(DEFAULT_STATE_DIR) {
                PathBuf::from("/tmp")
            } else {
                state.join("tmp")
            }
        });
        StateDirs {
            runtime: or(&overrides.runtime, "run"),
            log: or(&overrides.log, "log"),
            tmp,
            cache: or(&overrides.cache, "cache"),
            spool: or(&overrides.spool, "spool"),
            lock: or(&overrides.lock, "lock"),
            lib: or(&overrides.lib, "lib"),
            state,
        }
    }

    /// `(argument name, value)` for each directory, for `--argstr` to the
    /// profile builder: `stateDir`, `runtimeDir`, `logDir`, `tmpDir`,
    /// `cacheDir`, `spoolDir`, `lockDir`, `libDir`.
    pub fn to_nix_args(&self) -> Vec<(&'static str, String)> {
        self.named()
            .into_iter()
            .map(|(name, path)| (name, path.to_string_lossy().into_owned()))
            .collect()
    }

    fn named(&self) -> [(&'static str, &Path); 8] {
        [
            ("stateDir", &self.state),
            ("runtimeDir", &self.runtime),
            ("logDir", &self.log),
            ("tmpDir", &self.tmp),
            ("cacheDir", &self.cache),
            ("spoolDir", &self.spool),
            ("lockDir", &self.lock),
            ("libDir", &self.lib),
        ]
    }
}

/// What [`init_state`] changed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct InitReport {
    pub created: Vec<PathBuf>,
    /// `(link, target)` symlinks made.
    pub linked: Vec<(PathBuf, PathBuf)>,
}

/// Creates the state directories (`nixproc-init-state`):
///
/// * every directory is created if missing (`mkdir -p`);
/// * a newly created tmp dir gets mode 1777, unless user changes are
///   disabled (`force_disable_user_change`: everything runs as the caller);
/// * if tmp is `/tmp` and `<state>/tmp` is absent, `<state>/tmp` → `/tmp`;
/// * if runtime is `/run` and `<state>/run` is absent, `<state>/run` →
///   `/run`; for state `/var` with the default runtime `/var/run`, an absent
///   `/var/run` becomes a symlink to `/run` (the usual convention).
///
/// Existing directories and files are never modified.
pub fn init_state(dirs: &StateDirs, force_disable_user_change: bool) -> Result<InitReport> {
    let mut report = InitReport::default();
    mkdir(&dirs.state, &mut report)?;

    let tmp_root = Path::new("/tmp");
    if dirs.tmp == tmp_root {
        link_if_absent(&dirs.state.join("tmp"), tmp_root, &mut report)?;
    }
    if mkdir(&dirs.tmp, &mut report)? && !force_disable_user_change {
        fs::set_permissions(&dirs.tmp, fs::Permissions::from_mode(0o1777))
            .with_context(|| format!("chmod 1777 {}", dirs.tmp.display()))?;
    }

    let run_root = Path::new("/run");
    let state_run = dirs.state.join("run");
    if dirs.runtime == run_root
        || (dirs.state == Path::new(DEFAULT_STATE_DIR)
            && dirs.runtime == state_run
            && run_root.is_dir())
    {
        link_if_absent(&state_run, run_root, &mut report)?;
    }
    mkdir(&dirs.runtime, &mut report)?;

    for dir in [&dirs.log, &dirs.cache, &dirs.spool, &dirs.lock, &dirs.lib] {
        mkdir(dir, &mut report)?;
    }
    Ok(report)
}

/// `mkdir -p`; true when `dir` itself was created.
fn mkdir(dir: &Path, report: &mut InitReport) -> Result<bool> {
    if dir.is_dir() {
        return Ok(false);
    }
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    report.created.push(dir.to_path_buf());
    Ok(true)
}

fn link_if_absent(link: &Path, target: &Path, report: &mut InitReport) -> Result<()> {
    match fs::symlink_metadata(link) {
        Ok(_) => return Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("inspecting {}", link.display())),
    }
    std::os::unix::fs::symlink(target, link).with_context(|| {
        format!(
            "creating symlink {} -> {}",
            link.display(),
            target.display()
        )
    })?;
    report
        .linked
        .push((link.to_path_buf(), target.to_path_buf()));
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn defaults_for_var() {
        let d = StateDirs::default();
        assert_eq!(d.state, Path::new("/var"));
        assert_eq!(d.tmp, Path::new("/tmp"));
        assert_eq!(d.runtime, Path::new("/var/run"));
        assert_eq!(d.log, Path::new("/var/log"));
        assert_eq!(d.lib, Path::new("/var/lib"));
    }

    #[test]
    fn defaults_for_user_state_dir_and_overrides() {
        let o = StateDirOverrides {
            log: Some("/elsewhere/log".into()),
            ..Default::default()
        };
        let d = StateDirs::from_state_dir("/home/u/var", &o);
        assert_eq!(d.tmp, Path::new("/home/u/var/tmp"));
        assert_eq!(d.runtime, Path::new("/home/u/var/run"));
        assert_eq!(d.log, Path::new("/elsewhere/log"));
        assert_eq!(
            d.to_nix_args(),
            [
                ("stateDir", "/home/u/var".to_string()),
                ("runtimeDir", "/home/u/var/run".to_string()),
                ("logDir", "/elsewhere/log".to_string()),
                ("tmpDir", "/home/u/var/tmp".to_string()),
                ("cacheDir", "/home/u/var/cache".to_string()),
                ("spoolDir", "/home/u/var/spool".to_string()),
                ("lockDir", "/home/u/var/lock".to_string()),
                ("libDir", "/home/u/var/lib".to_string()),
            ]
        );
    }

    fn mode(p: &Path) -> u32 {
        fs::metadata(p).unwrap().permissions().mode() & 0o7777
    }

    #[test]
    fn init_state_creates_layout() {
        let tmp = tempfile::tempdir().unwrap();
        let state = tmp.path().join("var");
        let d = StateDirs::from_state_dir(&state, &StateDirOverrides::default());
        let r = init_state(&d, false).unwrap();
        for sub in ["tmp", "run", "log", "cache", "spool", "lock", "lib"] {
            assert!(state.join(sub).is_dir(), "{sub}");
        }
        assert_eq!(mode(&d.tmp), 0o1777);
        assert!(r.linked.is_empty());
        assert_eq!(r.created.len(), 8);
        // Idempotent, and an existing tmp dir keeps its mode.
        fs::set_permissions(&d.tmp, fs::Permissions::from_mode(0o700)).unwrap();
        let r = init_state(&d, false).unwrap();
        assert!(r.created.is_empty());
        assert_eq!(mode(&d.tmp), 0o700);
    }

    #[test]
    fn no_chmod_without_user_change() {
        let tmp = tempfile::tempdir().unwrap();
        let d = StateDirs::from_state_dir(tmp.path().join("var"), &StateDirOverrides::default());
        init_state(&d, true).unwrap();
        assert_ne!(mode(&d.tmp), 0o1777);
    }

    #[test]
    fn tmp_and_run_symlinks() {
        let tmp = tempfile::tempdir().unwrap();
        let state = tmp.path().join("var");
        let o = StateDirOverrides {
            tmp: Some("/tmp".into()),
            runtime: Some("/run".into()),
            ..Default::default()
        };
        let d = StateDirs::from_state_dir(&state, &o);
        let r = init_state(&d, false).unwrap();
        assert_eq!(fs::read_link(state.join("tmp")).unwrap(), Path::new("/tmp"));
        assert_eq!(fs::read_link(state.join("run")).unwrap(), Path::new("/run"));
        assert_eq!(r.linked.len(), 2);
        // /tmp itself was not created (it exists) nor chmodded.
        assert!(!r.created.contains(&PathBuf::from("/tmp")));
    }
}
