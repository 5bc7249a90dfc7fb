//! Profile generations, in exactly Nix's profile layout (so
//! `nix-env -p <dir>/<name> --list-generations` reads them):
//!
//! ```text
//! <dir>/<name>          -> <name>-<N>-link      (relative symlink: current)
//! <dir>/<name>-<N>-link -> /nix/store/…-rc.d    (one per generation)
//! ```
//!
//! Unlike the original tools (which went through `nix-env`), switching to
//! an existing generation does not create a new one, so repeated rollbacks
//! walk back through history, and `switch_to(N)` works.

use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::str::FromStr;
use std::time::{Duration, SystemTime};

use anyhow::{bail, Context, Result};
use serde::Serialize;

use crate::lock::{self, LockMode, ProfileLock};

/// One generation of a profile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Generation {
    pub number: u64,
    /// Where `<name>-<N>-link` points.
    pub store_path: PathBuf,
    /// The link's modification time (as `nix-env --list-generations`).
    #[serde(serialize_with = "serialize_time")]
    pub created: SystemTime,
}

fn serialize_time<S: serde::Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
    let secs = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    s.serialize_u64(secs)
}

/// Registers and releases garbage-collector roots for generation links.
pub trait GcRoots: Send + Sync {
    /// Protects the store path `link` points to from garbage collection for
    /// as long as `link` exists.
    fn add(&self, link: &Path) -> Result<()>;
    /// `link` is about to disappear.
    fn remove(&self, _link: &Path) -> Result<()> {
        Ok(())
    }
}

/// Registers indirect roots with `nix-store --add-root <link> --indirect
/// --realise <store path>`, so `nix-collect-garbage` never deletes a
/// deployed generation, wherever the profile directory is. Nix forgets
/// indirect roots whose link is gone, so `remove` has nothing to do. Paths
/// outside the Nix store (`$NIX_STORE_DIR`, default `/nix/store`) cannot be
/// collected and are skipped.
#[derive(Debug, Clone)]
pub struct NixStoreGcRoots {
    pub nix_store: PathBuf,
    pub store_dir: PathBuf,
}

impl Default for NixStoreGcRoots {
    fn default() -> Self {
        NixStoreGcRoots {
            nix_store: "nix-store".into(),
            store_dir: std::env::var_os("NIX_STORE_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| "/nix/store".into()),
        }
    }
}

impl GcRoots for NixStoreGcRoots {
    fn add(&self, link: &Path) -> Result<()> {
        let target = fs::read_link(link).with_context(|| format!("reading {}", link.display()))?;
        if !target.starts_with(&self.store_dir) {
            return Ok(());
        }
        let out = Command::new(&self.nix_store)
            .arg("--add-root")
            .arg(link)
            .arg("--indirect")
            .arg("--realise")
            .arg(&target)
            .output()
            .with_context(|| format!("running {}", self.nix_store.display()))?;
        if !out.status.success() {
            bail!(
                "registering {} as a garbage-collector root failed ({}): {}",
                link.display(),
                out.status,
                String::from_utf8_lossy(&out.stderr).trim_end()
            );
        }
        Ok(())
    }
}

/// No garbage-collector roots (tests, or profiles outside any store).
#[derive(Debug, Default, Clone, Copy)]
pub struct NoGcRoots;

impl GcRoots for NoGcRoots {
    fn add(&self, _link: &Path) -> Result<()> {
        Ok(())
    }
}

/// Which generations `delete` removes (`--delete-generations`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeleteSpec {
    /// These numbers; naming the current generation is an error.
    Numbers(Vec<u64>),
    /// `old`: every generation but the current one.
    Old,
    /// `Nd`: generations older than N days, as `nix-env`: the newest
    /// generation older than the cutoff is kept (it was the active one at
    /// that time), and so is the current one.
    OlderThanDays(u64),
    /// `+N`: keep the N newest generations (and the current one).
    KeepNewest(u64),
}

