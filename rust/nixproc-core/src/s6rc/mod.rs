//! s6-rc generator: nix-processmgmt's `createLongRunService`,
//! `createOneShotService` and `createServiceBundle` (reference §3.7.1) as
//! one primop, `createS6RCService`, selected by `type`; the agnostic
//! translation (§3.7.2, in [`translate`]); the profile's `default` bundle
//! (§3.7.3); and a check of a whole s6-rc source tree ([`source`]), which
//! the activator runs before deploying.
//!
//! Output: service directories in s6-rc *source* format under
//! `etc/s6/sv/<service>/`. Differences to the original, on purpose:
//!
//! * `run`, `finish`, `up` and `down` are given as text (the Nix layer has
//!   no store files to copy); `data`/`env` directories are not supported
//!   yet and rejected with a message;
//! * every execline script quotes its values and protects them from
//!   `importas` substitution ([`execline`]); the environment is exported
//!   inline instead of through an unescaped envfile (defect 25);
//! * a daemon's `down` script kills the PID from the PID file the process
//!   really uses — `pidFile`, else the §2.1 rule — not the raw parameter
//!   (defect 23);
//! * `producerFor`/`pipelineName` together with the generated log service
//!   are an error instead of being silently overwritten.

pub mod execline;
pub mod source;
#[cfg(test)]
mod tests;
mod translate;

pub use translate::translate;

use std::collections::BTreeMap;

use crate::args::Args;
use crate::credentials::{self, Ids};
use crate::error::{Error, Result};
use crate::fields::{check_process_name, dependency_sets, non_empty, opt_non_empty, parse_user};
use crate::manifest::{Backend, InstanceEntry, S6Kind};
use crate::package::{FileSpec, PackageSpec};
use crate::value::Value;

/// Composition parameters, fixed once per model by the Nix layer.
pub const COMPOSITION_KEYS: &[&str] = &[
    "runtimeDir",
    "logDir",
    "tmpDir",
    "forceDisableUserChange",
    "logDirUser",
    "logDirGroup",
    "execline",
    "s6",
    "foregroundProxy",
    "shell",
    "ids",
    "callingUser",
    "callingGroup",
];

/// Where service directories live inside a package and a profile.
pub const SOURCE_DIR: &str = "etc/s6/sv";
/// The bundle a profile adds, holding every service (reference §3.7.3).
pub const DEFAULT_BUNDLE: &str = "default";
/// Mode of executable scripts (`run`, `finish`).
pub const SCRIPT_MODE: u32 = 0o555;
/// Mode of every other file.
pub const DATA_MODE: u32 = 0o444;

/// Global settings (reference §3.7.1/§3.7.2 composition).
#[derive(Debug, Clone, PartialEq)]
pub struct Composition {
    pub runtime_dir: String,
    pub log_dir: String,
    pub tmp_dir: String,
    pub force_disable_user_change: bool,
    /// Owner of the log directories and user of `s6-log`.
    pub log_dir_user: String,
    pub log_dir_group: String,
    /// The execline package: programs are `<execline>/bin/<prog>`
    /// (Debian: `/usr/lib/execline`).
    pub execline: String,
    /// The s6 package: programs are `<s6>/bin/<prog>` (Debian: `/usr`).
    pub s6: String,
    /// Command prefix of nixproc's foreground proxy (several words, split
    /// at whitespace), used for `nice`.
    pub foreground_proxy: Option<String>,
    /// The POSIX shell running `initialize` and the helper snippets.
    pub shell: String,
    pub ids: Ids,
}

impl Composition {
    pub fn execline_bin(&self, prog: &str) -> String {
        format!("{}/bin/{prog}", self.execline.trim_end_matches('/'))
    }

    pub fn s6_bin(&self, prog: &str) -> String {
        format!("{}/bin/{prog}", self.s6.trim_end_matches('/'))
    }

    /// `#!<execline>/bin/execlineb -P`
    pub fn shebang(&self) -> String {
        format!("#!{} -P\n", self.execline_bin("execlineb"))
    }
}

