//! bsdrc generator: nix-processmgmt's `createBSDRCScript` (reference §3.2)
//! as a pure function from one argument attrset to the files and manifest
//! entry of one process package: a FreeBSD `rc.d` script for `rc.subr`.
//!
//! The argument holds the per-script parameters of §3.2.2 merged with the
//! composition parameters ([`COMPOSITION_KEYS`]). Deliberate differences to
//! the original, each fixing a defect of reference §8 or a trap of rc.subr:
//!
//! * `rcvarsDefaults` renders `: ${<name>_<var>:=<default>}` lines after
//!   `load_rc_config`, with escaped defaults (defect 24: it failed
//!   evaluation);
//! * foreground (`daemon(8)`) mode passes the *same* PID file to `daemon -p`
//!   and to rc.subr's `pidfile`, and sets `procname` to the program (the
//!   PID file names it, not `daemon`), so stop/status work (defect 24);
//! * the script sources the composition's `rcSubr` — no impure copy of the
//!   host's `/etc/rc.subr`; under `forceDisableUserChange` `<name>_limits`
//!   and `<name>_login_class` are dropped instead (unprivileged users
//!   cannot use `limits`), as is `<name>_user`;
//! * rc.subr `eval`s `command_args` and `<name>_chdir`, and nests them in
//!   `sh -c "…"` when `<name>_nice` is set and in `su -m <user> -c 'sh -c
//!   "…"'` when `<name>_user` is set; values are encoded for exactly that
//!   path ([`Quoting`]), so every argument reaches the process verbatim. The
//!   one thing `su -c '…'` cannot carry is a `'`; with a user that is an
//!   error naming the argument;
//! * a foreground process is switched to its user by `daemon -u`, not by
//!   `<name>_user`;
//! * the environment is exported by the script itself (`export NAME='…'`
//!   after the settings) instead of a separate `<name>_env_file`: the file
//!   would have to be another store path, which a generator that returns one
//!   package cannot reference. The effect is the same (rc.subr sources the
//!   env file with `set -a` before the command);
//! * `path` is prepended to PATH (`PATH=<bins>:$PATH`) instead of replacing
//!   it, so rc.subr's own helpers (`ps`, `su`, `nice`) keep working (§2.1);
//! * `reload` is listed in `extra_commands` when there is a command: real
//!   rc.subr only knows `reload` as an extra command, so the original's
//!   scripts could not be reloaded;
//! * the rc.subr variable prefix (`name=`) is the process name with every
//!   character outside `[A-Za-z0-9_]` replaced by `_` (`nginx-1` →
//!   `nginx_1`), the FreeBSD convention for scripts such as `php-fpm`; the
//!   file keeps the process name;
//! * `rcvar` (suffix of the enable variable) keeps the original's default
//!   `enabled` (so `<name>_enabled="YES"` enables a script); pass
//!   `rcvar = "enable"` for the FreeBSD convention, `null` for none;
//! * `desc` is set from `description` (used by rc.subr's `describe`).

mod render;
#[cfg(test)]
mod tests;
mod translate;

pub use translate::translate;

use std::collections::BTreeMap;

use crate::args::Args;
use crate::credentials::{self, Ids};
use crate::error::{Error, Result};
use crate::fields::{
    check_process_name, dependency_sets, non_empty, opt_non_empty, parse_environment, parse_nice,
    parse_path, parse_umask, parse_user,
};
use crate::manifest::{Backend, InstanceEntry};
use crate::package::{FileSpec, PackageSpec};
use crate::quote::shell_escape;
use crate::value::Value;

/// Composition parameters, fixed once per model by the Nix layer
/// (`nix/default.nix`, `compositions.bsdrc`): the generator accepts all of
/// them.
///
/// `bsdDaemon` is FreeBSD's `daemon(8)`. It cannot be called `daemon`:
/// `createManagedProcess` receives the composition and the process in one
/// flat set, where `daemon` is the process's daemon executable. The direct
/// `createBSDRCScript` still accepts `daemon` as the `daemon(8)` path when
/// `bsdDaemon` is absent.
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
    "rcSubr",
    "bsdDaemon",
];

/// The original's suffix of the enable variable (`<name>_enabled`).
pub const DEFAULT_RCVAR: &str = "enabled";

/// FreeBSD's `daemon(8)`.
pub const DEFAULT_DAEMON: &str = "/usr/sbin/daemon";

/// Mode of the generated script.
pub const SCRIPT_MODE: u32 = 0o555;

/// Commands rc.subr's `run_rc_command` knows without `extra_commands`.
pub const BUILTIN_COMMANDS: &[&str] = &["start", "stop", "restart", "status", "poll", "rcvar"];