impl DeleteSpec {
    /// Parses `--delete-generations` arguments: one of `old`, `Nd`, `+N`,
    /// or one or more generation numbers.
    pub fn parse<S: AsRef<str>>(args: &[S]) -> Result<Self> {
        let args: Vec<&str> = args.iter().map(|a| a.as_ref().trim()).collect();
        let bad = |a: &str| {
            anyhow::anyhow!(
                "invalid generation specification `{a}`: expected generation numbers, `old`, `<N>d` or `+<N>`"
            )
        };
        match args.as_slice() {
            [] => bail!("no generations to delete were given"),
            [one] if *one == "old" => Ok(DeleteSpec::Old),
            [one] if one.starts_with('+') => {
                let n = one[1..].parse().map_err(|_| bad(one))?;
                if n == 0 {
                    bail!("`+0` would keep no generation; the current one is never deleted anyway — use `old`");
                }
                Ok(DeleteSpec::KeepNewest(n))
            }
            [one] if one.ends_with('d') => Ok(DeleteSpec::OlderThanDays(
                one[..one.len() - 1].parse().map_err(|_| bad(one))?,
            )),
            many => many
                .iter()
                .map(|a| a.parse::<u64>().map_err(|_| bad(a)))
                .collect::<Result<Vec<_>>>()
                .map(DeleteSpec::Numbers),
        }
    }
}

impl FromStr for DeleteSpec {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Self> {
        DeleteSpec::parse(&s.split_whitespace().collect::<Vec<_>>())
    }
}

/// A profile `<dir>/<name>` with its generations.
pub struct Profile {
    dir: PathBuf,
    name: String,
    gc_roots: Box<dyn GcRoots>,
}

impl fmt::Debug for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Profile({})", self.path().display())
    }
}

impl Profile {
    /// The profile `<dir>/<name>`, registering generations as garbage
    /// collector roots with [`NixStoreGcRoots`].
    pub fn new(dir: impl Into<PathBuf>, name: impl Into<String>) -> Self {
        Profile {
            dir: dir.into(),
            name: name.into(),
            gc_roots: Box::new(NixStoreGcRoots::default()),
        }
    }

