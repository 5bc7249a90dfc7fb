//! disnix: Dysnomia `process` components (reference §3.8).
//!
//! `builtins.createProcessScript` makes the package of one component:
//!
//! ```text
//! etc/dysnomia/process/<name>        process=<program that daemonizes>
//!                                    pidFile=<the PID file it writes>
//! bin/<name>-process-wrapper         (only from createManagedProcess: the program)
//! dysnomia-support/{groups,users}/…  (credentials)
//! ```
//!
//! Called by users directly it takes the original's parameters: `name`,
//! `process` (required), `pidFile`, `dependencies`, `postInstall`,
//! `credentials`, plus an optional `description`. The agnostic layer
//! ([`translate`]) instead passes `wrapper = { text; user; logFile; }`: the
//! original built the wrapper script as a derivation of its own, which a
//! primop cannot make, so here it is a file of the same package and
//! `process=` names it through Nix's output placeholder ([`OUT_PLACEHOLDER`],
//! rewritten to the real output path when the package — or a profile that
//! merges it — is built). The placeholder is only ever put into the result
//! here, never into an argument: in builder mode a primop argument travels
//! through a derivation of its own, whose output path would replace it.
//!
//! Differences to the original, each fixing a defect or a rough edge:
//!
//! * `pidFile=` is always written (the runtime default of Dysnomia,
//!   `<runtimeDir>/<basename process>.pid`, computed with this model's
//!   `runtimeDir`), so the activator and Dysnomia agree on it;
//! * a daemon that switches users goes through nixproc's foreground proxy
//!   (`--user`, which also sets the supplementary groups, defect 22), not
//!   `su <user> -c …` (fails for system users with a nologin shell);
//! * every value in the wrapper is shell-escaped; values in the component
//!   file (which Dysnomia reads line by line, unquoted) must fit on a line;
//! * dependencies are names; the services adapter (`nix/disnix/`) maps them
//!   back to instance keys, so keys need not equal process names (defect 28).

mod render;
#[cfg(test)]
mod tests;
mod translate;

pub use translate::translate;

use std::collections::BTreeMap;

use crate::args::Args;
use crate::credentials::{self, Ids};
use crate::error::{Error, Result};
use crate::fields::{check_process_name, dependency_sets, non_empty, opt_non_empty, parse_user};
use crate::manifest::{Backend, InstanceEntry};
use crate::package::{FileSpec, PackageSpec};
use crate::value::Value;

/// Composition parameters, fixed once per model by the Nix layer
/// (`nix/default.nix`, `compositions.disnix`): the generator must accept all
/// of them.
pub const COMPOSITION_KEYS: &[&str] = &[
    "runtimeDir",
    "logDir",
    "tmpDir",
    "forceDisableUserChange",
    "ids",
    "shell",
    "foregroundProxy",
    "callingUser",
    "callingGroup",
    "daemonize",
];

/// `builtins.placeholder "out"`: `/` + nix-base32(sha256("nix-output:out")).
/// Nix replaces it by the output path in a derivation's environment (and in
/// `passAsFile` contents) when the builder runs.
pub const OUT_PLACEHOLDER: &str = "/1rz4g4znpzjwh1xymhjpm42vipw92pr73vdgl6xs1hycac8kf2n9";

/// Mode of the component file.
pub const COMPONENT_MODE: u32 = 0o444;
/// Mode of the generated wrapper.
pub const WRAPPER_MODE: u32 = 0o555;

/// Relative path of the component file of `name`.
pub fn component_path(name: &str) -> String {
    format!("etc/dysnomia/process/{name}")
}

/// Relative path of the wrapper of `name`.
pub fn wrapper_path(name: &str) -> String {
    format!("bin/{name}-process-wrapper")
}

