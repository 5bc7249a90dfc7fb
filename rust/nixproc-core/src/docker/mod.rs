//! docker generator: nix-processmgmt's `createDockerContainer` (reference
//! §3.9.1) — one container per process, sharing the host's network and Nix
//! store, state directories bind-mounted — and the agnostic → docker
//! translation (§3.9.2, in [`translate`]).
//!
//! # A departure from the original: one base image for every container
//!
//! The original builds one image per process with `dockerTools.buildImage`
//! and `runAsRoot` (a VM build), bakes the command and environment into
//! the image config, discards the string context of the command, and then
//! ignores `dockerImageTag` and `environment` of `createDockerContainer`
//! (§8.2-27). Here containers share the host's store (read-only bind mount)
//! and network, so they need nothing from a per-process image:
//!
//! * ONE small base image serves every container (`dockerBaseImage` of the
//!   composition, built by `nixproc-builder docker-base-image`, see
//!   `nix/lib/docker-image.nix`): a `docker load`-able archive with one layer
//!   holding `/run`, `/tmp` (1777), `/var`, `/var/run` → `/run`, and
//!   `/etc/passwd`/`/etc/group` with root and nobody/nogroup. No shell, no
//!   `Cmd`, no VM build.
//! * everything per process goes into the `docker create` arguments
//!   (`<name>-docker-createparams`): the store and state-dir volumes,
//!   `--network host`, `--env` (so `environment` is honoured), `--workdir`,
//!   `--user`; the command (`cmd`, argv words) follows the image tag
//!   (`<name>-docker-cmd`). The files keep their store paths, so string
//!   context (and GC roots) is never lost.
//! * `dockerImageTag` is honoured: it is the tag the activator loads the
//!   image under and creates the container from. For the base image it
//!   defaults to `nixproc-base:<first 12 characters of the store hash>`, so
//!   a new base image gets a new tag and old containers keep theirs until
//!   they are replaced.
//! * state directories are bind-mounted without `:z` (a recursive SELinux
//!   relabelling of the whole state dir is not something to do silently;
//!   add it through `dockerCreateParameters` where wanted).
//! * users: with a user (and not `forceDisableUserChange`), the host's
//!   `/etc/passwd` and `/etc/group` are bind-mounted read-only
//!   (`mapHostAccounts`) and the process runs as that user (`--user`, or the
//!   foreground proxy's `--user` after `initialize`). The accounts
//!   themselves are created on the host by nixproc's deploy step from the
//!   package's `dysnomia-support` files — not inside the container at every
//!   start as in the original.
//! * `overrides.docker` (agnostic layer) is a plain override of the
//!   container arguments; there is no image level any more.
//!
//! Package files (reference §3.9.1): `<name>-docker-settings`,
//! `<name>-docker-createparams`, `<NN>-<name>-docker-priority` (empty
//! marker, NN = two-digit priority), `<name>-docker-cmd` (when there is a
//! command), `<name>-storepaths` (when `storePaths` is given),
//! `dysnomia-support/…` (credentials).

mod render;
#[cfg(test)]
mod tests;
mod translate;

pub use render::{line_problem, option_flag, parse_lines};
pub use translate::translate;

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};

use crate::args::{string_like, Args};
use crate::credentials::{self, Ids};
use crate::error::{Error, Result};
use crate::fields::{
    check_process_name, dependency_sets, non_empty, opt_non_empty, parse_environment, parse_path,
    parse_user,
};
use crate::manifest::{Backend, InstanceEntry};
use crate::package::{FileSpec, PackageSpec};
use crate::proxy::{parse_foreground_proxy, parse_shell};
use crate::quote::c_unescape;
use crate::value::Value;
use render::check_line;

/// Composition parameters, fixed once per model by the Nix layer
/// (`nix/default.nix`, `compositions.docker`): the generator must accept all
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
    "stateDir",
    "dockerBaseImage",
];

/// Mode of the generated files.
pub const FILE_MODE: u32 = 0o444;

/// Where the host's Nix store is, inside the container too.
pub const STORE_DIR: &str = "/nix/store";

/// The repository of the default tag of the base image.
pub const BASE_REPOSITORY: &str = "nixproc-base";