    pub fn with_gc_roots(mut self, gc_roots: Box<dyn GcRoots>) -> Self {
        self.gc_roots = gc_roots;
        self
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// `<dir>/<name>`, the symlink to the current generation.
    pub fn path(&self) -> PathBuf {
        self.dir.join(&self.name)
    }

    /// `<dir>/<name>-<n>-link`.
    pub fn link_path(&self, n: u64) -> PathBuf {
        self.dir.join(format!("{}-{n}-link", self.name))
    }

    /// `<dir>/<name>.lock` (the file `nix-env` locks for this profile too).
    pub fn lock_path(&self) -> PathBuf {
        self.dir.join(format!("{}.lock", self.name))
    }

    /// Takes the profile's exclusive lock (see [`crate::lock`]);
    /// `on_wait` is called once if another process holds it and `mode` is
    /// [`LockMode::Wait`].
    pub fn lock(&self, mode: LockMode, on_wait: &dyn Fn()) -> Result<ProfileLock> {
        fs::create_dir_all(&self.dir)
            .with_context(|| format!("creating profile directory {}", self.dir.display()))?;
        Ok(lock::acquire(&self.lock_path(), mode, on_wait)?)
    }

    fn parse_link_name(&self, file_name: &str) -> Option<u64> {
        let rest = file_name.strip_prefix(&self.name)?.strip_prefix('-')?;
        let digits = rest.strip_suffix("-link")?;
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        digits.parse().ok()
    }

    fn read_generation(&self, number: u64) -> Result<Generation> {
        let link = self.link_path(number);
        let meta =
            fs::symlink_metadata(&link).with_context(|| format!("reading {}", link.display()))?;
        let target = fs::read_link(&link).with_context(|| format!("reading {}", link.display()))?;
        Ok(Generation {
            number,
            store_path: self.dir.join(target),
            created: meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
        })
    }

    /// All generations, oldest (lowest number) first; none if the profile
    /// directory does not exist.
    pub fn generations(&self) -> Result<Vec<Generation>> {
        let entries = match fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e).with_context(|| format!("reading {}", self.dir.display())),
        };
        let mut numbers = Vec::new();
        for entry in entries {
            let entry = entry?;
            if let Some(n) = entry
                .file_name()
                .to_str()
                .and_then(|f| self.parse_link_name(f))
            {
                numbers.push(n);
            }
        }
        numbers.sort_unstable();
        numbers
            .into_iter()
            .map(|n| self.read_generation(n))
            .collect()
    }

    /// The generation with this number.
    pub fn generation(&self, number: u64) -> Result<Generation> {
        if fs::symlink_metadata(self.link_path(number)).is_err() {
            bail!(
                "profile {} has no generation {number}",
                self.path().display()
            );
        }
        self.read_generation(number)
    }

    /// The generation `<name>` points to; `None` if there is no `<name>`.
    pub fn current(&self) -> Result<Option<Generation>> {
        let path = self.path();
        let target = match fs::read_link(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        };
        let in_dir = target
            .parent()
            .is_none_or(|p| p.as_os_str().is_empty() || p == self.dir);
        let number = target
            .file_name()
            .and_then(|f| f.to_str())
            .filter(|_| in_dir)
            .and_then(|f| self.parse_link_name(f));
        match number {
            Some(n) => self.read_generation(n).map(Some),
            None => bail!(
                "{} points to {}, which is not one of its generations",
                path.display(),
                target.display()
            ),
        }
    }

    /// Records `store_path` as the newest generation and makes it current.
    /// As `nix-env --set`, no new generation is made when the newest one
    /// already points to `store_path`.
    pub fn set(&self, store_path: &Path) -> Result<Generation> {
        if !store_path.is_absolute() {
            bail!("{} is not an absolute path", store_path.display());
        }
        fs::create_dir_all(&self.dir)
            .with_context(|| format!("creating profile directory {}", self.dir.display()))?;
        let gens = self.generations()?;
        if let Some(last) = gens.last() {
            if last.store_path == store_path {
                return self.switch_to(last.number);
            }
        }
        let number = gens.last().map_or(1, |g| g.number + 1);
        let link = self.link_path(number);
        replace_symlink(store_path, &link)?;
        if let Err(e) = self.gc_roots.add(&link) {
            let _ = fs::remove_file(&link);
            return Err(e);
        }
        self.switch_to(number)
    }

    /// Makes generation `number` current, without creating a new one.
    pub fn switch_to(&self, number: u64) -> Result<Generation> {
        let generation = self.generation(number)?;
        let link = self.link_path(number);
        let rel = link.file_name().map(PathBuf::from).unwrap_or(link);
        replace_symlink(&rel, &self.path())?;
        Ok(generation)
    }

    /// The generation a rollback goes to: the highest-numbered one below
    /// the current one.
    pub fn rollback_target(&self) -> Result<Generation> {
        let Some(current) = self.current()? else {
            bail!(
                "profile {} has no current generation to roll back from",
                self.path().display()
            );
        };
        self.generations()?
            .into_iter()
            .rev()
            .find(|g| g.number < current.number)
            .ok_or_else(|| {
                anyhow::anyhow!("no generation before {} to roll back to", current.number)
            })
    }

    /// Deletes the generations `spec` selects (never the current one) and
    /// returns them.
    pub fn delete(&self, spec: &DeleteSpec) -> Result<Vec<Generation>> {
        self.delete_at(spec, SystemTime::now())
    }

    fn delete_at(&self, spec: &DeleteSpec, now: SystemTime) -> Result<Vec<Generation>> {
        let gens = self.generations()?;
        let current = self.current()?.map(|g| g.number);
        let not_current = |g: &&Generation| Some(g.number) != current;
        let doomed: Vec<Generation> = match spec {
            DeleteSpec::Numbers(numbers) => {
                for n in numbers {
                    if Some(*n) == current {
                        bail!(
                            "generation {n} is the current generation of {} and cannot be deleted",
                            self.path().display()
                        );
                    }
                    if !gens.iter().any(|g| g.number == *n) {
                        bail!("profile {} has no generation {n}", self.path().display());
                    }
                }
                gens.iter()
                    .filter(|g| numbers.contains(&g.number))
                    .cloned()
                    .collect()
            }
            DeleteSpec::Old => gens.iter().filter(not_current).cloned().collect(),
            DeleteSpec::KeepNewest(keep) => {
                let keep = usize::try_from(*keep).unwrap_or(usize::MAX);
                let cut = gens.len().saturating_sub(keep);
                gens[..cut].iter().filter(not_current).cloned().collect()
            }
            DeleteSpec::OlderThanDays(days) => {
                let cutoff = now
                    .checked_sub(Duration::from_secs(days.saturating_mul(86_400)))
                    .unwrap_or(SystemTime::UNIX_EPOCH);
                // Newest first; keep the first one older than the cutoff.
                let mut older = gens.iter().rev().filter(|g| g.created < cutoff);
                older.next();
                let mut doomed: Vec<Generation> = older.filter(not_current).cloned().collect();
                doomed.reverse();
                doomed
            }
        };
        for g in &doomed {
            let link = self.link_path(g.number);
            self.gc_roots.remove(&link)?;
            fs::remove_file(&link).with_context(|| format!("removing {}", link.display()))?;
        }
        Ok(doomed)
    }

    /// Removes `<name>` and every generation (`--delete-all-generations`).
    /// Running processes are not touched.
    pub fn delete_all(&self) -> Result<Vec<Generation>> {
        let gens = self.generations()?;
        let path = self.path();
        match fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).with_context(|| format!("removing {}", path.display())),
        }
        for g in &gens {
            let link = self.link_path(g.number);
            self.gc_roots.remove(&link)?;
            fs::remove_file(&link).with_context(|| format!("removing {}", link.display()))?;
        }
        Ok(gens)
    }
}

