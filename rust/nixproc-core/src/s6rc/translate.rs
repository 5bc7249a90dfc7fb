//! agnostic → s6-rc (reference §3.7.2, with its defects fixed).
//!
//! Foreground preferred: a longrun whose `run` is an execline script; a
//! daemon-only process becomes a oneshot with `up`/`down` command lines.
//! The common prologue, each line only when it applies:
//!
//! ```text
//! importas -D <default> nixproc_inherited_path PATH   (when PATH is set)
//! export NAME "value"  …                              (environment, PATH first composed)
//! if { <shell> -ec "<initialize>" }                   (as root; failure fails the start)
//! execline-umask <umask>
//! execline-cd <directory>
//! <foregroundProxy> --nice N --                       (s6/execline have no nice)
//! s6-setuidgid <user>                                 (unless forceDisableUserChange)
//! fdmove -c 2 1
//! <program> <args…>
//! ```
//!
//! `nice` comes before the user switch so that a negative value (which
//! needs root) works for processes that drop privileges.

use std::collections::BTreeMap;

use super::execline::{Script, Word};
use super::{parse_composition, Composition};
use crate::agnostic::{put_opt, ManagedProcess};
use crate::args::Args;
use crate::error::{Error, Result};
use crate::value::Value;

/// The substitution variable holding the inherited PATH.
pub const INHERITED_PATH_VAR: &str = "nixproc_inherited_path";
/// PATH used when the supervisor's environment has none.
pub const DEFAULT_INHERITED_PATH: &str =
    "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

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

/// The prologue and the command: the words of a run script (without the
/// interpreter line) or of an up command line.
pub fn command_script(
    comp: &Composition,
    p: &ManagedProcess,
    program: &str,
    args: &[String],
) -> Result<String> {
    use Word::{Raw, Value as V};
    let mut s = Script::new();
    let env = environment(p);
    if env.contains_key("PATH") {
        s.line(&[
            V(&comp.execline_bin("importas")),
            Raw("-D"),
            V(DEFAULT_INHERITED_PATH),
            Raw(INHERITED_PATH_VAR),
            Raw("PATH"),
        ]);
        s.substitutes(INHERITED_PATH_VAR);
    }
    let export = comp.execline_bin("export");
    for (name, value) in &env {
        if name == "PATH" {
            // The value is protected; the reference appended raw is what
            // importas substitutes.
            let quoted =
                super::execline::quote(&super::execline::protect(value, &[INHERITED_PATH_VAR]));
            let open = quoted.strip_suffix('"').unwrap_or(&quoted);
            let with_inherited = format!("{open}:${{{INHERITED_PATH_VAR}}}\"");
            s.line(&[V(&export), V(name), Raw(&with_inherited)]);
        } else {
            s.line(&[V(&export), V(name), V(value)]);
        }
    }
    if !p.initialize.is_empty() {
        s.line(&[
            V(&comp.execline_bin("if")),
            Raw("{"),
            V(&comp.shell),
            Raw("-ec"),
            V(&p.initialize),
            Raw("}"),
        ]);
    }
    if let Some(u) = &p.umask {
        s.line(&[V(&comp.execline_bin("execline-umask")), V(u)]);
    }
    if let Some(d) = &p.directory {
        s.line(&[V(&comp.execline_bin("execline-cd")), V(d)]);
    }
    if let Some(n) = p.nice {
        let proxy = comp
            .foreground_proxy
            .as_deref()
            .ok_or_else(|| Error::Missing {
                attr: "foregroundProxy".into(),
                why: "nice is set, and s6 and execline cannot change the niceness: nixproc's \
                  foreground proxy does"
                    .into(),
            })?;
        let mut w: Vec<Word> = proxy.split_whitespace().map(V).collect();
        let n = n.to_string();
        w.extend([Raw("--nice"), V(&n), Raw("--")]);
        s.line(&w);
    }
    if let Some(u) = p
        .user
        .as_deref()
        .filter(|_| !comp.force_disable_user_change)
    {
        s.line(&[V(&comp.s6_bin("s6-setuidgid")), V(u)]);
    }
    s.line(&[
        V(&comp.execline_bin("fdmove")),
        Raw("-c"),
        Raw("2"),
        Raw("1"),
    ]);
    let mut w = vec![V(program)];
    w.extend(args.iter().map(|a| V(a)));
    s.line(&w);
    Ok(s.render())
}

/// The `down` command line of a daemon: kill the PID in `pid_file`.
pub fn down_script(comp: &Composition, pid_file: &str) -> String {
    use Word::{Raw, Value as V};
    let mut s = Script::new();
    s.line(&[
        V(&comp.shell),
        Raw("-ec"),
        V("read -r pid < \"$1\" && kill -TERM \"$pid\""),
        V("nixproc-s6-down"),
        V(pid_file),
    ]);
    s.render()
}

/// agnostic → `createS6RCService` arguments (without composition keys).
pub fn translate(p: &ManagedProcess, composition: &Value) -> Result<BTreeMap<String, Value>> {
    let a = Args::new(composition, "composition")?;
    let comp = parse_composition(&a)?;
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
    put_opt(&mut out, "user", p.user.as_deref());
    match (&p.foreground_process, &p.daemon) {
        (Some(fg), _) => {
            let body = command_script(&comp, p, fg, &p.foreground_process_args)?;
            out.insert("type".into(), Value::str("longrun"));
            out.insert(
                "run".into(),
                Value::str(format!("{}{body}", comp.shebang())),
            );
        }
        (None, Some(daemon)) => {
            let pid_file = p.daemon_pid_file(&comp.runtime_dir, &comp.tmp_dir, daemon)?;
            out.insert("type".into(), Value::str("oneshot"));
            out.insert(
                "up".into(),
                Value::str(command_script(&comp, p, daemon, &p.daemon_args)?),
            );
            out.insert("down".into(), Value::str(down_script(&comp, &pid_file)));
            out.insert("pidFile".into(), Value::str(pid_file));
        }
        (None, None) => unreachable!("agnostic::parse requires one of them"),
    }
    Ok(out)
}
