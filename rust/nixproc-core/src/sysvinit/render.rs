//! The text of a generated init script (reference §3.1.3, §3.1.4).
//!
//! Values (paths, arguments, users, environment values, messages) always go
//! through [`shell_escape`]; shell code the author wrote (`initialize`,
//! `instructions`, `activities`, …) and the composition's command names are
//! inserted as they are. Lines of code are never re-indented: only the first
//! line of each piece is indented, so multi-line quoted strings and
//! here-documents reach the shell unchanged.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::{Composition, Derived, Script};
use crate::error::Result;

/// Activities that come first in the `case` statement, in this order.
const LEADING: [&str; 5] = ["start", "stop", "reload", "restart", "status"];

const INDENT_LABEL: &str = "  ";
const INDENT_BODY: &str = "    ";

/// Appends the concatenation of `parts` quoted exactly as
/// [`crate::quote::shell_escape`] quotes it, without building the string or
/// the quoted copy first.
fn push_escaped_parts<'p, I>(out: &mut String, parts: I)
where
    I: Iterator<Item = &'p str> + Clone,
{
    let safe = |c: char| c.is_ascii_alphanumeric() || ",._+:@%/-".contains(c);
    let mut empty = true;
    let mut bare = true;
    for p in parts.clone() {
        empty &= p.is_empty();
        bare &= p.chars().all(safe);
    }
    if !empty && bare {
        parts.for_each(|p| out.push_str(p));
        return;
    }
    out.push('\'');
    for p in parts {
        let mut rest = p;
        while let Some(i) = rest.find('\'') {
            out.push_str(&rest[..i]);
            out.push_str("'\\''");
            rest = &rest[i + 1..];
        }
        out.push_str(rest);
    }
    out.push('\'');
}

/// Appends `s` quoted as [`crate::quote::shell_escape`] quotes it.
fn push_escaped(out: &mut String, s: &str) {
    push_escaped_parts(out, std::iter::once(s));
}

/// Appends `" " + quoted word`.
fn push_word(out: &mut String, s: &str) {
    out.push(' ');
    push_escaped(out, s);
}

