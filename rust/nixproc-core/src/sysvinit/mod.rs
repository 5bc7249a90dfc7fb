//! sysvinit generator: nix-processmgmt's `createSystemVInitScript`
//! (reference §3.1) as a pure function from one argument attrset to the
//! files, `rcN.d` links and manifest entry of one process package.
//!
//! The argument holds the per-script parameters of §3.1.2 merged with the
//! composition parameters of §3.1.1 that make sense without nixpkgs (see
//! [`Composition`]); the Nix layer merges the two. Deliberate differences to
//! the original, each fixing a defect of reference §8:
//!
//! * `nice` may be an integer or a string and applies to foreground
//!   processes too (§8.2-19, 21);
//! * a user switch is `start_daemon -u <user>`, done by nixproc's own
//!   `start_daemon`, which also sets the supplementary groups — no
//!   `su <user> -c '…'` (fails for system users with a nologin shell) and no
//!   inherited root groups (§8.2-22);
//! * every value placed in the script is shell-escaped, the description in
//!   log messages included (§8.2-25);
//! * a script that declares no runlevels at all starts in 2 3 4 5 (§8.1-17);
//! * the LSB header uses the standard `### BEGIN INIT INFO` markers, so
//!   tools like `update-rc.d`/`insserv` can read it;
//! * a foreground process always has a PID file (`<pidFilesDir>/<basename
//!   process>.pid` when nothing better is known), so stop/status work;
//! * sequence numbers are checked against `maxSequence`.

mod render;
#[cfg(test)]
mod tests;
mod translate;

pub use translate::translate;

use std::collections::BTreeMap;

use crate::args::Args;
use crate::credentials::{self, Ids};
use crate::error::{Error, Result};
pub use crate::fields::check_process_name;
use crate::fields::{
    dependency_sets, non_empty, opt_non_empty, parse_environment, parse_nice, parse_path,
    parse_umask, parse_user,
};
use crate::manifest::{Backend, InstanceEntry};
use crate::package::{FileSpec, LinkSpec, PackageSpec};
use crate::value::Value;

/// Runlevels used when a script declares none of `runlevels`,
/// `defaultStart` and `defaultStop`.
pub const DEFAULT_RUNLEVELS: [u32; 4] = [2, 3, 4, 5];

/// The composition parameters (reference §3.1.1) the Nix layer fixes once
/// per model; `createManagedProcess` hands them to the generator unchanged.
pub const COMPOSITION_KEYS: &[&str] = &[
    "runtimeDir",
    "logDir",
    "tmpDir",
    "forceDisableUserChange",
    "initFunctions",
    "initialInstructions",
    "shell",
    "startDaemon",
    "startProcessAsDaemon",
    "stopDaemon",
    "reloadDaemon",
    "evaluateCommand",
    "statusCommand",
    "restartActivity",
    "supportedRunlevels",
    "minSequence",
    "maxSequence",
    "ids",
    "callingUser",
    "callingGroup",
];

/// Mode of the generated init script.
pub const SCRIPT_MODE: u32 = 0o555;

/// Global settings, fixed once per processes model (reference §3.1.1).
#[derive(Debug, Clone, PartialEq)]
pub struct Composition {
    pub runtime_dir: String,
    pub log_dir: String,
    pub tmp_dir: String,
    pub force_disable_user_change: bool,
    /// Shell code at the top of every script (default `. <initFunctions>`).
    pub initial_instructions: String,
    /// Shebang interpreter.
    pub shell: String,
    pub start_daemon: String,
    /// Command prefix that daemonizes a foreground process; only needed when
    /// one is generated.
    pub start_process_as_daemon: Option<String>,
    pub stop_daemon: String,
    pub reload_daemon: String,
    pub evaluate_command: String,
    pub status_command: String,
    /// `None`: the default `"$0" stop` / `sleep 1` / `"$0" start`.
    pub restart_activity: Option<String>,
    /// Ascending, without duplicates.
    pub supported_runlevels: Vec<u32>,
    pub min_sequence: u32,
    pub max_sequence: u32,
    pub ids: Ids,
}

