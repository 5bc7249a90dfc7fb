//! Running external commands: the one place where the deploy engine touches
//! processes. Activators build [`Cmd`]s and hand them to a [`Runner`]; tests
//! swap in a [`RecordingRunner`] that records the commands and answers from
//! a script.

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

/// How long a single command may run before it is killed.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// How many lines of output an error message quotes.
pub const OUTPUT_TAIL_LINES: usize = 20;

/// One command to run: a program, its arguments and a time limit. The
/// environment is the caller's (init scripts see what the user sees).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cmd {
    pub program: PathBuf,
    pub args: Vec<OsString>,
    pub timeout: Duration,
}

impl Cmd {
    pub fn new(program: impl Into<PathBuf>) -> Self {
        Cmd {
            program: program.into(),
            args: Vec::new(),
            timeout: DEFAULT_TIMEOUT,
        }
    }

    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Self {
        self.args.push(arg.as_ref().to_os_string());
        self
    }

    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }
}

/// Shell-like rendering, for messages and recorded command lists.
impl fmt::Display for Cmd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", shell_word(self.program.as_os_str()))?;
        for a in &self.args {
            write!(f, " {}", shell_word(a))?;
        }
        Ok(())
    }
}

fn shell_word(s: &OsStr) -> String {
    let s = s.to_string_lossy();
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-+=:,@%".contains(c));
    if plain {
        s.into_owned()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// How a command ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case", tag = "kind", content = "value")]
pub enum ExitKind {
    /// Exited with this status code.
    Exited(i32),
    /// Killed by this signal (not by us).
    Signaled(i32),
    /// Ran longer than its timeout and was killed.
    TimedOut,
}

impl fmt::Display for ExitKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExitKind::Exited(c) => write!(f, "exited with status {c}"),
            ExitKind::Signaled(s) => write!(f, "was killed by signal {s}"),
            ExitKind::TimedOut => write!(f, "timed out and was killed"),
        }
    }
}

/// What a finished command produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CmdOutput {
    pub exit: ExitKind,
    pub stdout: String,
    pub stderr: String,
}

impl CmdOutput {
    pub fn ok() -> Self {
        Self::exited(0, "")
    }

    /// An exit with `code`, with `stderr` as the only output.
    pub fn exited(code: i32, stderr: &str) -> Self {
        CmdOutput {
            exit: ExitKind::Exited(code),
            stdout: String::new(),
            stderr: stderr.to_string(),
        }
    }

    pub fn success(&self) -> bool {
        self.exit == ExitKind::Exited(0)
    }

    /// The exit code, if the command exited on its own.
    pub fn code(&self) -> Option<i32> {
        match self.exit {
            ExitKind::Exited(c) => Some(c),
            _ => None,
        }
    }

    /// The last lines of stdout and stderr, for error messages; empty when
    /// the command printed nothing.
    pub fn tail(&self) -> String {
        let mut out = String::new();
        for (label, text) in [("stdout", &self.stdout), ("stderr", &self.stderr)] {
            let text = text.trim_end();
            if text.is_empty() {
                continue;
            }
            let lines: Vec<&str> = text.lines().collect();
            let skip = lines.len().saturating_sub(OUTPUT_TAIL_LINES);
            out.push_str(label);
            out.push_str(":\n");
            if skip > 0 {
                out.push_str(&format!("  … ({skip} earlier lines)\n"));
            }
            for l in &lines[skip..] {
                out.push_str("  ");
                out.push_str(l);
                out.push('\n');
            }
        }
        out
    }
}

/// A command that ran but did not succeed; carries the output tail.
#[derive(Debug, thiserror::Error)]
#[error("`{cmd}` {}{}", .output.exit, fmt_tail(&.output.tail()))]
pub struct CommandFailed {
    pub cmd: Cmd,
    pub output: CmdOutput,
}

fn fmt_tail(tail: &str) -> String {
    if tail.is_empty() {
        " (no output)".to_string()
    } else {
        format!("\n{}", tail.trim_end())
    }
}

