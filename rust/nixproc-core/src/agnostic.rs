//! The process-manager-agnostic layer (reference §4): `createManagedProcess`.
//!
//! One description of a process ([`ManagedProcess`], the parameters of
//! §4.1 with their defaults applied) is *translated* by each backend into
//! the arguments of that backend's own create function, `overrides.<pm>` is
//! applied, and the backend generator produces the package:
//!
//! ```text
//! agnostic args ──translate(pm)──► backend args ──overrides──► create<Backend>
//! ```
//!
//! Attrset overrides are deep-merged here ([`recursive_update`]); override
//! *functions* cannot cross into Rust, so the Nix layer calls
//! `nixprocTranslateManagedProcess`, applies the function and calls the
//! backend primop itself. Both paths give the same package.
//!
//! The argument of both primops is flat, like every generator's: the
//! agnostic parameters, `processManager`, and the composition parameters of
//! that backend ([`BackendDef::composition_keys`]), which reach the backend
//! generator unchanged.

use std::collections::BTreeMap;

use crate::args::Args;
use crate::error::{Error, Result};
use crate::fields::{
    check_process_name, opt_non_empty, parse_environment, parse_nice, parse_path, parse_umask,
    parse_user,
};
use crate::lifecycle;
use crate::package::PackageSpec;
use crate::value::Value;

/// Every process manager nix-processmgmt knows. Override keys must be one
/// of these (a typo such as `supervisor` is an error, not ignored); the ones
/// without a [`BackendDef`] yet are accepted so that models written for all
/// backends still evaluate.
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

/// A process as described once for every backend (reference §4.1), with
/// the defaults of the original applied.
#[derive(Debug, Clone, PartialEq)]
pub struct ManagedProcess {
    /// `name`, else `instanceName`.
    pub name: String,
    /// Default: `name`.
    pub description: String,
    /// Shell code preparing state; meant to run as root before the process.
    pub initialize: String,
    /// Executable in daemon mode (forks, writes a PID file); default `process`.
    pub daemon: Option<String>,
    /// Default: `args ++ daemonExtraArgs`.
    pub daemon_args: Vec<String>,
    /// Executable in foreground mode; default `process`.
    pub foreground_process: Option<String>,
    /// Default: `args ++ foregroundProcessExtraArgs`.
    pub foreground_process_args: Vec<String>,
    pub instance_name: Option<String>,
    /// Explicit PID file; `None` → the backend's rule (reference §2.1).
    pub pid_file: Option<String>,
    /// Directories whose `bin/` go on PATH (packages).
    pub path: Vec<String>,
    pub environment: BTreeMap<String, String>,
    pub directory: Option<String>,
    pub umask: Option<String>,
    pub nice: Option<i64>,
    pub user: Option<String>,
    /// Dependency descriptions as the Nix layer passes them for the selected
    /// backend (e.g. `{ name; sequence; }` for sysvinit); passed through.
    pub dependencies: Vec<Value>,
    /// `{ groups; users; }`, passed through to the backend.
    pub credentials: Option<Value>,
    pub post_install: String,
    /// `overrides.<pm>` attrsets, by process manager.
    pub overrides: BTreeMap<String, BTreeMap<String, Value>>,
}

/// One backend as the agnostic layer sees it.
pub struct BackendDef {
    /// The `processManager` identifier.
    pub name: &'static str,
    /// The backend's composition parameters: taken from the flat argument
    /// and handed to `create` unchanged (and to `translate`, which needs some
    /// of them, e.g. `runtimeDir` for PID file rules).
    pub composition_keys: &'static [&'static str],
    /// Agnostic process + composition (an attrset of `composition_keys`) →
    /// the backend's per-process arguments (without composition keys).
    pub translate: fn(&ManagedProcess, &Value) -> Result<BTreeMap<String, Value>>,
    /// The backend generator: composition ∪ per-process arguments → package.
    pub create: fn(&Value) -> Result<PackageSpec>,
}

