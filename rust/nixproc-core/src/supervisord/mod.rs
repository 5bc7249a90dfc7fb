//! supervisord generator: nix-processmgmt's `createSupervisordProgram`
//! (reference §3.3) as a pure function from one argument attrset to the
//! files and manifest entry of one program package, the agnostic →
//! supervisord translation (§3.3.4, in [`translate`]) and the base
//! `supervisord.conf` of a profile ([`profile_files`], §1.4).
//!
//! Differences to the original, each deliberate:
//!
//! * every value is escaped for supervisord's parser (see [`render`] for
//!   the exact rules, checked against supervisor 4.2's source); what cannot
//!   be represented is an error naming the attribute, instead of a config
//!   supervisord misreads (§8.2-25);
//! * `command` may be a list of words (argv), which is quoted here; a
//!   string is a command line in supervisord's own (shlex) syntax;
//! * keys are checked against supervisord 4.2's `[program:x]` options, so
//!   `autorestrt = true` is an error with a hint, and `nice` (which
//!   supervisord does not have, §8.2-20) is rejected with a pointer to
//!   `createManagedProcess`'s `nice`;
//! * `path` keeps the inherited PATH (`…/bin:%(ENV_PATH)s`), like the
//!   sysvinit backend, instead of replacing it;
//! * no `basePackages`, `useProxy`/`pidproxy`: the foreground proxy
//!   (`nixproc-builder foreground-proxy`) wraps daemons instead.

mod render;
#[cfg(test)]
mod tests;
mod translate;

pub use render::{command_word, env_value_problem, plain_problem, python_isspace};
pub use translate::translate;

use std::collections::BTreeMap;

use crate::args::Args;
use crate::credentials::{self, Ids};
use crate::error::{Error, Result};
use crate::fields::{
    check_process_name, dependency_sets, non_empty, parse_environment, parse_path, parse_umask,
    parse_user,
};
use crate::manifest::{Backend, InstanceEntry};
use crate::package::{FileSpec, PackageSpec};
use crate::proxy::{join, parse_foreground_proxy, parse_shell};
use crate::quote::c_unescape;
use crate::value::Value;

/// Composition parameters, fixed once per model by the Nix layer.
pub const COMPOSITION_KEYS: &[&str] = &[
    "runtimeDir",
    "logDir",
    "tmpDir",
    "forceDisableUserChange",
    "foregroundProxy",
    "shell",
    "ids",
    "callingUser",
    "callingGroup",
];

/// The options of a `[program:x]` section in supervisord 4.2 that a
/// program may set directly (`command` and `environment` are ours and
/// rendered specially). Anything else is an unknown-parameter error.
pub const PROGRAM_KEYS: &[&str] = &[
    "process_name",
    "numprocs",
    "numprocs_start",
    "priority",
    "autostart",
    "startsecs",
    "startretries",
    "autorestart",
    "exitcodes",
    "stopsignal",
    "stopwaitsecs",
    "stopasgroup",
    "killasgroup",
    "user",
    "redirect_stderr",
    "stdout_logfile",
    "stdout_logfile_maxbytes",
    "stdout_logfile_backups",
    "stdout_capture_maxbytes",
    "stdout_events_enabled",
    "stdout_syslog",
    "stderr_logfile",
    "stderr_logfile_maxbytes",
    "stderr_logfile_backups",
    "stderr_capture_maxbytes",
    "stderr_events_enabled",
    "stderr_syslog",
    "directory",
    "umask",
    "serverurl",
];

/// Mode of generated config files.
pub const CONFIG_MODE: u32 = 0o444;

/// The composition (reference §3.3.1 and the universal composition §4.3).
#[derive(Debug, Clone, PartialEq)]
pub struct Composition {
    pub runtime_dir: String,
    pub log_dir: String,
    pub tmp_dir: String,
    pub force_disable_user_change: bool,
    /// The foreground proxy command prefix, as words
    /// (`[<builder>, "foreground-proxy"]`); needed only when a translated
    /// process has to go through it.
    pub foreground_proxy: Option<Vec<String>>,
    /// The shell the proxy runs `initialize` with.
    pub shell: String,
    pub ids: Ids,
}

