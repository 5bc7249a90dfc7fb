//! `nixproc generate-config` (reference §4.4, §5.10): builds a process
//! package for a process manager from an *agnostic config* — the JSON file
//! `createManagedProcess` writes when a model is evaluated with
//! `processManager = null` (nix/lib/agnostic-config.nix) — and prints its
//! store path. Dependencies in the JSON are store paths of other config
//! packages and are read recursively (nix/generate-config.nix).
//!
//! With `--base` it builds the process manager's own base configuration
//! for the given state directories instead: supervisord's `supervisord.conf`
//! (the one profiles carry) and s6's scan directory (`.s6-svscan/finish`
//! plus `bin/nixproc-s6-svscan`, which installs it under the runtime dir and
//! runs `s6-svscan` on it).
//!
//! Unlike the original, every option reaches Nix: the state directories as
//! `--argstr` (defect 6), `--create-managed-process-expr` (never matched
//! there), `--force-disable-user-change`, `--show-trace`.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};

/// Process managers with a base configuration of their own.
pub const BASE_MANAGERS: &[&str] = &["supervisord", "s6-rc"];

/// Process managers `generate-config` can build process packages for
/// (reference §0: every backend of nix-processmgmt).
pub const PROCESS_MANAGERS: &[&str] = &[
    "sysvinit",
    "bsdrc",
    "supervisord",
    "systemd",
    "launchd",
    "cygrunsrv",
    "s6-rc",
    "disnix",
    "docker",
];

/// One `nixproc generate-config` invocation.
#[derive(Debug, Clone, Default)]
pub struct Request {
    /// `-P`; required.
    pub process_manager: Option<String>,
    /// The agnostic config JSON file (not with `base`).
    pub config: Option<PathBuf>,
    /// Build the process manager's base configuration instead.
    pub base: bool,
    /// A Nix file giving `createManagedProcess`: a function of (some of) the
    /// state parameters returning `createManagedProcess`, or an attrset
    /// with a `createManagedProcess` attribute (like `import <nixproc> {…}`).
    pub create_managed_process_expr: Option<PathBuf>,
    /// `(formal, value)` pairs passed with `--argstr`: the explicitly given
    /// state directories.
    pub string_args: Vec<(String, String)>,
    pub force_disable_user_change: bool,
    pub show_trace: bool,
    /// A GC-rooted symlink to the result (`nixproc-generate-config` makes
    /// `result` unless `--no-out-link`, like nix-build).
    pub out_link: Option<PathBuf>,
}

impl Request {
    /// The process manager, checked, or an error saying what to pass.
    pub fn checked_process_manager(&self) -> Result<&str> {
        let pm = self.process_manager.as_deref().with_context(|| {
            format!(
                "no process manager given: pass -P/--process-manager ({})",
                PROCESS_MANAGERS.join(", ")
            )
        })?;
        if !PROCESS_MANAGERS.contains(&pm) {
            bail!(
                "unknown process manager '{pm}' (one of: {})",
                PROCESS_MANAGERS.join(", ")
            );
        }
        if self.base && !BASE_MANAGERS.contains(&pm) {
            bail!(
                "{pm} has no base configuration of its own (only {} have one); \
                 generate-config --base builds nothing for it",
                BASE_MANAGERS.join(" and ")
            );
        }
        Ok(pm)
    }