fn path_like(a: &Args, key: &str, default: &str) -> Result<String> {
    let v = non_empty(key, a.str_or(key, default)?)?;
    if v.contains(['\n', '\0']) {
        return Err(Error::invalid(key, "must be a path on one line"));
    }
    Ok(v)
}

/// s6-log takes a directory only when it starts with `/` (or `.`).
fn absolute(a: &Args, key: &str, default: &str) -> Result<String> {
    let v = path_like(a, key, default)?;
    if !v.starts_with('/') {
        return Err(Error::invalid(
            key,
            format!("{v:?} must be an absolute path"),
        ));
    }
    Ok(v)
}

/// Reads the composition parameters; defaults fit Debian (`execline` in
/// `/usr/lib/execline`, `s6` in `/usr`).
pub fn parse_composition(a: &Args) -> Result<Composition> {
    let shell = path_like(a, "shell", "/bin/sh")?;
    let proxy = a
        .opt_str("foregroundProxy")?
        .map(|p| {
            if p.split_whitespace().next().is_none() || p.contains('\0') {
                Err(Error::invalid("foregroundProxy", "must be a command"))
            } else {
                Ok(p)
            }
        })
        .transpose()?;
    let account = |key: &str| -> Result<String> {
        let v = non_empty(key, a.str_or(key, "s6-log")?)?;
        if !credentials::is_plain_name(&v) || v.contains(':') || v.starts_with('-') {
            return Err(Error::invalid(
                key,
                format!("{v:?} is not a valid user or group name"),
            ));
        }
        Ok(v)
    };
    Ok(Composition {
        runtime_dir: path_like(a, "runtimeDir", "/var/run")?,
        log_dir: absolute(a, "logDir", "/var/log")?,
        tmp_dir: path_like(a, "tmpDir", "/tmp")?,
        force_disable_user_change: a.bool_or("forceDisableUserChange", false)?,
        log_dir_user: account("logDirUser")?,
        log_dir_group: account("logDirGroup")?,
        execline: path_like(a, "execline", "/usr/lib/execline")?,
        s6: path_like(a, "s6", "/usr")?,
        foreground_proxy: proxy,
        shell,
        ids: credentials::Ids::from_attrs(a.attrs("ids")?)?,
    })
}

/// An s6-rc service name: a process name (a file name) that s6-rc accepts:
/// not starting with `.`, not in s6-rc's reserved `s6rc-`/`s6-rc-`
/// namespace.
pub fn check_service_name(attr: &str, name: &str) -> Result<()> {
    check_process_name(attr, name)?;
    if name.starts_with('.') || name.starts_with("s6rc-") || name.starts_with("s6-rc-") {
        return Err(Error::invalid(
            attr,
            format!(
                "{name:?} is not a valid s6-rc service name (it must not start with '.', \
                 's6rc-' or 's6-rc-', which s6-rc reserves)"
            ),
        ));
    }
    Ok(())
}

/// Keys that only one type of service takes (for a clear error when a key
/// is used with the wrong `type`).
const LONGRUN_KEYS: &[&str] = &[
    "run",
    "finish",
    "notificationFd",
    "timeoutKill",
    "timeoutFinish",
    "nosetsid",
    "maxDeathTally",
    "downSignal",
    "data",
    "env",
    "producerFor",
    "consumerFor",
    "pipelineName",
    "autoGenerateLogService",
];
const ONESHOT_KEYS: &[&str] = &["up", "down"];
const BUNDLE_KEYS: &[&str] = &["contents"];
/// Keys of services that run something (not bundles).
const RUNNING_KEYS: &[&str] = &["dependencies", "credentials", "pidFile", "user"];