/// A user-defined instruction: `log_info_msg "<activity> <description>..."`,
/// the shell code, then the evaluate command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instruction {
    pub activity: String,
    pub instruction: String,
}

/// A dependency as the Nix layer passes it: another sysvinit package's name
/// and start sequence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dependency {
    pub name: String,
    pub sequence: u32,
}

/// The per-script parameters (reference §3.1.2), validated.
#[derive(Debug, Clone, PartialEq)]
pub struct Script {
    pub name: String,
    pub instance_name: Option<String>,
    pub description: String,
    pub global_instructions: String,
    pub umask: Option<String>,
    pub nice: Option<i64>,
    pub directory: Option<String>,
    pub path: Vec<String>,
    pub environment: BTreeMap<String, String>,
    pub initialize: String,
    pub process: Option<String>,
    pub process_is_daemon: bool,
    pub enable_daemon_output_logging: bool,
    pub args: Vec<String>,
    pub pid_file: Option<String>,
    pub user: Option<String>,
    pub reload_signal: String,
    pub instructions: BTreeMap<String, Instruction>,
    pub activities: BTreeMap<String, String>,
    pub remove_activities: Vec<String>,
    pub start_runlevels: Vec<u32>,
    pub stop_runlevels: Vec<u32>,
    pub dependencies: Vec<Dependency>,
}

/// Facts derived from the parameters by the rules of reference §2.1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Derived {
    /// The user the process runs as: `None` under `forceDisableUserChange`.
    pub user: Option<String>,
    /// `runtimeDir` when no user is *declared*, else `tmpDir`.
    pub pid_files_dir: String,
    pub pid_file: Option<String>,
    /// Output log of a foreground process daemonized by nixproc.
    pub log_file: Option<String>,
    pub start_sequence: u32,
    pub stop_sequence: u32,
}

/// `builtins.createSystemVInitScript`: one init script package.
pub fn create_systemv_init_script(args: &Value) -> Result<PackageSpec> {
    let a = Args::new(args, "argument")?;
    let comp = parse_composition(&a)?;
    let script = parse_script(&a, &comp)?;
    let creds = credentials::credential_files(
        a.attrs("credentials")?,
        &comp.ids,
        comp.force_disable_user_change,
    )?;
    // The Nix layer / builder runs it after the files are written.
    a.allow(&["postInstall", "callingUser", "callingGroup"]);
    a.finish()?;
    build(&comp, &script, creds)
}

fn build(comp: &Composition, script: &Script, creds: Vec<FileSpec>) -> Result<PackageSpec> {
    let derived = derive(comp, script)?;
    let text = render::script_text(comp, script, &derived)?;
    let script_path = format!("etc/rc.d/init.d/{}", script.name);

    let mut files = vec![FileSpec {
        path: script_path.clone(),
        text,
        mode: SCRIPT_MODE,
    }];
    files.extend(creds);

    let mut links = Vec::new();
    for level in &comp.supported_runlevels {
        let (kind, seq) = if script.start_runlevels.contains(level) {
            ('S', derived.start_sequence)
        } else if script.stop_runlevels.contains(level) {
            ('K', derived.stop_sequence)
        } else {
            continue;
        };
        links.push(LinkSpec {
            path: format!("etc/rc.d/rc{level}.d/{kind}{seq:02}{}", script.name),
            target: format!("../init.d/{}", script.name),
        });
    }

    let manifest = InstanceEntry {
        key: String::new(),
        name: script.name.clone(),
        description: script.description.clone(),
        revision: String::new(),
        dependencies: script.dependencies.iter().map(|d| d.name.clone()).collect(),
        pid_file: derived.pid_file.clone(),
        log_file: derived.log_file.clone(),
        user: derived.user.clone(),
        backend: Backend::Sysvinit {
            script: script_path,
            start_runlevels: script.start_runlevels.clone(),
            sequence: derived.start_sequence,
        },
        state: None,
        readiness: None,
    };
    let passthru = BTreeMap::from([(
        "sequence".to_string(),
        Value::Int(i64::from(derived.start_sequence)),
    )]);
    Ok(PackageSpec::new(
        script.name.clone(),
        files,
        links,
        manifest,
        passthru,
    ))
}