    /// The arguments after `nix-build` (and its common options).
    pub fn nix_args(&self, nix_dir: &Path) -> Result<Vec<OsString>> {
        let pm = self.checked_process_manager()?;
        let mut a: Vec<OsString> = vec![nix_dir.join("generate-config.nix").into()];
        let mut argstr = |name: &str, value: OsString| {
            a.extend(["--argstr".into(), name.into(), value]);
        };
        argstr("processManager", pm.into());
        if self.base {
            if let Some(c) = &self.config {
                bail!(
                    "--base builds the process manager's base configuration and takes no \
                     config file, but {} was given",
                    c.display()
                );
            }
        } else {
            let config = self.config.as_ref().context(
                "no config file given: pass the agnostic config (a <name>.json written by \
                 createManagedProcess with processManager = null), or --base",
            )?;
            if !config.is_file() {
                bail!("config file {} not found (or not a file)", config.display());
            }
            argstr("configFile", absolute(config)?.into());
        }
        if let Some(expr) = &self.create_managed_process_expr {
            if self.base {
                bail!("--create-managed-process-expr has no effect with --base");
            }
            let abs = expr.canonicalize().with_context(|| {
                format!(
                    "--create-managed-process-expr: {} not found",
                    expr.display()
                )
            })?;
            argstr("createManagedProcessExpr", abs.into());
        }
        for (name, value) in &self.string_args {
            argstr(name, value.into());
        }
        if self.base {
            a.extend(["--arg", "base", "true"].map(OsString::from));
        }
        if self.force_disable_user_change {
            a.extend(["--arg", "forceDisableUserChange", "true"].map(OsString::from));
        }
        if self.show_trace {
            a.push("--show-trace".into());
        }
        match &self.out_link {
            Some(link) => a.extend(["--out-link".into(), link.into()]),
            None => a.push("--no-out-link".into()),
        }
        Ok(a)
    }
}

/// Absolute without resolving symlinks in the file name: a config inside a
/// store path stays that path (the reader finds dependencies next to it).
fn absolute(p: &Path) -> Result<PathBuf> {
    let abs = if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir()?.join(p)
    };
    Ok(abs)
}