/// Absent keys are only marked known here, which changes nothing.
fn reject_foreign_keys(a: &Args, kind: S6Kind) -> Result<()> {
    let name = |k: S6Kind| match k {
        S6Kind::Longrun => "longrun",
        S6Kind::Oneshot => "oneshot",
        S6Kind::Bundle => "bundle",
    };
    let groups: [(S6Kind, &[&str]); 3] = [
        (S6Kind::Longrun, LONGRUN_KEYS),
        (S6Kind::Oneshot, ONESHOT_KEYS),
        (S6Kind::Bundle, BUNDLE_KEYS),
    ];
    for (k, keys) in groups {
        if k == kind {
            continue;
        }
        for key in keys {
            if a.has(key) {
                return Err(Error::invalid(
                    *key,
                    format!(
                        "is a parameter of {} services, but type is {:?}",
                        name(k),
                        name(kind)
                    ),
                ));
            }
        }
    }
    if kind == S6Kind::Bundle {
        for key in RUNNING_KEYS {
            if a.has(key) {
                return Err(Error::invalid(
                    *key,
                    "a bundle runs nothing: it only groups services (use contents)",
                ));
            }
        }
    }
    a.allow(&["type"]);
    Ok(())
}

/// A service's names listed in a file (`dependencies`, `contents`,
/// `consumerFor`): `dependencies` are `{ name; }` sets (what the Nix layer
/// passes for a dependency package), the others plain strings.
fn parse_dependencies(a: &Args) -> Result<Vec<String>> {
    dependency_sets(a, "an s6-rc service package")?
        .into_iter()
        .map(|d| {
            check_service_name(&d.name_attr(), &d.name)?;
            Ok(d.name)
        })
        .collect()
}

fn name_list(a: &Args, key: &str) -> Result<Vec<String>> {
    let names = a.string_list(key)?;
    for (i, n) in names.iter().enumerate() {
        check_service_name(&format!("{key}[{i}]"), n)?;
    }
    Ok(names)
}

fn opt_service_name(a: &Args, key: &str) -> Result<Option<String>> {
    let v = a.opt_str(key)?;
    if let Some(n) = &v {
        check_service_name(key, n)?;
    }
    Ok(v)
}

/// A non-negative integer setting (milliseconds, counts, descriptors).
fn opt_count(a: &Args, key: &str, min: i64, max: i64) -> Result<Option<i64>> {
    let v = a.opt_int(key)?;
    if let Some(n) = v {
        if !(min..=max).contains(&n) {
            return Err(Error::invalid(
                key,
                format!("{n} is not between {min} and {max}"),
            ));
        }
    }
    Ok(v)
}

/// A script s6 executes directly: needs an interpreter line.
fn script(a: &Args, key: &str) -> Result<Option<String>> {
    let v = a.opt_str(key)?;
    if let Some(s) = &v {
        if !s.starts_with("#!") {
            return Err(Error::invalid(
                key,
                "must start with an interpreter line such as \"#!/usr/bin/execlineb -P\" \
                 (s6-supervise executes it directly)",
            ));
        }
    }
    Ok(v)
}

