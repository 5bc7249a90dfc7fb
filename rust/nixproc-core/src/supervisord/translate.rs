//! agnostic → supervisord (reference §3.3.4): foreground preferred.
//!
//! * **Direct** — `command = <foregroundProcess> <args>` — when there is a
//!   foreground process, no `initialize`, no `nice`, and every value fits
//!   supervisord's format (arguments without line breaks, environment
//!   values and `directory` passing [`env_value_problem`] /
//!   [`plain_problem`]). supervisord itself applies `user=`, `directory=`
//!   and `umask=`.
//! * **Foreground proxy** otherwise (the composition's `foregroundProxy`,
//!   contract in `.briefs/proxy-contract.md`):
//!   `<proxy> [--escaped] [--initialize S --shell SH] [--user U] [--nice N]
//!   [--directory D] [--umask M] [--setenv K=V]… [--wrap-daemon --pidfile P]
//!   -- <program> <args>`. `initialize` runs first (as root when
//!   supervisord is root), then the proxy changes directory and umask (so
//!   `initialize` may create the directory — which is why they are proxy
//!   options here, not supervisord keys), nice, user, and execs the
//!   foreground process or waits on the daemon's PID file. The
//!   environment moves to `--setenv` only when some value cannot be an
//!   `environment=` value; `--escaped` (every value through `c_escape`) is
//!   used only when some value has a line break.
//!
//! Output goes to `<logDir or tmpDir>/nixproc-<instanceName or name>.log`
//! (reference §2.1's daemon-output rule) with stderr redirected into it.

use std::collections::BTreeMap;

use super::{parse_composition, plain_problem, render};
use crate::agnostic::{common_args, put_opt, ManagedProcess};
use crate::args::Args;
use crate::error::Result;
use crate::proxy::{join, require_proxy, ProxyCall, ProxySetup};
use crate::value::Value;

use super::env_value_problem;

/// See the module documentation.
pub fn translate(p: &ManagedProcess, composition: &Value) -> Result<BTreeMap<String, Value>> {
    let a = Args::new(composition, "composition")?;
    let comp = parse_composition(&a)?;
    let user = p.user.clone().filter(|_| !comp.force_disable_user_change);

    let mut out = common_args(p);
    out.insert("description".into(), Value::str(&p.description));
    put_opt(&mut out, "instanceName", p.instance_name.as_deref());

    let log_dir = if user.is_none() {
        &comp.log_dir
    } else {
        &comp.tmp_dir
    };
    let log_name = p.instance_name.as_deref().unwrap_or(&p.name);
    out.insert(
        "stdout_logfile".into(),
        Value::str(join(log_dir, &format!("nixproc-{log_name}.log"))),
    );
    out.insert("redirect_stderr".into(), Value::Bool(true));

    let env_fits = p
        .environment
        .values()
        .all(|v| env_value_problem(v).is_none());
    let dir_fits = p.directory.as_deref().and_then(plain_problem).is_none();
    let fits = |words: &[String]| words.iter().all(|w| !render::has_line_break(w));

    if let Some(fg) = &p.foreground_process {
        let mut argv = vec![fg.clone()];
        argv.extend(p.foreground_process_args.iter().cloned());
        if p.initialize.is_empty() && p.nice.is_none() && env_fits && dir_fits && fits(&argv) {
            out.insert("command".into(), Value::from(argv));
            put_opt(&mut out, "user", user.as_deref());
            put_opt(&mut out, "directory", p.directory.as_deref());
            put_opt(&mut out, "umask", p.umask.as_deref());
            return Ok(out);
        }
    }

    let prefix = require_proxy(
        comp.foreground_proxy.as_deref(),
        &p.name,
        "it has an initialize script, a nice level, only a daemon, or values supervisord's \
         format cannot hold",
    )?;
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
    let argv = call.argv(prefix, render::has_line_break);
    out.insert("command".into(), Value::from(argv));
    Ok(out)
}