/// Reads the composition keys (defaults: `/var/run`, `/var/log`, `/tmp`,
/// `false`, no proxy, `/bin/sh`). `callingUser`/`callingGroup` are marked
/// known: the Nix layer passes them to every generator.
pub fn parse_composition(a: &Args) -> Result<Composition> {
    let dir = |key: &str, default: &str| -> Result<String> {
        let d = non_empty(key, a.str_or(key, default)?)?;
        if let Some(why) = plain_problem(&d) {
            return Err(Error::invalid(key, format!("{d:?} {why}")));
        }
        Ok(d)
    };
    let foreground_proxy = parse_foreground_proxy(a, render::has_line_break)?;
    let shell = parse_shell(a, render::has_line_break)?;
    a.allow(&["callingUser", "callingGroup"]);
    Ok(Composition {
        runtime_dir: dir("runtimeDir", "/var/run")?,
        log_dir: dir("logDir", "/var/log")?,
        tmp_dir: dir("tmpDir", "/tmp")?,
        force_disable_user_change: a.bool_or("forceDisableUserChange", false)?,
        foreground_proxy,
        shell,
        ids: Ids::from_attrs(a.attrs("ids")?)?,
    })
}

/// A dependency as the Nix layer passes it: another supervisord package's
/// name and priority.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dependency {
    pub name: String,
    pub priority: u32,
}

/// supervisord program names: a process name (a file name) that
/// supervisord also accepts (no `:`, reference: `process_or_group_name`)
/// and that the profile's `conf.d/*.conf` glob includes (no leading `.`).
pub fn check_program_name(attr: &str, name: &str) -> Result<()> {
    check_process_name(attr, name)?;
    if name.contains(':') || name.starts_with('.') {
        return Err(Error::invalid(
            attr,
            format!(
                "{name:?} is not a valid supervisord program name (no ':', which separates \
                 groups, and no leading '.', which the conf.d/*.conf include skips)"
            ),
        ));
    }
    Ok(())
}

fn parse_dependencies(a: &Args) -> Result<Vec<Dependency>> {
    dependency_sets(a, "a supervisord program package")?
        .into_iter()
        .map(|d| {
            check_program_name(&d.name_attr(), &d.name)?;
            let priority = d.number("priority", "priority")?;
            Ok(Dependency {
                name: d.name,
                priority,
            })
        })
        .collect()
}

/// The `command`: argv words (quoted here) or a command line in
/// supervisord's shlex syntax (only `%` escaped, checked).
fn parse_command(a: &Args) -> Result<(String, Option<Vec<String>>)> {
    match a.get("command") {
        None => Err(Error::Missing {
            attr: "command".into(),
            why: "the command line supervisord runs (a string, or a list of words)".into(),
        }),
        Some(Value::List(_)) => {
            let words = a.string_list("command")?;
            if words.first().map(String::as_str).unwrap_or("").is_empty() {
                return Err(Error::invalid(
                    "command",
                    "must start with a non-empty program",
                ));
            }
            for (i, w) in words.iter().enumerate() {
                if render::has_line_break(w) {
                    return Err(Error::invalid(
                        format!("command[{i}]"),
                        "contains a line break or NUL, which supervisord cannot pass on \
                         (createManagedProcess passes such values through the foreground proxy)",
                    ));
                }
            }
            Ok((render::command_line(&words), Some(words)))
        }
        Some(Value::Str(s)) => {
            let line = s.s.trim();
            if line.is_empty() {
                return Err(Error::invalid("command", "must not be empty"));
            }
            if let Some(why) = plain_problem(line) {
                return Err(Error::invalid(
                    "command",
                    format!("{why}; pass command as a list of words to have it quoted"),
                ));
            }
            Ok((render::percent(line), None))
        }
        Some(other) => Err(Error::WrongType {
            attr: "command".into(),
            expected: "a string (a command line) or a list of words".into(),
            found: other.type_name(),
        }),
    }
}

