//! agnostic → sysvinit (reference §3.1.7): daemon preferred.

use std::collections::BTreeMap;

use crate::agnostic::{common_args, put_opt, str_list, ManagedProcess};
use crate::error::Result;
use crate::value::Value;

/// The daemon when there is one (`start_daemon` + PID file), else the
/// foreground process, daemonized by nixproc's helper.
pub fn translate(p: &ManagedProcess, _composition: &Value) -> Result<BTreeMap<String, Value>> {
    let mut out = common_args(p);
    let (process, is_daemon, args) = match (&p.daemon, &p.foreground_process) {
        (Some(d), _) => (d, true, &p.daemon_args),
        (None, Some(f)) => (f, false, &p.foreground_process_args),
        (None, None) => unreachable!("agnostic::parse requires one of them"),
    };
    out.insert("process".into(), Value::str(process));
    out.insert("processIsDaemon".into(), Value::Bool(is_daemon));
    out.insert("args".into(), str_list(args));
    out.insert("description".into(), Value::str(&p.description));
    if !p.initialize.is_empty() {
        out.insert("initialize".into(), Value::str(&p.initialize));
    }
    put_opt(&mut out, "instanceName", p.instance_name.as_deref());
    put_opt(&mut out, "pidFile", p.pid_file.as_deref());
    put_opt(&mut out, "directory", p.directory.as_deref());
    put_opt(&mut out, "umask", p.umask.as_deref());
    put_opt(&mut out, "nice", p.nice);
    put_opt(&mut out, "user", p.user.as_deref());
    Ok(out)
}