/// The backends `createManagedProcess` can generate for.
pub static BACKENDS: &[BackendDef] = &[
    BackendDef {
        name: "sysvinit",
        composition_keys: crate::sysvinit::COMPOSITION_KEYS,
        translate: crate::sysvinit::translate,
        create: crate::sysvinit::create_systemv_init_script,
    },
    BackendDef {
        name: "supervisord",
        composition_keys: crate::supervisord::COMPOSITION_KEYS,
        translate: crate::supervisord::translate,
        create: crate::supervisord::create_supervisord_program,
    },
    BackendDef {
        name: "systemd",
        composition_keys: crate::systemd::COMPOSITION_KEYS,
        translate: crate::systemd::translate,
        create: crate::systemd::create_systemd_service,
    },
    BackendDef {
        name: "s6-rc",
        composition_keys: crate::s6rc::COMPOSITION_KEYS,
        translate: crate::s6rc::translate,
        create: crate::s6rc::create_s6rc_service,
    },
    BackendDef {
        name: "bsdrc",
        composition_keys: crate::bsdrc::COMPOSITION_KEYS,
        translate: crate::bsdrc::translate,
        create: crate::bsdrc::create_bsdrc_script,
    },
    BackendDef {
        name: "launchd",
        composition_keys: crate::launchd::COMPOSITION_KEYS,
        translate: crate::launchd::translate,
        create: crate::launchd::create_launchd_daemon,
    },
    BackendDef {
        name: "cygrunsrv",
        composition_keys: crate::cygrunsrv::COMPOSITION_KEYS,
        translate: crate::cygrunsrv::translate,
        create: crate::cygrunsrv::create_cygrunsrv_params,
    },
    BackendDef {
        name: "disnix",
        composition_keys: crate::disnix::COMPOSITION_KEYS,
        translate: crate::disnix::translate,
        create: crate::disnix::create_process_script,
    },
    BackendDef {
        name: "docker",
        composition_keys: crate::docker::COMPOSITION_KEYS,
        translate: crate::docker::translate,
        create: crate::docker::create_docker_container,
    },
];

pub fn backend(name: &str) -> Result<&'static BackendDef> {
    BACKENDS.iter().find(|b| b.name == name).ok_or_else(|| {
        let known: Vec<&str> = BACKENDS.iter().map(|b| b.name).collect();
        let why = if PROCESS_MANAGERS.contains(&name) {
            "is not supported yet"
        } else {
            "is not a process manager"
        };
        Error::invalid(
            "processManager",
            format!("{name:?} {why} (supported: {})", known.join(", ")),
        )
    })
}

/// Parses the agnostic parameters, marking them known in `a`.
pub fn parse(a: &Args) -> Result<ManagedProcess> {
    let instance_name = a.opt_str("instanceName")?;
    if let Some(i) = &instance_name {
        check_process_name("instanceName", i)?;
    }
    let name = match a.opt_str("name")? {
        Some(n) => n,
        None => instance_name.clone().ok_or_else(|| Error::Missing {
            attr: "name".into(),
            why: "no process name was specified or can be inferred from instanceName".into(),
        })?,
    };
    check_process_name("name", &name)?;
    let description = a.opt_str("description")?.unwrap_or_else(|| name.clone());

    let executable = |key: &str| opt_non_empty(a, key);
    let process = executable("process")?;
    let daemon = executable("daemon")?.or_else(|| process.clone());
    let foreground_process = executable("foregroundProcess")?.or_else(|| process.clone());
    if daemon.is_none() && foreground_process.is_none() {
        return Err(Error::Missing {
            attr: "process".into(),
            why: "no foreground process or daemon known: set process, foregroundProcess or daemon"
                .into(),
        });
    }

    let args = a.string_list("args")?;
    let with_extra = |full: &str, extra: &str| -> Result<Vec<String>> {
        if a.has(full) {
            let extra_given = a.has(extra);
            if extra_given {
                return Err(Error::invalid(
                    extra,
                    format!("cannot be combined with {full}, which is the full list"),
                ));
            }
            a.string_list(full)
        } else {
            let mut v = args.clone();
            v.extend(a.string_list(extra)?);
            Ok(v)
        }
    };
    let daemon_args = with_extra("daemonArgs", "daemonExtraArgs")?;
    let foreground_process_args =
        with_extra("foregroundProcessArgs", "foregroundProcessExtraArgs")?;

    let pid_file = opt_non_empty(a, "pidFile")?;
    let directory = opt_non_empty(a, "directory")?;

    let credentials = match a.get("credentials") {
        None => None,
        Some(v @ Value::Attrs(_)) => Some(v.clone()),
        Some(v) => {
            return Err(Error::WrongType {
                attr: "credentials".into(),
                expected: "a set { groups = { … }; users = { … }; }".into(),
                found: v.type_name(),
            })
        }
    };

    Ok(ManagedProcess {
        description,
        initialize: a.str_or("initialize", "")?,
        daemon,
        daemon_args,
        foreground_process,
        foreground_process_args,
        pid_file,
        path: parse_path(a)?,
        environment: parse_environment(a)?,
        directory,
        umask: parse_umask(a)?,
        nice: parse_nice(a)?,
        user: parse_user(a)?,
        dependencies: a.list("dependencies")?.to_vec(),
        credentials,
        post_install: a.str_or("postInstall", "")?,
        overrides: parse_overrides(a)?,
        instance_name,
        name,
    })
}

