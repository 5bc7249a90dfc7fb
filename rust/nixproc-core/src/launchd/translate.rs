//! agnostic → launchd (reference §3.5.4): foreground preferred.
//!
//! * **Direct** — `Program` = the foreground process — when there is one,
//!   no `initialize`, and every value fits an XML plist. launchd itself
//!   applies `WorkingDirectory`, `Umask`, `Nice` and `UserName` (with the
//!   user's groups: `InitGroups` defaults to true).
//! * **Foreground proxy** otherwise (the composition's `foregroundProxy`):
//!   `initialize` runs first, as root when launchd is root, then the proxy
//!   changes directory and umask (so `initialize` may create the directory),
//!   switches to the user, and execs the foreground process — or, for a
//!   daemon-only process, starts it and stays in the foreground until the
//!   PID in its PID file (reference §2.1) is gone (`--wrap-daemon`).
//!   Values XML cannot hold (control characters) go through the proxy
//!   with `--escaped`; such environment values as `--setenv`.
//!
//! Always: `ProgramArguments` is the whole argv, `argv[0]` included (launchd
//! passes it as given); `Nice` (launchd applies it to the proxy and the
//! process alike) and `Umask` are `<integer>`s; `RunAtLoad = true` (the
//! job starts when loaded, i.e. at boot for a system daemon); `KeepAlive =
//! { SuccessfulExit = false; }` restarts a job that failed or was killed,
//! but not one that exited with status 0 (like supervisord's `autorestart =
//! unexpected` and systemd's `Restart=on-failure`; `launchctl unload`
//! stops it for good); both can be changed with `overrides.launchd`.
//! Output and errors go to `<logDir>/nixproc-<instanceName or
//! name>.log` (`<tmpDir>/…` when the process runs as another user, §2.1).
//!
//! `dependencies` cannot be expressed in a plist: they are passed on to the
//! manifest, and the activator loads jobs in dependency order (and unloads
//! them in reverse). No warning: nothing is lost.

use std::collections::BTreeMap;

use super::render::xml_problem;
use super::COMPOSITION_KEYS;
use crate::agnostic::{common_args, ManagedProcess};
use crate::error::Result;
use crate::proxy::{join, parse_composition, require_proxy, ProxyCall, ProxySetup};
use crate::value::{attrs, Value};

fn fits(s: &str) -> bool {
    xml_problem(s).is_none()
}

/// See the module documentation.
pub fn translate(p: &ManagedProcess, composition: &Value) -> Result<BTreeMap<String, Value>> {
    let comp = parse_composition(composition, COMPOSITION_KEYS)?;
    let user = p.user.clone().filter(|_| !comp.force_disable_user_change);

    let mut out = common_args(p);
    out.remove("environment");
    out.insert("description".into(), Value::str(&p.description));

    let log_dir = if user.is_none() {
        &comp.log_dir
    } else {
        &comp.tmp_dir
    };
    let log_name = p.instance_name.as_deref().unwrap_or(&p.name);
    let log = join(log_dir, &format!("nixproc-{log_name}.log"));
    out.insert("StandardOutPath".into(), Value::str(&log));
    out.insert("StandardErrorPath".into(), Value::str(&log));
    out.insert("RunAtLoad".into(), Value::Bool(true));
    out.insert(
        "KeepAlive".into(),
        attrs([("SuccessfulExit", Value::Bool(false))]),
    );
    if let Some(n) = p.nice {
        out.insert("Nice".into(), Value::Int(n));
    }

    let env_fits = p.environment.values().all(|v| fits(v));
    let env_value = || {
        Value::Attrs(
            p.environment
                .iter()
                .map(|(k, v)| (k.clone(), Value::str(v)))
                .collect(),
        )
    };
    let umask_int = |m: &str| i64::from_str_radix(m, 8).expect("parse_umask checked the digits");

    if let Some(fg) = &p.foreground_process {
        let mut argv = vec![fg.clone()];
        argv.extend(p.foreground_process_args.iter().cloned());
        let dir_fits = p.directory.as_deref().is_none_or(fits);
        if p.initialize.is_empty() && env_fits && dir_fits && argv.iter().all(|w| fits(w)) {
            out.insert("Program".into(), Value::str(fg));
            out.insert("ProgramArguments".into(), Value::from(argv));
            if !p.environment.is_empty() {
                out.insert("EnvironmentVariables".into(), env_value());
            }
            if let Some(d) = &p.directory {
                out.insert("WorkingDirectory".into(), Value::str(d));
            }
            if let Some(m) = &p.umask {
                out.insert("Umask".into(), Value::Int(umask_int(m)));
            }
            if let Some(u) = &user {
                out.insert("UserName".into(), Value::str(u));
            }
            return Ok(out);
        }
    }

    let prefix = require_proxy(
        comp.foreground_proxy.as_deref(),
        &p.name,
        "it has an initialize script, only a daemon, or values an XML property list cannot hold",
    )?;
    if env_fits && !p.environment.is_empty() {
        out.insert("EnvironmentVariables".into(), env_value());
    }
    // launchd applies `Nice` to the proxy and the process alike.
    let call = ProxyCall::for_process(
        p,
        &ProxySetup {
            shell: &comp.shell,
            user: user.as_deref(),
            nice: None,
            setenv: !env_fits,
            runtime_dir: &comp.runtime_dir,
            tmp_dir: &comp.tmp_dir,
        },
    )?;
    let argv = call.argv(prefix, |s| !fits(s));
    out.insert("Program".into(), Value::str(&argv[0]));
    out.insert("ProgramArguments".into(), Value::from(argv));
    Ok(out)
}
