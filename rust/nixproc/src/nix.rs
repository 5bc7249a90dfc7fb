//! Talking to Nix: where the plugin, the static builder and the Nix library
//! are, and how a profile is built (`nix-build` with the plugin loaded).

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};

/// The three artefacts a build needs, found next to the `nixproc` binary
/// (the layout `cargo build --release` + `scripts/build.sh` leave in
/// `target/release`), each overridable by an environment variable.
#[derive(Debug, Clone)]
pub struct Toolchain {
    /// `libnixproc_plugin.so`, passed as `--option plugin-files`; `None`
    /// means builder mode (`NIXPROC_PLUGIN=none`, or no plugin installed):
    /// the Nix layer then runs the generators through the static builder.
    pub plugin: Option<PathBuf>,
    /// The static `nixproc-builder` (exported as `NIXPROC_BUILDER`).
    pub builder: PathBuf,
    /// The Nix library (`nix/`), reachable as `<nixproc>`.
    pub nix_dir: PathBuf,
}

impl Toolchain {
    pub fn locate() -> Result<Self> {
        let exe = std::env::current_exe().context("cannot determine the nixproc executable")?;
        let exe = exe.canonicalize().unwrap_or(exe);
        let bin_dir = exe.parent().unwrap_or(Path::new("/")).to_path_buf();
        Ok(Toolchain {
            plugin: locate_plugin(&bin_dir)?,
            builder: find(
                "NIXPROC_BUILDER",
                &[
                    bin_dir.join("nixproc-builder"),
                    bin_dir.join("../release/nixproc-builder"),
                ],
                "the static nixproc-builder; build it with `scripts/build.sh`",
            )?,
            nix_dir: find(
                "NIXPROC",
                &[
                    bin_dir.join("../../nix"),
                    bin_dir.join("../share/nixproc/nix"),
                ],
                "the nixproc Nix library (the repository's nix/ directory)",
            )?,
        })
    }

    /// Arguments every Nix invocation gets: the plugin, no substituters (no
    /// binary cache is reachable here, and a cache must never be needed),
    /// and `<nixproc>` on the search path.
    pub fn common_args(&self) -> Vec<OsString> {
        let mut a: Vec<OsString> = Vec::new();
        if let Some(plugin) = &self.plugin {
            a.extend([
                "--option".into(),
                "plugin-files".into(),
                plugin.clone().into(),
            ]);
        }
        a.extend([
            "--option".into(),
            "substituters".into(),
            "".into(),
            "-I".into(),
        ]);
        let mut inc = OsString::from("nixproc=");
        inc.push(&self.nix_dir);
        a.push(inc);
        a
    }

    pub fn command(&self, program: &str) -> Command {
        let mut c = Command::new(program);
        c.args(self.common_args());
        c.env("NIXPROC_BUILDER", &self.builder);
        c
    }
}

/// The plugin: `NIXPROC_PLUGIN` (a path, or `none` for builder mode), else
/// next to the executable; when there is none, builder mode with a notice.
fn locate_plugin(bin_dir: &Path) -> Result<Option<PathBuf>> {
    if std::env::var_os("NIXPROC_PLUGIN").is_some_and(|v| v == "none") {
        return Ok(None);
    }
    let found = find(
        "NIXPROC_PLUGIN",
        &[
            bin_dir.join("libnixproc_plugin.so"),
            bin_dir.join("../lib/nixproc/libnixproc_plugin.so"),
        ],
        "the nixproc Nix plugin (libnixproc_plugin.so)",
    );
    match found {
        Ok(p) => Ok(Some(p)),
        Err(_) if std::env::var_os("NIXPROC_PLUGIN").is_none() => {
            eprintln!(
                "nixproc: no Nix plugin installed next to {}; generating in builder mode \
                 (slower evaluation, same result)",
                bin_dir.display()
            );
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

fn find(var: &str, candidates: &[PathBuf], what: &str) -> Result<PathBuf> {
    if let Some(v) = std::env::var_os(var).filter(|v| !v.is_empty()) {
        let p = PathBuf::from(v);
        if !p.exists() {
            bail!("{var} points at {}, which does not exist", p.display());
        }
        return Ok(p.canonicalize().unwrap_or(p));
    }
    candidates
        .iter()
        .find(|c| c.exists())
        .map(|c| c.canonicalize().unwrap_or_else(|_| c.clone()))
        .with_context(|| {
            format!(
                "cannot find {what}. Looked in: {}. Set {var} to override.",
                candidates
                    .iter()
                    .map(|c| c.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })
}

/// Everything `nix-build build-profile.nix` needs to know.
#[derive(Debug, Clone, Default)]
pub struct BuildRequest {
    /// The processes model; `None` builds the empty profile (undeploy).
    pub processes: Option<PathBuf>,
    pub process_manager: String,
    /// `(formal name, value)` pairs passed with `--argstr` (state dirs,
    /// calling user/group).
    pub string_args: Vec<(String, String)>,
    pub force_disable_user_change: bool,
    /// A Nix expression evaluating to an attrset, merged into the model's
    /// arguments (`--extra-params`).
    pub extra_params: Option<String>,
    pub show_trace: bool,
    /// Create this GC-rooted symlink to the result (`nixproc-build` compat).
    pub out_link: Option<PathBuf>,
}

/// Builds the profile and returns its store path. Nix's progress and errors
/// go straight to our stderr; only the store path is captured.
pub fn build_profile(tc: &Toolchain, req: &BuildRequest) -> Result<PathBuf> {
    let mut cmd = tc.command("nix-build");
    cmd.arg(tc.nix_dir.join("build-profile.nix"));
    cmd.args(["--argstr", "processManager", &req.process_manager]);
    for (name, value) in &req.string_args {
        cmd.args(["--argstr", name, value]);
    }
    if req.force_disable_user_change {
        cmd.args(["--arg", "forceDisableUserChange", "true"]);
    }
    if let Some(extra) = &req.extra_params {
        cmd.args(["--arg", "extraParams", extra]);
    }
    match &req.processes {
        Some(p) => {
            let abs = p
                .canonicalize()
                .with_context(|| format!("processes model {} not found", p.display()))?;
            cmd.arg("--argstr").arg("exprFile").arg(abs);
        }
        None => {
            cmd.args(["--arg", "exprFile", "null"]);
        }
    }
    if req.show_trace {
        cmd.arg("--show-trace");
    }
    match &req.out_link {
        Some(link) => {
            cmd.arg("--out-link").arg(link);
        }
        None => {
            cmd.arg("--no-out-link");
        }
    }
    cmd.stdin(Stdio::null()).stderr(Stdio::inherit());
    let out = cmd
        .output()
        .context("cannot run nix-build (is Nix installed? see scripts/setup.sh)")?;
    if !out.status.success() {
        bail!(
            "building the profile failed (nix-build exited with {})",
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
