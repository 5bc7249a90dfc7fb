//! cygrunsrv generator: nix-processmgmt's `createCygrunsrvParams`
//! (reference §3.6.1) as a pure function from one argument attrset to the
//! parameters file and manifest entry of one Windows service, and the
//! agnostic → cygrunsrv translation (§3.6.2, in [`translate()`]).
//!
//! The package holds one file, `<prefix><name>-cygrunsrvparams`: the
//! arguments of `cygrunsrv --install <prefix><name>`, **one per line**. The
//! activator runs `cygrunsrv --install <service> <line>…` with each line
//! as one argv element — no shell, no `xargs` — so a line is taken
//! literally: `--env` lines are `NAME=value` without quotes (the original
//! wrote `'NAME=value'`, and the quotes reached the service, defect 8).
//!
//! Parameters: `name` (or `instanceName`), `path` (**the executable**,
//! required), `args`, `environment`, `environmentPath` (packages whose
//! `bin/` make up `PATH`; an explicit `environment.PATH` wins),
//! `displayName` (default `<prefix><name>`), `description` (`--desc`),
//! `type` (`"auto"` or `"manual"`), `user` (a Windows account for
//! `--user`), `stdin`/`stdout`/`stderr` (files), `terminateSignal`
//! (default `TERM`), `terminateOnShutdown`, `dependencies` (service
//! packages, `--dep`), `postInstall`, and the composition (`prefix`
//! default `nix-process-`).
//!
//! Differences to the original, each deliberate:
//!
//! * a value with a line break (it would split into two arguments) or
//!   another control character is an error naming the attribute;
//! * `password` is refused: the parameters file is in the world-readable
//!   Nix store (secrets never enter it). Give the account's password to
//!   Windows after installation (`sc config <service> obj= … password= …`),
//!   or use an account without one;
//! * `args` are joined into the one `--args` value with POSIX shell
//!   quoting (`quote::shell_escape`), as the original did, which Cygwin's
//!   command-line splitting reads back;
//! * `--desc` is supported (cygrunsrv has it; the original had no
//!   parameter for it).
//!
//! No `dysnomia-support`: cygrunsrv services run as Windows accounts,
//! which nixproc does not create (see [`translate()`] for `user` and
//! `credentials`).

#[cfg(test)]
mod tests;
mod translate;

pub use translate::translate;

use std::collections::BTreeMap;

use crate::args::Args;
use crate::error::{Error, Result};
use crate::fields::{check_process_name, dependency_sets};
use crate::manifest::{Backend, InstanceEntry};
use crate::package::{FileSpec, PackageSpec};
use crate::quote::shell_join;
use crate::value::Value;

/// Composition parameters, fixed once per model by the Nix layer
/// (`nix/default.nix`, `compositions.cygrunsrv`): the generator must accept all
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
    "prefix",
];

/// The default service name prefix.
pub const DEFAULT_PREFIX: &str = "nix-process-";

/// Suffix of the parameters file (`<service>-cygrunsrvparams`).
pub const PARAMS_SUFFIX: &str = "-cygrunsrvparams";

/// Mode of the parameters file.
pub const PARAMS_MODE: u32 = 0o444;

/// One service, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct Service {
    /// `<prefix><name>`.
    pub service: String,
    pub description: String,
    /// The arguments of `cygrunsrv --install <service>`.
    pub params: Vec<String>,
    pub dependencies: Vec<String>,
    pub user: Option<String>,
    pub log_file: Option<String>,
}

/// `builtins.createCygrunsrvParams`: one cygrunsrv service package.
pub fn create_cygrunsrv_params(v: &Value) -> Result<PackageSpec> {
    let a = Args::new(v, "argument")?;
    let s = parse_service(&a)?;
    // postInstall: run by the Nix layer / builder after the files are
    // written; the other composition keys serve the translation only.
    a.allow(COMPOSITION_KEYS);
    a.allow(&["postInstall"]);
    a.finish()?;
    Ok(build(&s))
}

fn build(s: &Service) -> PackageSpec {
    let path = format!("{}{PARAMS_SUFFIX}", s.service);
    let text: String = s.params.iter().map(|p| format!("{p}\n")).collect();
    let files = vec![FileSpec {
        path: path.clone(),
        text,
        mode: PARAMS_MODE,
    }];
    let manifest = InstanceEntry {
        key: String::new(),
        name: s.service.clone(),
        description: s.description.clone(),
        revision: String::new(),
        dependencies: s.dependencies.clone(),
        pid_file: None,
        log_file: s.log_file.clone(),
        user: s.user.clone(),
        backend: Backend::Cygrunsrv {
            service: s.service.clone(),
            params: path,
        },
        state: None,
        readiness: None,
    };
    PackageSpec::new(
        s.service.clone(),
        files,
        Vec::new(),
        manifest,
        BTreeMap::new(),
    )
}

// ---------------------------------------------------------------------------
// Parsing and validation
// ---------------------------------------------------------------------------

/// A value that becomes one line of the parameters file.
fn line_value(attr: &str, v: &str) -> Result<()> {
    if let Some(c) = v.chars().find(|c| c.is_control()) {
        let what = if matches!(c, '\n' | '\r') {
            "a line break".to_string()
        } else {
            format!("the control character U+{:04X}", c as u32)
        };
        return Err(Error::invalid(
            attr,
            format!(
                "{v:?} contains {what}; the cygrunsrv parameters file holds one argument per \
                 line"
            ),
        ));
    }
    Ok(())
}

