//! Deterministic tar of a directory tree, and safe extraction into a fresh
//! staging directory.
//!
//! **Pack** refuses (naming it) a symlink that unpack would refuse: an
//! absolute target, or one leaving the tree. Entries are sorted by name (bytes) depth first, the root itself
//! first as `./` (its mode, owner and mtime), then paths relative to the
//! root (`a`, `a/b`); numeric uid/gid only (no user names), permission
//! bits, mtimes in seconds; symlinks as links (never followed); empty
//! directories kept. Sockets, fifos and devices are skipped and listed in
//! [`PackReport::skipped`]. Hard links inside the tree are stored as
//! separate files. GNU long names for paths over 100 bytes.
//!
//! **Unpack** ([`unpack`]) accepts only what [`pack`] writes: regular
//! files, directories and symlinks; it refuses absolute paths, `..`,
//! hard links, devices and fifos, duplicate entries, symlinks whose
//! target is absolute or climbs out of the stage, and entries below a
//! symlink. Errors name the entry. Modes and mtimes are restored; owners
//! (numeric) only when running as root.

use std::collections::BTreeSet;
use std::ffi::{OsStr, OsString};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use rustix::fs::{AtFlags, Timespec, Timestamps, CWD};

/// What [`pack`] left out.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PackReport {
    /// `path: reason` of sockets, fifos and devices.
    pub skipped: Vec<String>,
    /// Number of entries written (the root included).
    pub entries: u64,
}

/// Writes `root` as a tar stream to `out`. `exclude`: glob patterns
/// relative to `root` (see [`glob_match`]); a matching directory is left
/// out with everything below it.
pub fn pack(root: &Path, exclude: &[String], out: &mut dyn Write) -> Result<PackReport> {
    let meta = fs::symlink_metadata(root).with_context(|| format!("reading {}", root.display()))?;
    if !meta.is_dir() {
        bail!("{} is not a directory", root.display());
    }
    let mut b = tar::Builder::new(out);
    let mut report = PackReport::default();
    let mut h = header(&meta, tar::EntryType::Directory);
    b.append_data(&mut h, "./", io::empty())
        .context("writing the archive")?;
    report.entries += 1;
    walk(&mut b, root, Path::new(""), exclude, &mut report)?;
    b.into_inner()
        .and_then(|w| w.flush())
        .context("writing the archive")?;
    Ok(report)
}

fn header(meta: &fs::Metadata, kind: tar::EntryType) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(meta.mode() & 0o7777);
    h.set_uid(u64::from(meta.uid()));
    h.set_gid(u64::from(meta.gid()));
    h.set_mtime(u64::try_from(meta.mtime()).unwrap_or(0));
    h.set_size(0);
    h
}

