//! What the launchd and cygrunsrv translations share: their composition
//! (directories, shell, the foreground proxy command prefix) and the
//! command line of the foreground proxy (`<builder> foreground-proxy`,
//! contract in `.briefs/proxy-contract.md`, reference §2.2).
//!
//! The supervisord translation builds the same command line inline; this
//! is the general form (any backend decides which values need `--escaped`).

use crate::args::Args;
use crate::error::{Error, Result};
use crate::fields::non_empty;
use crate::quote::c_escape;
use crate::value::Value;

/// The composition keys a translation reads.
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

/// Reads the composition (defaults `/var/run`, `/var/log`, `/tmp`, `false`,
/// `/bin/sh`, no proxy); the other composition keys are marked known.
pub fn parse_composition(composition: &Value, other_keys: &[&str]) -> Result<TranslateComposition> {
    let a = Args::new(composition, "composition")?;
    let dir = |key: &str, default: &str| one_line(key, a.str_or(key, default)?);
    let foreground_proxy = match a.get("foregroundProxy") {
        None => None,
        Some(Value::Str(s)) => Some(s.s.split_ascii_whitespace().map(String::from).collect()),
        Some(Value::List(_)) => Some(a.string_list("foregroundProxy")?),
        Some(other) => {
            return Err(Error::WrongType {
                attr: "foregroundProxy".into(),
                expected: "a command prefix (a string of words or a list of words)".into(),
                found: other.type_name(),
            })
        }
    };
    if let Some(words) = &foreground_proxy {
        let bad = |w: &String| w.is_empty() || w.chars().any(|c| c.is_control());
        if words.is_empty() || words.iter().any(bad) {
            return Err(Error::invalid(
                "foregroundProxy",
                "must be a non-empty command prefix such as \"<nixproc-builder> foreground-proxy\"",
            ));
        }
    }
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

/// The proxy prefix, or an error saying why `process` needs it.
pub fn require_proxy<'c>(
    comp: &'c TranslateComposition,
    process: &str,
    why: &str,
) -> Result<&'c [String]> {
    comp.foreground_proxy
        .as_deref()
        .ok_or_else(|| Error::Missing {
            attr: "foregroundProxy".into(),
            why: format!("process {process:?} needs the foreground proxy ({why})"),
        })
}
