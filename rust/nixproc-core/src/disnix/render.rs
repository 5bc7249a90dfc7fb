//! The texts of a disnix component: the Dysnomia component file and the
//! process wrapper of the agnostic layer (reference §3.8.2).

use std::collections::BTreeMap;

use crate::quote::shell_escape;

/// `process=<path>` and `pidFile=<path>`, one per line, unquoted (Dysnomia
/// reads them with `grep`/`cut`; the values were checked to be one line).
pub(super) fn component_text(process: &str, pid_file: &str) -> String {
    format!("process={process}\npidFile={pid_file}\n")
}

/// What the wrapper finally `exec`s.
pub(super) enum Exec<'a> {
    /// A program that forks and writes its own PID file.
    Daemon {
        /// The program and its arguments, or — when the daemon runs as
        /// another user — the foreground proxy's command line that runs
        /// them (`<proxy> --user U -- <program> <args>`).
        argv: &'a [String],
        nice: Option<i64>,
    },
    /// A foreground program, daemonized by nixproc's helper.
    Foreground {
        daemonize: &'a str,
        program: &'a str,
        args: &'a [String],
        nice: Option<i64>,
        user: Option<&'a str>,
        pid_file: &'a str,
        log_file: &'a str,
    },
}

/// The settings of the wrapper, in the order they apply.
pub(super) struct Wrapper<'a> {
    pub shell: &'a str,
    /// `PATH` (without the inherited part) and the user's variables.
    pub environment: &'a BTreeMap<String, String>,
    pub umask: Option<&'a str>,
    pub initialize: &'a str,
    pub directory: Option<&'a str>,
    pub exec: Exec<'a>,
}

/// A command prefix from the composition (`<builder> daemonize`): each word
/// escaped on its own.
fn prefix_words(prefix: &str) -> impl Iterator<Item = String> + '_ {
    prefix.split_whitespace().map(shell_escape)
}

fn exec_line(e: &Exec) -> String {
    let mut w: Vec<String> = vec!["exec".into()];
    match e {
        Exec::Daemon { argv, nice } => {
            if let Some(n) = nice {
                w.extend(["nice".into(), "-n".into(), n.to_string()]);
            }
            w.extend(argv.iter().map(|a| shell_escape(a)));
        }
        Exec::Foreground {
            daemonize,
            program,
            args,
            nice,
            user,
            pid_file,
            log_file,
        } => {
            w.extend(prefix_words(daemonize));
            w.extend(["--output".into(), shell_escape(log_file)]);
            w.extend(["--pidfile".into(), shell_escape(pid_file)]);
            if let Some(u) = user {
                w.extend(["--user".into(), shell_escape(u)]);
            }
            if let Some(n) = nice {
                w.extend(["--nice".into(), n.to_string()]);
            }
            w.push("--".into());
            w.push(shell_escape(program));
            w.extend(args.iter().map(|a| shell_escape(a)));
        }
    }
    w.join(" ")
}

/// The wrapper script (`sh -e`): environment (sorted; `PATH` keeps the
/// inherited one at the end), umask, `initialize` (as the caller, usually
/// root), working directory, then `exec`.
pub(super) fn wrapper_text(w: &Wrapper) -> String {
    let mut out = format!("#!{} -e\n", w.shell);
    for (name, value) in w.environment {
        let suffix = if name == "PATH" { ":\"$PATH\"" } else { "" };
        out.push_str(&format!("export {name}={}{suffix}\n", shell_escape(value)));
    }
    if let Some(u) = w.umask {
        out.push_str(&format!("umask {u}\n"));
    }
    if !w.initialize.is_empty() {
        // Author's shell code, inserted as it is.
        out.push_str(w.initialize);
        if !w.initialize.ends_with('\n') {
            out.push('\n');
        }
    }
    if let Some(d) = w.directory {
        out.push_str(&format!("cd {}\n", shell_escape(d)));
    }
    out.push_str(&exec_line(&w.exec));
    out.push('\n');
    out
}