fn walk(
    b: &mut tar::Builder<&mut dyn Write>,
    root: &Path,
    rel: &Path,
    exclude: &[String],
    report: &mut PackReport,
) -> Result<()> {
    let dir = root.join(rel);
    let mut names: Vec<OsString> = fs::read_dir(&dir)
        .with_context(|| format!("reading directory {}", dir.display()))?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<io::Result<_>>()
        .with_context(|| format!("reading directory {}", dir.display()))?;
    names.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    for name in names {
        let rel = rel.join(&name);
        let rel_s = rel.to_string_lossy();
        if exclude.iter().any(|p| glob_match(p, &rel_s)) {
            continue;
        }
        let full = root.join(&rel);
        let meta =
            fs::symlink_metadata(&full).with_context(|| format!("reading {}", full.display()))?;
        let ft = meta.file_type();
        if ft.is_dir() {
            let mut h = header(&meta, tar::EntryType::Directory);
            let mut p = rel.clone().into_os_string();
            p.push("/");
            b.append_data(&mut h, &p, io::empty())
                .with_context(|| format!("archiving {}", full.display()))?;
            report.entries += 1;
            walk(b, root, &rel, exclude, report)?;
        } else if ft.is_file() {
            let mut h = header(&meta, tar::EntryType::Regular);
            h.set_size(meta.len());
            let f = File::open(&full).with_context(|| format!("opening {}", full.display()))?;
            let mut data = ExactReader {
                inner: f.take(meta.len()),
                left: meta.len(),
                path: &full,
            };
            b.append_data(&mut h, &rel, &mut data)
                .with_context(|| format!("archiving {}", full.display()))?;
            report.entries += 1;
        } else if ft.is_symlink() {
            let target =
                fs::read_link(&full).with_context(|| format!("reading link {}", full.display()))?;
            // What unpack would refuse must not make an unrestorable
            // snapshot: say so now, naming the link.
            let comps: Vec<OsString> = rel.iter().map(|c| c.to_os_string()).collect();
            if !link_stays_inside(&comps, &target) {
                bail!(
                    "{} is a symlink to {}, outside the directory (or through `..` after a \
                     name): it could not be restored safely; make it relative and inside, \
                     or leave it out with `exclude`",
                    full.display(),
                    target.display()
                );
            }
            let mut h = header(&meta, tar::EntryType::Symlink);
            b.append_link(&mut h, &rel, &target)
                .with_context(|| format!("archiving {}", full.display()))?;
            report.entries += 1;
        } else {
            use std::os::unix::fs::FileTypeExt;
            let what = if ft.is_socket() {
                "socket"
            } else if ft.is_fifo() {
                "fifo"
            } else if ft.is_block_device() || ft.is_char_device() {
                "device"
            } else {
                "special file"
            };
            report.skipped.push(format!("{rel_s}: {what} not archived"));
        }
    }
    Ok(())
}

/// Reads exactly `left` bytes; a file that shrank while being read is an
/// error (a grown one is cut at the size the header announced).
struct ExactReader<'a, R> {
    inner: R,
    left: u64,
    path: &'a Path,
}

impl<R: Read> Read for ExactReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 {
            return Ok(0);
        }
        let n = self.inner.read(buf)?;
        if n == 0 {
            return Err(io::Error::other(format!(
                "{} shrank while it was archived (stop the process first: consistency = \"stop\")",
                self.path.display()
            )));
        }
        self.left -= n as u64;
        Ok(n)
    }
}

/// Matches `path` (relative, `/`-separated) against `pattern`: `*` is any
/// run of characters except `/`, `?` one character except `/`, `**` any
/// run including `/` (`a/**/b` also matches `a/b`); everything else
/// literally.
pub fn glob_match(pattern: &str, path: &str) -> bool {
    let p: Vec<char> = pattern.trim_matches('/').chars().collect();
    let s: Vec<char> = path.chars().collect();
    glob(&p, &s)
}

fn glob(p: &[char], s: &[char]) -> bool {
    match p.first() {
        None => s.is_empty(),
        Some('*') if p.get(1) == Some(&'*') => {
            let mut rest = &p[2..];
            // `**/` may also match nothing at all (`a/**/b` ~ `a/b`).
            if rest.first() == Some(&'/') && glob(&rest[1..], s) {
                return true;
            }
            if rest.first() == Some(&'/') {
                rest = &p[2..];
            }
            (0..=s.len()).any(|i| glob(rest, &s[i..]))
        }
        Some('*') => {
            let rest = &p[1..];
            for i in 0..=s.len() {
                if glob(rest, &s[i..]) {
                    return true;
                }
                if s.get(i) == Some(&'/') {
                    break;
                }
            }
            false
        }
        Some('?') => s.first().is_some_and(|c| *c != '/') && glob(&p[1..], &s[1..]),
        Some(c) => s.first() == Some(c) && glob(&p[1..], &s[1..]),
    }
}

/// One checked entry path: its normal components (empty for the root).
fn entry_components(raw: &[u8]) -> Result<Vec<OsString>, String> {
    if raw.is_empty() {
        return Err("empty path".into());
    }
    if raw.contains(&0) {
        return Err("NUL byte in path".into());
    }
    let path = Path::new(OsStr::from_bytes(raw));
    let mut out = Vec::new();
    for c in path.components() {
        match c {
            Component::Normal(n) => out.push(n.to_os_string()),
            Component::CurDir => {}
            Component::ParentDir => return Err("path contains `..`".into()),
            Component::RootDir | Component::Prefix(_) => {
                return Err("absolute path".into());
            }
        }
    }
    Ok(out)
}

