//! agnostic → cygrunsrv (reference §3.6.2): foreground preferred.
//!
//! * **Direct** — `path` = the foreground process — when there is one and
//!   no `initialize`, `nice`, `directory` or `umask` (cygrunsrv has no
//!   settings for them), and every value fits a line of the parameters
//!   file.
//! * **Foreground proxy** otherwise: it runs `initialize`, then applies
//!   `directory`, `umask` and `nice` (the original's proxy ignored
//!   directory and umask here, defect 21) and execs the process — or, for a
//!   daemon-only process, starts it and stays in the foreground until the
//!   PID in its PID file (reference §2.1) is gone. Values with line breaks
//!   or other control characters reach it `--escaped` (environment values
//!   as `--setenv`), so the parameters file stays one argument per line.
//!
//! Output and errors go to `<logDir>/nixproc-<instanceName or name>.log`
//! (`--stdout`/`--stderr`), the same file as on the other backends
//! (defect 32), not cygrunsrv's `/var/log/<service>.log`. The description
//! becomes `--desc` (line breaks as spaces). `dependencies` become `--dep`.
//!
//! **Users.** cygrunsrv runs a service as a *Windows* account (Cygwin maps
//! Windows users and groups; defect 29): nixproc can neither create the
//! POSIX users and groups of `credentials` nor switch to `user` there. Both
//! are therefore errors — unless `forceDisableUserChange` is set, where
//! every backend leaves users alone, and both are dropped (the service runs
//! as the account cygrunsrv installs it for, LocalSystem by default). A
//! Windows account can still be chosen with `overrides.cygrunsrv.user`.

use std::collections::BTreeMap;

use super::COMPOSITION_KEYS;
use crate::agnostic::ManagedProcess;
use crate::error::{Error, Result};
use crate::proxy::{join, parse_composition, require_proxy, ProxyCall, ProxySetup};
use crate::value::Value;

fn fits(s: &str) -> bool {
    !s.chars().any(char::is_control)
}

/// Whether `credentials` declares any user or group.
fn declares_accounts(c: &Value) -> bool {
    let Value::Attrs(m) = c else { return true };
    ["users", "groups"].iter().any(|k| match m.get(*k) {
        None | Some(Value::Null) => false,
        Some(Value::Attrs(a)) => !a.is_empty(),
        Some(_) => true,
    })
}

/// See the module documentation.
pub fn translate(p: &ManagedProcess, composition: &Value) -> Result<BTreeMap<String, Value>> {
    let comp = parse_composition(composition, COMPOSITION_KEYS)?;
    if !comp.force_disable_user_change {
        if p.credentials.as_ref().is_some_and(declares_accounts) {
            return Err(Error::invalid(
                "credentials",
                "cygrunsrv services run as Windows accounts (Cygwin maps Windows users and \
                 groups), so nixproc cannot create these users and groups; build with \
                 forceDisableUserChange = true to leave them out",
            ));
        }
        if let Some(u) = &p.user {
            return Err(Error::invalid(
                "user",
                format!(
                    "cygrunsrv services run as Windows accounts (Cygwin maps Windows users), so \
                     nixproc cannot switch to {u:?}; build with forceDisableUserChange = true, \
                     or name a Windows account in overrides.cygrunsrv.user"
                ),
            ));
        }
    }

    let mut out = BTreeMap::new();
    out.insert("name".into(), Value::str(&p.name));
    let desc: String = p
        .description
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    out.insert("description".into(), Value::str(desc));
    out.insert("dependencies".into(), Value::List(p.dependencies.clone()));
    if !p.post_install.is_empty() {
        out.insert("postInstall".into(), Value::str(&p.post_install));
    }
    if !p.path.is_empty() {
        out.insert(
            "environmentPath".into(),
            Value::List(p.path.iter().map(Value::str).collect()),
        );
    }
    let log_name = p.instance_name.as_deref().unwrap_or(&p.name);
    let log = join(&comp.log_dir, &format!("nixproc-{log_name}.log"));
    out.insert("stdout".into(), Value::str(&log));
    out.insert("stderr".into(), Value::str(&log));

    let env_fits = p.environment.values().all(|v| fits(v));
    if env_fits && !p.environment.is_empty() {
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
    let plain = p.initialize.is_empty()
        && p.nice.is_none()
        && p.directory.is_none()
        && p.umask.is_none()
        && env_fits;

    if let Some(fg) = &p.foreground_process {
        let args = &p.foreground_process_args;
        if plain && fits(fg) && args.iter().all(|a| fits(a)) {
            out.insert("path".into(), Value::str(fg));
            if !args.is_empty() {
                out.insert("args".into(), Value::from(args.clone()));
            }
            return Ok(out);
        }
    }

    let prefix = require_proxy(
        comp.foreground_proxy.as_deref(),
        &p.name,
        "it has an initialize script, a nice level, a directory or umask, only a daemon, or \
         values with line breaks",
    )?;
    // No `--user`: a user is an error above unless forceDisableUserChange
    // drops it.
    let call = ProxyCall::for_process(
        p,
        &ProxySetup {
            shell: &comp.shell,
            user: None,
            nice: p.nice,
            setenv: !env_fits,
            runtime_dir: &comp.runtime_dir,
            tmp_dir: &comp.tmp_dir,
        },
    )?;
    let mut argv = call.argv(prefix, |s| !fits(s));
    let exe = argv.remove(0);
    out.insert("path".into(), Value::str(exe));
    out.insert("args".into(), Value::from(argv));
    Ok(out)
}
