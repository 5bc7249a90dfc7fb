//! agnostic → bsdrc (reference §3.2.4): daemon preferred.
//!
//! * `command = daemon`, `commandIsDaemon = true`, `commandArgs =
//!   daemonArgs` when there is a daemon; else the foreground process, which
//!   the script runs under the composition's `daemon(8)`;
//! * `pidFile` always: [`ManagedProcess::daemon_pid_file`] (§2.1), so the
//!   script, `daemon -p` and the manifest agree on it;
//! * `initialize` becomes the start precmd (`commands.start.pre`), run by
//!   the rc script (as root in a system deployment) before the command;
//! * `description` becomes `desc` (the original dropped it).

use std::collections::BTreeMap;

use super::parse_composition;
use crate::agnostic::{common_args, put_opt, str_list, ManagedProcess};
use crate::args::Args;
use crate::error::Result;
use crate::value::{attrs, Value};

/// See the module documentation.
pub fn translate(p: &ManagedProcess, composition: &Value) -> Result<BTreeMap<String, Value>> {
    let a = Args::new(composition, "composition")?;
    let comp = parse_composition(&a)?;
    let (command, is_daemon, args) = match (&p.daemon, &p.foreground_process) {
        (Some(d), _) => (d, true, &p.daemon_args),
        (None, Some(f)) => (f, false, &p.foreground_process_args),
        (None, None) => unreachable!("agnostic::parse requires one of them"),
    };
    let mut out = common_args(p);
    out.insert("command".into(), Value::str(command));
    out.insert("commandIsDaemon".into(), Value::Bool(is_daemon));
    out.insert("commandArgs".into(), str_list(args));
    out.insert("description".into(), Value::str(&p.description));
    out.insert(
        "pidFile".into(),
        Value::str(p.daemon_pid_file(&comp.runtime_dir, &comp.tmp_dir, command)?),
    );
    if !p.initialize.is_empty() {
        out.insert(
            "commands".into(),
            attrs([("start", attrs([("pre", Value::str(&p.initialize))]))]),
        );
    }
    put_opt(&mut out, "instanceName", p.instance_name.as_deref());
    put_opt(&mut out, "directory", p.directory.as_deref());
    put_opt(&mut out, "umask", p.umask.as_deref());
    put_opt(&mut out, "nice", p.nice);
    put_opt(&mut out, "user", p.user.as_deref());
    Ok(out)
}