fn opt_line(a: &Args, key: &str) -> Result<Option<String>> {
    let v = a.opt_str(key)?;
    if let Some(v) = &v {
        if v.is_empty() {
            return Err(Error::invalid(key, "must not be empty"));
        }
        line_value(key, v)?;
    }
    Ok(v)
}

/// A Windows service name: a process name without `\` (the service
/// registry key and the file name `<service>-cygrunsrvparams`).
pub fn check_service_name(attr: &str, service: &str) -> Result<()> {
    check_process_name(attr, service)?;
    if service.contains('\\') || service.len() > 256 {
        return Err(Error::invalid(
            attr,
            format!("{service:?} is not a valid Windows service name (no '\\', at most 256 bytes)"),
        ));
    }
    Ok(())
}

/// Reads one service.
pub fn parse_service(a: &Args) -> Result<Service> {
    let prefix = a.str_or("prefix", DEFAULT_PREFIX)?;
    let instance_name = a.opt_str("instanceName")?;
    if let Some(i) = &instance_name {
        check_process_name("instanceName", i)?;
    }
    let name = match a.opt_str("name")? {
        Some(n) => n,
        None => instance_name.ok_or_else(|| Error::Missing {
            attr: "name".into(),
            why: "the service is called <prefix><name> (set name or instanceName)".into(),
        })?,
    };
    check_process_name("name", &name)?;
    let service = format!("{prefix}{name}");
    check_service_name("prefix", &service)?;

    let exe = opt_line(a, "path")?.ok_or_else(|| Error::Missing {
        attr: "path".into(),
        why: "the executable the service runs".into(),
    })?;
    let display_name = opt_line(a, "displayName")?.unwrap_or_else(|| service.clone());
    let description = opt_line(a, "description")?;
    let service_type = a.str_or("type", "auto")?;
    if !matches!(service_type.as_str(), "auto" | "manual") {
        return Err(Error::invalid(
            "type",
            format!("must be \"auto\" or \"manual\", but it is {service_type:?}"),
        ));
    }
    let args = a.string_list("args")?;
    for (i, arg) in args.iter().enumerate() {
        line_value(&format!("args[{i}]"), arg)?;
    }

    let mut env = BTreeMap::new();
    let mut bins = Vec::new();
    for (i, p) in a.string_list("environmentPath")?.iter().enumerate() {
        let attr = format!("environmentPath[{i}]");
        if p.is_empty() || p.contains(':') {
            return Err(Error::invalid(
                attr,
                format!("{p:?} cannot be a PATH entry (empty or contains ':')"),
            ));
        }
        line_value(&attr, p)?;
        bins.push(format!("{}/bin", p.trim_end_matches('/')));
    }
    if !bins.is_empty() {
        env.insert("PATH".to_string(), bins.join(":"));
    }
    for (k, v) in a.string_map("environment")? {
        let attr = format!("environment.{k}");
        if !crate::credentials::is_identifier(&k) {
            return Err(Error::invalid(
                attr,
                "variable names must match [A-Za-z_][A-Za-z0-9_]*",
            ));
        }
        line_value(&attr, &v)?;
        env.insert(k, v);
    }

    let user = opt_line(a, "user")?;
    if a.has("password") {
        return Err(Error::invalid(
            "password",
            "would be stored in the world-readable Nix store; install the service without it \
             and give the account's password to Windows (sc config <service> obj= <account> \
             password= …), or use an account that needs none",
        ));
    }
    let stdin = opt_line(a, "stdin")?;
    let stdout = opt_line(a, "stdout")?;
    let stderr = opt_line(a, "stderr")?;
    let term_signal = a.str_or("terminateSignal", "TERM")?;
    if term_signal.is_empty() || !term_signal.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err(Error::invalid(
            "terminateSignal",
            format!("must be a signal name or number such as \"TERM\", but it is {term_signal:?}"),
        ));
    }
    let shutdown = a.bool_or("terminateOnShutdown", false)?;
    let dependencies = dependency_sets(a, "a cygrunsrv process package")?
        .into_iter()
        .map(|d| {
            check_service_name(&d.name_attr(), &d.name)?;
            Ok(d.name)
        })
        .collect::<Result<Vec<_>>>()?;

    let mut params: Vec<String> = vec!["--path".into(), exe, "--disp".into(), display_name];
    let mut put = |flag: &str, v: &str| {
        params.push(flag.to_string());
        params.push(v.to_string());
    };
    if let Some(d) = &description {
        put("--desc", d);
    }
    if service_type != "auto" {
        put("--type", &service_type);
    }
    if !args.is_empty() {
        put("--args", &shell_join(&args));
    }
    for (k, v) in &env {
        put("--env", &format!("{k}={v}"));
    }
    if let Some(u) = &user {
        put("--user", u);
    }
    for (flag, v) in [
        ("--stdin", &stdin),
        ("--stdout", &stdout),
        ("--stderr", &stderr),
    ] {
        if let Some(v) = v {
            put(flag, v);
        }
    }
    if term_signal != "TERM" {
        put("--termsig", &term_signal);
    }
    if shutdown {
        params.push("--shutdown".into());
    }
    for d in &dependencies {
        params.push("--dep".into());
        params.push(d.clone());
    }

    Ok(Service {
        description: description.unwrap_or_else(|| name.clone()),
        service,
        params,
        dependencies,
        user,
        log_file: stdout,
    })
}