/// Whether a symlink at `link` (components, the link itself last) with
/// `target` stays inside the root: relative, `..` only at the start (so
/// they climb real directories: a `..` after a name could climb out of
/// wherever another symlink of the tree leads), never above the root.
/// By induction every link then resolves inside the tree.
fn link_stays_inside(link: &[OsString], target: &Path) -> bool {
    if target.as_os_str().is_empty() {
        return false;
    }
    let mut depth = link.len() as i64 - 1; // the directory the link is in
    let mut named = false;
    for c in target.components() {
        match c {
            Component::Normal(_) => named = true,
            Component::CurDir => {}
            Component::ParentDir if named => return false,
            Component::ParentDir => {
                depth -= 1;
                if depth < 0 {
                    return false;
                }
            }
            Component::RootDir | Component::Prefix(_) => return false,
        }
    }
    true
}

struct DirAttrs {
    path: PathBuf,
    mode: u32,
    mtime: i64,
    owner: (u32, u32),
}

fn err_entry(raw: &[u8], msg: impl std::fmt::Display) -> anyhow::Error {
    anyhow!(
        "archive entry {:?}: {msg}",
        String::from_utf8_lossy(raw).into_owned()
    )
}

/// Checks an archive without writing anything: the same rules as
/// [`unpack`]. Returns the number of entries.
pub fn check(input: &mut dyn Read) -> Result<u64> {
    run(input, None)
}

/// Unpacks `input` into `stage`, an existing, empty directory created by
/// the caller (a *fresh* staging directory, never a live one). On error the
/// stage holds a partial tree: the caller removes it.
pub fn unpack(input: &mut dyn Read, stage: &Path) -> Result<u64> {
    run(input, Some(stage))
}