/// Global settings, fixed once per processes model.
#[derive(Debug, Clone, PartialEq)]
pub struct Composition {
    pub runtime_dir: String,
    pub log_dir: String,
    pub tmp_dir: String,
    pub force_disable_user_change: bool,
    pub ids: Ids,
    /// Interpreter of the wrapper.
    pub shell: String,
    /// Command prefix of nixproc's foreground proxy (user switching of a
    /// daemon).
    pub foreground_proxy: Option<String>,
    /// Command prefix that daemonizes a foreground process (libslack's
    /// `daemon` in the original).
    pub daemonize: Option<String>,
}

/// Reads the composition parameters (and marks `callingUser`/`callingGroup`
/// known: nothing here depends on them).
pub fn parse_composition(a: &Args) -> Result<Composition> {
    let shell = a.str_or("shell", "/bin/sh")?;
    if shell.is_empty() || shell.contains(['\n', '\0', ' ', '\t']) {
        return Err(Error::invalid(
            "shell",
            "must be a non-empty interpreter path on one line, without blanks",
        ));
    }
    let prefix = |key: &str| -> Result<Option<String>> {
        let v = opt_non_empty(a, key)?;
        if let Some(p) = &v {
            if p.split_whitespace().next().is_none() || p.contains(['\n', '\0']) {
                return Err(Error::invalid(key, "must be a command on one line"));
            }
        }
        Ok(v)
    };
    a.allow(&["callingUser", "callingGroup"]);
    Ok(Composition {
        runtime_dir: non_empty("runtimeDir", a.str_or("runtimeDir", "/var/run")?)?,
        log_dir: non_empty("logDir", a.str_or("logDir", "/var/log")?)?,
        tmp_dir: non_empty("tmpDir", a.str_or("tmpDir", "/tmp")?)?,
        force_disable_user_change: a.bool_or("forceDisableUserChange", false)?,
        ids: Ids::from_attrs(a.attrs("ids")?)?,
        shell,
        foreground_proxy: prefix("foregroundProxy")?,
        daemonize: prefix("daemonize")?,
    })
}

/// Where `process=` points.
#[derive(Debug, Clone, PartialEq)]
pub enum Program {
    /// A program given by the caller.
    Process(String),
    /// A wrapper generated by the agnostic layer, stored in the package.
    Wrapper {
        text: String,
        /// The user the wrapper runs the process as (manifest only).
        user: Option<String>,
        /// Where the wrapper sends the output of a daemonized foreground
        /// process (manifest only).
        log_file: Option<String>,
    },
}

/// The parameters of `createProcessScript`, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct Component {
    pub name: String,
    pub description: String,
    pub program: Program,
    pub pid_file: Option<String>,
    pub dependencies: Vec<String>,
}

/// A value of the component file: Dysnomia reads `key=value` lines
/// unquoted, so it must be one non-empty line.
fn component_value(attr: &str, v: &str) -> Result<()> {
    if v.contains(['\n', '\r', '\0']) {
        return Err(Error::invalid(
            attr,
            format!(
                "{v:?} cannot be written to a Dysnomia component file (one key=value per \
                 line): it must not contain a line break"
            ),
        ));
    }
    Ok(())
}

fn parse_wrapper(a: &Args) -> Result<Option<Program>> {
    let Some(w) = a.get("wrapper") else {
        return Ok(None);
    };
    (|| {
        let w = Args::new(w, "")?;
        let text = w.opt_str("text")?.ok_or_else(|| Error::Missing {
            attr: "text".into(),
            why: "the wrapper script".into(),
        })?;
        if !text.starts_with("#!") {
            return Err(Error::invalid(
                "text",
                "must start with an interpreter line (#!)",
            ));
        }
        let user = parse_user(&w)?;
        let log_file = opt_non_empty(&w, "logFile")?;
        w.finish()?;
        Ok(Some(Program::Wrapper {
            text,
            user,
            log_file,
        }))
    })()
    .map_err(|e: Error| e.within("wrapper"))
}