/// The composition (reference §3.9.2 plus the universal parameters).
#[derive(Debug, Clone, PartialEq)]
pub struct Composition {
    pub runtime_dir: String,
    pub log_dir: String,
    pub tmp_dir: String,
    pub state_dir: String,
    pub force_disable_user_change: bool,
    /// `[<builder>, "foreground-proxy"]`, needed only when a process has to
    /// go through it.
    pub foreground_proxy: Option<Vec<String>>,
    /// The shell the proxy runs `initialize` with (inside the container).
    pub shell: String,
    pub ids: Ids,
    /// The store path of the base image tarball.
    pub base_image: Option<String>,
}

/// Reads the composition keys (defaults: `/var/run`, `/var/log`, `/tmp`,
/// `/var`, `false`, no proxy, `/bin/sh`, no base image).
pub fn parse_composition(a: &Args) -> Result<Composition> {
    let dir = |key: &str, default: &str| -> Result<String> {
        let d = non_empty(key, a.str_or(key, default)?)?;
        check_host_dir(key, &d)?;
        Ok(d)
    };
    let foreground_proxy = parse_foreground_proxy(a, render::has_line_break)?;
    let shell = parse_shell(a, render::has_line_break)?;
    let base_image = opt_non_empty(a, "dockerBaseImage")?;
    if let Some(i) = &base_image {
        check_line("dockerBaseImage", i)?;
    }
    a.allow(&["callingUser", "callingGroup"]);
    Ok(Composition {
        runtime_dir: dir("runtimeDir", "/var/run")?,
        log_dir: dir("logDir", "/var/log")?,
        tmp_dir: dir("tmpDir", "/tmp")?,
        state_dir: dir("stateDir", "/var")?,
        force_disable_user_change: a.bool_or("forceDisableUserChange", false)?,
        foreground_proxy,
        shell,
        ids: Ids::from_attrs(a.attrs("ids")?)?,
        base_image,
    })
}

/// A host directory that becomes part of a `--volume D:D` argument:
/// absolute, no `:` (docker's separator), on one line.
fn check_host_dir(attr: &str, d: &str) -> Result<()> {
    check_line(attr, d)?;
    if !d.starts_with('/') || d.contains(':') || d.contains(',') {
        return Err(Error::invalid(
            attr,
            format!("{d:?} cannot be bind-mounted: it must be an absolute path without ':' or ','"),
        ));
    }
    Ok(())
}

/// Docker container names match `[a-zA-Z0-9][a-zA-Z0-9_.-]*`; the
/// container is `nixproc-<name>`, so `name` must consist of those
/// characters.
pub fn check_container_name(attr: &str, name: &str) -> Result<()> {
    check_process_name(attr, name)?;
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
    {
        return Err(Error::invalid(
            attr,
            format!(
                "{name:?} cannot be part of a docker container name (nixproc-<name>): only \
                 ASCII letters, digits, '_', '.' and '-' are allowed"
            ),
        ));
    }
    Ok(())
}

/// The container of a process.
pub fn container_name(name: &str) -> String {
    format!("nixproc-{name}")
}

/// `nixproc-base:<12 characters>`: the store hash of the image path when it
/// is a store path, else a digest of the path.
pub fn default_tag(image: &str) -> String {
    let base = image.rsplit('/').next().unwrap_or("");
    let hash = base.split('-').next().unwrap_or("");
    let short = if hash.len() == 32
        && hash
            .chars()
            .all(|c| c.is_ascii_digit() || c.is_ascii_lowercase())
    {
        hash[..12].to_string()
    } else {
        hex::encode(Sha256::digest(image.as_bytes()))[..12].to_string()
    };
    format!("{BASE_REPOSITORY}:{short}")
}

