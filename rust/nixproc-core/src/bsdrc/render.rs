//! The text of a generated rc.d script (reference §3.2.3).
//!
//! Values go through [`shell_escape`]; the values rc.subr `eval`s
//! (`command_args`, `<name>_chdir`) are first encoded for the way rc.subr
//! nests them ([`Quoting`]). Shell code the author wrote (`commands`) is
//! inserted as it is, never re-indented.

use super::{Composition, Derived, Script, BUILTIN_COMMANDS};
use crate::error::{Error, Result};
use crate::quote::{shell_escape, shell_join};

/// How rc.subr's `run_rc_command start` turns `command_args` and
/// `<name>_chdir` into the command it `eval`s:
///
/// ```text
/// _doit="${_chdir:+cd $_chdir && }$command $rc_flags $command_args"
/// user:        _doit="su -m $_user -c 'sh -c \"$_doit\"'"
/// nice only:   _doit="sh -c \"$_doit\""
/// nice:        _doit="nice -n $_nice $_doit"
/// eval "$_doit"
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quoting {
    /// `eval` parses the words once.
    Plain,
    /// Parsed inside `"…"`, then by `sh -c`.
    Nice,
    /// Inside `'…'` (so no `'` at all), then `"…"`, then `sh -c`.
    User,
}

/// Escapes what is special inside double quotes.
fn dq_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '\\' | '"' | '$' | '`') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

impl Quoting {
    /// The text to store in a variable rc.subr `eval`s, so that the final
    /// `sh` sees exactly `words`. `attr` names the value for the error.
    pub fn encode(self, attr: &str, words: &[String]) -> Result<String> {
        Ok(match self {
            Quoting::Plain => shell_join(words),
            Quoting::Nice => dq_escape(&shell_join(words)),
            Quoting::User => {
                if let Some(w) = words.iter().find(|w| w.contains('\'')) {
                    return Err(Error::invalid(
                        attr,
                        format!(
                            "{w:?} contains a single quote, which rc.subr cannot pass to a \
                             process that runs as another user (it runs su -m <user> -c \
                             'sh -c \"…\"'); drop the quote or the user"
                        ),
                    ));
                }
                let quoted: Vec<String> = words
                    .iter()
                    .map(|w| format!("\"{}\"", dq_escape(w)))
                    .collect();
                dq_escape(&quoted.join(" "))
            }
        })
    }
}

/// `var=<escaped value>`.
fn assign(out: &mut String, var: &str, value: &str) {
    out.push_str(var);
    out.push('=');
    out.push_str(&shell_escape(value));
    out.push('\n');
}

/// A shell function with `code` as its body (`:` when empty).
fn function(out: &mut String, name: &str, code: &str) {
    let code = code.trim_end_matches('\n');
    let code = if code.trim().is_empty() { ":" } else { code };
    out.push_str(&format!("\n{name}()\n{{\n{code}\n}}\n"));
}

/// Ends a block of lines with an empty line (when it had any).
fn section(out: &mut String, block: String) {
    if !block.is_empty() {
        out.push('\n');
        out.push_str(&block);
    }
}

/// The environment of §2.1: `PATH` from `path`, overlaid by `environment`.
fn environment(s: &Script) -> Vec<(String, String)> {
    let mut env = std::collections::BTreeMap::new();
    if !s.path.is_empty() {
        let bins: Vec<String> = s
            .path
            .iter()
            .map(|p| format!("{}/bin", p.trim_end_matches('/')))
            .collect();
        env.insert("PATH".to_string(), bins.join(":"));
    }
    env.extend(s.environment.clone());
    env.into_iter().collect()
}

/// The non-builtin commands: every `commands` entry rc.subr does not know,
/// plus `reload` when there is a command (rc.subr implements it with
/// `sig_reload`, but only as an extra command).
pub fn extra_commands(s: &Script) -> Vec<String> {
    let mut extra: Vec<String> = Vec::new();
    if s.command.is_some() {
        extra.push("reload".into());
    }
    for c in s.commands.keys() {
        if !BUILTIN_COMMANDS.contains(&c.as_str()) && !extra.contains(c) {
            extra.push(c.clone());
        }
    }
    extra
}

