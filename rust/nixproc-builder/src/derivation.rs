//! `build`: the builder of every nixproc derivation.
//!
//! Reads a JSON spec (Nix `passAsFile = ["spec"]` puts its file name in
//! `$specPath`) and materialises it in `$out`:
//!
//! ```json
//! { "files": [ {"path": "etc/rc.d/init.d/x", "text": "...", "mode": 365} ],
//!   "links": [ {"path": "etc/rc.d/rc3.d/S01x", "target": "../init.d/x"} ],
//!   "dirs": ["some/dir"],
//!   "single": null,
//!   "postInstall": "shell code" | null,
//!   "shell": "/bin/sh" | null }
//! ```
//!
//! `single = { "text": ..., "mode": ... }` makes `$out` one regular file
//! instead of a directory (then files, links and dirs must be empty).

use anyhow::{bail, Context, Result};
use serde::Deserialize;
use std::collections::{HashMap, HashSet};
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};

pub const DEFAULT_FILE_MODE: u32 = 0o444;
pub const DIR_MODE: u32 = 0o755;
pub const DEFAULT_SHELL: &str = "/bin/sh";

#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Spec {
    #[serde(default)]
    pub files: Vec<FileEntry>,
    #[serde(default)]
    pub links: Vec<LinkEntry>,
    #[serde(default)]
    pub dirs: Vec<String>,
    #[serde(default)]
    pub single: Option<SingleFile>,
    #[serde(default)]
    pub post_install: Option<String>,
    #[serde(default)]
    pub shell: Option<String>,
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct FileEntry {
    pub path: String,
    pub text: String,
    #[serde(default = "default_mode")]
    pub mode: u32,
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct LinkEntry {
    pub path: String,
    pub target: String,
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct SingleFile {
    pub text: String,
    #[serde(default = "default_mode")]
    pub mode: u32,
}

fn default_mode() -> u32 {
    DEFAULT_FILE_MODE
}

pub fn parse_spec(json: &str) -> Result<Spec> {
    serde_json::from_str(json).context("invalid build spec")
}

/// Validates a path of the spec and returns it normalised (`.` components
/// and repeated or trailing slashes dropped). Paths must be relative,
/// non-empty, without `..` and without NUL.
pub fn validate_path(path: &str) -> Result<PathBuf> {
    if path.contains('\0') {
        bail!("invalid path {path:?}: contains a NUL byte");
    }
    if path.is_empty() {
        bail!("invalid path \"\": empty");
    }
    if path.starts_with('/') {
        bail!("invalid path {path:?}: must be relative");
    }
    let mut out = PathBuf::new();
    for c in Path::new(path).components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::CurDir => {}
            Component::ParentDir => bail!("invalid path {path:?}: contains '..'"),
            Component::RootDir | Component::Prefix(_) => {
                bail!("invalid path {path:?}: must be relative")
            }
        }
    }
    if out.as_os_str().is_empty() {
        bail!("invalid path {path:?}: names the output itself");
    }
    Ok(out)
}

fn check_mode(path: &str, mode: u32) -> Result<()> {
    if mode > 0o7777 {
        bail!("invalid mode {mode} (0{mode:o}) for {path:?}");
    }
    Ok(())
}

/// Creates the parent directories of `rel` under `out` (mode 0755), refusing
/// to go through anything that is not a real directory (a symlink created
/// by the spec would otherwise let a path escape `$out`).
fn make_parents(out: &Path, rel: &Path) -> Result<()> {
    let mut cur = out.to_path_buf();
    let comps: Vec<_> = rel.components().collect();
    for c in &comps[..comps.len().saturating_sub(1)] {
        cur.push(c);
        make_dir(&cur, rel)?;
    }
    Ok(())
}

fn make_dir(dir: &Path, rel: &Path) -> Result<()> {
    match std::fs::symlink_metadata(dir) {
        Ok(m) if m.file_type().is_dir() => Ok(()),
        Ok(_) => bail!(
            "cannot create {}: {} exists and is not a directory",
            rel.display(),
            dir.display()
        ),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::create_dir(dir)
                .with_context(|| format!("cannot create directory {}", dir.display()))?;
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(DIR_MODE))
                .with_context(|| format!("cannot set mode of {}", dir.display()))
        }
        Err(e) => Err(e).with_context(|| format!("cannot inspect {}", dir.display())),
    }
}