/// Global settings (reference §3.2.1).
#[derive(Debug, Clone, PartialEq)]
pub struct Composition {
    pub runtime_dir: String,
    pub log_dir: String,
    pub tmp_dir: String,
    pub force_disable_user_change: bool,
    pub ids: Ids,
    /// Shebang interpreter (default `/bin/sh`).
    pub shell: String,
    /// The rc.subr every script sources (default `/etc/rc.subr`).
    pub rc_subr: String,
    /// FreeBSD `daemon(8)` (default `/usr/sbin/daemon`).
    pub daemon: String,
}

/// `commands.<cmd>`: shell code run before, instead of and after rc.subr's
/// own implementation of `<cmd>`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Command {
    pub pre: Option<String>,
    pub implementation: Option<String>,
    pub post: Option<String>,
}

/// The per-script parameters (reference §3.2.2), validated.
#[derive(Debug, Clone, PartialEq)]
pub struct Script {
    pub name: String,
    pub instance_name: Option<String>,
    pub description: String,
    /// Suffix of the enable variable; `None`: no `rcvar`.
    pub rcvar: Option<String>,
    pub rcvars_defaults: BTreeMap<String, String>,
    pub command: Option<String>,
    pub command_args: Vec<String>,
    pub command_is_daemon: bool,
    pub enable_daemon_output_logging: bool,
    pub reload_signal: String,
    pub stop_signal: String,
    pub environment: BTreeMap<String, String>,
    pub path: Vec<String>,
    pub pid_file: Option<String>,
    pub nice: Option<i64>,
    pub umask: Option<String>,
    pub directory: Option<String>,
    pub user: Option<String>,
    pub fib: Option<String>,
    pub limits: Option<String>,
    pub login_class: Option<String>,
    pub oom_protect: Option<String>,
    pub required_files: Vec<String>,
    pub required_dirs: Vec<String>,
    pub required_vars: Vec<String>,
    pub required_modules: Vec<String>,
    pub commands: BTreeMap<String, Command>,
    pub flexible_parameters: bool,
    pub requires: Vec<String>,
    pub provides: Vec<String>,
    pub keywords: Vec<String>,
    /// Names of the processes this one depends on.
    pub dependencies: Vec<String>,
}

/// Facts derived from the parameters by the rules of reference §2.1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Derived {
    /// rc.subr's `name`: the process name as a shell variable prefix.
    pub var: String,
    /// The user the process runs as: `None` under `forceDisableUserChange`.
    pub user: Option<String>,
    pub pid_file: Option<String>,
    /// Output of a foreground process run by `daemon(8)`.
    pub log_file: Option<String>,
}

/// `builtins.createBSDRCScript`: one rc.d script package.
pub fn create_bsdrc_script(args: &Value) -> Result<PackageSpec> {
    let a = Args::new(args, "argument")?;
    let comp = parse_composition(&a)?;
    let script = parse_script(&a, args)?;
    let creds = credentials::credential_files(
        a.attrs("credentials")?,
        &comp.ids,
        comp.force_disable_user_change,
    )?;
    // postInstall runs in the Nix layer / builder; the others are
    // composition keys this backend does not use.
    a.allow(&[
        "postInstall",
        "callingUser",
        "callingGroup",
        "foregroundProxy",
    ]);
    a.finish()?;
    build(&comp, &script, creds)
}

fn build(comp: &Composition, script: &Script, creds: Vec<FileSpec>) -> Result<PackageSpec> {
    let derived = derive(comp, script)?;
    let text = render::script_text(comp, script, &derived)?;
    let script_path = format!("etc/rc.d/{}", script.name);
    let mut files = vec![FileSpec {
        path: script_path.clone(),
        text,
        mode: SCRIPT_MODE,
    }];
    files.extend(creds);
    let manifest = InstanceEntry {
        key: String::new(),
        name: script.name.clone(),
        description: script.description.clone(),
        revision: String::new(),
        dependencies: script.dependencies.clone(),
        pid_file: derived.pid_file.clone(),
        log_file: derived.log_file.clone(),
        user: derived.user.clone(),
        backend: Backend::Bsdrc {
            script: script_path,
        },
        state: None,
        readiness: None,
    };
    Ok(PackageSpec::new(
        script.name.clone(),
        files,
        Vec::new(),
        manifest,
        BTreeMap::new(),
    ))
}

/// `dir/file` without a doubled slash.
fn join(dir: &str, file: &str) -> String {
    format!("{}/{file}", dir.trim_end_matches('/'))
}

fn basename(p: &str) -> &str {
    p.trim_end_matches('/').rsplit('/').next().unwrap_or("")
}

/// rc.subr's `name` for a process name: characters outside `[A-Za-z0-9_]`
/// become `_`, and a leading digit gets a `_` in front, so that
/// `${name}_enabled`, `${name}_user`, … are shell variables.
pub fn rc_var_prefix(name: &str) -> String {
    let mut v: String = name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    if v.starts_with(|c: char| c.is_ascii_digit()) {
        v.insert(0, '_');
    }
    v
}