pub(super) fn script_text(comp: &Composition, s: &Script, d: &Derived) -> Result<String> {
    let var = &d.var;
    let mut out = format!("#!{}\n#\n", comp.shell);
    out.push_str(&format!("# PROVIDE: {}\n", s.provides.join(" ")));
    let mut require = s.dependencies.clone();
    require.extend(s.requires.iter().cloned());
    if !require.is_empty() {
        out.push_str(&format!("# REQUIRE: {}\n", require.join(" ")));
    }
    if !s.keywords.is_empty() {
        out.push_str(&format!("# KEYWORD: {}\n", s.keywords.join(" ")));
    }

    out.push_str(&format!("\n. {}\n\n", shell_escape(&comp.rc_subr)));
    out.push_str(&format!("name={var}\n"));
    if let Some(r) = &s.rcvar {
        out.push_str(&format!("rcvar={var}_{r}\n"));
    }
    assign(&mut out, "desc", &s.description);
    out.push_str("\nload_rc_config $name\n");

    let mut defaults = String::new();
    for (k, v) in &s.rcvars_defaults {
        defaults.push_str(&format!(": ${{{var}_{k}:={}}}\n", shell_escape(v)));
    }
    section(&mut out, defaults);
    if let Some(u) = &s.umask {
        section(&mut out, format!("umask {u}\n"));
    }

    // How rc.subr will nest the command: a daemon switches user through
    // `<name>_user`, a foreground process through `daemon -u`.
    let rc_user = d.user.as_ref().filter(|_| s.command_is_daemon);
    let quoting = if rc_user.is_some() {
        Quoting::User
    } else if s.nice.is_some() {
        Quoting::Nice
    } else {
        Quoting::Plain
    };

    let mut settings = String::new();
    if let Some(command) = &s.command {
        if s.command_is_daemon {
            assign(&mut settings, "command", command);
            let args = quoting.encode("commandArgs", &s.command_args)?;
            if !args.is_empty() {
                assign(&mut settings, "command_args", &args);
            }
        } else {
            let mut words = Vec::new();
            if let Some(p) = &d.pid_file {
                words.extend(["-p".to_string(), p.clone()]);
            }
            if let Some(l) = &d.log_file {
                words.extend(["-o".to_string(), l.clone()]);
            }
            if let Some(u) = &d.user {
                words.extend(["-u".to_string(), u.clone()]);
            }
            words.push("--".into());
            words.push(command.clone());
            words.extend(s.command_args.iter().cloned());
            assign(&mut settings, "command", &comp.daemon);
            assign(
                &mut settings,
                "command_args",
                &quoting.encode("commandArgs", &words)?,
            );
            // The PID file names the program, not daemon(8).
            assign(&mut settings, "procname", command);
        }
    }
    for (var_name, list) in [
        ("required_dirs", &s.required_dirs),
        ("required_files", &s.required_files),
        ("required_vars", &s.required_vars),
        ("required_modules", &s.required_modules),
    ] {
        if !list.is_empty() {
            assign(&mut settings, var_name, &list.join(" "));
        }
    }
    if let Some(p) = &d.pid_file {
        assign(&mut settings, "pidfile", p);
    }
    if s.reload_signal != "HUP" {
        assign(&mut settings, "sig_reload", &s.reload_signal);
    }
    if s.stop_signal != "TERM" {
        assign(&mut settings, "sig_stop", &s.stop_signal);
    }
    section(&mut out, settings);

    let mut per_name = String::new();
    if let Some(n) = s.nice {
        per_name.push_str(&format!("{var}_nice={n}\n"));
    }
    if let Some(dir) = &s.directory {
        let encoded = quoting.encode("directory", std::slice::from_ref(dir))?;
        assign(&mut per_name, &format!("{var}_chdir"), &encoded);
    }
    if let Some(u) = rc_user {
        assign(&mut per_name, &format!("{var}_user"), u);
    }
    if let Some(f) = &s.fib {
        assign(&mut per_name, &format!("{var}_fib"), f);
    }
    if !comp.force_disable_user_change {
        if let Some(l) = &s.limits {
            assign(&mut per_name, &format!("{var}_limits"), l);
        }
        if let Some(l) = &s.login_class {
            assign(&mut per_name, &format!("{var}_login_class"), l);
        }
    }
    if let Some(o) = &s.oom_protect {
        assign(&mut per_name, &format!("{var}_oomprotect"), o);
    }
    section(&mut out, per_name);

    let extra = extra_commands(s);
    for c in &extra {
        let implemented = s
            .commands
            .get(c)
            .is_some_and(|c| c.implementation.is_some());
        let builtin_reload = c == "reload" && s.command.is_some();
        if !(implemented || builtin_reload) {
            return Err(Error::Missing {
                attr: format!("commands.{c}.implementation"),
                why: format!("rc.subr has no implementation of its own for the command {c:?}"),
            });
        }
    }
    let mut hooks = String::new();
    if !extra.is_empty() {
        hooks.push_str(&format!("extra_commands=\"{}\"\n", extra.join(" ")));
    }
    let mut functions = String::new();
    for (cmd, c) in &s.commands {
        for (code, rc_var, function_name) in [
            (&c.pre, format!("{cmd}_precmd"), format!("{var}_pre{cmd}")),
            (
                &c.implementation,
                format!("{cmd}_cmd"),
                format!("{var}_{cmd}"),
            ),
            (
                &c.post,
                format!("{cmd}_postcmd"),
                format!("{var}_post{cmd}"),
            ),
        ] {
            if let Some(code) = code {
                hooks.push_str(&format!("{rc_var}={function_name}\n"));
                function(&mut functions, &function_name, code);
            }
        }
    }
    section(&mut out, hooks);

    let mut env = String::new();
    for (k, v) in environment(s) {
        let suffix = if k == "PATH" { ":\"$PATH\"" } else { "" };
        env.push_str(&format!("export {k}={}{suffix}\n", shell_escape(&v)));
    }
    section(&mut out, env);
    out.push_str(&functions);

    let args = if s.flexible_parameters {
        "\"$@\""
    } else {
        "\"$1\""
    };
    out.push_str(&format!("\nrun_rc_command {args}\n"));
    Ok(out)
}