/// Atomically makes `link` a symlink to `target`: a temporary symlink
/// renamed over it.
fn replace_symlink(target: &Path, link: &Path) -> Result<()> {
    let dir = link.parent().unwrap_or(Path::new("."));
    let name = link
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let _ = fs::remove_file(&tmp);
    std::os::unix::fs::symlink(target, &tmp)
        .with_context(|| format!("creating symlink {}", tmp.display()))?;
    fs::rename(&tmp, link).with_context(|| {
        let _ = fs::remove_file(&tmp);
        format!("replacing {}", link.display())
    })
}

/// `nix-env --list-generations`-style listing: number, creation time
/// (UTC), `(current)`.
pub fn format_generations(gens: &[Generation], current: Option<u64>) -> String {
    let mut out = String::new();
    for g in gens {
        let secs = g
            .created
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let cur = if Some(g.number) == current {
            "   (current)"
        } else {
            ""
        };
        out.push_str(&format!("{:>4}   {}{cur}\n", g.number, format_utc(secs)));
    }
    out
}

/// `YYYY-MM-DD HH:MM:SS` in UTC.
fn format_utc(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup() -> (tempfile::TempDir, Profile, Vec<PathBuf>) {
        let tmp = tempfile::tempdir().unwrap();
        let profile = Profile::new(tmp.path().join("profiles"), "processes")
            .with_gc_roots(Box::new(NoGcRoots));
        let stores = (1..=4)
            .map(|i| {
                let p = tmp.path().join(format!("store/{i}-rc.d"));
                fs::create_dir_all(&p).unwrap();
                p
            })
            .collect();
        (tmp, profile, stores)
    }

    fn numbers(p: &Profile) -> Vec<u64> {
        p.generations().unwrap().iter().map(|g| g.number).collect()
    }

    fn current(p: &Profile) -> u64 {
        p.current().unwrap().unwrap().number
    }

    #[test]
    fn set_creates_nix_layout() {
        let (_t, p, s) = setup();
        assert!(p.current().unwrap().is_none());
        assert!(p.generations().unwrap().is_empty());
        for store in &s[..3] {
            p.set(store).unwrap();
        }
        assert_eq!(numbers(&p), [1, 2, 3]);
        assert_eq!(current(&p), 3);
        assert_eq!(
            fs::read_link(p.path()).unwrap(),
            Path::new("processes-3-link")
        );
        assert_eq!(fs::read_link(p.link_path(2)).unwrap(), s[1]);
        assert_eq!(p.generation(2).unwrap().store_path, s[1]);
        // The profile resolves to the store path, as a Nix profile does.
        assert_eq!(
            fs::canonicalize(p.path()).unwrap(),
            fs::canonicalize(&s[2]).unwrap()
        );
        // Setting the same path again makes no new generation.
        assert_eq!(p.set(&s[2]).unwrap().number, 3);
        assert_eq!(numbers(&p), [1, 2, 3]);
        // No temporary files are left behind.
        let names: Vec<_> = fs::read_dir(p.dir())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names.len(), 4, "{names:?}");
    }

    #[test]
    fn repeated_rollbacks_walk_back() {
        let (_t, p, s) = setup();
        for store in &s[..3] {
            p.set(store).unwrap();
        }
        let g = p.rollback_target().unwrap();
        assert_eq!(g.number, 2);
        p.switch_to(g.number).unwrap();
        let g = p.rollback_target().unwrap();
        assert_eq!(g.number, 1);
        assert_eq!(g.store_path, s[0]);
        p.switch_to(1).unwrap();
        assert_eq!(current(&p), 1);
        assert_eq!(numbers(&p), [1, 2, 3], "rollback creates no generation");
        let err = p.rollback_target().unwrap_err();
        assert_eq!(err.to_string(), "no generation before 1 to roll back to");
        // Switching forward again, then a new deployment gets max+1.
        p.switch_to(3).unwrap();
        assert_eq!(current(&p), 3);
        p.switch_to(1).unwrap();
        assert_eq!(p.set(&s[3]).unwrap().number, 4);
        assert_eq!(current(&p), 4);
        assert!(p
            .switch_to(9)
            .unwrap_err()
            .to_string()
            .contains("has no generation 9"));
    }

    #[test]
    fn delete_specs() {
        let (_t, p, s) = setup();
        for store in &s {
            p.set(store).unwrap();
        }
        p.switch_to(3).unwrap();
        // Explicit numbers; the current one is refused.
        let err = p
            .delete(&DeleteSpec::parse(&["1", "3"]).unwrap())
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("generation 3 is the current generation"),
            "{err}"
        );
        assert_eq!(numbers(&p), [1, 2, 3, 4], "nothing deleted on error");
        let gone = p.delete(&DeleteSpec::parse(&["1"]).unwrap()).unwrap();
        assert_eq!(gone[0].number, 1);
        assert_eq!(numbers(&p), [2, 3, 4]);
        // +N keeps the N newest and the current one.
        p.delete(&"+1".parse().unwrap()).unwrap();
        assert_eq!(numbers(&p), [3, 4]);
        // old: everything but current.
        p.delete(&"old".parse().unwrap()).unwrap();
        assert_eq!(numbers(&p), [3]);
        assert_eq!(current(&p), 3);
        p.delete_all().unwrap();
        assert!(p.generations().unwrap().is_empty());
        assert!(p.current().unwrap().is_none());
    }

    /// Sets a symlink's own modification time to `days` days before `now`.
    fn age_link(link: &Path, now: SystemTime, days: u64) {
        let t = now - Duration::from_secs(days * 86_400);
        let secs = t.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs() as i64;
        let ts = rustix::fs::Timespec {
            tv_sec: secs,
            tv_nsec: 0,
        };
        let times = rustix::fs::Timestamps {
            last_access: ts,
            last_modification: ts,
        };
        rustix::fs::utimensat(
            rustix::fs::CWD,
            link,
            &times,
            rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
        )
        .unwrap();
    }

    #[test]
    fn delete_older_than_days() {
        let (_t, p, s) = setup();
        for store in &s {
            p.set(store).unwrap();
        }
        let now = SystemTime::now();
        for (n, days) in [(1, 30), (2, 20), (3, 10), (4, 0)] {
            age_link(&p.link_path(n), now, days);
        }
        // Older than 14 days: 1 and 2. Generation 2 was the active one 14
        // days ago and is kept, as `nix-env` does.
        let gone = p.delete_at(&DeleteSpec::OlderThanDays(14), now).unwrap();
        assert_eq!(gone.iter().map(|g| g.number).collect::<Vec<_>>(), [1]);
        assert_eq!(numbers(&p), [2, 3, 4]);
        // The current generation is never deleted, however old.
        p.switch_to(2).unwrap();
        let gone = p.delete_at(&DeleteSpec::OlderThanDays(5), now).unwrap();
        assert!(
            gone.is_empty(),
            "3 is kept as active at the cutoff, 2 is current"
        );
        let gone = p.delete_at(&DeleteSpec::OlderThanDays(1), now).unwrap();
        assert!(gone.is_empty());
        p.switch_to(4).unwrap();
        let gone = p.delete_at(&DeleteSpec::OlderThanDays(5), now).unwrap();
        assert_eq!(gone.iter().map(|g| g.number).collect::<Vec<_>>(), [2]);
        assert_eq!(numbers(&p), [3, 4]);
    }

    #[test]
    fn delete_spec_parsing() {
        assert_eq!(DeleteSpec::parse(&["old"]).unwrap(), DeleteSpec::Old);
        assert_eq!(
            DeleteSpec::parse(&["14d"]).unwrap(),
            DeleteSpec::OlderThanDays(14)
        );
        assert_eq!(
            DeleteSpec::parse(&["+3"]).unwrap(),
            DeleteSpec::KeepNewest(3)
        );
        assert_eq!(
            DeleteSpec::parse(&["1", "2"]).unwrap(),
            DeleteSpec::Numbers(vec![1, 2])
        );
        assert_eq!(
            "4 5".parse::<DeleteSpec>().unwrap(),
            DeleteSpec::Numbers(vec![4, 5])
        );
        assert!(DeleteSpec::parse(&["x"]).is_err());
        assert!(DeleteSpec::parse(&["1", "old"]).is_err());
        assert!(DeleteSpec::parse(&["+0"]).is_err());
        assert!(DeleteSpec::parse::<&str>(&[]).is_err());
    }

    #[test]
    fn foreign_links_are_ignored_and_bad_current_is_reported() {
        let (_t, p, s) = setup();
        p.set(&s[0]).unwrap();
        std::os::unix::fs::symlink(&s[1], p.dir().join("processes-x-link")).unwrap();
        std::os::unix::fs::symlink(&s[1], p.dir().join("other-2-link")).unwrap();
        assert_eq!(numbers(&p), [1]);
        fs::remove_file(p.path()).unwrap();
        std::os::unix::fs::symlink(&s[1], p.path()).unwrap();
        let err = p.current().unwrap_err();
        assert!(
            err.to_string()
                .contains("which is not one of its generations"),
            "{err}"
        );
    }

    #[test]
    fn gc_root_failure_creates_no_generation() {
        struct Failing;
        impl GcRoots for Failing {
            fn add(&self, _link: &Path) -> Result<()> {
                bail!("no daemon")
            }
        }
        let (_t, p, s) = setup();
        let p = p.with_gc_roots(Box::new(Failing));
        assert!(p.set(&s[0]).is_err());
        assert!(p.generations().unwrap().is_empty());
        assert!(p.current().unwrap().is_none());
    }

    /// Needs a writable Nix store (`nix-store` on PATH, root or a daemon).
    #[test]
    #[ignore = "needs a real Nix store"]
    fn real_gc_roots_are_indirect_roots() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("nixproc-gcroot-test");
        fs::write(&file, "nixproc gc root test\n").unwrap();
        let out = Command::new("nix-store")
            .arg("--add")
            .arg(&file)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let store_path = PathBuf::from(String::from_utf8(out.stdout).unwrap().trim());
        let p = Profile::new(tmp.path().join("profiles"), "processes");
        let g = p.set(&store_path).unwrap();
        let link = p.link_path(g.number);
        assert_eq!(fs::read_link(&link).unwrap(), store_path);
        let out = Command::new("nix-store")
            .args(["--gc", "--print-roots"])
            .output()
            .unwrap();
        let roots = String::from_utf8_lossy(&out.stdout);
        assert!(
            roots.contains(&format!("{} -> {}", link.display(), store_path.display())),
            "{roots}"
        );
    }

    #[test]
    fn listing_format() {
        let g = Generation {
            number: 2,
            store_path: "/nix/store/x".into(),
            created: SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000),
        };
        assert_eq!(
            format_generations(&[g], Some(2)),
            "   2   2023-11-14 22:13:20   (current)\n"
        );
    }
}