/// `dir/file` without a doubled slash.
fn join(dir: &str, file: &str) -> String {
    format!("{}/{file}", dir.trim_end_matches('/'))
}

fn basename(p: &str) -> &str {
    p.trim_end_matches('/').rsplit('/').next().unwrap_or("")
}

/// Applies the rules of reference §2.1 and §3.1.5.
pub fn derive(comp: &Composition, s: &Script) -> Result<Derived> {
    let user = if comp.force_disable_user_change {
        None
    } else {
        s.user.clone()
    };
    // The *declared* user on purpose: the path stays the same whether or not
    // user switching is force-disabled.
    let pid_files_dir = if s.user.is_none() {
        comp.runtime_dir.clone()
    } else {
        comp.tmp_dir.clone()
    };
    let mut pid_file = s.pid_file.clone().or_else(|| {
        s.instance_name
            .as_ref()
            .map(|i| join(&pid_files_dir, &format!("{i}.pid")))
    });
    let mut log_file = None;
    if let Some(process) = s.process.as_deref().filter(|_| !s.process_is_daemon) {
        if pid_file.is_none() {
            let base = basename(process);
            if base.is_empty() || base == "." || base == ".." {
                return Err(Error::invalid(
                    "process",
                    format!(
                        "cannot derive a PID file name from {process:?}; give pidFile or instanceName"
                    ),
                ));
            }
            pid_file = Some(join(&pid_files_dir, &format!("{base}.pid")));
        }
        if s.enable_daemon_output_logging {
            let dir = if user.is_none() {
                &comp.log_dir
            } else {
                &comp.tmp_dir
            };
            let base = s.instance_name.as_deref().unwrap_or(&s.name);
            log_file = Some(join(dir, &format!("nixproc-{base}.log")));
        }
    }

    let start_sequence = match s.dependencies.iter().map(|d| d.sequence).max() {
        None => comp.min_sequence,
        Some(max) => (max + 1).max(comp.min_sequence),
    };
    if start_sequence > comp.max_sequence {
        return Err(Error::invalid(
            "dependencies",
            format!(
                "the start sequence would be {start_sequence}, above maxSequence {} \
                 (the dependency chain is too long for the sequence range)",
                comp.max_sequence
            ),
        ));
    }
    let stop_sequence = comp.max_sequence - start_sequence + comp.min_sequence;
    Ok(Derived {
        user,
        pid_files_dir,
        pid_file,
        log_file,
        start_sequence,
        stop_sequence,
    })
}

// ---------------------------------------------------------------------------
// Parsing and validation
// ---------------------------------------------------------------------------

fn runlevel(attr: &str, v: i64) -> Result<u32> {
    u32::try_from(v)
        .ok()
        .filter(|l| *l <= 9)
        .ok_or_else(|| Error::invalid(attr, format!("runlevel {v} is not between 0 and 9")))
}

fn sequence_bound(a: &Args, key: &str, default: i64) -> Result<u32> {
    let v = a.int_or(key, default)?;
    u32::try_from(v).ok().filter(|n| *n <= 99).ok_or_else(|| {
        Error::invalid(
            key,
            format!("{v} is not between 0 and 99 (rc links carry two-digit sequence numbers)"),
        )
    })
}

