//! The text of a generated init script (reference §3.1.3, §3.1.4).
//!
//! Values (paths, arguments, users, environment values, messages) always go
//! through [`shell_escape`]; shell code the author wrote (`initialize`,
//! `instructions`, `activities`, …) and the composition's command names are
//! inserted as they are. Lines of code are never re-indented: only the first
//! line of each piece is indented, so multi-line quoted strings and
//! here-documents reach the shell unchanged.

use std::collections::BTreeMap;

use super::{Composition, Derived, Script};
use crate::error::Result;
use crate::quote::shell_escape;

/// Activities that come first in the `case` statement, in this order.
const LEADING: [&str; 5] = ["start", "stop", "reload", "restart", "status"];

const INDENT_LABEL: &str = "  ";
const INDENT_BODY: &str = "    ";

/// The body of one activity.
enum Body {
    /// Pieces of shell code, one (possibly multi-line) piece each.
    Code(Vec<String>),
    /// The default `*` branch; its text depends on the final activity set.
    Usage,
}

fn words(ws: impl IntoIterator<Item = String>) -> String {
    ws.into_iter().collect::<Vec<_>>().join(" ")
}

/// `<command> [-p <pidFile>] <process> [extra…]` for stop/reload/status.
fn pid_command(command: &str, pid_file: Option<&str>, process: &str, extra: &[&str]) -> String {
    let mut w = vec![command.to_string()];
    if let Some(p) = pid_file {
        w.push("-p".into());
        w.push(shell_escape(p));
    }
    w.push(shell_escape(process));
    w.extend(extra.iter().map(|e| shell_escape(e)));
    words(w)
}

/// The command that starts `process` (§3.1.3 start activity).
fn start_command(comp: &Composition, s: &Script, d: &Derived, process: &str) -> String {
    let mut w = Vec::new();
    if s.process_is_daemon {
        w.push(comp.start_daemon.clone());
        if let Some(p) = &d.pid_file {
            w.extend(["-f".into(), "-p".into(), shell_escape(p)]);
        }
        if let Some(n) = s.nice {
            w.extend(["-n".into(), n.to_string()]);
        }
        if let Some(u) = &d.user {
            w.extend(["-u".into(), shell_escape(u)]);
        }
    } else {
        // parse_script guarantees the daemonizer for foreground processes.
        w.push(comp.start_process_as_daemon.clone().unwrap_or_default());
        if let Some(log) = &d.log_file {
            w.extend(["--output".into(), shell_escape(log)]);
        }
        if let Some(p) = &d.pid_file {
            w.extend(["--pidfile".into(), shell_escape(p)]);
        }
        if let Some(u) = &d.user {
            w.extend(["--user".into(), shell_escape(u)]);
        }
        if let Some(n) = s.nice {
            w.extend(["--nice".into(), n.to_string()]);
        }
        w.push("--".into());
    }
    w.push(shell_escape(process));
    w.extend(s.args.iter().map(|a| shell_escape(a)));
    words(w)
}

/// Converted instruction: log message, code, evaluation of its status.
fn instruction_body(comp: &Composition, s: &Script, verb: &str, code: Vec<String>) -> Vec<String> {
    let mut body = vec![format!(
        "log_info_msg {}",
        shell_escape(&format!("{verb} {}...", s.description))
    )];
    body.extend(code);
    body.push(comp.evaluate_command.clone());
    body
}