/// Reads the per-component parameters.
pub fn parse_component(a: &Args) -> Result<Component> {
    let name = a.opt_str("name")?.ok_or_else(|| Error::Missing {
        attr: "name".into(),
        why: "the component (and process) name".into(),
    })?;
    check_process_name("name", &name)?;
    let description = a.opt_str("description")?.unwrap_or_else(|| name.clone());
    let process = opt_non_empty(a, "process")?;
    let program = match (process, parse_wrapper(a)?) {
        (Some(p), None) => {
            component_value("process", &p)?;
            Program::Process(p)
        }
        (None, Some(w)) => w,
        (Some(_), Some(_)) => {
            return Err(Error::invalid(
                "process",
                "cannot be combined with wrapper (the generated program process= points at)",
            ))
        }
        (None, None) => {
            return Err(Error::Missing {
                attr: "process".into(),
                why: "the program Dysnomia runs; it must daemonize and write the PID file".into(),
            })
        }
    };
    let pid_file = opt_non_empty(a, "pidFile")?;
    if let Some(p) = &pid_file {
        component_value("pidFile", p)?;
    }
    let dependencies = dependency_sets(a, "a disnix process package")?
        .into_iter()
        .map(|d| {
            check_process_name(&d.name_attr(), &d.name)?;
            Ok(d.name)
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Component {
        name,
        description,
        program,
        pid_file,
        dependencies,
    })
}

/// `builtins.createProcessScript`: one Dysnomia process component.
pub fn create_process_script(v: &Value) -> Result<PackageSpec> {
    let a = Args::new(v, "argument")?;
    let comp = parse_composition(&a)?;
    let c = parse_component(&a)?;
    let creds = credentials::credential_files(
        a.attrs("credentials")?,
        &comp.ids,
        comp.force_disable_user_change,
    )?;
    // The Nix layer / builder runs it after the files are written.
    a.allow(&["postInstall"]);
    a.finish()?;
    build(&comp, &c, creds)
}

fn basename(p: &str) -> &str {
    p.trim_end_matches('/').rsplit('/').next().unwrap_or("")
}

/// The PID file of a component: `pidFile`, else Dysnomia's default
/// `<runtimeDir>/<basename process>.pid`.
pub fn pid_file(comp: &Composition, c: &Component, process: &str) -> Result<String> {
    if let Some(p) = &c.pid_file {
        return Ok(p.clone());
    }
    let base = basename(process);
    if base.is_empty() || base == "." || base == ".." {
        return Err(Error::invalid(
            "process",
            format!("cannot derive a PID file name from {process:?}; give pidFile"),
        ));
    }
    let file = format!("{}/{base}.pid", comp.runtime_dir.trim_end_matches('/'));
    component_value("runtimeDir", &file)?;
    Ok(file)
}

fn build(comp: &Composition, c: &Component, creds: Vec<FileSpec>) -> Result<PackageSpec> {
    let component = component_path(&c.name);
    let mut files = Vec::new();
    let (process, user, log_file) = match &c.program {
        Program::Process(p) => (p.clone(), None, None),
        Program::Wrapper {
            text,
            user,
            log_file,
        } => {
            let path = wrapper_path(&c.name);
            let process = format!("{OUT_PLACEHOLDER}/{path}");
            files.push(FileSpec {
                path,
                text: text.clone(),
                mode: WRAPPER_MODE,
            });
            (process, user.clone(), log_file.clone())
        }
    };
    let pid_file = pid_file(comp, c, &process)?;
    files.insert(
        0,
        FileSpec {
            path: component.clone(),
            text: render::component_text(&process, &pid_file),
            mode: COMPONENT_MODE,
        },
    );
    files.extend(creds);

    let manifest = InstanceEntry {
        key: String::new(),
        name: c.name.clone(),
        description: c.description.clone(),
        revision: String::new(),
        dependencies: c.dependencies.clone(),
        pid_file: Some(pid_file),
        log_file,
        user,
        backend: Backend::Disnix { component, process },
        state: None,
        readiness: None,
    };
    Ok(PackageSpec::new(
        c.name.clone(),
        files,
        Vec::new(),
        manifest,
        BTreeMap::new(),
    ))
}