/// `overrides = { <pm> = { … }; … }`: keys must name process managers,
/// values must be attrsets (functions are applied by the Nix layer before
/// anything reaches Rust).
fn parse_overrides(a: &Args) -> Result<BTreeMap<String, BTreeMap<String, Value>>> {
    let mut out = BTreeMap::new();
    for (pm, v) in a.attrs("overrides")?.into_iter().flatten() {
        let attr = format!("overrides.{pm}");
        if !PROCESS_MANAGERS.contains(&pm.as_str()) {
            let check = Value::Attrs(BTreeMap::from([(pm.clone(), Value::Null)]));
            let probe = Args::new(&check, "overrides")?;
            probe.allow(PROCESS_MANAGERS);
            let hint = match probe.finish() {
                Err(Error::Unknown { hint, .. }) => hint,
                _ => String::new(),
            };
            return Err(Error::invalid(
                &attr,
                format!(
                    "{pm:?} is not a process manager{hint}; the keys of overrides are \
                     process managers: {}",
                    PROCESS_MANAGERS.join(", ")
                ),
            ));
        }
        match v {
            Value::Attrs(m) => {
                if m.contains_key("name") {
                    return Err(Error::invalid(
                        format!("{attr}.name"),
                        "overrides cannot rename a process: dependents and the profile refer \
                         to it by name; set name instead",
                    ));
                }
                out.insert(pm.clone(), m.clone());
            }
            other => {
                return Err(Error::WrongType {
                    attr,
                    expected: "a set (merged into the generated arguments) or a function \
                               (applied to them)"
                        .into(),
                    found: other.type_name(),
                })
            }
        }
    }
    Ok(out)
}

/// `lib.recursiveUpdate`: attrsets merge deeply, anything else (lists
/// included) is replaced by the right-hand side.
pub fn recursive_update(
    mut lhs: BTreeMap<String, Value>,
    rhs: &BTreeMap<String, Value>,
) -> BTreeMap<String, Value> {
    for (k, r) in rhs {
        let merged = match (lhs.remove(k), r) {
            (Some(Value::Attrs(l)), Value::Attrs(r)) => Value::Attrs(recursive_update(l, r)),
            (_, r) => r.clone(),
        };
        lhs.insert(k.clone(), merged);
    }
    lhs
}

/// The selected backend, its composition (as an attrset), the parsed
/// process — from the flat argument of both primops.
fn prepare(v: &Value) -> Result<(&'static BackendDef, Value, ManagedProcess)> {
    let a = Args::new(v, "argument")?;
    let pm = a.opt_str("processManager")?.ok_or_else(|| Error::Missing {
        attr: "processManager".into(),
        why: format!("one of {}", PROCESS_MANAGERS.join(", ")),
    })?;
    let def = backend(&pm)?;
    let all = v.as_attrs().expect("Args::new checked the type");
    let composition: BTreeMap<String, Value> = def
        .composition_keys
        .iter()
        .filter_map(|k| all.get(*k).map(|v| ((*k).to_string(), v.clone())))
        .collect();
    a.allow(def.composition_keys);
    let process = parse(&a)?;
    a.finish()?;
    Ok((def, Value::Attrs(composition), process))
}