fn write_file(dest: &Path, text: &str, mode: u32) -> Result<()> {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(dest)
        .with_context(|| format!("cannot create {}", dest.display()))?;
    f.write_all(text.as_bytes())
        .with_context(|| format!("cannot write {}", dest.display()))?;
    // Exact mode, whatever the umask.
    f.set_permissions(std::fs::Permissions::from_mode(mode))
        .with_context(|| format!("cannot set mode of {}", dest.display()))
}

/// Drops entries that repeat an earlier one exactly (same path, content and
/// mode, or same link target). A profile merges the packages of all its
/// processes, and two processes may well declare the same group or user;
/// only entries that *disagree* are an error, reported with both versions'
/// nature so the user knows which declarations collide.
pub fn merge_identical(spec: &Spec) -> Result<Spec> {
    let mut files: HashMap<PathBuf, &FileEntry> = HashMap::new();
    let mut links: HashMap<PathBuf, &LinkEntry> = HashMap::new();
    let mut out = Spec {
        files: Vec::new(),
        links: Vec::new(),
        ..spec.clone()
    };
    for f in &spec.files {
        let key = validate_path(&f.path)?;
        match files.get(&key) {
            None => {
                files.insert(key, f);
                out.files.push(f.clone());
            }
            Some(prev) if prev.text == f.text && prev.mode == f.mode => {}
            Some(_) => bail!(
                "path {:?} is generated twice with different contents (two processes declare \
                 conflicting files, e.g. the same user or group with different properties)",
                f.path
            ),
        }
    }
    for l in &spec.links {
        let key = validate_path(&l.path)?;
        match links.get(&key) {
            None => {
                links.insert(key, l);
                out.links.push(l.clone());
            }
            Some(prev) if prev.target == l.target => {}
            Some(prev) => bail!(
                "link {:?} is generated twice with different targets ({:?} and {:?})",
                l.path,
                prev.target,
                l.target
            ),
        }
    }
    Ok(out)
}

/// Checks the whole spec before touching the file system.
pub fn validate(spec: &Spec) -> Result<()> {
    let mut seen: HashSet<PathBuf> = HashSet::new();
    let mut claim = |path: &str| -> Result<()> {
        let p = validate_path(path)?;
        if !seen.insert(p) {
            bail!("path {path:?} is used more than once in the build spec");
        }
        Ok(())
    };
    for f in &spec.files {
        claim(&f.path)?;
        check_mode(&f.path, f.mode)?;
    }
    for l in &spec.links {
        claim(&l.path)?;
        if l.target.is_empty() || l.target.contains('\0') {
            bail!("invalid link target {:?} for {:?}", l.target, l.path);
        }
    }
    for d in &spec.dirs {
        claim(d)?;
    }
    if let Some(single) = &spec.single {
        check_mode("$out", single.mode)?;
        if !(spec.files.is_empty() && spec.links.is_empty() && spec.dirs.is_empty()) {
            bail!("'single' cannot be combined with files, links or dirs");
        }
    }
    if let Some(shell) = &spec.shell {
        if shell.is_empty() || shell.contains('\0') {
            bail!("invalid shell {shell:?}");
        }
    }
    Ok(())
}

/// Materialises `spec` in `out` and runs its postInstall.
pub fn build(spec: &Spec, out: &Path) -> Result<()> {
    let merged = merge_identical(spec)?;
    let spec = &merged;
    validate(spec)?;
    let out = if out.is_absolute() {
        out.to_path_buf()
    } else {
        std::env::current_dir()?.join(out)
    };
    if let Some(single) = &spec.single {
        if let Some(parent) = out.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
        write_file(&out, &single.text, single.mode)?;
    } else {
        match std::fs::symlink_metadata(&out) {
            Ok(m) if m.file_type().is_dir() => {}
            Ok(_) => bail!("{} exists and is not a directory", out.display()),
            Err(_) => {
                std::fs::create_dir_all(&out)
                    .with_context(|| format!("cannot create {}", out.display()))?;
                std::fs::set_permissions(&out, std::fs::Permissions::from_mode(DIR_MODE))?;
            }
        }
        for d in &spec.dirs {
            let rel = validate_path(d)?;
            make_parents(&out, &rel)?;
            make_dir(&out.join(&rel), &rel)?;
        }
        for f in &spec.files {
            let rel = validate_path(&f.path)?;
            make_parents(&out, &rel)?;
            write_file(&out.join(&rel), &f.text, f.mode)?;
        }
        for l in &spec.links {
            let rel = validate_path(&l.path)?;
            make_parents(&out, &rel)?;
            let dest = out.join(&rel);
            std::os::unix::fs::symlink(&l.target, &dest)
                .with_context(|| format!("cannot create link {} -> {}", rel.display(), l.target))?;
        }
    }
    if let Some(code) = spec
        .post_install
        .as_deref()
        .filter(|c| !c.trim().is_empty())
    {
        run_post_install(code, spec.shell.as_deref().unwrap_or(DEFAULT_SHELL), &out)?;
    }
    Ok(())
}