/// Runs commands. `Err` means the command could not be run at all (not
/// found, not executable); a command that ran and failed is `Ok` with its
/// exit status.
pub trait Runner: Sync {
    fn run(&self, cmd: &Cmd) -> Result<CmdOutput>;

    /// Runs `cmd` and turns anything but exit status 0 into a
    /// [`CommandFailed`] error.
    fn run_checked(&self, cmd: &Cmd) -> Result<CmdOutput> {
        let output = self.run(cmd)?;
        if output.success() {
            Ok(output)
        } else {
            Err(CommandFailed {
                cmd: cmd.clone(),
                output,
            }
            .into())
        }
    }
}

impl<R: Runner + ?Sized> Runner for &R {
    fn run(&self, cmd: &Cmd) -> Result<CmdOutput> {
        (**self).run(cmd)
    }
}

impl<R: Runner + ?Sized> Runner for Box<R> {
    fn run(&self, cmd: &Cmd) -> Result<CmdOutput> {
        (**self).run(cmd)
    }
}

/// Runs commands for real with `std::process`.
///
/// * stdin is `/dev/null`; stdout and stderr go to unlinked temporary files,
///   not pipes, so a daemon that keeps the descriptors open neither blocks
///   the deploy nor dies of SIGPIPE after nixproc exits;
/// * the command runs in its own process group; on timeout the whole group
///   is killed (SIGKILL) and the result is [`ExitKind::TimedOut`].
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemRunner;

impl Runner for SystemRunner {
    fn run(&self, cmd: &Cmd) -> Result<CmdOutput> {
        let mut out =
            tempfile::tempfile().context("creating a temporary file for command output")?;
        let mut err =
            tempfile::tempfile().context("creating a temporary file for command output")?;
        let mut child = Command::new(&cmd.program)
            .args(&cmd.args)
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(err.try_clone()?)
            .process_group(0)
            .spawn()
            .with_context(|| format!("cannot run `{cmd}`"))?;
        let started = Instant::now();
        let mut pause = Duration::from_millis(1);
        let exit = loop {
            if let Some(status) = child
                .try_wait()
                .with_context(|| format!("waiting for `{cmd}`"))?
            {
                break match (status.code(), status.signal()) {
                    (Some(c), _) => ExitKind::Exited(c),
                    (None, Some(s)) => ExitKind::Signaled(s),
                    (None, None) => ExitKind::Exited(-1),
                };
            }
            if started.elapsed() >= cmd.timeout {
                kill_group(&child);
                let _ = child.kill();
                let _ = child.wait();
                break ExitKind::TimedOut;
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(50));
        };
        Ok(CmdOutput {
            exit,
            stdout: read_all(&mut out)?,
            stderr: read_all(&mut err)?,
        })
    }
}

fn kill_group(child: &std::process::Child) {
    // The child leads its own process group (`process_group(0)`).
    let pgid = rustix::process::Pid::from_child(child);
    let _ = rustix::process::kill_process_group(pgid, rustix::process::Signal::KILL);
}

