//! The foreground proxy (`<builder> foreground-proxy`, contract in
//! `.briefs/proxy-contract.md`, reference §2.2) as the translations of the
//! agnostic layer use it: reading the composition's `foregroundProxy`
//! prefix, and building one call of it ([`ProxyCall`]).
//!
//! * launchd and cygrunsrv share their whole composition
//!   ([`parse_composition`]); supervisord and docker read only
//!   `foregroundProxy` and `shell` here ([`parse_foreground_proxy`],
//!   [`parse_shell`]), each with the check its own format needs.
//! * supervisord, docker, launchd and cygrunsrv build the call of a
//!   process with [`ProxyCall::for_process`]; disnix builds its `--user`
//!   call with [`ProxyCall`] directly. Each backend decides which values
//!   need `--escaped`.
//! * s6-rc's `nice` goes through the proxy as one link of an execline
//!   chain (`<proxy> --nice N --`, the program on the next line), which is
//!   not a whole call: it stays in `s6rc::translate`.

use crate::agnostic::ManagedProcess;
use crate::args::Args;
use crate::error::{Error, Result};
use crate::fields::non_empty;
use crate::quote::c_escape;
use crate::value::Value;

/// The composition keys a launchd or cygrunsrv translation reads.
#[derive(Debug, Clone, PartialEq)]
pub struct TranslateComposition {
    pub runtime_dir: String,
    pub log_dir: String,
    pub tmp_dir: String,
    pub force_disable_user_change: bool,
    /// The interpreter of `initialize` (`--shell` of the proxy).
    pub shell: String,
    /// `[<builder>, "foreground-proxy"]`; only needed when a process has to
    /// go through the proxy.
    pub foreground_proxy: Option<Vec<String>>,
}

fn one_line(key: &str, v: String) -> Result<String> {
    let v = non_empty(key, v)?;
    if v.chars().any(|c| c.is_control()) {
        return Err(Error::invalid(
            key,
            format!("{v:?} must be on one line, without control characters"),
        ));
    }
    Ok(v)
}

/// Reads `foregroundProxy`: a command prefix given as a string of words
/// (split at ASCII whitespace) or a list of words. Absent: `None`. An empty
/// prefix, an empty word or a word for which `bad_word` is true (what the
/// target format cannot hold) is an error.
pub fn parse_foreground_proxy(
    a: &Args,
    bad_word: impl Fn(&str) -> bool,
) -> Result<Option<Vec<String>>> {
    let words = match a.get("foregroundProxy") {
        None => return Ok(None),
        Some(Value::Str(s)) => s.s.split_ascii_whitespace().map(String::from).collect(),
        Some(Value::List(_)) => a.string_list("foregroundProxy")?,
        Some(other) => {
            return Err(Error::WrongType {
                attr: "foregroundProxy".into(),
                expected: "a command prefix (a string of words or a list of words)".into(),
                found: other.type_name(),
            })
        }
    };
    if words.is_empty() || words.iter().any(|w| w.is_empty() || bad_word(w)) {
        return Err(Error::invalid(
            "foregroundProxy",
            "must be a non-empty command prefix such as \"<nixproc-builder> foreground-proxy\"",
        ));
    }
    Ok(Some(words))
}

/// Reads `shell` (default `/bin/sh`), the proxy's `--shell`: non-empty, and
/// not a value for which `bad` is true (what the target format cannot
/// hold).
pub fn parse_shell(a: &Args, bad: impl Fn(&str) -> bool) -> Result<String> {
    let shell = a.str_or("shell", "/bin/sh")?;
    if shell.is_empty() || bad(&shell) {
        return Err(Error::invalid(
            "shell",
            "must be a non-empty interpreter path on one line",
        ));
    }
    Ok(shell)
}

/// Reads the composition of launchd and cygrunsrv (defaults `/var/run`,
/// `/var/log`, `/tmp`, `false`, `/bin/sh`, no proxy); the other composition
/// keys are marked known.
pub fn parse_composition(composition: &Value, other_keys: &[&str]) -> Result<TranslateComposition> {
    let a = Args::new(composition, "composition")?;
    let dir = |key: &str, default: &str| one_line(key, a.str_or(key, default)?);
    let foreground_proxy = parse_foreground_proxy(&a, |w| w.chars().any(|c| c.is_control()))?;
    let comp = TranslateComposition {
        runtime_dir: dir("runtimeDir", "/var/run")?,
        log_dir: dir("logDir", "/var/log")?,
        tmp_dir: dir("tmpDir", "/tmp")?,
        force_disable_user_change: a.bool_or("forceDisableUserChange", false)?,
        shell: one_line("shell", a.str_or("shell", "/bin/sh")?)?,
        foreground_proxy,
    };
    a.allow(other_keys);
    a.finish()?;
    Ok(comp)
}