/// Reads the composition parameters (reference §3.1.1).
pub fn parse_composition(a: &Args) -> Result<Composition> {
    let init_functions = a.opt_str("initFunctions")?;
    let initial_instructions = match (a.opt_str("initialInstructions")?, init_functions) {
        (Some(i), _) => i,
        (None, Some(f)) => format!(". {}", crate::quote::shell_escape(&f)),
        (None, None) => {
            return Err(Error::Missing {
                attr: "initFunctions".into(),
                why: "the init-functions file is needed unless initialInstructions is given".into(),
            })
        }
    };
    let shell = a.str_or("shell", "/bin/sh")?;
    if shell.is_empty() || shell.contains(['\n', '\0']) {
        return Err(Error::invalid(
            "shell",
            "must be a non-empty interpreter path on one line",
        ));
    }
    let command =
        |key: &str, default: &str| -> Result<String> { non_empty(key, a.str_or(key, default)?) };

    let mut supported = Vec::new();
    match a.get("supportedRunlevels") {
        None => supported.extend(0..=6),
        Some(_) => {
            for (i, l) in a.int_list("supportedRunlevels")?.into_iter().enumerate() {
                supported.push(runlevel(&format!("supportedRunlevels[{i}]"), l)?);
            }
        }
    }
    supported.sort_unstable();
    supported.dedup();

    let min_sequence = sequence_bound(a, "minSequence", 0)?;
    let max_sequence = sequence_bound(a, "maxSequence", 99)?;
    if min_sequence > max_sequence {
        return Err(Error::invalid(
            "minSequence",
            format!("{min_sequence} is above maxSequence {max_sequence}"),
        ));
    }

    Ok(Composition {
        runtime_dir: non_empty("runtimeDir", a.str_or("runtimeDir", "/var/run")?)?,
        log_dir: non_empty("logDir", a.str_or("logDir", "/var/log")?)?,
        tmp_dir: non_empty("tmpDir", a.str_or("tmpDir", "/tmp")?)?,
        force_disable_user_change: a.bool_or("forceDisableUserChange", false)?,
        initial_instructions,
        shell,
        start_daemon: command("startDaemon", "start_daemon")?,
        start_process_as_daemon: a
            .opt_str("startProcessAsDaemon")?
            .map(|s| non_empty("startProcessAsDaemon", s))
            .transpose()?,
        stop_daemon: command("stopDaemon", "killproc")?,
        reload_daemon: command("reloadDaemon", "killproc")?,
        evaluate_command: command("evaluateCommand", "evaluate_retval")?,
        status_command: command("statusCommand", "statusproc")?,
        restart_activity: a.opt_str("restartActivity")?,
        supported_runlevels: supported,
        min_sequence,
        max_sequence,
        ids: Ids::from_attrs(a.attrs("ids")?)?,
    })
}

/// Activity names become `case` labels: `[A-Za-z0-9_-]+`, or `*` (the
/// fallback branch).
pub fn check_activity_name(attr: &str, name: &str) -> Result<()> {
    let ok = name == "*"
        || (!name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-'));
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(
            attr,
            format!("activity name {name:?} must match [A-Za-z0-9_-]+ (it becomes a case label)"),
        ))
    }
}

fn parse_instructions(a: &Args) -> Result<BTreeMap<String, Instruction>> {
    let mut out = BTreeMap::new();
    for (key, v) in a.attrs("instructions")?.into_iter().flatten() {
        let attr = format!("instructions.{key}");
        check_activity_name(&attr, key)?;
        let entry = (|| {
            let e = Args::new(v, "")?;
            let activity = e.opt_str("activity")?.ok_or_else(|| Error::Missing {
                attr: "activity".into(),
                why: "the verb logged when the activity runs, e.g. \"Starting\"".into(),
            })?;
            let instruction = e.opt_str("instruction")?.ok_or_else(|| Error::Missing {
                attr: "instruction".into(),
                why: "the shell code of the activity".into(),
            })?;
            e.finish()?;
            Ok(Instruction {
                activity,
                instruction,
            })
        })()
        .map_err(|e: Error| e.within(&attr))?;
        out.insert(key.clone(), entry);
    }
    Ok(out)
}

fn parse_activities(a: &Args) -> Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for (key, v) in a.attrs("activities")?.into_iter().flatten() {
        let attr = format!("activities.{key}");
        check_activity_name(&attr, key)?;
        let code = v.as_str().ok_or_else(|| Error::WrongType {
            attr: attr.clone(),
            expected: "a string (shell code)".into(),
            found: v.type_name(),
        })?;
        out.insert(key.clone(), code.to_string());
    }
    Ok(out)
}