/// A docker image reference `[host[:port]/]path[:tag]`, as `docker tag`
/// accepts it (path components lowercase `[a-z0-9]` with `.`, `_`, `-`
/// separators; tag `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`). Digests are not
/// accepted: the activator tags the loaded image.
pub fn check_image_tag(attr: &str, tag: &str) -> Result<()> {
    let bad = |why: &str| {
        Err(Error::invalid(
            attr,
            format!("{tag:?} is not a docker image tag ({why}); e.g. \"myimage:1.0\""),
        ))
    };
    let (name, version) = match tag.rfind(':') {
        Some(i) if !tag[i..].contains('/') => (&tag[..i], Some(&tag[i + 1..])),
        _ => (tag, None),
    };
    if let Some(v) = version {
        let ok = !v.is_empty()
            && v.len() <= 128
            && !v.starts_with(['.', '-'])
            && v.chars()
                .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
        if !ok {
            return bad("the part after ':' must be 1 to 128 of [A-Za-z0-9_.-], not starting with '.' or '-'");
        }
    }
    let mut components: Vec<&str> = name.split('/').collect();
    if components.len() > 1 {
        let first = components[0];
        if first.contains(['.', ':']) || first == "localhost" {
            let (host, port) = match first.split_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (first, None),
            };
            let host_ok = !host.is_empty()
                && host
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || ".-".contains(c));
            let port_ok = match port {
                None => true,
                Some(p) => !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()),
            };
            if !host_ok || !port_ok {
                return bad("invalid registry host");
            }
            components.remove(0);
        }
    }
    for c in components {
        let ok = !c.is_empty()
            && c.starts_with(|ch: char| ch.is_ascii_lowercase() || ch.is_ascii_digit())
            && c.ends_with(|ch: char| ch.is_ascii_lowercase() || ch.is_ascii_digit())
            && c.chars()
                .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || "._-".contains(ch));
        if !ok {
            return bad(
                "repository names are lowercase letters and digits separated by '.', '_' or '-'",
            );
        }
    }
    Ok(())
}

/// A dependency as the Nix layer passes it: another container's name and
/// priority.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dependency {
    pub name: String,
    pub priority: u32,
}

fn parse_dependencies(a: &Args) -> Result<Vec<Dependency>> {
    dependency_sets(a, "a docker container package")?
        .into_iter()
        .map(|d| {
            check_container_name(&d.name_attr(), &d.name)?;
            let priority = d.number("priority", "priority")?;
            Ok(Dependency {
                name: d.name,
                priority,
            })
        })
        .collect()
}

/// Options nixproc sets itself: `--name` (the container is
/// `nixproc-<name>`).
const RESERVED_OPTIONS: &[&str] = &["name"];

/// Renders one `dockerCreateParameters` entry: `--<name>` (or `-<n>`)
/// followed by its value; `true`/`null`/no value is the flag alone,
/// `false` leaves it out, a list repeats the option for each element.
fn push_parameter(
    out: &mut Vec<String>,
    attr: &str,
    name: &str,
    value: Option<&Value>,
) -> Result<()> {
    let name_ok = !name.is_empty()
        && !name.starts_with('-')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !name_ok {
        return Err(Error::invalid(
            attr,
            format!(
                "{name:?} is not a docker create option name (letters, digits, '-' and '_', \
                 without the leading dashes)"
            ),
        ));
    }
    if RESERVED_OPTIONS.contains(&name) {
        return Err(Error::invalid(
            attr,
            format!("--{name} is set by nixproc (the container is nixproc-<name>)"),
        ));
    }
    let flag = option_flag(name);
    let mut scalar = |v: &Value, at: &str| -> Result<()> {
        match v {
            Value::Null | Value::Bool(true) => out.push(flag.clone()),
            Value::Bool(false) => {}
            other => {
                let s = string_like(at, other)?;
                check_line(at, &s)?;
                out.push(flag.clone());
                out.push(s);
            }
        }
        Ok(())
    };
    match value {
        None => scalar(&Value::Null, attr),
        Some(Value::List(items)) => {
            for (i, v) in items.iter().enumerate() {
                scalar(v, &format!("{attr}[{i}]"))?;
            }
            Ok(())
        }
        Some(v) => scalar(v, attr),
    }
}

/// `dockerCreateParameters`: a list of `{ name; value ? null; }` or a set
/// `name → value` (in name order).
fn parse_create_parameters(a: &Args) -> Result<Vec<String>> {
    const KEY: &str = "dockerCreateParameters";
    let mut out = Vec::new();
    match a.get(KEY) {
        None | Some(Value::Null) => {}
        Some(Value::Attrs(m)) => {
            for (name, v) in m {
                push_parameter(&mut out, &format!("{KEY}.{name}"), name, Some(v))?;
            }
        }
        Some(Value::List(items)) => {
            for (i, item) in items.iter().enumerate() {
                let attr = format!("{KEY}[{i}]");
                let e = Args::new(item, &attr)?;
                let name = e
                    .opt_str("name")
                    .map_err(|err| err.within(&attr))?
                    .ok_or_else(|| Error::Missing {
                        attr: format!("{attr}.name"),
                        why: "the docker create option, e.g. \"memory\" for --memory".into(),
                    })?;
                let value = e.get("value");
                e.finish().map_err(|err| err.within(&attr))?;
                push_parameter(&mut out, &format!("{attr}.value"), &name, value)?;
            }
        }
        Some(other) => {
            return Err(Error::WrongType {
                attr: KEY.into(),
                expected: "a list of { name; value; } sets or a set of option names to values"
                    .into(),
                found: other.type_name(),
            })
        }
    }
    Ok(out)
}

