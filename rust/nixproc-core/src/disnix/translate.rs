//! agnostic → disnix (reference §3.8.2): daemon preferred.
//!
//! The process becomes a wrapper script (`wrapper.text`, stored by
//! `createProcessScript` as `bin/<name>-process-wrapper`) that sets up the
//! environment and execs either the daemon (which forks and writes its PID
//! file) or — for a foreground-only process — the composition's
//! `daemonize` helper, which writes the PID file and sends the output to
//! `nixproc-<instanceName or name>.log` (reference §2.1 log rule).

use std::collections::BTreeMap;

use super::render::{wrapper_text, Exec, Wrapper};
use super::{parse_composition, Composition};
use crate::agnostic::ManagedProcess;
use crate::args::Args;
use crate::error::{Error, Result};
use crate::proxy::ProxyCall;
use crate::value::{attrs, Value};

/// The environment of §2.1: `PATH` from `path`, overlaid by `environment`.
fn environment(p: &ManagedProcess) -> BTreeMap<String, String> {
    let mut env = BTreeMap::new();
    if !p.path.is_empty() {
        let bins: Vec<String> = p
            .path
            .iter()
            .map(|d| format!("{}/bin", d.trim_end_matches('/')))
            .collect();
        env.insert("PATH".to_string(), bins.join(":"));
    }
    env.extend(p.environment.clone());
    env
}

/// The output log of a daemonized foreground process (reference §2.1):
/// `logDir` when no user switch happens, else `tmpDir`.
pub fn log_file(comp: &Composition, p: &ManagedProcess, user: Option<&str>) -> String {
    let dir = if user.is_none() {
        &comp.log_dir
    } else {
        &comp.tmp_dir
    };
    let base = p.instance_name.as_deref().unwrap_or(&p.name);
    format!("{}/nixproc-{base}.log", dir.trim_end_matches('/'))
}

/// agnostic → `createProcessScript` arguments (without composition keys).
pub fn translate(p: &ManagedProcess, composition: &Value) -> Result<BTreeMap<String, Value>> {
    let a = Args::new(composition, "composition")?;
    let comp = parse_composition(&a)?;
    let user = p
        .user
        .as_deref()
        .filter(|_| !comp.force_disable_user_change);
    let env = environment(p);

    let (program, args, is_daemon) = match (&p.daemon, &p.foreground_process) {
        (Some(d), _) => (d, &p.daemon_args, true),
        (None, Some(f)) => (f, &p.foreground_process_args, false),
        (None, None) => unreachable!("agnostic::parse requires one of them"),
    };
    let pid_file = p.daemon_pid_file(&comp.runtime_dir, &comp.tmp_dir, program)?;
    let log = (!is_daemon).then(|| log_file(&comp, p, user));
    let daemon_argv;
    let exec = if is_daemon {
        daemon_argv = match user {
            None => std::iter::once(program).chain(args).cloned().collect(),
            // A daemon that runs as another user: `<proxy> --user U --
            // <daemon> <args>` (the proxy switches users, then execs the
            // daemon, which forks). A shell script holds any value: never
            // `--escaped`.
            Some(u) => {
                let proxy = comp
                    .foreground_proxy
                    .as_deref()
                    .ok_or_else(|| Error::Missing {
                        attr: "foregroundProxy".into(),
                        why: format!(
                            "the daemon runs as user {u:?}, and nixproc's foreground proxy \
                             switches users"
                        ),
                    })?;
                let mut call = ProxyCall {
                    program: program.clone(),
                    args: args.clone(),
                    ..ProxyCall::default()
                };
                call.opt("--user", u);
                let prefix: Vec<String> = proxy.split_whitespace().map(String::from).collect();
                call.argv(&prefix, |_| false)
            }
        };
        Exec::Daemon {
            argv: &daemon_argv,
            nice: p.nice,
        }
    } else {
        Exec::Foreground {
            daemonize: comp.daemonize.as_deref().ok_or_else(|| Error::Missing {
                attr: "daemonize".into(),
                why: "a foreground-only process must be daemonized by it".into(),
            })?,
            program,
            args,
            nice: p.nice,
            user,
            pid_file: &pid_file,
            log_file: log.as_deref().unwrap_or_default(),
        }
    };
    let text = wrapper_text(&Wrapper {
        shell: &comp.shell,
        environment: &env,
        umask: p.umask.as_deref(),
        initialize: &p.initialize,
        directory: p.directory.as_deref(),
        exec,
    });

    let mut wrapper = vec![("text", Value::str(text))];
    if let Some(u) = user {
        wrapper.push(("user", Value::str(u)));
    }
    if let Some(l) = &log {
        wrapper.push(("logFile", Value::str(l)));
    }

    let mut out = BTreeMap::new();
    out.insert("name".into(), Value::str(&p.name));
    out.insert("description".into(), Value::str(&p.description));
    out.insert("dependencies".into(), Value::List(p.dependencies.clone()));
    if let Some(c) = &p.credentials {
        out.insert("credentials".into(), c.clone());
    }
    if !p.post_install.is_empty() {
        out.insert("postInstall".into(), Value::str(&p.post_install));
    }
    out.insert("pidFile".into(), Value::str(&pid_file));
    out.insert("wrapper".into(), attrs(wrapper));
    Ok(out)
}