/// The parameters of one service (reference §3.7.1), validated.
#[derive(Debug, Clone, PartialEq)]
pub struct Service {
    /// As given: for a logged longrun the service is `<name>-srv`.
    pub name: String,
    pub description: String,
    pub flag_essential: bool,
    pub dependencies: Vec<String>,
    pub kind: Kind,
    /// Manifest metadata: the PID file the service's process writes.
    pub pid_file: Option<String>,
    /// Manifest metadata: the user the service's process runs as.
    pub user: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    Longrun(Longrun),
    Oneshot { up: String, down: Option<String> },
    Bundle { contents: Vec<String> },
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Longrun {
    pub run: String,
    pub finish: Option<String>,
    pub notification_fd: Option<i64>,
    pub timeout_kill: Option<i64>,
    pub timeout_finish: Option<i64>,
    pub nosetsid: bool,
    pub max_death_tally: Option<i64>,
    pub down_signal: Option<String>,
    pub producer_for: Option<String>,
    pub consumer_for: Vec<String>,
    pub pipeline_name: Option<String>,
    pub auto_generate_log_service: bool,
}

fn parse_longrun(a: &Args) -> Result<Longrun> {
    for key in ["data", "env"] {
        if a.has(key) {
            return Err(Error::invalid(
                key,
                "service data/env directories are not supported yet; put the settings in \
                 the run script (createManagedProcess exports `environment` there)",
            ));
        }
    }
    let run = script(a, "run")?.ok_or_else(|| Error::Missing {
        attr: "run".into(),
        why: "a longrun needs the text of its run script".into(),
    })?;
    let down_signal = a.opt_string_like("downSignal")?;
    if let Some(s) = &down_signal {
        if s.is_empty() || !s.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(Error::invalid(
                "downSignal",
                format!("{s:?} is not a signal name or number such as \"SIGHUP\""),
            ));
        }
    }
    let l = Longrun {
        run,
        finish: script(a, "finish")?,
        notification_fd: opt_count(a, "notificationFd", 3, 1 << 20)?,
        timeout_kill: opt_count(a, "timeoutKill", 0, i64::from(u32::MAX))?,
        timeout_finish: opt_count(a, "timeoutFinish", 0, i64::from(u32::MAX))?,
        nosetsid: a.bool_or("nosetsid", false)?,
        max_death_tally: opt_count(a, "maxDeathTally", 0, 4096)?,
        down_signal,
        producer_for: opt_service_name(a, "producerFor")?,
        consumer_for: name_list(a, "consumerFor")?,
        pipeline_name: opt_service_name(a, "pipelineName")?,
        auto_generate_log_service: a.bool_or("autoGenerateLogService", true)?,
    };
    if l.auto_generate_log_service {
        for (key, given) in [
            ("producerFor", l.producer_for.is_some()),
            ("pipelineName", l.pipeline_name.is_some()),
        ] {
            if given {
                return Err(Error::invalid(
                    key,
                    "is set by the generated log service; set autoGenerateLogService = false \
                     to wire a pipeline yourself",
                ));
            }
        }
    }
    Ok(l)
}

/// Reads the per-service parameters.
pub fn parse_service(a: &Args, comp: &Composition) -> Result<Service> {
    let kind = match a.str_or("type", "longrun")?.as_str() {
        "longrun" => S6Kind::Longrun,
        "oneshot" => S6Kind::Oneshot,
        "bundle" => S6Kind::Bundle,
        other => {
            return Err(Error::invalid(
                "type",
                format!("{other:?} is not an s6-rc service type (longrun, oneshot or bundle)"),
            ))
        }
    };
    reject_foreign_keys(a, kind)?;
    let name = a.opt_str("name")?.ok_or_else(|| Error::Missing {
        attr: "name".into(),
        why: "the service name".into(),
    })?;
    check_service_name("name", &name)?;
    let description = a.opt_str("description")?.unwrap_or_else(|| name.clone());
    let flag_essential = a.bool_or("flagEssential", false)?;
    let kind = match kind {
        S6Kind::Longrun => Kind::Longrun(parse_longrun(a)?),
        S6Kind::Oneshot => Kind::Oneshot {
            up: non_empty(
                "up",
                a.opt_str("up")?.ok_or_else(|| Error::Missing {
                    attr: "up".into(),
                    why: "a oneshot needs its up command line (execline)".into(),
                })?,
            )?,
            down: a.opt_str("down")?,
        },
        S6Kind::Bundle => Kind::Bundle {
            contents: name_list(a, "contents")?,
        },
    };
    let pid_file = opt_non_empty(a, "pidFile")?;
    let user = parse_user(a)?.filter(|_| !comp.force_disable_user_change);
    let dependencies = if matches!(kind, Kind::Bundle { .. }) {
        Vec::new()
    } else {
        parse_dependencies(a)?
    };
    Ok(Service {
        name,
        description,
        flag_essential,
        dependencies,
        kind,
        pid_file,
        user,
    })
}