/// Runs the prepared `nix-build` command (`cmd` carries the toolchain's
/// common options) and returns the store path it printed.
pub fn build(mut cmd: Command, nix_dir: &Path, req: &Request) -> Result<PathBuf> {
    cmd.args(req.nix_args(nix_dir)?);
    cmd.stdin(Stdio::null()).stderr(Stdio::inherit());
    let out = cmd
        .output()
        .context("cannot run nix-build (is Nix installed?)")?;
    if !out.status.success() {
        let what = if req.base {
            "the base configuration".to_string()
        } else {
            format!(
                "a process from {}",
                req.config.as_deref().unwrap_or(Path::new("?")).display()
            )
        };
        bail!(
            "building {what} failed (nix-build exited with {})",
            out.status
        );
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let path = stdout
        .lines()
        .rev()
        .find(|l| l.starts_with('/'))
        .context("nix-build printed no store path")?;
    Ok(PathBuf::from(path.trim()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strs(v: &[OsString]) -> Vec<String> {
        v.iter().map(|s| s.to_string_lossy().into_owned()).collect()
    }

    fn config_file() -> tempfile::NamedTempFile {
        let f = tempfile::Builder::new().suffix(".json").tempfile().unwrap();
        std::fs::write(f.path(), "{}").unwrap();
        f
    }

    #[test]
    fn every_option_reaches_nix() {
        let cfg = config_file();
        let expr = config_file();
        let req = Request {
            process_manager: Some("sysvinit".into()),
            config: Some(cfg.path().to_path_buf()),
            create_managed_process_expr: Some(expr.path().to_path_buf()),
            string_args: vec![
                ("stateDir".into(), "/s t".into()),
                ("logDir".into(), "/l".into()),
            ],
            force_disable_user_change: true,
            show_trace: true,
            ..Default::default()
        };
        let a = strs(&req.nix_args(Path::new("/nixproc/nix")).unwrap());
        let joined = a.join(" ");
        assert_eq!(a[0], "/nixproc/nix/generate-config.nix");
        assert!(
            joined.contains("--argstr processManager sysvinit"),
            "{joined}"
        );
        assert!(
            joined.contains(&format!("--argstr configFile {}", cfg.path().display())),
            "{joined}"
        );
        assert!(
            joined.contains(&format!(
                "--argstr createManagedProcessExpr {}",
                expr.path().canonicalize().unwrap().display()
            )),
            "{joined}"
        );
        // Defect 6: directories as --argstr, never as nix-build options.
        let i = a.iter().position(|x| x == "stateDir").unwrap();
        assert_eq!((&a[i - 1][..], &a[i + 1][..]), ("--argstr", "/s t"));
        assert!(!joined.contains("--state-dir"), "{joined}");
        assert!(joined.contains("--argstr logDir /l"), "{joined}");
        assert!(
            joined.contains("--arg forceDisableUserChange true"),
            "{joined}"
        );
        assert!(a.contains(&"--show-trace".to_string()));
        assert_eq!(a.last().unwrap(), "--no-out-link");
    }

    #[test]
    fn out_link_is_passed_on() {
        let cfg = config_file();
        let req = Request {
            process_manager: Some("supervisord".into()),
            config: Some(cfg.path().to_path_buf()),
            out_link: Some("result".into()),
            ..Default::default()
        };
        let a = strs(&req.nix_args(Path::new("/n")).unwrap());
        assert_eq!(&a[a.len() - 2..], ["--out-link", "result"]);
        assert!(!a.contains(&"--no-out-link".to_string()));
    }

    #[test]
    fn relative_config_becomes_absolute() {
        let cfg = config_file();
        let dir = cfg.path().parent().unwrap();
        let name = cfg.path().file_name().unwrap();
        let req = Request {
            process_manager: Some("sysvinit".into()),
            config: Some(dir.join(".").join(name)),
            ..Default::default()
        };
        let a = strs(&req.nix_args(Path::new("/n")).unwrap());
        let i = a.iter().position(|x| x == "configFile").unwrap();
        assert!(Path::new(&a[i + 1]).is_absolute());
    }

    #[test]
    fn missing_process_manager_is_a_clear_error() {
        let cfg = config_file();
        let req = Request {
            config: Some(cfg.path().to_path_buf()),
            ..Default::default()
        };
        let e = req.nix_args(Path::new("/n")).unwrap_err().to_string();
        assert!(e.contains("no process manager given: pass -P"), "{e}");
        let req = Request {
            process_manager: Some("upstart".into()),
            ..req
        };
        let e = req.nix_args(Path::new("/n")).unwrap_err().to_string();
        assert!(e.contains("unknown process manager 'upstart'"), "{e}");
    }

    #[test]
    fn missing_config_file_is_a_clear_error() {
        let req = Request {
            process_manager: Some("sysvinit".into()),
            config: Some("/nonexistent/webapp.json".into()),
            ..Default::default()
        };
        let e = req.nix_args(Path::new("/n")).unwrap_err().to_string();
        assert!(
            e.contains("config file /nonexistent/webapp.json not found"),
            "{e}"
        );
        let req = Request {
            config: None,
            ..req
        };
        let e = req.nix_args(Path::new("/n")).unwrap_err().to_string();
        assert!(e.contains("no config file given"), "{e}");
    }

    #[test]
    fn base_only_for_managers_that_have_one() {
        for pm in BASE_MANAGERS {
            let req = Request {
                process_manager: Some(pm.to_string()),
                base: true,
                string_args: vec![("stateDir".into(), "/s".into())],
                ..Default::default()
            };
            let a = strs(&req.nix_args(Path::new("/n")).unwrap()).join(" ");
            assert!(a.contains("--arg base true"), "{a}");
            assert!(a.contains("--argstr stateDir /s"), "{a}");
            assert!(!a.contains("configFile"), "{a}");
        }
        let req = Request {
            process_manager: Some("systemd".into()),
            base: true,
            ..Default::default()
        };
        let e = req.nix_args(Path::new("/n")).unwrap_err().to_string();
        assert!(
            e.contains("systemd has no base configuration of its own"),
            "{e}"
        );
        let cfg = config_file();
        let req = Request {
            process_manager: Some("supervisord".into()),
            base: true,
            config: Some(cfg.path().to_path_buf()),
            ..Default::default()
        };
        let e = req.nix_args(Path::new("/n")).unwrap_err().to_string();
        assert!(e.contains("takes no config file"), "{e}");
    }
}
