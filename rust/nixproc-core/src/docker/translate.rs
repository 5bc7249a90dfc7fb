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
use crate::proxy::{require_proxy, ProxyCall, ProxySetup};
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

    let prefix = require_proxy(
        comp.foreground_proxy.as_deref(),
        &p.name,
        "it has an initialize script, a nice level, a umask, only a daemon, or values with line \
         breaks",
    )?;
    if !p.initialize.is_empty() && !comp.shell.starts_with(&format!("{STORE_DIR}/")) {
        return Err(Error::invalid(
            "shell",
            format!(
                "process {:?} has an initialize script, which runs inside its container, but \
                 the shell {:?} is not in {STORE_DIR} (the only part of the host a container \
                 sees besides the state dir; the base image has no shell): pass pkgs so that \
                 runtimeShell is used, or a shell from the store",
                p.name, comp.shell
            ),
        ));
    }
    if !env_fits {
        out.remove("environment");
    }
    let call = ProxyCall::for_process(
        p,
        &ProxySetup {
            shell: &comp.shell,
            user: user.as_deref(),
            nice: p.nice,
            setenv: !env_fits,
            runtime_dir: &comp.runtime_dir,
            tmp_dir: &comp.tmp_dir,
        },
    )?;
    let argv = call.argv(prefix, has_line_break);
    out.insert("cmd".into(), Value::from(argv));
    Ok(out)
}