/// `cmd`: the container's argv (a list of words). The empty string of the
/// original's default means no command.
fn parse_cmd(a: &Args) -> Result<Vec<String>> {
    match a.get("cmd") {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Str(s)) if s.s.is_empty() => Ok(Vec::new()),
        Some(Value::List(_)) => {
            let words = a.string_list("cmd")?;
            if words.first().is_some_and(|w| w.is_empty()) {
                return Err(Error::invalid("cmd", "must start with a non-empty program"));
            }
            for (i, w) in words.iter().enumerate() {
                check_line(&format!("cmd[{i}]"), w)?;
            }
            Ok(words)
        }
        Some(other) => Err(Error::WrongType {
            attr: "cmd".into(),
            expected: "a list of words (the program and its arguments)".into(),
            found: other.type_name(),
        }),
    }
}

/// The user a command running the composition's foreground proxy switches
/// to (its `--user` option), for the manifest.
fn proxy_user(comp: &Composition, cmd: &[String]) -> Result<Option<String>> {
    let Some(prefix) = &comp.foreground_proxy else {
        return Ok(None);
    };
    if !cmd.starts_with(prefix) {
        return Ok(None);
    }
    let rest = &cmd[prefix.len()..];
    let end = rest.iter().position(|w| w == "--").unwrap_or(rest.len());
    let opts = &rest[..end];
    let escaped = opts.iter().any(|w| w == "--escaped");
    let Some(i) = opts.iter().position(|w| w == "--user") else {
        return Ok(None);
    };
    let Some(v) = opts.get(i + 1) else {
        return Err(Error::invalid(
            "cmd",
            "foreground proxy option --user has no value",
        ));
    };
    if escaped {
        c_unescape(v)
            .map(Some)
            .map_err(|e| Error::invalid("cmd", e))
    } else {
        Ok(Some(v.clone()))
    }
}