fn read_all(f: &mut std::fs::File) -> Result<String> {
    f.seek(SeekFrom::Start(0))?;
    let mut buf = Vec::new();
    f.read_to_end(&mut buf)?;
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

/// A scripted answer of a [`RecordingRunner`].
#[derive(Debug, Clone)]
struct Rule {
    /// Substring of the rendered command line.
    pattern: String,
    output: CmdOutput,
}

/// A [`Runner`] for tests: records every command and answers from rules
/// (first rule whose pattern occurs in the rendered command line wins;
/// otherwise exit status 0 with no output). Runs nothing.
#[derive(Debug, Default)]
pub struct RecordingRunner {
    rules: Vec<Rule>,
    log: Mutex<Vec<Cmd>>,
}

impl RecordingRunner {
    pub fn new() -> Self {
        Self::default()
    }

    /// Commands whose rendered line contains `pattern` produce `output`.
    pub fn respond(mut self, pattern: &str, output: CmdOutput) -> Self {
        self.rules.push(Rule {
            pattern: pattern.to_string(),
            output,
        });
        self
    }

    /// Commands whose rendered line contains `pattern` exit with status 1
    /// and print `stderr`.
    pub fn fail(self, pattern: &str, stderr: &str) -> Self {
        self.respond(pattern, CmdOutput::exited(1, stderr))
    }

    /// The commands run so far.
    pub fn commands(&self) -> Vec<Cmd> {
        self.log().clone()
    }

    /// The commands run so far, rendered, with `strip` removed from each
    /// line (e.g. a temporary profile directory).
    pub fn lines(&self, strip: &Path) -> Vec<String> {
        let strip = strip.to_string_lossy();
        self.log()
            .iter()
            .map(|c| c.to_string().replace(strip.as_ref(), ""))
            .collect()
    }
}

impl RecordingRunner {
    fn log(&self) -> std::sync::MutexGuard<'_, Vec<Cmd>> {
        self.log.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Runner for RecordingRunner {
    fn run(&self, cmd: &Cmd) -> Result<CmdOutput> {
        self.log().push(cmd.clone());
        let line = cmd.to_string();
        Ok(self
            .rules
            .iter()
            .find(|r| line.contains(&r.pattern))
            .map(|r| r.output.clone())
            .unwrap_or_else(CmdOutput::ok))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_runner_captures_output_and_status() {
        let out = SystemRunner
            .run(
                &Cmd::new("sh")
                    .arg("-c")
                    .arg("echo out; echo err >&2; exit 3"),
            )
            .unwrap();
        assert_eq!(out.exit, ExitKind::Exited(3));
        assert_eq!(out.stdout, "out\n");
        assert_eq!(out.stderr, "err\n");
        assert_eq!(out.tail(), "stdout:\n  out\nstderr:\n  err\n");
    }

    #[test]
    fn system_runner_kills_on_timeout() {
        let started = Instant::now();
        let out = SystemRunner
            .run(
                &Cmd::new("sh")
                    .arg("-c")
                    .arg("sleep 30 & sleep 30")
                    .timeout(Duration::from_millis(200)),
            )
            .unwrap();
        assert_eq!(out.exit, ExitKind::TimedOut);
        assert!(started.elapsed() < Duration::from_secs(10));
    }

    #[test]
    fn system_runner_does_not_wait_for_background_children() {
        // A "daemon" that keeps stdout open must not block the runner.
        let started = Instant::now();
        let out = SystemRunner
            .run(&Cmd::new("sh").arg("-c").arg("(sleep 5 &) ; echo started"))
            .unwrap();
        assert!(out.success());
        assert_eq!(out.stdout, "started\n");
        assert!(started.elapsed() < Duration::from_secs(4));
    }

    #[test]
    fn missing_program_is_an_error() {
        let err = SystemRunner
            .run(&Cmd::new("/nonexistent/nixproc-test"))
            .unwrap_err();
        assert!(format!("{err:#}").contains("cannot run `/nonexistent/nixproc-test`"));
    }

    #[test]
    fn command_rendering_quotes() {
        let c = Cmd::new("/a b/c").arg("start").arg("it's");
        assert_eq!(c.to_string(), r"'/a b/c' start 'it'\''s'");
    }

    #[test]
    fn recording_runner_scripts_failures() {
        let r = RecordingRunner::new().fail("x stop", "boom");
        assert!(r.run(&Cmd::new("x").arg("start")).unwrap().success());
        let err = r.run_checked(&Cmd::new("x").arg("stop")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "`x stop` exited with status 1\nstderr:\n  boom"
        );
        assert_eq!(r.lines(Path::new("")), ["x start", "x stop"]);
    }

    #[test]
    fn tail_keeps_last_lines() {
        let text: String = (1..=30).map(|i| format!("l{i}\n")).collect();
        let out = CmdOutput {
            exit: ExitKind::Exited(1),
            stdout: text,
            stderr: String::new(),
        };
        let tail = out.tail();
        assert!(tail.starts_with("stdout:\n  … (10 earlier lines)\n  l11\n"));
        assert!(tail.ends_with("  l30\n"));
    }
}