/// `dir/file` without a doubled slash.
pub fn join(dir: &str, file: &str) -> String {
    format!("{}/{file}", dir.trim_end_matches('/'))
}

/// The proxy prefix, or an error saying why `process` needs it.
pub fn require_proxy<'c>(
    foreground_proxy: Option<&'c [String]>,
    process: &str,
    why: &str,
) -> Result<&'c [String]> {
    foreground_proxy.ok_or_else(|| Error::Missing {
        attr: "foregroundProxy".into(),
        why: format!("process {process:?} needs the foreground proxy ({why})"),
    })
}

/// What a translation passes to the proxy besides the process itself
/// (see [`ProxyCall::for_process`]).
#[derive(Debug, Clone, Copy)]
pub struct ProxySetup<'a> {
    /// `--shell` of `--initialize`.
    pub shell: &'a str,
    /// `--user`; `None` when the backend switches users itself or not at
    /// all.
    pub user: Option<&'a str>,
    /// `--nice`; `None` when the backend applies the nice level itself.
    pub nice: Option<i64>,
    /// Whether the environment goes on the command line (`--setenv`).
    pub setenv: bool,
    /// For the PID file of a daemon (reference §2.1).
    pub runtime_dir: &'a str,
    pub tmp_dir: &'a str,
}

/// One call of the foreground proxy.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProxyCall {
    /// `(flag, value)` in order, e.g. `("--user", Some("web"))`,
    /// `("--wrap-daemon", None)`.
    pub options: Vec<(&'static str, Option<String>)>,
    pub program: String,
    pub args: Vec<String>,
}

impl ProxyCall {
    /// The call that runs agnostic process `p`: its foreground process
    /// (exec'd), else its daemon (`--wrap-daemon --pidfile`, the PID file of
    /// reference §2.1). Options in this order: `--initialize S --shell SH`
    /// (when there is an `initialize`), `--user`, `--nice`, `--directory`,
    /// `--umask`, `--setenv K=V`… (when `setup.setenv`), `--wrap-daemon
    /// --pidfile P`.
    pub fn for_process(p: &ManagedProcess, setup: &ProxySetup) -> Result<ProxyCall> {
        let (program, args, wrap) = match (&p.foreground_process, &p.daemon) {
            (Some(f), _) => (f, &p.foreground_process_args, false),
            (None, Some(d)) => (d, &p.daemon_args, true),
            (None, None) => unreachable!("agnostic::parse requires one of them"),
        };
        let mut call = ProxyCall {
            program: program.clone(),
            args: args.clone(),
            ..ProxyCall::default()
        };
        if !p.initialize.is_empty() {
            call.opt("--initialize", &p.initialize);
            call.opt("--shell", setup.shell);
        }
        if let Some(u) = setup.user {
            call.opt("--user", u);
        }
        if let Some(n) = setup.nice {
            call.opt("--nice", n.to_string());
        }
        if let Some(d) = &p.directory {
            call.opt("--directory", d);
        }
        if let Some(m) = &p.umask {
            call.opt("--umask", m);
        }
        if setup.setenv {
            for (k, v) in &p.environment {
                call.opt("--setenv", format!("{k}={v}"));
            }
        }
        if wrap {
            call.flag("--wrap-daemon");
            call.opt(
                "--pidfile",
                p.daemon_pid_file(setup.runtime_dir, setup.tmp_dir, program)?,
            );
        }
        Ok(call)
    }

    pub fn opt(&mut self, flag: &'static str, value: impl Into<String>) {
        self.options.push((flag, Some(value.into())));
    }

    pub fn flag(&mut self, flag: &'static str) {
        self.options.push((flag, None));
    }

    /// The whole command line: `prefix [--escaped] options… -- program
    /// args…`. When some value makes `needs_escape` true, `--escaped` is
    /// added and every value goes through [`c_escape`] (the proxy decodes
    /// them), so the target format only ever holds printable text.
    pub fn argv(&self, prefix: &[String], needs_escape: impl Fn(&str) -> bool) -> Vec<String> {
        let escaped = self
            .options
            .iter()
            .filter_map(|(_, v)| v.as_deref())
            .chain(std::iter::once(self.program.as_str()))
            .chain(self.args.iter().map(String::as_str))
            .any(needs_escape);
        let enc = |s: &str| if escaped { c_escape(s) } else { s.to_string() };
        let mut argv = prefix.to_vec();
        if escaped {
            argv.push("--escaped".into());
        }
        for (flag, v) in &self.options {
            argv.push((*flag).to_string());
            if let Some(v) = v {
                argv.push(enc(v));
            }
        }
        argv.push("--".into());
        argv.push(enc(&self.program));
        argv.extend(self.args.iter().map(|a| enc(a)));
        argv
    }
}