/// `builtins.nixprocTranslateManagedProcess`: the backend's per-process
/// arguments, before overrides (the Nix layer applies override functions).
/// The lifecycle keys (state, readiness, …) pass through unchanged: the
/// backend primop handles them.
pub fn translate_managed_process(v: &Value) -> Result<Value> {
    let (rest, _) = lifecycle::split(v)?;
    let (def, composition, process) = prepare(&rest)?;
    let mut translated = (def.translate)(&process, &composition)?;
    translated.extend(lifecycle::keys_of(v));
    Ok(Value::Attrs(translated))
}

/// `builtins.createManagedProcess`: translate, merge the attrset override,
/// generate.
pub fn create_managed_process(v: &Value) -> Result<PackageSpec> {
    lifecycle::generate(v, create_for_backend)
}

fn create_for_backend(v: &Value) -> Result<PackageSpec> {
    let (def, composition, process) = prepare(v)?;
    let translated = (def.translate)(&process, &composition)?;
    let merged = match process.overrides.get(def.name) {
        Some(o) => recursive_update(translated, o),
        None => translated,
    };
    let Value::Attrs(mut full) = composition else {
        unreachable!("prepare builds an attrset")
    };
    full.extend(merged);
    (def.create)(&Value::Attrs(full)).map_err(|e| match e {
        // Name the override when it is where the bad key came from.
        Error::Unknown { attr, hint } if process.overrides.contains_key(def.name) => {
            Error::Unknown {
                attr,
                hint: format!(" (from overrides.{}){hint}", def.name),
            }
        }
        e => e,
    })
}

impl ManagedProcess {
    /// Where PID files go (reference §2.1): `runtime_dir` when no user is
    /// *declared*, else `tmp_dir` (a process that drops privileges cannot
    /// write to a root-owned runtime dir). The declared user on purpose: the
    /// path stays the same when user switching is force-disabled.
    pub fn pid_files_dir<'a>(&self, runtime_dir: &'a str, tmp_dir: &'a str) -> &'a str {
        if self.user.is_none() {
            runtime_dir
        } else {
            tmp_dir
        }
    }

    /// The PID file a daemon writes (reference §2.1): `pidFile`, else
    /// `<pidFilesDir>/<instanceName>.pid`, else `<pidFilesDir>/<basename
    /// daemon>.pid`.
    pub fn daemon_pid_file(
        &self,
        runtime_dir: &str,
        tmp_dir: &str,
        daemon: &str,
    ) -> Result<String> {
        if let Some(f) = &self.pid_file {
            return Ok(f.clone());
        }
        let base = match &self.instance_name {
            Some(i) => i.as_str(),
            None => {
                let b = daemon
                    .trim_end_matches('/')
                    .rsplit('/')
                    .next()
                    .unwrap_or("");
                if b.is_empty() || b == "." || b == ".." {
                    return Err(Error::invalid(
                        "daemon",
                        format!(
                            "cannot derive a PID file name from {daemon:?}; give pidFile or \
                             instanceName"
                        ),
                    ));
                }
                b
            }
        };
        let dir = self.pid_files_dir(runtime_dir, tmp_dir);
        Ok(format!("{}/{base}.pid", dir.trim_end_matches('/')))
    }
}

/// Puts `key = value` into a translated argument set when there is a value.
pub fn put_opt(out: &mut BTreeMap<String, Value>, key: &str, v: Option<impl Into<Value>>) {
    if let Some(v) = v {
        out.insert(key.to_string(), v.into());
    }
}

/// The common pass-through keys every backend takes unchanged: `name`,
/// `dependencies`, `credentials`, `postInstall`, `path` and `environment`.
pub fn common_args(p: &ManagedProcess) -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    out.insert("name".into(), Value::str(&p.name));
    out.insert("dependencies".into(), Value::List(p.dependencies.clone()));
    if let Some(c) = &p.credentials {
        out.insert("credentials".into(), c.clone());
    }
    if !p.post_install.is_empty() {
        out.insert("postInstall".into(), Value::str(&p.post_install));
    }
    if !p.path.is_empty() {
        out.insert(
            "path".into(),
            Value::List(p.path.iter().map(Value::str).collect()),
        );
    }
    if !p.environment.is_empty() {
        out.insert(
            "environment".into(),
            Value::Attrs(
                p.environment
                    .iter()
                    .map(|(k, v)| (k.clone(), Value::str(v)))
                    .collect(),
            ),
        );
    }
    out
}

pub fn str_list(items: &[String]) -> Value {
    Value::List(items.iter().map(Value::str).collect())
}