/// Where the shell code of a converted instruction comes from.
enum Code<'s> {
    /// `initialize`, `cd <directory>`, the start command.
    Start(&'s str),
    Stop(&'s str),
    Reload(&'s str),
    /// An `instructions.<name>.instruction`, as written.
    Piece(&'s str),
}

/// The body of one activity.
enum Body<'s> {
    /// Converted instruction: log message, code, evaluation of its status.
    Instruction { verb: &'s str, code: Code<'s> },
    /// The status command of the process.
    Status(&'s str),
    /// `restartActivity`, or `"$0" stop` / `sleep 1` / `"$0" start`.
    Restart,
    /// Shell code of `activities`, as written.
    Raw(&'s str),
    /// The default `*` branch; its text depends on the final activity set.
    Usage,
}

/// `<command> [-p <pidFile>] <process> [extra…]` for stop/reload/status,
/// one body line.
fn push_pid_command(
    out: &mut String,
    command: &str,
    pid_file: Option<&str>,
    process: &str,
    extra: Option<&str>,
) {
    out.push_str(INDENT_BODY);
    out.push_str(command);
    if let Some(p) = pid_file {
        out.push_str(" -p");
        push_word(out, p);
    }
    push_word(out, process);
    if let Some(e) = extra {
        push_word(out, e);
    }
    out.push('\n');
}

/// The command that starts `process` (§3.1.3 start activity), one body line.
fn push_start_command(
    out: &mut String,
    comp: &Composition,
    s: &Script,
    d: &Derived,
    process: &str,
) {
    out.push_str(INDENT_BODY);
    if s.process_is_daemon {
        out.push_str(&comp.start_daemon);
        if let Some(p) = &d.pid_file {
            out.push_str(" -f -p");
            push_word(out, p);
        }
        if let Some(n) = s.nice {
            let _ = write!(out, " -n {n}");
        }
        if let Some(u) = &d.user {
            out.push_str(" -u");
            push_word(out, u);
        }
    } else {
        // parse_script guarantees the daemonizer for foreground processes.
        out.push_str(comp.start_process_as_daemon.as_deref().unwrap_or_default());
        if let Some(log) = &d.log_file {
            out.push_str(" --output");
            push_word(out, log);
        }
        if let Some(p) = &d.pid_file {
            out.push_str(" --pidfile");
            push_word(out, p);
        }
        if let Some(u) = &d.user {
            out.push_str(" --user");
            push_word(out, u);
        }
        if let Some(n) = s.nice {
            let _ = write!(out, " --nice {n}");
        }
        out.push_str(" --");
    }
    push_word(out, process);
    for a in &s.args {
        push_word(out, a);
    }
    out.push('\n');
}

/// The final activities (§3.1.3): converted instructions < default
/// activities < `activities`, minus `removeActivities`.
fn activities<'s>(s: &'s Script) -> BTreeMap<&'s str, Body<'s>> {
    let mut all = BTreeMap::new();
    if let Some(process) = &s.process {
        for (key, verb, code) in [
            ("start", "Starting", Code::Start(process)),
            ("stop", "Stopping", Code::Stop(process)),
            ("reload", "Reloading", Code::Reload(process)),
        ] {
            all.insert(key, Body::Instruction { verb, code });
        }
    }
    for (key, i) in &s.instructions {
        all.insert(
            key.as_str(),
            Body::Instruction {
                verb: &i.activity,
                code: Code::Piece(&i.instruction),
            },
        );
    }
    if let Some(process) = &s.process {
        all.insert("status", Body::Status(process));
        all.insert("restart", Body::Restart);
    }
    all.insert("*", Body::Usage);
    for (key, code) in &s.activities {
        all.insert(key.as_str(), Body::Raw(code));
    }
    for r in &s.remove_activities {
        all.remove(r.as_str());
    }
    all
}

/// Appends the lines of one activity body.
fn push_body(
    out: &mut String,
    comp: &Composition,
    s: &Script,
    d: &Derived,
    body: &Body,
    names: &str,
) {
    let pid = d.pid_file.as_deref();
    match body {
        Body::Instruction { verb, code } => {
            out.push_str(INDENT_BODY);
            out.push_str("log_info_msg ");
            push_escaped_parts(out, [*verb, " ", s.description.as_str(), "..."].into_iter());
            out.push('\n');
            match code {
                Code::Start(process) => {
                    push_piece(out, INDENT_BODY, &s.initialize);
                    if let Some(dir) = &s.directory {
                        out.push_str(INDENT_BODY);
                        out.push_str("cd ");
                        push_escaped(out, dir);
                        out.push('\n');
                    }
                    push_start_command(out, comp, s, d, process);
                }
                Code::Stop(process) => push_pid_command(out, &comp.stop_daemon, pid, process, None),
                Code::Reload(process) => push_pid_command(
                    out,
                    &comp.reload_daemon,
                    pid,
                    process,
                    Some(&s.reload_signal),
                ),
                Code::Piece(code) => push_piece(out, INDENT_BODY, code),
            }
            push_piece(out, INDENT_BODY, &comp.evaluate_command);
        }
        Body::Status(process) => push_pid_command(out, &comp.status_command, pid, process, None),
        Body::Restart => match &comp.restart_activity {
            Some(code) => push_piece(out, INDENT_BODY, code),
            None => {
                for line in ["\"$0\" stop", "sleep 1", "\"$0\" start"] {
                    push_piece(out, INDENT_BODY, line);
                }
            }
        },
        Body::Raw(code) => push_piece(out, INDENT_BODY, code),
        Body::Usage => {
            // Names are [A-Za-z0-9_-]+, safe inside double quotes.
            let _ = writeln!(out, "{INDENT_BODY}echo \"Usage: $0 {{{names}}}\"");
            push_piece(out, INDENT_BODY, "exit 1");
        }
    }
}

/// Appends `piece` indented by `indent` (first line only), without its
/// trailing newlines; empty pieces are dropped.
fn push_piece(out: &mut String, indent: &str, piece: &str) {
    let piece = piece.trim_end_matches('\n');
    if piece.is_empty() {
        return;
    }
    out.push_str(indent);
    out.push_str(piece);
    out.push('\n');
}

/// Appends a blank line and the section `write` appends, with the section's
/// trailing newlines reduced to one; nothing at all when it is empty.
fn push_section(out: &mut String, write: impl FnOnce(&mut String)) {
    out.push('\n');
    let start = out.len();
    write(out);
    let end = out[start..].trim_end_matches('\n').len();
    out.truncate(start + end);
    if end == 0 {
        out.pop();
    } else {
        out.push('\n');
    }
}

fn push_runlevels(out: &mut String, label: &str, levels: &[u32]) {
    if levels.is_empty() {
        return;
    }
    out.push_str(label);
    for (i, l) in levels.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        let _ = write!(out, "{l}");
    }
    out.push('\n');
}

/// The settings section: `umask`, then the environment of §2.1 (`PATH`
/// from `path`, overlaid by `environment`) in name order.
fn push_settings(out: &mut String, s: &Script) {
    if let Some(u) = &s.umask {
        let _ = writeln!(out, "umask {u}");
    }
    let push_path = |out: &mut String| {
        out.push_str("export PATH=");
        let parts = s.path.iter().enumerate().flat_map(|(i, p)| {
            [
                if i > 0 { ":" } else { "" },
                p.trim_end_matches('/'),
                "/bin",
            ]
        });
        push_escaped_parts(out, parts);
        out.push_str(":\"$PATH\"\n");
    };
    let mut path_pending = !s.path.is_empty() && !s.environment.contains_key("PATH");
    for (name, value) in &s.environment {
        if path_pending && name.as_str() > "PATH" {
            push_path(out);
            path_pending = false;
        }
        out.push_str("export ");
        out.push_str(name);
        out.push('=');
        push_escaped(out, value);
        if name == "PATH" {
            out.push_str(":\"$PATH\"");
        }
        out.push('\n');
    }
    if path_pending {
        push_path(out);
    }
}

pub(super) fn script_text(comp: &Composition, s: &Script, d: &Derived) -> Result<String> {
    let code_len = comp.initial_instructions.len()
        + s.global_instructions.len()
        + s.initialize.len()
        + s.instructions
            .values()
            .map(|i| i.instruction.len())
            .sum::<usize>()
        + s.activities.values().map(String::len).sum::<usize>()
        + s.environment.values().map(String::len).sum::<usize>();
    let mut out = String::with_capacity(1536 + code_len + 4 * s.description.len());
    let _ = write!(out, "#!{}\n\n", comp.shell);

    out.push_str("### BEGIN INIT INFO\n");
    let _ = writeln!(out, "# Provides:          {}", s.name);
    push_runlevels(&mut out, "# Default-Start:     ", &s.start_runlevels);
    push_runlevels(&mut out, "# Default-Stop:      ", &s.stop_runlevels);
    if !s.dependencies.is_empty() {
        for label in ["# Should-Start:      ", "# Should-Stop:       "] {
            out.push_str(label);
            for (i, dep) in s.dependencies.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                out.push_str(&dep.name);
            }
            out.push('\n');
        }
    }
    // LSB continuation lines ("#" + two spaces) keep a multi-line
    // description inside the comment.
    out.push_str("# Description:       ");
    for (i, line) in s.description.split('\n').enumerate() {
        if i > 0 {
            out.push_str("\n#  ");
        }
        out.push_str(line);
    }
    out.push('\n');
    out.push_str("### END INIT INFO\n");

    push_section(&mut out, |o| o.push_str(&comp.initial_instructions));
    push_section(&mut out, |o| o.push_str(&s.global_instructions));
    push_section(&mut out, |o| push_settings(o, s));

    let mut all = activities(s);
    out.push_str("\ncase \"$1\" in\n");
    let star = all.remove("*");
    let leading: Vec<(&str, Body)> = LEADING
        .iter()
        .filter_map(|k| all.remove(k).map(|b| (*k, b)))
        .collect();
    let mut names = String::new();
    let ordered = leading.into_iter().chain(all).chain(star.map(|b| ("*", b)));
    for (i, (name, body)) in ordered.enumerate() {
        if i > 0 {
            out.push('\n');
        }
        let _ = writeln!(out, "{INDENT_LABEL}{name})");
        push_body(&mut out, comp, s, d, &body, &names);
        out.push_str(INDENT_BODY);
        out.push_str(";;\n");
        if name != "*" {
            if !names.is_empty() {
                names.push('|');
            }
            names.push_str(name);
        }
    }
    out.push_str("esac\n");
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quote::shell_escape;

    #[test]
    fn escaping_matches_shell_escape() {
        let cases = [
            "",
            "plain/path-1.2_+:@%,",
            "it's",
            "'",
            "''",
            "a b",
            "$(id)",
            "`id`",
            "line\nbreak",
            "50%",
            "a;b",
            "back\\slash",
            "ünïcødé",
            "'\"$(x)`y`\n%;\\ é'",
        ];
        for c in cases {
            let mut out = String::from("x");
            push_escaped(&mut out, c);
            assert_eq!(out, format!("x{}", shell_escape(c)), "{c:?}");
            // Split anywhere on a char boundary: same as the whole string.
            for (i, _) in c.char_indices() {
                let mut out = String::new();
                push_escaped_parts(&mut out, [&c[..i], "", &c[i..]].into_iter());
                assert_eq!(out, shell_escape(c), "{c:?} split at {i}");
            }
        }
        let mut out = String::new();
        push_escaped_parts(&mut out, ["", ""].into_iter());
        assert_eq!(out, "''");
    }

    #[test]
    fn sections_keep_one_trailing_newline_and_drop_when_empty() {
        let mut out = String::from("x\n");
        push_section(&mut out, |o| o.push_str("\n\n"));
        assert_eq!(out, "x\n");
        push_section(&mut out, |o| o.push_str("a\n\nb\n\n\n"));
        assert_eq!(out, "x\n\na\n\nb\n");
        push_section(&mut out, |o| o.push('c'));
        assert_eq!(out, "x\n\na\n\nb\n\nc\n");
    }
}