/// `builtins.createS6RCService`: one service (plus, for a logged longrun,
/// its log service) as a package.
pub fn create_s6rc_service(v: &Value) -> Result<PackageSpec> {
    let a = Args::new(v, "argument")?;
    let comp = parse_composition(&a)?;
    let service = parse_service(&a, &comp)?;
    let creds = if matches!(service.kind, Kind::Bundle { .. }) {
        Vec::new()
    } else {
        credentials::credential_files(
            a.attrs("credentials")?,
            &comp.ids,
            comp.force_disable_user_change,
        )?
    };
    a.allow(&["postInstall", "callingUser", "callingGroup"]);
    a.finish()?;
    Ok(build(&comp, &service, creds))
}

fn file(path: String, text: impl Into<String>, mode: u32) -> FileSpec {
    FileSpec {
        path,
        text: text.into(),
        mode,
    }
}

fn lines(names: &[String]) -> String {
    names.iter().map(|n| format!("{n}\n")).collect()
}

/// `dir/file` without a doubled slash.
fn join(dir: &str, file: &str) -> String {
    format!("{}/{file}", dir.trim_end_matches('/'))
}

/// The log directory of `<name>`'s log service.
pub fn log_directory(comp: &Composition, name: &str) -> String {
    join(&comp.log_dir, &format!("s6-log/{name}"))
}

/// The run script of the log service of `name` (reference §3.7.1): create
/// the log directory; unless user changes are disabled, hand it to
/// `logDirUser:logDirGroup` and drop to that user; then `s6-log -d3` with
/// an empty environment (readiness on fd 3).
pub fn log_run_script(comp: &Composition, name: &str) -> String {
    use execline::Word::{Raw, Value as V};
    let dir = log_directory(comp, name);
    let mut s = execline::Script::new();
    let owner = format!("{}:{}", comp.log_dir_user, comp.log_dir_group);
    let (snippet, extra): (&str, Vec<&str>) = if comp.force_disable_user_change {
        ("mkdir -p -- \"$1\"", vec![])
    } else {
        (
            "mkdir -p -- \"$1\" && chown -R -- \"$2\" \"$1\"",
            vec![owner.as_str()],
        )
    };
    let ifp = comp.execline_bin("if");
    let mut w = vec![
        V(&ifp),
        Raw("{"),
        V(&comp.shell),
        Raw("-ec"),
        V(snippet),
        V("nixproc-s6-log"),
        V(&dir),
    ];
    w.extend(extra.iter().map(|e| V(e)));
    w.push(Raw("}"));
    s.line(&w);
    if !comp.force_disable_user_change {
        s.line(&[V(&comp.s6_bin("s6-setuidgid")), V(&comp.log_dir_user)]);
    }
    s.line(&[V(&comp.execline_bin("exec")), Raw("-c")]);
    s.line(&[V(&comp.s6_bin("s6-log")), Raw("-d3"), Raw("--"), V(&dir)]);
    format!("{}{}", comp.shebang(), s.render())
}