fn parse_dependencies(a: &Args) -> Result<Vec<Dependency>> {
    dependency_sets(a, "a sysvinit process package")?
        .into_iter()
        .map(|d| {
            check_process_name(&d.name_attr(), &d.name)?;
            let sequence = d.number("sequence", "sequence number")?;
            Ok(Dependency {
                name: d.name,
                sequence,
            })
        })
        .collect()
}

/// Start and stop runlevels (reference §3.1.4): from `runlevels` (stop =
/// the other supported levels), else `defaultStart`/`defaultStop` as
/// given. When all three are empty the script starts in
/// [`DEFAULT_RUNLEVELS`]: the original left such a script without `S`
/// links, so the deploy tool silently never started it (§8.1-17).
fn parse_runlevels(a: &Args, supported: &[u32]) -> Result<(Vec<u32>, Vec<u32>)> {
    let levels = |key: &str| -> Result<Vec<u32>> {
        let mut out = Vec::new();
        for (i, l) in a.int_list(key)?.into_iter().enumerate() {
            let attr = format!("{key}[{i}]");
            let l = runlevel(&attr, l)?;
            if !supported.contains(&l) {
                let all: Vec<String> = supported.iter().map(u32::to_string).collect();
                return Err(Error::invalid(
                    attr,
                    format!(
                        "runlevel {l} is not one of the supported runlevels {}",
                        all.join(" ")
                    ),
                ));
            }
            out.push(l);
        }
        out.sort_unstable();
        out.dedup();
        Ok(out)
    };
    let runlevels = levels("runlevels")?;
    let default_start = levels("defaultStart")?;
    let default_stop = levels("defaultStop")?;

    if !runlevels.is_empty() || (default_start.is_empty() && default_stop.is_empty()) {
        let start: Vec<u32> = if runlevels.is_empty() {
            DEFAULT_RUNLEVELS
                .iter()
                .copied()
                .filter(|l| supported.contains(l))
                .collect()
        } else {
            runlevels
        };
        let stop = supported
            .iter()
            .copied()
            .filter(|l| !start.contains(l))
            .collect();
        return Ok((start, stop));
    }
    if let Some(both) = default_start.iter().find(|l| default_stop.contains(l)) {
        return Err(Error::invalid(
            "defaultStop",
            format!("runlevel {both} is in both defaultStart and defaultStop"),
        ));
    }
    Ok((default_start, default_stop))
}

/// Reads the per-script parameters (reference §3.1.2).
pub fn parse_script(a: &Args, comp: &Composition) -> Result<Script> {
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

    let process = opt_non_empty(a, "process")?;
    let process_is_daemon = a.bool_or("processIsDaemon", true)?;
    if process.is_some() && !process_is_daemon && comp.start_process_as_daemon.is_none() {
        return Err(Error::Missing {
            attr: "startProcessAsDaemon".into(),
            why: "a foreground process (processIsDaemon = false) must be daemonized by it".into(),
        });
    }
    let pid_file = opt_non_empty(a, "pidFile")?;
    let directory = opt_non_empty(a, "directory")?;

    let remove_activities = a.string_list("removeActivities")?;
    for (i, r) in remove_activities.iter().enumerate() {
        check_activity_name(&format!("removeActivities[{i}]"), r)?;
    }
    let (start_runlevels, stop_runlevels) = parse_runlevels(a, &comp.supported_runlevels)?;

    Ok(Script {
        instance_name,
        description,
        global_instructions: a.str_or("globalInstructions", "")?,
        umask: parse_umask(a)?,
        nice: parse_nice(a)?,
        directory,
        path: parse_path(a)?,
        environment: parse_environment(a)?,
        initialize: a.str_or("initialize", "")?,
        process,
        process_is_daemon,
        enable_daemon_output_logging: a.bool_or("enableDaemonOutputLogging", true)?,
        args: a.string_list("args")?,
        pid_file,
        user: parse_user(a)?,
        reload_signal: non_empty("reloadSignal", a.str_or("reloadSignal", "-HUP")?)?,
        instructions: parse_instructions(a)?,
        activities: parse_activities(a)?,
        remove_activities,
        start_runlevels,
        stop_runlevels,
        dependencies: parse_dependencies(a)?,
        name,
    })
}