/// What the manifest learns from a command that runs the composition's
/// foreground proxy: the user it switches to and the PID file it waits on
/// when wrapping a daemon.
#[derive(Debug, Default, PartialEq, Eq)]
struct ProxyFacts {
    user: Option<String>,
    pid_file: Option<String>,
}

fn proxy_facts(comp: &Composition, words: &[String]) -> Result<ProxyFacts> {
    let Some(prefix) = &comp.foreground_proxy else {
        return Ok(ProxyFacts::default());
    };
    if !words.starts_with(prefix) {
        return Ok(ProxyFacts::default());
    }
    let mut opts = words[prefix.len()..].iter();
    let (mut escaped, mut wrap, mut facts) = (false, false, ProxyFacts::default());
    let mut pid_file = None;
    while let Some(o) = opts.next() {
        let mut value = || -> Result<String> {
            let v = opts.next().ok_or_else(|| {
                Error::invalid(
                    "command",
                    format!("foreground proxy option {o} has no value"),
                )
            })?;
            if escaped {
                c_unescape(v).map_err(|e| Error::invalid("command", e))
            } else {
                Ok(v.clone())
            }
        };
        match o.as_str() {
            "--" => break,
            "--escaped" => escaped = true,
            "--wrap-daemon" => wrap = true,
            "--user" => facts.user = Some(value()?),
            "--pidfile" => pid_file = Some(value()?),
            _ => {
                value()?;
            }
        }
    }
    if wrap {
        facts.pid_file = pid_file;
    }
    Ok(facts)
}

/// Renders a non-`command`, non-`environment` key's value.
fn key_value(key: &str, v: &Value) -> Result<String> {
    let s = match v {
        Value::Str(s) => s.s.clone(),
        Value::Int(i) => i.to_string(),
        Value::Bool(b) => b.to_string(),
        other => {
            return Err(Error::WrongType {
                attr: key.into(),
                expected: "a string, an integer or a boolean".into(),
                found: other.type_name(),
            })
        }
    };
    if let Some(why) = plain_problem(&s) {
        return Err(Error::invalid(key, format!("{s:?} {why}")));
    }
    Ok(match key {
        // A supervisord format by design (`%(program_name)s_%(process_num)02d`):
        // written as given.
        "process_name" => s,
        // Expanded twice by supervisord (render docs, step 3).
        "stdout_logfile" | "stderr_logfile" => render::percent(&render::percent(&s)),
        _ => render::percent(&s),
    })
}

fn is_logfile_path(v: &str) -> bool {
    !matches!(
        v.to_ascii_lowercase().as_str(),
        "" | "none" | "off" | "auto" | "syslog"
    )
}