fn run(input: &mut dyn Read, stage: Option<&Path>) -> Result<u64> {
    if let Some(stage) = stage {
        let mut it = fs::read_dir(stage).with_context(|| format!("reading {}", stage.display()))?;
        if it.next().is_some() {
            bail!("staging directory {} is not empty", stage.display());
        }
    }
    let as_root = rustix::process::geteuid().is_root();
    let mut archive = tar::Archive::new(input);
    let mut seen: BTreeSet<Vec<OsString>> = BTreeSet::new();
    let mut links: BTreeSet<Vec<OsString>> = BTreeSet::new();
    let mut dirs: Vec<DirAttrs> = Vec::new();
    let mut count = 0;
    for entry in archive.entries().context("reading the archive")? {
        let mut entry = entry.context("reading the archive")?;
        let raw = entry.path_bytes().into_owned();
        let comps = entry_components(&raw).map_err(|m| err_entry(&raw, m))?;
        if !seen.insert(comps.clone()) {
            return Err(err_entry(&raw, "duplicate entry"));
        }
        // Nothing may live below a symlink of the archive.
        for i in 1..comps.len() {
            if links.contains(&comps[..i]) {
                return Err(err_entry(&raw, "below a symlink of the archive"));
            }
        }
        let h = entry.header();
        let kind = h.entry_type();
        let mode = h.mode().map_err(|e| err_entry(&raw, e))? & 0o7777;
        let mtime = h.mtime().map_err(|e| err_entry(&raw, e))? as i64;
        let owner = (
            h.uid().map_err(|e| err_entry(&raw, e))? as u32,
            h.gid().map_err(|e| err_entry(&raw, e))? as u32,
        );
        let link_target = match kind {
            tar::EntryType::Symlink => {
                let t = entry
                    .link_name_bytes()
                    .ok_or_else(|| err_entry(&raw, "symlink without a target"))?
                    .into_owned();
                let t = PathBuf::from(OsStr::from_bytes(&t));
                if comps.is_empty() || !link_stays_inside(&comps, &t) {
                    return Err(err_entry(
                        &raw,
                        format!("symlink to {} leaves the restored tree", t.display()),
                    ));
                }
                links.insert(comps.clone());
                Some(t)
            }
            tar::EntryType::Regular | tar::EntryType::Continuous if !comps.is_empty() => None,
            tar::EntryType::Directory => None,
            _ if comps.is_empty() => {
                return Err(err_entry(&raw, "the root entry must be a directory"))
            }
            tar::EntryType::Link => return Err(err_entry(&raw, "hard links are not accepted")),
            tar::EntryType::Char | tar::EntryType::Block => {
                return Err(err_entry(&raw, "device files are not accepted"))
            }
            tar::EntryType::Fifo => return Err(err_entry(&raw, "fifos are not accepted")),
            other => {
                return Err(err_entry(
                    &raw,
                    format!("entry type {other:?} is not accepted"),
                ))
            }
        };
        count += 1;
        let Some(stage) = stage else {
            io::copy(&mut entry, &mut io::sink()).map_err(|e| err_entry(&raw, e))?;
            continue;
        };
        let target: PathBuf = comps.iter().fold(stage.to_path_buf(), |p, c| p.join(c));
        ensure_parents(stage, &comps).map_err(|e| err_entry(&raw, e))?;
        let mut place = || -> Result<()> {
            match kind {
                tar::EntryType::Directory => {
                    if !comps.is_empty() {
                        match fs::symlink_metadata(&target) {
                            // Created earlier as the parent of an entry.
                            Ok(m) if m.is_dir() => {}
                            Ok(_) => bail!("exists and is not a directory"),
                            Err(_) => fs::DirBuilder::new().mode(0o700).create(&target)?,
                        }
                    }
                    dirs.push(DirAttrs {
                        path: target.clone(),
                        mode,
                        mtime,
                        owner,
                    });
                }
                tar::EntryType::Symlink => {
                    let t = link_target.as_ref().expect("checked above");
                    std::os::unix::fs::symlink(t, &target)?;
                    set_times(&target, mtime)?;
                    if as_root {
                        chown(&target, owner)?;
                    }
                }
                _ => {
                    let mut f = OpenOptions::new()
                        .write(true)
                        .create_new(true)
                        .mode(0o600)
                        .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
                        .open(&target)?;
                    let mut buf = vec![0u8; 1 << 20];
                    loop {
                        let n = entry.read(&mut buf)?;
                        if n == 0 {
                            break;
                        }
                        f.write_all(&buf[..n])?;
                    }
                    if as_root {
                        chown(&target, owner)?;
                    }
                    f.set_permissions(fs::Permissions::from_mode(mode))?;
                    f.set_modified(
                        std::time::UNIX_EPOCH + std::time::Duration::from_secs(mtime.max(0) as u64),
                    )?;
                }
            }
            Ok(())
        };
        place().map_err(|e| err_entry(&raw, e))?;
    }
    if let Some(stage) = stage {
        // Deepest first, so a read-only directory is closed after its
        // content was written (and its mtime is not bumped again).
        dirs.sort_by(|a, b| b.path.cmp(&a.path));
        for d in &dirs {
            let apply = || -> Result<()> {
                if as_root {
                    chown(&d.path, d.owner)?;
                }
                fs::set_permissions(&d.path, fs::Permissions::from_mode(d.mode))?;
                set_times(&d.path, d.mtime)
            };
            apply().with_context(|| {
                let rel = d.path.strip_prefix(stage).unwrap_or(&d.path);
                format!("archive entry {:?}", rel.to_string_lossy())
            })?;
        }
    }
    Ok(count)
}

/// Creates the missing parents of an entry (0700; the archive's own
/// directory entry sets the mode later) and refuses symlinked ones.
fn ensure_parents(stage: &Path, comps: &[OsString]) -> Result<()> {
    let mut p = stage.to_path_buf();
    for c in comps.iter().take(comps.len().saturating_sub(1)) {
        p.push(c);
        match fs::symlink_metadata(&p) {
            Ok(m) if m.file_type().is_symlink() => bail!("below a symlink"),
            Ok(m) if m.is_dir() => {}
            Ok(_) => bail!("below a non-directory"),
            Err(_) => fs::DirBuilder::new().mode(0o700).create(&p)?,
        }
    }
    Ok(())
}

