//! Progress of a switch, as events. The CLI's default prints one
//! `nixproc: …` line per event on stderr; tests record them.
//!
//! Events come from the worker threads of a parallel switch, so a
//! [`Progress`] is `Sync` and may see events of different instances
//! interleaved. New variants may be added: match with a `_` arm.

use std::fmt;
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use super::plan::{Action, Reason, Side};

#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub enum Event<'a> {
    /// Another switch holds the profile lock; this one waits.
    WaitingForLock {
        profile: &'a Path,
    },
    /// Execution begins: this many stops and starts are planned (for
    /// progress bars). `jobs` is the concurrency limit.
    Plan {
        stops: usize,
        starts: usize,
        jobs: usize,
    },
    /// A stop or start finished successfully (`Stopping`/`Starting` said
    /// when it began; with several jobs the two may be far apart).
    Done {
        action: Action,
        name: &'a str,
        after: Duration,
    },
    /// `name` started; now waiting for its readiness checks (`check`
    /// describes them, e.g. "tcp 127.0.0.1:5000").
    WaitingReady {
        name: &'a str,
        check: &'a str,
    },
    /// Every readiness check of `name` passed, `after` its start began.
    Ready {
        name: &'a str,
        after: Duration,
    },
    /// An interrupted switch was found (its journal); this one plans
    /// against what actually runs.
    Resuming {
        journal: &'a Path,
    },
    Stopping {
        name: &'a str,
        reason: &'a Reason,
    },
    Starting {
        name: &'a str,
        reason: &'a Reason,
    },
    /// A planned stop or start that is deliberately not done.
    Skipping {
        name: &'a str,
        reason: &'a str,
    },
    Warning {
        message: &'a str,
    },
    /// A step failed; what this switch did is being undone.
    RollingBack {
        failed: &'a str,
        action: Action,
    },
    /// One step of undoing: stopping a new version or starting an old one.
    Restoring {
        action: Action,
        name: &'a str,
        side: Side,
    },
    /// A [`Event::Restoring`] step succeeded.
    Restored {
        action: Action,
        name: &'a str,
        side: Side,
    },
    /// A user or group was created or removed (`what`: "created user",
    /// "removed group", …).
    Account {
        what: &'a str,
        name: &'a str,
    },
    /// The profile now points at this generation.
    Recorded {
        profile: &'a Path,
        generation: u64,
    },
}

impl fmt::Display for Event<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Event::WaitingForLock { profile } => {
                write!(
                    f,
                    "waiting for another nixproc switch on {}…",
                    profile.display()
                )
            }
            Event::Plan {
                stops,
                starts,
                jobs,
            } => write!(f, "{stops} to stop, {starts} to start ({jobs} at a time)"),
            Event::Done {
                action,
                name,
                after,
            } => write!(
                f,
                "{} {name} ({:.1} s)",
                match action {
                    Action::Stop => "stopped",
                    Action::Start => "started",
                },
                after.as_secs_f64()
            ),
            Event::WaitingReady { name, check } => {
                write!(f, "waiting for {name} to be ready ({check})")
            }
            Event::Ready { name, after } => {
                write!(f, "{name} is ready ({:.1} s)", after.as_secs_f64())
            }
            Event::Resuming { journal } => write!(
                f,
                "an interrupted switch left {}; restoring the current generation's processes first",
                journal.display()
            ),
            Event::Stopping { name, reason } => write!(f, "stopping {name} ({reason})"),
            Event::Starting { name, reason } => write!(f, "starting {name} ({reason})"),
            Event::Skipping { name, reason } => write!(f, "{name}: {reason}"),
            Event::Warning { message } => write!(f, "warning: {message}"),
            Event::RollingBack { failed, action } => {
                let verb = match action {
                    Action::Stop => "stopping",
                    Action::Start => "starting",
                };
                write!(
                    f,
                    "{verb} {failed} failed; restoring the previous processes"
                )
            }
            Event::Restoring { action, name, side } => {
                let verb = match action {
                    Action::Stop => "stopping",
                    Action::Start => "starting",
                };
                write!(f, "rollback: {verb} {name} ({side} version)")
            }
            Event::Restored { action, name, side } => {
                let past = match action {
                    Action::Stop => "stopped",
                    Action::Start => "started",
                };
                write!(f, "rollback: {past} {name} ({side} version)")
            }
            Event::Account { what, name } => write!(f, "{what} {name}"),
            Event::Recorded {
                profile,
                generation,
            } => write!(f, "{} is now generation {generation}", profile.display()),
        }
    }
}

pub trait Progress: Sync {
    fn event(&self, event: &Event<'_>);
}

/// Any `Fn(&Event)` is a progress reporter.
impl<F: Fn(&Event<'_>) + Sync> Progress for F {
    fn event(&self, event: &Event<'_>) {
        self(event)
    }
}

/// Prints `nixproc: <event>` lines on stderr.
#[derive(Debug, Default, Clone, Copy)]
pub struct StderrProgress;

impl Progress for StderrProgress {
    fn event(&self, event: &Event<'_>) {
        eprintln!("nixproc: {event}");
    }
}

/// Reports nothing.
#[derive(Debug, Default, Clone, Copy)]
pub struct SilentProgress;

impl Progress for SilentProgress {
    fn event(&self, _event: &Event<'_>) {}
}

/// Keeps the rendered events, for tests. `lines` leaves out the timing
/// events (`Plan`, `Done`, `Ready`), whose text varies from run to run;
/// `all_lines` has them.
#[derive(Debug, Default)]
pub struct RecordingProgress {
    lines: Mutex<Vec<(bool, String)>>,
}

impl RecordingProgress {
    pub fn lines(&self) -> Vec<String> {
        let lines = self.lines.lock().unwrap_or_else(|e| e.into_inner());
        lines
            .iter()
            .filter(|(timing, _)| !timing)
            .map(|(_, l)| l.clone())
            .collect()
    }

    pub fn all_lines(&self) -> Vec<String> {
        let lines = self.lines.lock().unwrap_or_else(|e| e.into_inner());
        lines.iter().map(|(_, l)| l.clone()).collect()
    }
}

impl Progress for RecordingProgress {
    fn event(&self, event: &Event<'_>) {
        let timing = matches!(
            event,
            Event::Plan { .. } | Event::Done { .. } | Event::Ready { .. } | Event::Restored { .. }
        );
        self.lines
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((timing, event.to_string()));
    }
}