/// `builtins.createDockerContainer`: one container package.
pub fn create_docker_container(v: &Value) -> Result<PackageSpec> {
    let a = Args::new(v, "argument")?;
    let comp = parse_composition(&a)?;

    let name = a.opt_str("name")?.ok_or_else(|| Error::Missing {
        attr: "name".into(),
        why: "the process name (the container is nixproc-<name>)".into(),
    })?;
    check_container_name("name", &name)?;
    let description = a.opt_str("description")?.unwrap_or_else(|| name.clone());

    let (image, tag) = match opt_non_empty(&a, "dockerImage")? {
        Some(image) => {
            check_line("dockerImage", &image)?;
            let tag = a.opt_str("dockerImageTag")?.ok_or_else(|| Error::Missing {
                attr: "dockerImageTag".into(),
                why: "dockerImage is given, so say which tag to load it under and create the \
                      container from (e.g. \"myimage:latest\")"
                    .into(),
            })?;
            (image, tag)
        }
        None => {
            let image = comp.base_image.clone().ok_or_else(|| Error::Missing {
                attr: "dockerImage".into(),
                why: "no image tarball given and the composition has no dockerBaseImage".into(),
            })?;
            let tag = match a.opt_str("dockerImageTag")? {
                Some(t) => t,
                None => default_tag(&image),
            };
            (image, tag)
        }
    };
    check_image_tag("dockerImageTag", &tag)?;

    let cmd = parse_cmd(&a)?;
    if cmd.is_empty() && !a.has("dockerImage") {
        return Err(Error::Missing {
            attr: "cmd".into(),
            why: "the base image has no command of its own; give the program and its arguments"
                .into(),
        });
    }
    let user = parse_user(&a)?.filter(|_| !comp.force_disable_user_change);
    let environment = parse_environment(&a)?;
    let path = parse_path(&a)?;
    let working_dir = opt_non_empty(&a, "workingDir")?;
    if let Some(d) = &working_dir {
        check_line("workingDir", d)?;
        if !d.starts_with('/') {
            return Err(Error::invalid(
                "workingDir",
                format!("{d:?} must be an absolute path"),
            ));
        }
    }
    let use_host_nix_store = a.bool_or("useHostNixStore", false)?;
    let use_host_network = a.bool_or("useHostNetwork", false)?;
    let volumes = a.string_list("mapStateDirVolumes")?;
    for (i, d) in volumes.iter().enumerate() {
        check_host_dir(&format!("mapStateDirVolumes[{i}]"), d)?;
    }
    let map_host_accounts = a.bool_or("mapHostAccounts", user.is_some())?;
    let store_paths = a.string_list("storePaths")?;
    for (i, p) in store_paths.iter().enumerate() {
        check_line(&format!("storePaths[{i}]"), p)?;
    }
    let extra = parse_create_parameters(&a)?;
    let dependencies = parse_dependencies(&a)?;
    let creds = credentials::credential_files(
        a.attrs("credentials")?,
        &comp.ids,
        comp.force_disable_user_change,
    )?;
    // Consumed by the Nix layer / builder after the files are written.
    a.allow(&["postInstall"]);
    a.finish()?;

    let mut params: Vec<String> = Vec::new();
    let mut push = |flag: &str, value: String| {
        params.push(flag.to_string());
        params.push(value);
    };
    if use_host_nix_store {
        push("--volume", format!("{STORE_DIR}:{STORE_DIR}:ro"));
    }
    if use_host_network {
        push("--network", "host".into());
    }
    for d in &volumes {
        push("--volume", format!("{d}:{d}"));
    }
    if map_host_accounts {
        push("--volume", "/etc/passwd:/etc/passwd:ro".into());
        push("--volume", "/etc/group:/etc/group:ro".into());
    }
    if !path.is_empty() && !environment.contains_key("PATH") {
        let bins: Vec<String> = path
            .iter()
            .map(|p| format!("{}/bin", p.trim_end_matches('/')))
            .collect();
        let value = format!("PATH={}", bins.join(":"));
        check_line("path", &value)?;
        push("--env", value);
    }
    for (k, val) in &environment {
        check_line(&format!("environment.{k}"), val)?;
        push("--env", format!("{k}={val}"));
    }
    if let Some(d) = &working_dir {
        push("--workdir", d.clone());
    }
    if let Some(u) = &user {
        push("--user", u.clone());
    }
    params.extend(extra);

    let priority = dependencies
        .iter()
        .map(|d| d.priority)
        .max()
        .map_or(1, |m| m.saturating_add(1));

    let create_params = format!("{name}-docker-createparams");
    let file = |path: String, text: String| FileSpec {
        path,
        text,
        mode: FILE_MODE,
    };
    let mut files = vec![
        file(
            format!("{name}-docker-settings"),
            render::settings_text(&[
                ("dockerImage", &image),
                ("dockerImageTag", &tag),
                ("stateDir", &comp.state_dir),
            ]),
        ),
        file(create_params.clone(), render::lines_text(&params)),
        file(
            format!("{priority:02}-{name}-docker-priority"),
            String::new(),
        ),
    ];
    if !cmd.is_empty() {
        files.push(file(format!("{name}-docker-cmd"), render::lines_text(&cmd)));
    }
    if !store_paths.is_empty() {
        files.push(file(
            format!("{name}-storepaths"),
            render::lines_text(&store_paths),
        ));
    }
    files.extend(creds);

    let manifest_user = match proxy_user(&comp, &cmd)? {
        Some(u) => Some(u),
        None => user,
    };
    let manifest = InstanceEntry {
        key: String::new(),
        name: name.clone(),
        description,
        revision: String::new(),
        dependencies: dependencies.iter().map(|d| d.name.clone()).collect(),
        pid_file: None,
        log_file: None,
        user: manifest_user,
        backend: Backend::Docker {
            container: container_name(&name),
            image_tag: tag,
            image,
            create_params,
            priority,
        },
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

/// The path of the command file that belongs to a create-parameters file
/// (`<name>-docker-createparams` → `<name>-docker-cmd`), for the activator.
pub fn cmd_file_for(create_params: &str) -> Option<String> {
    create_params
        .strip_suffix("-docker-createparams")
        .map(|base| format!("{base}-docker-cmd"))
}
