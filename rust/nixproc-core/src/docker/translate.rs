//! agnostic → docker (reference §3.9.2): foreground preferred; every
//! container shares the host's store and network and mounts the state dir.
//!
//! * **Direct** — `cmd = [<foregroundProcess>, <args>…]` — when there is a
//!   foreground process, no `initialize`, no `nice`, no `umask`, and no
//!   value has a line break. docker itself applies the user (`--user`, with
//!   the host's account files mounted), the working directory
//!   (`--workdir`) and the environment (`--env`).
//! * **Foreground proxy** otherwise (the composition's `foregroundProxy`,
//!   the static `nixproc-builder foreground-proxy`, which lives in the
//!   mounted store): `<proxy> [--escaped] [--initialize S --shell SH]
//!   [--user U] [--nice N] [--directory D] [--umask M] [--setenv K=V]…
//!   [--wrap-daemon --pidfile P] -- <program> <args>`. The container starts
//!   as root, so `initialize` runs as root; then the proxy changes
//!   directory and umask, nice, user, and execs the foreground process or
//!   waits on the daemon's PID file. Values with line breaks go through
//!   `--escaped` (the argument files hold one argument per line);
//!   environment values with line breaks move to `--setenv`.
//!
//! `initialize` runs inside the container, which sees only the store and
//! the state dir of the host: the composition's `shell` must therefore be a
//! store path (with nixpkgs, `runtimeShell`); `/bin/sh` does not exist in
//! the base image, and that is an evaluation error rather than a container
//! that cannot start.

use std::collections::BTreeMap;

use super::{parse_composition, render::has_line_break, STORE_DIR};
use crate::agnostic::{common_args, put_opt, ManagedProcess};
use crate::args::Args;
use crate::error::{Error, Result};
use crate::quote::c_escape;
use crate::value::Value;

/// See the module documentation.
pub fn translate(p: &ManagedProcess, composition: &Value) -> Result<BTreeMap<String, Value>> {
    let a = Args::new(composition, "composition")?;
    let comp = parse_composition(&a)?;
    let user = p.user.clone().filter(|_| !comp.force_disable_user_change);

    let mut out = common_args(p);
    out.insert("description".into(), Value::str(&p.description));
    out.insert("useHostNixStore".into(), Value::Bool(true));
    out.insert("useHostNetwork".into(), Value::Bool(true));
    out.insert(
        "mapStateDirVolumes".into(),
        Value::from(vec![comp.state_dir.clone()]),
    );
    if user.is_some() {
        out.insert("mapHostAccounts".into(), Value::Bool(true));
    }

    let env_fits = p.environment.values().all(|v| !has_line_break(v));
    let dir_fits = !p.directory.as_deref().is_some_and(has_line_break);
    let fits = |words: &[String]| words.iter().all(|w| !has_line_break(w));

    if let Some(fg) = &p.foreground_process {
        let mut argv = vec![fg.clone()];
        argv.extend(p.foreground_process_args.iter().cloned());
        let plain = p.initialize.is_empty() && p.nice.is_none() && p.umask.is_none();
        if plain && env_fits && dir_fits && fits(&argv) {
            out.insert("cmd".into(), Value::from(argv));
            put_opt(&mut out, "user", user.as_deref());
            put_opt(&mut out, "workingDir", p.directory.as_deref());
            return Ok(out);
        }
    }

    let prefix = comp
        .foreground_proxy
        .clone()
        .ok_or_else(|| Error::Missing {
            attr: "foregroundProxy".into(),
            why: format!(
                "process {:?} needs the foreground proxy (it has an initialize script, a nice \
                 level, a umask, only a daemon, or values with line breaks)",
                p.name
            ),
        })?;
    let (program, args, wrap) = match (&p.foreground_process, &p.daemon) {
        (Some(f), _) => (f, &p.foreground_process_args, false),
        (None, Some(d)) => (d, &p.daemon_args, true),
        (None, None) => unreachable!("agnostic::parse requires one of them"),
    };

    let mut opts: Vec<(&str, Option<String>)> = Vec::new();
    if !p.initialize.is_empty() {
        if !comp.shell.starts_with(&format!("{STORE_DIR}/")) {
            return Err(Error::invalid(
                "shell",
                format!(
                    "process {:?} has an initialize script, which runs inside its container, \
                     but the shell {:?} is not in {STORE_DIR} (the only part of the host a \
                     container sees besides the state dir; the base image has no shell): pass \
                     pkgs so that runtimeShell is used, or a shell from the store",
                    p.name, comp.shell
                ),
            ));
        }
        opts.push(("--initialize", Some(p.initialize.clone())));
        opts.push(("--shell", Some(comp.shell.clone())));
    }
    if let Some(u) = &user {
        opts.push(("--user", Some(u.clone())));
    }
    if let Some(n) = p.nice {
        opts.push(("--nice", Some(n.to_string())));
    }
    if let Some(d) = &p.directory {
        opts.push(("--directory", Some(d.clone())));
    }
    if let Some(m) = &p.umask {
        opts.push(("--umask", Some(m.clone())));
    }
    if !env_fits {
        out.remove("environment");
        for (k, v) in &p.environment {
            opts.push(("--setenv", Some(format!("{k}={v}"))));
        }
    }
    if wrap {
        opts.push(("--wrap-daemon", None));
        opts.push((
            "--pidfile",
            Some(p.daemon_pid_file(&comp.runtime_dir, &comp.tmp_dir, program)?),
        ));
    }

    let escaped = opts
        .iter()
        .filter_map(|(_, v)| v.as_deref())
        .chain(std::iter::once(program.as_str()))
        .chain(args.iter().map(String::as_str))
        .any(has_line_break);
    let enc = |s: &str| if escaped { c_escape(s) } else { s.to_string() };

    let mut argv = prefix;
    if escaped {
        argv.push("--escaped".into());
    }
    for (flag, v) in &opts {
        argv.push((*flag).to_string());
        if let Some(v) = v {
            argv.push(enc(v));
        }
    }
    argv.push("--".into());
    argv.push(enc(program));
    argv.extend(args.iter().map(|a| enc(a)));
    out.insert("cmd".into(), Value::from(argv));
    Ok(out)
}
