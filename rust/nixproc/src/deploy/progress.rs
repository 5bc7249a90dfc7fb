//! Progress of a switch, as events. The CLI's default prints one
//! `nixproc: …` line per event on stderr; tests record them.

use std::cell::RefCell;
use std::fmt;
use std::path::Path;

use super::plan::{Action, Reason, Side};

#[derive(Debug, Clone, Copy)]
pub enum Event<'a> {
    /// Another switch holds the profile lock; this one waits.
    WaitingForLock {
        profile: &'a Path,
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
            Event::Account { what, name } => write!(f, "{what} {name}"),
            Event::Recorded {
                profile,
                generation,
            } => write!(f, "{} is now generation {generation}", profile.display()),
        }
    }
}

pub trait Progress {
    fn event(&self, event: &Event<'_>);
}

/// Any `Fn(&Event)` is a progress reporter.
impl<F: Fn(&Event<'_>)> Progress for F {
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

/// Keeps the rendered events, for tests.
#[derive(Debug, Default)]
pub struct RecordingProgress {
    lines: RefCell<Vec<String>>,
}

impl RecordingProgress {
    pub fn lines(&self) -> Vec<String> {
        self.lines.borrow().clone()
    }
}

impl Progress for RecordingProgress {
    fn event(&self, event: &Event<'_>) {
        self.lines.borrow_mut().push(event.to_string());
    }
}