/// The enable variable of a script (`<prefix>_<rcvar>`), if it has one.
pub fn enable_var(s: &Script) -> Option<String> {
    s.rcvar
        .as_ref()
        .map(|r| format!("{}_{r}", rc_var_prefix(&s.name)))
}

/// Applies the rules of reference §2.1.
pub fn derive(comp: &Composition, s: &Script) -> Result<Derived> {
    let user = s.user.clone().filter(|_| !comp.force_disable_user_change);
    // The *declared* user on purpose (§2.1).
    let pid_files_dir = if s.user.is_none() {
        &comp.runtime_dir
    } else {
        &comp.tmp_dir
    };
    let mut pid_file = s.pid_file.clone().or_else(|| {
        s.instance_name
            .as_ref()
            .map(|i| join(pid_files_dir, &format!("{i}.pid")))
    });
    let mut log_file = None;
    if let Some(command) = s.command.as_deref().filter(|_| !s.command_is_daemon) {
        if pid_file.is_none() {
            let base = basename(command);
            if base.is_empty() || base == "." || base == ".." {
                return Err(Error::invalid(
                    "command",
                    format!(
                        "cannot derive a PID file name from {command:?}; give pidFile or \
                         instanceName"
                    ),
                ));
            }
            pid_file = Some(join(pid_files_dir, &format!("{base}.pid")));
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
    Ok(Derived {
        var: rc_var_prefix(&s.name),
        user,
        pid_file,
        log_file,
    })
}

// ---------------------------------------------------------------------------
// Parsing and validation
// ---------------------------------------------------------------------------

/// A value rc.subr expands unquoted (`command`, `daemon`): only characters
/// that need no quoting.
fn plain_word(attr: &str, v: String) -> Result<String> {
    let v = non_empty(attr, v)?;
    if shell_escape(&v) != v {
        return Err(Error::invalid(
            attr,
            format!(
                "{v:?} must be a path of plain characters ([A-Za-z0-9,._+:@%/-]): rc.subr \
                 expands it unquoted"
            ),
        ));
    }
    Ok(v)
}

fn identifier(attr: &str, v: &str) -> Result<()> {
    if !v.is_empty() && v.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        Ok(())
    } else {
        Err(Error::invalid(
            attr,
            format!("{v:?} must match [A-Za-z0-9_]+ (it becomes part of a shell variable name)"),
        ))
    }
}

/// A token of the `# PROVIDE:`/`# REQUIRE:`/`# KEYWORD:` lines and of
/// `required_*` lists: no whitespace or control characters.
fn tokens(a: &Args, key: &str) -> Result<Vec<String>> {
    let list = a.string_list(key)?;
    for (i, t) in list.iter().enumerate() {
        if t.is_empty() || t.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(Error::invalid(
                format!("{key}[{i}]"),
                format!("{t:?} must be one word (no whitespace or control characters)"),
            ));
        }
    }
    Ok(list)
}

fn signal(a: &Args, key: &str, default: &str) -> Result<String> {
    let s = a.str_or(key, default)?;
    let s = s.strip_prefix("SIG").map(str::to_string).unwrap_or(s);
    let ok = !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric());
    if !ok {
        return Err(Error::invalid(
            key,
            format!("{s:?} is not a signal name or number (e.g. \"HUP\", \"TERM\", \"9\")"),
        ));
    }
    Ok(s)
}

/// Reads the composition parameters (reference §3.2.1).
pub fn parse_composition(a: &Args) -> Result<Composition> {
    let shell = a.str_or("shell", "/bin/sh")?;
    if shell.is_empty() || shell.contains(['\n', '\0']) {
        return Err(Error::invalid(
            "shell",
            "must be a non-empty interpreter path on one line",
        ));
    }
    Ok(Composition {
        runtime_dir: non_empty("runtimeDir", a.str_or("runtimeDir", "/var/run")?)?,
        log_dir: non_empty("logDir", a.str_or("logDir", "/var/log")?)?,
        tmp_dir: non_empty("tmpDir", a.str_or("tmpDir", "/tmp")?)?,
        force_disable_user_change: a.bool_or("forceDisableUserChange", false)?,
        ids: Ids::from_attrs(a.attrs("ids")?)?,
        shell,
        rc_subr: non_empty("rcSubr", a.str_or("rcSubr", "/etc/rc.subr")?)?,
        daemon: match (a.opt_str("bsdDaemon")?, a.opt_str("daemon")?) {
            (Some(d), _) => plain_word("bsdDaemon", d)?,
            (None, Some(d)) => plain_word("daemon", d)?,
            (None, None) => DEFAULT_DAEMON.to_string(),
        },
    })
}

