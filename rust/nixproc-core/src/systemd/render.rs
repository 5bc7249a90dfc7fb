//! The text of a generated unit file (reference §3.4.3) and the escaping
//! of the values nixproc places in it.
//!
//! systemd reads a value in up to three passes, and each escape here
//! undoes exactly one of them (`systemd.unit(5)`, `systemd.service(5)`):
//!
//! 1. *specifier expansion* (`%i`, `%n`, …) on the raw value: a literal `%`
//!    is written `%%`;
//! 2. *unquoting* into words (`ExecStart=`, `Environment=`): double quotes
//!    with C escapes (`\\`, `\"`, `\n`, `\t`, `\r`, `\xHH`);
//! 3. *variable expansion* (`$VAR`, `${VAR}`) of `ExecStart=` arguments: a
//!    literal `$` is written `$$`. The executable path itself is not
//!    expanded, so its `$` stays as it is.
//!
//! A word is left bare when it consists of characters none of the passes
//! treat specially, so ordinary command lines stay readable.

use std::collections::BTreeMap;

use super::{Section, Service, SYSTEMD_DEFAULT_PATH};
use crate::error::{Error, Result};

/// Characters that, at the start of an `ExecStart=` command, are prefixes
/// (`-` ignore failure, `@` argv[0], `:` no expansion, `+` full privileges,
/// `!` no user change); systemd strips them *after* unquoting, so an
/// executable cannot start with one of them.
pub const EXEC_PREFIX_CHARS: &str = "-@:+!";

/// `%` → `%%`: the value reaches the process without specifier expansion.
pub fn escape_specifiers(s: &str) -> String {
    s.replace('%', "%%")
}

fn bare_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || ",._+:@/=-".contains(c)
}

/// Appends `s` inside double quotes with C escapes (pass 2), `%` doubled
/// (pass 1) and, when `dollar`, `$` doubled (pass 3).
fn push_quoted(out: &mut String, s: &str, dollar: bool) {
    out.push('"');
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '%' => out.push_str("%%"),
            '$' if dollar => out.push_str("$$"),
            c if c.is_ascii_control() => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// One argument of an `ExecStart=`-style command line, so that the process
/// receives `s` verbatim: bare when safe, else double-quoted and escaped;
/// `%` and `$` are doubled either way.
pub fn exec_word(s: &str) -> String {
    if !s.is_empty() && s.chars().all(bare_char) {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len() + 2);
    push_quoted(&mut out, s, true);
    out
}

/// The executable word: like [`exec_word`], but `$` stays single (systemd
/// does not expand variables in the executable path).
fn exec_program(s: &str) -> String {
    if !s.is_empty() && s.chars().all(bare_char) {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len() + 2);
    push_quoted(&mut out, s, false);
    out
}

/// A whole command line: `program` and `args`, each reaching `execve`
/// verbatim. `attr` names the executable for errors: it must be non-empty,
/// free of control characters and must not start with one of
/// [`EXEC_PREFIX_CHARS`] (a prefix the caller wants is prepended to the
/// result instead).
pub fn exec_command(attr: &str, program: &str, args: &[String]) -> Result<String> {
    if program.is_empty() || program.chars().any(|c| c.is_control()) {
        return Err(Error::invalid(
            attr,
            format!("{program:?} cannot be an executable (empty or control characters)"),
        ));
    }
    if program.starts_with(|c| EXEC_PREFIX_CHARS.contains(c)) {
        return Err(Error::invalid(
            attr,
            format!(
                "{program:?}: systemd reads a leading one of {EXEC_PREFIX_CHARS} as a command \
                 prefix; give an absolute path"
            ),
        ));
    }
    let mut words = vec![exec_program(program)];
    words.extend(args.iter().map(|a| exec_word(a)));
    Ok(words.join(" "))
}

/// systemd ignores (with a warning) environment values holding control
/// characters other than tab and newline.
pub fn check_environment_value(attr: &str, value: &str) -> Result<()> {
    if value
        .chars()
        .any(|c| c.is_control() && c != '\t' && c != '\n')
    {
        return Err(Error::invalid(
            attr,
            "systemd refuses environment values with control characters other than tab and \
             newline",
        ));
    }
    Ok(())
}

/// One `Environment=` operand: `"NAME=value"`, quoted and escaped so the
/// process sees `value` verbatim (no specifier expansion; systemd does no
/// variable expansion here).
pub fn environment_assignment(name: &str, value: &str) -> String {
    let mut out = String::with_capacity(name.len() + value.len() + 3);
    push_quoted(&mut out, &format!("{name}={value}"), false);
    out
}

/// The environment of §2.1 for a unit: `PATH` from `path` followed by
/// systemd's default search path, overlaid by `environment`.
pub fn full_environment(
    path: &[String],
    env: &BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    if !path.is_empty() {
        let mut dirs: Vec<String> = path
            .iter()
            .map(|p| format!("{}/bin", p.trim_end_matches('/')))
            .collect();
        dirs.push(SYSTEMD_DEFAULT_PATH.to_string());
        out.insert("PATH".to_string(), dirs.join(":"));
    }
    out.extend(env.iter().map(|(k, v)| (k.clone(), v.clone())));
    out
}

fn push_section(out: &mut String, name: &str, props: &Section, extra: &[String]) {
    if !out.is_empty() {
        out.push('\n');
    }
    out.push_str(&format!("[{name}]\n"));
    for (k, v) in props {
        out.push_str(&format!("{k}={v}\n"));
    }
    for line in extra {
        out.push_str(line);
        out.push('\n');
    }
}

/// The unit file: sections sorted, properties sorted; `Environment=` lines
/// end `[Service]`, `Wants=`/`After=` end `[Unit]` (each section created
/// when missing).
pub(super) fn unit_text(s: &Service) -> String {
    let env: Vec<String> = full_environment(&s.path, &s.environment)
        .iter()
        .map(|(k, v)| format!("Environment={}", environment_assignment(k, v)))
        .collect();
    let deps: Vec<String> = if s.dependencies.is_empty() {
        Vec::new()
    } else {
        let units: Vec<String> = s
            .dependencies
            .iter()
            .map(|d| format!("{d}.service"))
            .collect();
        let units = units.join(" ");
        vec![format!("Wants={units}"), format!("After={units}")]
    };
    let mut sections = s.sections.clone();
    if !env.is_empty() {
        sections.entry("Service".into()).or_default();
    }
    if !deps.is_empty() {
        sections.entry("Unit".into()).or_default();
    }
    let mut out = String::new();
    for (name, props) in &sections {
        let extra: &[String] = match name.as_str() {
            "Service" => &env,
            "Unit" => &deps,
            _ => &[],
        };
        push_section(&mut out, name, props, extra);
    }
    out
}