/// `builtins.createSupervisordProgram`: one program package.
pub fn create_supervisord_program(v: &Value) -> Result<PackageSpec> {
    let a = Args::new(v, "argument")?;
    let comp = parse_composition(&a)?;

    let name = a.opt_str("name")?.ok_or_else(|| Error::Missing {
        attr: "name".into(),
        why: "the supervisord program name".into(),
    })?;
    check_program_name("name", &name)?;
    if let Some(i) = a.opt_str("instanceName")? {
        check_process_name("instanceName", &i)?;
    }
    let description = a.opt_str("description")?.unwrap_or_else(|| name.clone());
    let (command, words) = parse_command(&a)?;
    let path = parse_path(&a)?;
    let environment = parse_environment(&a)?;
    let dependencies = parse_dependencies(&a)?;
    let creds = credentials::credential_files(
        a.attrs("credentials")?,
        &comp.ids,
        comp.force_disable_user_change,
    )?;
    // Consumed by the Nix layer / builder after the files are written.
    a.allow(&["postInstall"]);

    if a.has("nice") {
        return Err(Error::invalid(
            "nice",
            "supervisord has no nice option; use createManagedProcess's nice, which runs \
             the program through the foreground proxy (nice -n)",
        ));
    }

    // Program-section keys, typed where we rely on them.
    let mut keys: BTreeMap<String, String> = BTreeMap::new();
    let declared_user = parse_user(&a)?;
    let umask = parse_umask(&a)?;
    let explicit_priority = match a.get("priority") {
        None => None,
        Some(Value::Int(n)) => Some(
            u32::try_from(*n)
                .map_err(|_| Error::invalid("priority", format!("{n} is negative")))?,
        ),
        Some(other) => {
            return Err(Error::WrongType {
                attr: "priority".into(),
                expected: "an integer".into(),
                found: other.type_name(),
            })
        }
    };
    let mut log_file = None;
    for key in PROGRAM_KEYS {
        if matches!(*key, "user" | "umask" | "priority") {
            continue;
        }
        if let Some(v) = a.get(key) {
            keys.insert((*key).to_string(), key_value(key, v)?);
            if *key == "stdout_logfile" {
                log_file = v.as_str().filter(|l| is_logfile_path(l)).map(String::from);
            }
        }
    }
    if let Some(d) = keys.get("directory") {
        if d.is_empty() {
            return Err(Error::invalid("directory", "must not be empty"));
        }
    }
    if let Some(m) = umask {
        keys.insert("umask".into(), m);
    }
    let key_user = declared_user.filter(|_| !comp.force_disable_user_change);
    if let Some(u) = &key_user {
        keys.insert("user".into(), key_value("user", &Value::str(u))?);
    }
    a.finish()?;

    let priority = explicit_priority.unwrap_or_else(|| {
        dependencies
            .iter()
            .map(|d| d.priority)
            .max()
            .map_or(1, |m| m.saturating_add(1))
    });

    let mut env: BTreeMap<String, render::EnvValue> = BTreeMap::new();
    if !path.is_empty() && !environment.contains_key("PATH") {
        let bins: Vec<String> = path.iter().map(|p| join(p, "bin")).collect();
        let literal = format!("{}:", bins.join(":"));
        if let Some(why) = env_value_problem(&literal) {
            return Err(Error::invalid("path", format!("{literal:?} {why}")));
        }
        env.insert(
            "PATH".into(),
            render::EnvValue {
                literal,
                raw_suffix: "%(ENV_PATH)s",
            },
        );
    }
    for (k, val) in &environment {
        if let Some(why) = env_value_problem(val) {
            return Err(Error::invalid(
                format!("environment.{k}"),
                format!(
                    "{val:?} {why} (createManagedProcess passes such values through the \
                     foreground proxy)"
                ),
            ));
        }
        env.insert(
            k.clone(),
            render::EnvValue {
                literal: val.clone(),
                raw_suffix: "",
            },
        );
    }

    let facts = match &words {
        Some(w) => proxy_facts(&comp, w)?,
        None => ProxyFacts::default(),
    };
    let user = facts.user.clone().or(key_user);

    let config = format!("conf.d/{name}.conf");
    let text = render::program_text(&name, &command, i64::from(priority), &env, &keys);
    let mut files = vec![FileSpec {
        path: config.clone(),
        text,
        mode: CONFIG_MODE,
    }];
    files.extend(creds);

    let manifest = InstanceEntry {
        key: String::new(),
        name: name.clone(),
        description,
        revision: String::new(),
        dependencies: dependencies.iter().map(|d| d.name.clone()).collect(),
        pid_file: facts.pid_file,
        log_file,
        user,
        backend: Backend::Supervisord { config, priority },
        state: None,
        readiness: None,
    };
    let passthru = BTreeMap::from([("priority".to_string(), Value::Int(i64::from(priority)))]);
    Ok(PackageSpec::new(
        name,
        files,
        Vec::new(),
        manifest,
        passthru,
    ))
}

/// Files the profile root gets besides the packages' own: the base
/// `supervisord.conf` (see [`render::base_config_text`]), so that
/// `supervisord -c <profile>/supervisord.conf` works as it is.
pub fn profile_files(composition: &Value, _services: &[String]) -> Result<Vec<FileSpec>> {
    let a = Args::new(composition, "composition")?;
    let comp = parse_composition(&a).map_err(|e| e.within("composition"))?;
    Ok(vec![FileSpec {
        path: "supervisord.conf".into(),
        text: render::base_config_text(
            &render::percent(comp.log_dir.trim_end_matches('/')),
            &render::percent(comp.runtime_dir.trim_end_matches('/')),
        ),
        mode: CONFIG_MODE,
    }])
}
