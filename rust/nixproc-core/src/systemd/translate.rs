//! agnostic → systemd (reference §3.4.4): foreground preferred.

use std::collections::BTreeMap;

use super::render::{escape_specifiers, exec_command};
use crate::agnostic::{common_args, ManagedProcess};
use crate::args::Args;
use crate::error::{Error, Result};
use crate::fields::non_empty;
use crate::value::{attrs, Value};

/// `dir/file` without a doubled slash.
fn join(dir: &str, file: &str) -> String {
    format!("{}/{file}", dir.trim_end_matches('/'))
}

/// The foreground process when there is one (`Type=simple`), else the
/// daemon (`Type=forking` with the §2.1 PID file). `initialize` runs as
/// `ExecStartPre=` through the composition's `shell`, with full privileges
/// (`+`) when the process itself runs as another user. `name` stays
/// unprefixed: the generator adds the prefix. Line breaks in the
/// description become spaces in `Description=`.
pub fn translate(p: &ManagedProcess, composition: &Value) -> Result<BTreeMap<String, Value>> {
    let c = Args::new(composition, "composition")?;
    let force_disable_user_change = c.bool_or("forceDisableUserChange", false)?;
    let runtime_dir = non_empty("runtimeDir", c.str_or("runtimeDir", "/var/run")?)?;
    let tmp_dir = non_empty("tmpDir", c.str_or("tmpDir", "/tmp")?)?;
    let shell = non_empty("shell", c.str_or("shell", "/bin/sh")?)?;
    let user = p.user.as_ref().filter(|_| !force_disable_user_change);

    // Description= is one line of free text: line breaks become spaces (the
    // manifest keeps the description as given).
    let one_line = p
        .description
        .replace("\r\n", " ")
        .replace(['\n', '\r'], " ");
    if one_line.ends_with('\\') {
        return Err(Error::invalid(
            "description",
            "cannot end with a backslash (systemd would join the next line of the unit file \
             to its Description=)",
        ));
    }

    let mut service: Vec<(&str, Value)> = Vec::new();
    match (&p.foreground_process, &p.daemon) {
        (Some(f), _) => {
            let line = exec_command("foregroundProcess", f, &p.foreground_process_args)?;
            service.push(("ExecStart", line.into()));
            service.push(("Type", "simple".into()));
        }
        (None, Some(d)) => {
            let line = exec_command("daemon", d, &p.daemon_args)?;
            service.push(("ExecStart", line.into()));
            service.push(("Type", "forking".into()));
            let pid_files_dir = p.pid_files_dir(&runtime_dir, &tmp_dir);
            let pid_file = p.pid_file.clone().or_else(|| {
                p.instance_name
                    .as_ref()
                    .map(|i| join(pid_files_dir, &format!("{i}.pid")))
            });
            if let Some(pf) = pid_file {
                service.push(("PIDFile", escape_specifiers(&pf).into()));
            }
        }
        (None, None) => unreachable!("agnostic::parse requires one of them"),
    }
    if !p.initialize.is_empty() {
        let line = exec_command("shell", &shell, &["-ec".into(), p.initialize.clone()])?;
        let prefix = if user.is_some() { "+" } else { "" };
        service.push(("ExecStartPre", format!("{prefix}{line}").into()));
    }
    if let Some(d) = &p.directory {
        service.push(("WorkingDirectory", escape_specifiers(d).into()));
    }
    if let Some(u) = &p.umask {
        service.push(("UMask", u.as_str().into()));
    }
    if let Some(n) = p.nice {
        service.push(("Nice", Value::Int(n)));
    }
    if let Some(u) = user {
        service.push(("User", escape_specifiers(u).into()));
    }

    let mut out = common_args(p);
    out.insert("description".into(), Value::str(&p.description));
    out.insert(
        "Unit".into(),
        attrs([("Description", escape_specifiers(&one_line).into())]),
    );
    out.insert("Service".into(), attrs(service));
    Ok(out)
}