fn parse_commands(a: &Args) -> Result<BTreeMap<String, Command>> {
    let mut out = BTreeMap::new();
    for (key, v) in a.attrs("commands")?.into_iter().flatten() {
        let attr = format!("commands.{key}");
        identifier(&attr, key)?;
        let c = (|| {
            let e = Args::new(v, "")?;
            let c = Command {
                pre: e.opt_str("pre")?,
                implementation: e.opt_str("implementation")?,
                post: e.opt_str("post")?,
            };
            e.finish()?;
            Ok(c)
        })()
        .map_err(|e: Error| e.within(&attr))?;
        out.insert(key.clone(), c);
    }
    Ok(out)
}

fn opt_one_line(a: &Args, key: &str) -> Result<Option<String>> {
    let v = a.opt_string_like(key)?;
    if let Some(s) = &v {
        if s.is_empty() || s.contains(['\n', '\r', '\0']) {
            return Err(Error::invalid(key, "must be a non-empty value on one line"));
        }
    }
    Ok(v)
}

/// Reads the per-script parameters (reference §3.2.2).
///
/// `raw` is the whole argument: `rcvar = null` (no enable variable) differs
/// from an absent `rcvar` (the default), which [`Args`] cannot tell apart.
pub fn parse_script(a: &Args, raw: &Value) -> Result<Script> {
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

    let explicit_null = raw
        .as_attrs()
        .is_some_and(|m| matches!(m.get("rcvar"), Some(Value::Null)));
    let rcvar = match a.opt_str("rcvar")? {
        None if explicit_null => None,
        None => Some(DEFAULT_RCVAR.to_string()),
        Some(r) => {
            identifier("rcvar", &r)?;
            Some(r)
        }
    };
    let mut rcvars_defaults = BTreeMap::new();
    for (k, v) in a.string_map("rcvarsDefaults")? {
        identifier(&format!("rcvarsDefaults.{k}"), &k)?;
        rcvars_defaults.insert(k, v);
    }

    let command = a
        .opt_str("command")?
        .map(|c| plain_word("command", c))
        .transpose()?;
    let commands = parse_commands(a)?;
    if command.is_none() {
        for needed in ["start", "stop"] {
            let has = commands
                .get(needed)
                .is_some_and(|c| c.implementation.is_some());
            if !has {
                return Err(Error::Missing {
                    attr: format!("commands.{needed}.implementation"),
                    why: "without a command, the script must say how to start and stop".into(),
                });
            }
        }
    }

    let oom_protect = opt_one_line(a, "oomProtect")?;
    if let Some(o) = &oom_protect {
        if o != "YES" && o != "ALL" {
            return Err(Error::invalid(
                "oomProtect",
                format!("must be \"YES\" or \"ALL\", but it is {o:?}"),
            ));
        }
    }

    let dependencies = dependency_sets(a, "a bsdrc process package")?
        .into_iter()
        .map(|d| {
            check_process_name(&d.name_attr(), &d.name)?;
            Ok(d.name)
        })
        .collect::<Result<Vec<_>>>()?;
    let provides = if a.has("provides") {
        tokens(a, "provides")?
    } else {
        vec![name.clone()]
    };
    let required_vars = tokens(a, "requiredVars")?;
    for (i, v) in required_vars.iter().enumerate() {
        identifier(&format!("requiredVars[{i}]"), v)?;
    }

    Ok(Script {
        instance_name,
        description,
        rcvar,
        rcvars_defaults,
        command,
        command_args: a.string_list("commandArgs")?,
        command_is_daemon: a.bool_or("commandIsDaemon", true)?,
        enable_daemon_output_logging: a.bool_or("enableDaemonOutputLogging", true)?,
        reload_signal: signal(a, "reloadSignal", "HUP")?,
        stop_signal: signal(a, "stopSignal", "TERM")?,
        environment: parse_environment(a)?,
        path: parse_path(a)?,
        pid_file: opt_non_empty(a, "pidFile")?,
        nice: parse_nice(a)?,
        umask: parse_umask(a)?,
        directory: opt_non_empty(a, "directory")?,
        user: parse_user(a)?,
        fib: opt_one_line(a, "fib")?,
        limits: opt_one_line(a, "limits")?,
        login_class: opt_one_line(a, "loginClass")?,
        oom_protect,
        required_files: tokens(a, "requiredFiles")?,
        required_dirs: tokens(a, "requiredDirs")?,
        required_vars,
        required_modules: tokens(a, "requiredModules")?,
        commands,
        flexible_parameters: a.bool_or("flexibleParameters", false)?,
        requires: tokens(a, "requires")?,
        provides,
        keywords: tokens(a, "keywords")?,
        dependencies,
        name,
    })
}