fn build(comp: &Composition, s: &Service, creds: Vec<FileSpec>) -> PackageSpec {
    let mut files = Vec::new();
    let mut log_dir = None;
    let mut log_file = None;
    let (kind, service_name) = match &s.kind {
        Kind::Longrun(l) if l.auto_generate_log_service => {
            (S6Kind::Longrun, format!("{}-srv", s.name))
        }
        Kind::Longrun(_) => (S6Kind::Longrun, s.name.clone()),
        Kind::Oneshot { .. } => (S6Kind::Oneshot, s.name.clone()),
        Kind::Bundle { .. } => (S6Kind::Bundle, s.name.clone()),
    };
    let dir = format!("{SOURCE_DIR}/{service_name}");
    let f = |name: &str| format!("{dir}/{name}");
    let type_text = match kind {
        S6Kind::Longrun => "longrun\n",
        S6Kind::Oneshot => "oneshot\n",
        S6Kind::Bundle => "bundle\n",
    };
    files.push(file(f("type"), type_text, DATA_MODE));
    if s.flag_essential {
        files.push(file(f("flag-essential"), "", DATA_MODE));
    }
    if !s.dependencies.is_empty() {
        files.push(file(f("dependencies"), lines(&s.dependencies), DATA_MODE));
    }
    match &s.kind {
        Kind::Longrun(l) => {
            files.push(file(f("run"), l.run.clone(), SCRIPT_MODE));
            if let Some(fin) = &l.finish {
                files.push(file(f("finish"), fin.clone(), SCRIPT_MODE));
            }
            let numbers = [
                ("notification-fd", l.notification_fd),
                ("timeout-kill", l.timeout_kill),
                ("timeout-finish", l.timeout_finish),
                ("max-death-tally", l.max_death_tally),
            ];
            for (name, v) in numbers {
                if let Some(n) = v {
                    files.push(file(f(name), format!("{n}\n"), DATA_MODE));
                }
            }
            if l.nosetsid {
                files.push(file(f("nosetsid"), "", DATA_MODE));
            }
            if let Some(sig) = &l.down_signal {
                files.push(file(f("down-signal"), format!("{sig}\n"), DATA_MODE));
            }
            let producer_for = if l.auto_generate_log_service {
                Some(format!("{}-log", s.name))
            } else {
                l.producer_for.clone()
            };
            if let Some(p) = producer_for {
                files.push(file(f("producer-for"), format!("{p}\n"), DATA_MODE));
            }
            if !l.consumer_for.is_empty() {
                files.push(file(f("consumer-for"), lines(&l.consumer_for), DATA_MODE));
            }
            if let Some(p) = &l.pipeline_name {
                files.push(file(f("pipeline-name"), format!("{p}\n"), DATA_MODE));
            }
            if l.auto_generate_log_service {
                let ldir = format!("{SOURCE_DIR}/{}-log", s.name);
                let lf = |name: &str| format!("{ldir}/{name}");
                files.push(file(lf("type"), "longrun\n", DATA_MODE));
                files.push(file(lf("run"), log_run_script(comp, &s.name), SCRIPT_MODE));
                files.push(file(
                    lf("consumer-for"),
                    format!("{service_name}\n"),
                    DATA_MODE,
                ));
                files.push(file(lf("notification-fd"), "3\n", DATA_MODE));
                files.push(file(
                    lf("pipeline-name"),
                    format!("{}\n", s.name),
                    DATA_MODE,
                ));
                log_file = Some(join(&log_directory(comp, &s.name), "current"));
                log_dir = Some(ldir);
            }
        }
        Kind::Oneshot { up, down } => {
            files.push(file(f("up"), up.clone(), DATA_MODE));
            if let Some(d) = down {
                files.push(file(f("down"), d.clone(), DATA_MODE));
            }
        }
        Kind::Bundle { contents } => {
            files.push(file(f("contents"), lines(contents), DATA_MODE));
        }
    }
    files.extend(creds);

    let manifest = InstanceEntry {
        key: String::new(),
        name: service_name.clone(),
        description: s.description.clone(),
        revision: String::new(),
        dependencies: s.dependencies.clone(),
        pid_file: s.pid_file.clone(),
        log_file,
        user: s.user.clone(),
        backend: Backend::S6Rc { kind, dir, log_dir },
        state: None,
        readiness: None,
    };
    PackageSpec::new(service_name, files, Vec::new(), manifest, BTreeMap::new())
}

/// Files the profile root gets besides the packages' own: the `default`
/// bundle holding every service (reference §3.7.3).
pub fn profile_files(_composition: &Value, services: &[String]) -> Result<Vec<FileSpec>> {
    for (i, s) in services.iter().enumerate() {
        check_service_name(&format!("services[{i}]"), s)?;
        if s == DEFAULT_BUNDLE {
            return Err(Error::invalid(
                format!("services[{i}]"),
                "a service cannot be called \"default\": the profile's bundle of all \
                 services has that name",
            ));
        }
    }
    let dir = format!("{SOURCE_DIR}/{DEFAULT_BUNDLE}");
    Ok(vec![
        file(format!("{dir}/type"), "bundle\n", DATA_MODE),
        file(format!("{dir}/contents"), lines(services), DATA_MODE),
    ])
}