fn run_post_install(code: &str, shell: &str, out: &Path) -> Result<()> {
    // Nix builds run in $NIX_BUILD_TOP; elsewhere a throw-away directory.
    let tmp;
    let cwd = match std::env::var_os("NIX_BUILD_TOP").filter(|v| !v.is_empty()) {
        Some(top) => PathBuf::from(top),
        None => {
            tmp = tempfile::tempdir().context("cannot create a temporary build directory")?;
            tmp.path().to_path_buf()
        }
    };
    let status = std::process::Command::new(shell)
        .arg("-e")
        .arg("-c")
        .arg(code)
        .current_dir(&cwd)
        .env("out", out)
        .status()
        .with_context(|| format!("cannot run postInstall with {shell}"))?;
    if !status.success() {
        use std::os::unix::process::ExitStatusExt;
        match (status.code(), status.signal()) {
            (Some(c), _) => bail!("postInstall failed with exit status {c}"),
            (None, Some(s)) => bail!("postInstall was killed by signal {s}"),
            _ => bail!("postInstall failed: {status}"),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn path_validation() {
        assert_eq!(validate_path("a/b").unwrap(), PathBuf::from("a/b"));
        assert_eq!(validate_path("./a//b/").unwrap(), PathBuf::from("a/b"));
        for bad in ["", "/etc/x", "a/../b", "..", "a/..", "a\0b", ".", "./"] {
            let err = validate_path(bad).unwrap_err().to_string();
            assert!(err.contains("invalid path"), "{bad:?}: {err}");
        }
        assert!(validate_path("a/../b")
            .unwrap_err()
            .to_string()
            .contains("a/../b"));
    }

    #[test]
    fn duplicates_are_errors() {
        let spec = parse_spec(
            r#"{"files":[{"path":"etc/x","text":"1","mode":292}],
                "links":[{"path":"./etc//x","target":"/y"}]}"#,
        )
        .unwrap();
        let err = validate(&spec).unwrap_err().to_string();
        assert!(
            err.contains("./etc//x") && err.contains("more than once"),
            "{err}"
        );
    }

    #[test]
    fn identical_repeats_merge_and_conflicts_are_errors() {
        let spec = parse_spec(
            r#"{"files":[{"path":"d/groups/web","text":"gid=1\n","mode":292},
                         {"path":"d/groups/web","text":"gid=1\n","mode":292}],
                "links":[{"path":"l","target":"/t"},{"path":"./l","target":"/t"}]}"#,
        )
        .unwrap();
        let merged = merge_identical(&spec).unwrap();
        assert_eq!((merged.files.len(), merged.links.len()), (1, 1));
        let tmp = tempfile::tempdir().unwrap();
        build(&spec, &tmp.path().join("out")).unwrap();

        let conflict = parse_spec(
            r#"{"files":[{"path":"d/groups/web","text":"gid=1\n","mode":292},
                         {"path":"d/groups/web","text":"gid=2\n","mode":292}]}"#,
        )
        .unwrap();
        let err = merge_identical(&conflict).unwrap_err().to_string();
        assert!(
            err.contains("d/groups/web") && err.contains("different contents"),
            "{err}"
        );
    }

    #[test]
    fn unknown_fields_and_bad_modes_rejected() {
        assert!(parse_spec(r#"{"filez":[]}"#).is_err());
        let spec = parse_spec(r#"{"files":[{"path":"x","text":"","mode":99999}]}"#).unwrap();
        assert!(validate(&spec).is_err());
    }

    #[test]
    fn end_to_end() {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("out");
        let spec = parse_spec(
            r##"{
              "files": [ {"path": "etc/rc.d/init.d/x", "text": "#!/bin/sh\necho hi\n", "mode": 365},
                         {"path": "share/doc", "text": "d", "mode": 292} ],
              "links": [ {"path": "etc/rc.d/rc3.d/S01x", "target": "../init.d/x"},
                         {"path": "bin/sh", "target": "/bin/sh"} ],
              "dirs": ["var/empty", "etc"],
              "postInstall": "test \"$(cat \"$out/share/doc\")\" = d; echo post > \"$out/post\"; pwd > \"$out/cwd\"",
              "shell": null,
              "single": null
            }"##,
        )
        .unwrap();
        build(&spec, &out).unwrap();
        let x = out.join("etc/rc.d/init.d/x");
        assert_eq!(std::fs::read_to_string(&x).unwrap(), "#!/bin/sh\necho hi\n");
        assert_eq!(
            std::fs::metadata(&x).unwrap().permissions().mode() & 0o7777,
            0o555
        );
        assert_eq!(
            std::fs::metadata(out.join("share/doc"))
                .unwrap()
                .permissions()
                .mode()
                & 0o7777,
            0o444
        );
        assert_eq!(
            std::fs::read_link(out.join("etc/rc.d/rc3.d/S01x")).unwrap(),
            PathBuf::from("../init.d/x")
        );
        assert_eq!(
            std::fs::read_to_string(out.join("etc/rc.d/rc3.d/S01x")).unwrap(),
            "#!/bin/sh\necho hi\n"
        );
        assert_eq!(
            std::fs::read_link(out.join("bin/sh")).unwrap(),
            PathBuf::from("/bin/sh")
        );
        assert!(out.join("var/empty").is_dir());
        assert_eq!(
            std::fs::metadata(out.join("var"))
                .unwrap()
                .permissions()
                .mode()
                & 0o7777,
            0o755
        );
        assert_eq!(std::fs::read_to_string(out.join("post")).unwrap(), "post\n");
        let cwd = std::fs::read_to_string(out.join("cwd")).unwrap();
        assert_ne!(cwd.trim(), out.to_str().unwrap());
    }

    #[test]
    fn empty_spec_makes_directory() {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("out");
        build(&parse_spec("{}").unwrap(), &out).unwrap();
        assert!(out.is_dir());
    }

    #[test]
    fn single_file_output() {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("out");
        build(
            &parse_spec(r#"{"single":{"text":"abc","mode":365}}"#).unwrap(),
            &out,
        )
        .unwrap();
        assert_eq!(std::fs::read_to_string(&out).unwrap(), "abc");
        assert_eq!(
            std::fs::metadata(&out).unwrap().permissions().mode() & 0o7777,
            0o555
        );
        let bad = parse_spec(r#"{"single":{"text":"abc"},"dirs":["x"]}"#).unwrap();
        assert!(validate(&bad).is_err());
    }

    #[test]
    fn no_writing_through_links() {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("out");
        let spec =
            parse_spec(r#"{"links":[{"path":"a","target":"/tmp"}, {"path":"a/b","target":"x"}]}"#)
                .unwrap();
        let err = format!("{:#}", build(&spec, &out).unwrap_err());
        assert!(err.contains("not a directory"), "{err}");
        // A file whose parent is a file.
        let out2 = tmp.path().join("out2");
        let spec =
            parse_spec(r#"{"files":[{"path":"a","text":""},{"path":"a/b","text":""}]}"#).unwrap();
        assert!(build(&spec, &out2).is_err());
    }

    #[test]
    fn failing_post_install_reports_status() {
        let tmp = tempfile::tempdir().unwrap();
        let spec = parse_spec(r#"{"postInstall":"false; exit 0"}"#).unwrap();
        let err = format!("{:#}", build(&spec, &tmp.path().join("o")).unwrap_err());
        assert!(err.contains("exit status 1"), "{err}");
        let spec = parse_spec(r#"{"postInstall":"exit 42"}"#).unwrap();
        let err = format!("{:#}", build(&spec, &tmp.path().join("o2")).unwrap_err());
        assert!(err.contains("exit status 42"), "{err}");
    }
}