fn set_times(path: &Path, mtime: i64) -> Result<()> {
    let t = Timespec {
        tv_sec: mtime,
        tv_nsec: 0,
    };
    rustix::fs::utimensat(
        CWD,
        path,
        &Timestamps {
            last_access: t,
            last_modification: t,
        },
        AtFlags::SYMLINK_NOFOLLOW,
    )
    .with_context(|| format!("setting the mtime of {}", path.display()))
}

fn chown(path: &Path, (uid, gid): (u32, u32)) -> Result<()> {
    // Numeric ids from the archive, applied as root only.
    let (uid, gid) = (
        rustix::fs::Uid::from_raw(uid),
        rustix::fs::Gid::from_raw(gid),
    );
    rustix::fs::chownat(CWD, path, Some(uid), Some(gid), AtFlags::SYMLINK_NOFOLLOW)
        .with_context(|| format!("setting the owner of {}", path.display()))
}

/// Removes a tree even where it is read-only for its owner (directories
/// made writable before their content is removed). Missing is fine.
pub fn remove_tree(path: &Path) -> io::Result<()> {
    let meta = match fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    if !meta.is_dir() {
        return fs::remove_file(path);
    }
    if meta.mode() & 0o700 != 0o700 {
        fs::set_permissions(path, fs::Permissions::from_mode(meta.mode() | 0o700))?;
    }
    for e in fs::read_dir(path)? {
        remove_tree(&e?.path())?;
    }
    fs::remove_dir(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_star_stays_in_one_component() {
        assert!(glob_match("*.log", "a.log"));
        assert!(!glob_match("*.log", "d/a.log"));
        assert!(glob_match("css/*", "css/x.css"));
        assert!(!glob_match("css/*", "css"));
        assert!(!glob_match("css/*", "css/a/b"));
        assert!(glob_match("cache", "cache"));
        assert!(!glob_match("cache", "cache2"));
    }

    #[test]
    fn glob_question_mark_and_double_star() {
        assert!(glob_match("a?c", "abc"));
        assert!(!glob_match("a?c", "a/c"));
        assert!(glob_match("**/*.tmp", "x/y/z.tmp"));
        assert!(glob_match("**/*.tmp", "z.tmp"));
        assert!(glob_match("a/**/b", "a/b"));
        assert!(glob_match("a/**/b", "a/x/y/b"));
        assert!(glob_match("a/**", "a/x/y"));
        assert!(!glob_match("a/**/b", "a/x/c"));
        assert!(glob_match("/tmp/", "tmp"));
    }

    #[test]
    fn entry_paths_are_checked() {
        assert_eq!(entry_components(b"./").unwrap(), Vec::<OsString>::new());
        assert_eq!(entry_components(b"a/./b").unwrap().len(), 2);
        assert!(entry_components(b"/etc/passwd").is_err());
        assert!(entry_components(b"a/../../b").is_err());
        assert!(entry_components(b"..").is_err());
        assert!(entry_components(b"").is_err());
    }

    #[test]
    fn link_targets_must_stay_inside() {
        let at = |s: &str| -> Vec<OsString> { s.split('/').map(OsString::from).collect() };
        assert!(link_stays_inside(&at("a/l"), Path::new("../b")));
        assert!(link_stays_inside(&at("a/l"), Path::new("b/c")));
        assert!(!link_stays_inside(&at("l"), Path::new("../x")));
        assert!(!link_stays_inside(&at("a/l"), Path::new("../../x")));
        assert!(!link_stays_inside(&at("a/l"), Path::new("/etc")));
        assert!(!link_stays_inside(&at("a/l"), Path::new("x/../../../y")));
        assert!(!link_stays_inside(&at("l"), Path::new("")));
        // `a/up -> ..` then `a/l -> up/../..` would climb out of the root.
        assert!(!link_stays_inside(&at("a/l"), Path::new("up/../..")));
        assert!(!link_stays_inside(&at("a/l"), Path::new("b/../c")));
        assert!(link_stays_inside(&at("a/b/l"), Path::new("../../c/d")));
    }
}