/// The final activities in `case` order (§3.1.3): converted instructions <
/// default activities < `activities`, minus `removeActivities`.
fn activities(comp: &Composition, s: &Script, d: &Derived) -> Vec<(String, Body)> {
    let mut instructions: BTreeMap<String, (String, Vec<String>)> = BTreeMap::new();
    if let Some(process) = &s.process {
        let pid = d.pid_file.as_deref();
        let mut start = Vec::new();
        if !s.initialize.is_empty() {
            start.push(s.initialize.clone());
        }
        if let Some(dir) = &s.directory {
            start.push(format!("cd {}", shell_escape(dir)));
        }
        start.push(start_command(comp, s, d, process));
        instructions.insert("start".into(), ("Starting".into(), start));
        instructions.insert(
            "stop".into(),
            (
                "Stopping".into(),
                vec![pid_command(&comp.stop_daemon, pid, process, &[])],
            ),
        );
        instructions.insert(
            "reload".into(),
            (
                "Reloading".into(),
                vec![pid_command(
                    &comp.reload_daemon,
                    pid,
                    process,
                    &[&s.reload_signal],
                )],
            ),
        );
    }
    for (key, i) in &s.instructions {
        instructions.insert(
            key.clone(),
            (i.activity.clone(), vec![i.instruction.clone()]),
        );
    }

    let mut all: BTreeMap<String, Body> = instructions
        .into_iter()
        .map(|(k, (verb, code))| (k, Body::Code(instruction_body(comp, s, &verb, code))))
        .collect();
    if let Some(process) = &s.process {
        all.insert(
            "status".into(),
            Body::Code(vec![pid_command(
                &comp.status_command,
                d.pid_file.as_deref(),
                process,
                &[],
            )]),
        );
        let restart = match &comp.restart_activity {
            Some(code) => vec![code.clone()],
            None => vec![
                "\"$0\" stop".into(),
                "sleep 1".into(),
                "\"$0\" start".into(),
            ],
        };
        all.insert("restart".into(), Body::Code(restart));
    }
    all.insert("*".into(), Body::Usage);
    for (key, code) in &s.activities {
        all.insert(key.clone(), Body::Code(vec![code.clone()]));
    }
    for r in &s.remove_activities {
        all.remove(r);
    }

    let mut ordered = Vec::new();
    for key in LEADING {
        if let Some(body) = all.remove(key) {
            ordered.push((key.to_string(), body));
        }
    }
    let star = all.remove("*");
    ordered.extend(all);
    if let Some(body) = star {
        ordered.push(("*".into(), body));
    }
    ordered
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

fn runlevel_list(levels: &[u32]) -> String {
    levels
        .iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(" ")
}

/// The environment of §2.1: `PATH` from `path`, overlaid by `environment`.
fn environment(s: &Script) -> BTreeMap<String, String> {
    let mut env = BTreeMap::new();
    if !s.path.is_empty() {
        let bins: Vec<String> = s
            .path
            .iter()
            .map(|p| format!("{}/bin", p.trim_end_matches('/')))
            .collect();
        env.insert("PATH".to_string(), bins.join(":"));
    }
    env.extend(s.environment.clone());
    env
}

pub(super) fn script_text(comp: &Composition, s: &Script, d: &Derived) -> Result<String> {
    let mut out = format!("#!{}\n\n", comp.shell);

    out.push_str("### BEGIN INIT INFO\n");
    out.push_str(&format!("# Provides:          {}\n", s.name));
    if !s.start_runlevels.is_empty() {
        out.push_str(&format!(
            "# Default-Start:     {}\n",
            runlevel_list(&s.start_runlevels)
        ));
    }
    if !s.stop_runlevels.is_empty() {
        out.push_str(&format!(
            "# Default-Stop:      {}\n",
            runlevel_list(&s.stop_runlevels)
        ));
    }
    if !s.dependencies.is_empty() {
        let names: Vec<&str> = s.dependencies.iter().map(|d| d.name.as_str()).collect();
        out.push_str(&format!("# Should-Start:      {}\n", names.join(" ")));
        out.push_str(&format!("# Should-Stop:       {}\n", names.join(" ")));
    }
    // LSB continuation lines ("#" + two spaces) keep a multi-line
    // description inside the comment.
    let description = s.description.replace('\n', "\n#  ");
    out.push_str(&format!("# Description:       {description}\n"));
    out.push_str("### END INIT INFO\n");

    let mut settings = String::new();
    if let Some(u) = &s.umask {
        settings.push_str(&format!("umask {u}\n"));
    }
    for (name, value) in environment(s) {
        let suffix = if name == "PATH" { ":\"$PATH\"" } else { "" };
        settings.push_str(&format!("export {name}={}{suffix}\n", shell_escape(&value)));
    }
    for section in [
        comp.initial_instructions.as_str(),
        s.global_instructions.as_str(),
        settings.as_str(),
    ] {
        let before = out.len();
        out.push('\n');
        push_piece(&mut out, "", section);
        if out.len() == before + 1 {
            out.pop();
        }
    }

    let acts = activities(comp, s, d);
    let names: Vec<&str> = acts
        .iter()
        .map(|(n, _)| n.as_str())
        .filter(|n| *n != "*")
        .collect();
    out.push_str("\ncase \"$1\" in\n");
    for (i, (name, body)) in acts.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        out.push_str(&format!("{INDENT_LABEL}{name})\n"));
        match body {
            Body::Code(pieces) => {
                for p in pieces {
                    push_piece(&mut out, INDENT_BODY, p);
                }
            }
            Body::Usage => {
                // Names are [A-Za-z0-9_-]+, safe inside double quotes.
                push_piece(
                    &mut out,
                    INDENT_BODY,
                    &format!("echo \"Usage: $0 {{{}}}\"", names.join("|")),
                );
                push_piece(&mut out, INDENT_BODY, "exit 1");
            }
        }
        out.push_str(&format!("{INDENT_BODY};;\n"));
    }
    out.push_str("esac\n");
    Ok(out)
}
