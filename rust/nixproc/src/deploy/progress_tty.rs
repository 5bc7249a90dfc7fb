//! Progress of a switch on a terminal: an overall bar (steps done of the
//! planned stops and starts) and one spinner line per running step
//! (`starting webapp3 (waiting for tcp 127.0.0.1:5003)`), with finished
//! steps, warnings and failures printed as `nixproc: …` lines above the
//! bars. Not on a terminal — or with `NIXPROC_PROGRESS=plain`, or
//! `TERM=dumb` — the output is exactly [`StderrProgress`]'s: one line per
//! event, no control codes. [`auto`] picks.
//!
//! Events come from worker threads; the renderer is `Sync` (its state sits
//! behind a mutex, indicatif's bars are thread-safe). Events this renderer
//! does not know (added to `Event` later) are printed as their line.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::plan::Action;
use super::progress::{Event, Progress, StderrProgress};

/// The environment variable choosing the renderer: `plain` forces the
/// line-oriented output; anything else (or unset) decides by whether
/// stderr is a terminal.
pub const PROGRESS_ENV: &str = "NIXPROC_PROGRESS";

/// Which renderer to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// One `nixproc: …` line per event ([`StderrProgress`]).
    Plain,
    /// Bars and spinners ([`TtyProgress`]).
    Tty,
}

/// The renderer for a `NIXPROC_PROGRESS` value, whether stderr is a
/// terminal, and `TERM`.
pub fn choose(setting: Option<&str>, stderr_is_terminal: bool, term: Option<&str>) -> Mode {
    if setting.is_some_and(|s| s.eq_ignore_ascii_case("plain")) {
        return Mode::Plain;
    }
    if stderr_is_terminal && term != Some("dumb") {
        Mode::Tty
    } else {
        Mode::Plain
    }
}

/// The renderer for this process's stderr and environment.
pub fn auto() -> Box<dyn Progress> {
    let setting = std::env::var(PROGRESS_ENV).ok();
    let term = std::env::var("TERM").ok();
    match choose(
        setting.as_deref(),
        std::io::stderr().is_terminal(),
        term.as_deref(),
    ) {
        Mode::Plain => Box::new(StderrProgress),
        Mode::Tty => Box::new(TtyProgress::new()),
    }
}

/// What one event does to the display.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Update {
    /// A line above the bars (`nixproc: …`).
    Line(String),
    /// The planned number of steps is known.
    Total(u64),
    /// A step began: a spinner `key` showing `message`.
    Begin { key: String, message: String },
    /// The spinner `key` (if it still runs) now shows `message`.
    Message { key: String, message: String },
    /// The step `key` finished: its spinner goes, one step more is done.
    End { key: String },
}

fn key(action: Action, name: &str) -> String {
    match action {
        Action::Stop => format!("stop {name}"),
        Action::Start => format!("start {name}"),
    }
}

/// How an event changes the display; stateless, so it is tested on its
/// own.
pub fn updates(event: &Event<'_>) -> Vec<Update> {
    let line = || Update::Line(format!("nixproc: {event}"));
    match event {
        Event::Plan { stops, starts, .. } => vec![Update::Total((stops + starts) as u64)],
        Event::Stopping { name, .. } => vec![Update::Begin {
            key: key(Action::Stop, name),
            message: event.to_string(),
        }],
        Event::Starting { name, .. } => vec![Update::Begin {
            key: key(Action::Start, name),
            message: event.to_string(),
        }],
        Event::WaitingReady { name, check } => vec![Update::Message {
            key: key(Action::Start, name),
            message: format!("starting {name} (waiting for {check})"),
        }],
        Event::Ready { name, .. } => vec![Update::Message {
            key: key(Action::Start, name),
            message: format!("starting {name} (ready)"),
        }],
        Event::Done { action, name, .. } => vec![
            Update::End {
                key: key(*action, name),
            },
            line(),
        ],
        _ => vec![line()],
    }
}

#[derive(Default)]
struct Bars {
    overall: Option<ProgressBar>,
    steps: HashMap<String, ProgressBar>,
}

/// Bars and spinners on stderr (see the module documentation).
pub struct TtyProgress {
    multi: MultiProgress,
    bars: Mutex<Bars>,
}

impl Default for TtyProgress {
    fn default() -> Self {
        Self::new()
    }
}

impl TtyProgress {
    pub fn new() -> Self {
        Self::with_target(ProgressDrawTarget::stderr())
    }

    /// Draws on `target` (tests: a hidden one).
    pub fn with_target(target: ProgressDrawTarget) -> Self {
        TtyProgress {
            multi: MultiProgress::with_draw_target(target),
            bars: Mutex::new(Bars::default()),
        }
    }

    fn bars(&self) -> std::sync::MutexGuard<'_, Bars> {
        self.bars.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn overall_style(known_total: bool) -> ProgressStyle {
        let template = if known_total {
            "[{bar:30}] {pos}/{len} steps  {elapsed}"
        } else {
            "{pos} steps done  {elapsed}"
        };
        ProgressStyle::with_template(template)
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ")
    }

    fn spinner_style() -> ProgressStyle {
        ProgressStyle::with_template("{spinner} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner())
    }

    /// The overall bar, created (without a known total) on first use.
    fn overall<'b>(&self, bars: &'b mut Bars) -> &'b ProgressBar {
        bars.overall.get_or_insert_with(|| {
            let bar = ProgressBar::no_length().with_style(Self::overall_style(false));
            self.multi.insert(0, bar)
        })
    }

    fn apply(&self, update: Update) {
        let mut bars = self.bars();
        match update {
            Update::Line(l) => {
                // A hidden target (stderr went away) drops the line, as
                // eprintln! would fail.
                let _ = self.multi.println(l);
            }
            Update::Total(n) => {
                let overall = self.overall(&mut bars);
                overall.set_style(Self::overall_style(true));
                overall.set_length(n);
            }
            Update::Begin { key, message } => {
                self.overall(&mut bars);
                let spinner = self.multi.add(
                    ProgressBar::new_spinner()
                        .with_style(Self::spinner_style())
                        .with_message(message),
                );
                spinner.enable_steady_tick(Duration::from_millis(120));
                if let Some(old) = bars.steps.insert(key, spinner) {
                    old.finish_and_clear();
                    self.multi.remove(&old);
                }
            }
            Update::Message { key, message } => {
                if let Some(s) = bars.steps.get(&key) {
                    s.set_message(message);
                }
            }
            Update::End { key } => {
                if let Some(s) = bars.steps.remove(&key) {
                    s.finish_and_clear();
                    self.multi.remove(&s);
                }
                self.overall(&mut bars).inc(1);
            }
        }
    }

    /// The spinners' messages, sorted (for tests).
    pub fn running(&self) -> Vec<String> {
        let bars = self.bars();
        let mut v: Vec<String> = bars.steps.values().map(|s| s.message()).collect();
        v.sort();
        v
    }

    /// Steps done and the planned total, if known (for tests).
    pub fn done(&self) -> (u64, Option<u64>) {
        let bars = self.bars();
        match &bars.overall {
            Some(b) => (b.position(), b.length()),
            None => (0, None),
        }
    }
}

impl Progress for TtyProgress {
    fn event(&self, event: &Event<'_>) {
        for u in updates(event) {
            self.apply(u);
        }
    }
}

impl Drop for TtyProgress {
    /// Leaves no bar behind (a failed switch ends with steps still shown).
    fn drop(&mut self) {
        let mut bars = self.bars();
        for (_, s) in bars.steps.drain() {
            s.finish_and_clear();
        }
        if let Some(o) = bars.overall.take() {
            o.finish_and_clear();
        }
        let _ = self.multi.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deploy::plan::Reason;
    use std::path::Path;

    #[test]
    fn plain_unless_stderr_is_a_terminal() {
        assert_eq!(choose(None, true, Some("xterm-256color")), Mode::Tty);
        assert_eq!(choose(None, true, None), Mode::Tty);
        assert_eq!(choose(None, false, Some("xterm")), Mode::Plain);
        assert_eq!(choose(Some("plain"), true, Some("xterm")), Mode::Plain);
        assert_eq!(choose(Some("PLAIN"), true, Some("xterm")), Mode::Plain);
        assert_eq!(choose(None, true, Some("dumb")), Mode::Plain);
        // unknown settings decide as if unset
        assert_eq!(choose(Some("fancy"), true, Some("xterm")), Mode::Tty);
        assert_eq!(choose(Some("fancy"), false, Some("xterm")), Mode::Plain);
    }

    #[test]
    fn auto_in_tests_is_plain() {
        // cargo test captures stderr through a pipe unless --nocapture on
        // a terminal; with NIXPROC_PROGRESS=plain it is plain regardless.
        // Only the choice is checked here (auto itself reads the env).
        assert_eq!(
            choose(Some("plain"), std::io::stderr().is_terminal(), None),
            Mode::Plain
        );
    }

    #[test]
    fn steps_become_spinners_and_finish_as_lines() {
        let added = Reason::Added;
        assert_eq!(
            updates(&Event::Starting {
                name: "webapp3",
                reason: &added
            }),
            [Update::Begin {
                key: "start webapp3".into(),
                message: "starting webapp3 (added)".into()
            }]
        );
        assert_eq!(
            updates(&Event::WaitingReady {
                name: "webapp3",
                check: "tcp 127.0.0.1:5003"
            }),
            [Update::Message {
                key: "start webapp3".into(),
                message: "starting webapp3 (waiting for tcp 127.0.0.1:5003)".into()
            }]
        );
        assert_eq!(
            updates(&Event::Done {
                action: Action::Start,
                name: "webapp3",
                after: Duration::from_millis(1500)
            }),
            [
                Update::End {
                    key: "start webapp3".into()
                },
                Update::Line("nixproc: started webapp3 (1.5 s)".into())
            ]
        );
        assert_eq!(
            updates(&Event::Plan {
                stops: 2,
                starts: 5,
                jobs: 8
            }),
            [Update::Total(7)]
        );
    }

    #[test]
    fn other_events_are_their_plain_line() {
        let profile = Path::new("/p/processes");
        for (event, line) in [
            (
                Event::Warning {
                    message: "$(x) `y` %s\n;",
                },
                "nixproc: warning: $(x) `y` %s\n;",
            ),
            (
                Event::Recorded {
                    profile,
                    generation: 4,
                },
                "nixproc: /p/processes is now generation 4",
            ),
            (
                Event::RollingBack {
                    failed: "web",
                    action: Action::Start,
                },
                "nixproc: starting web failed; restoring the previous processes",
            ),
        ] {
            assert_eq!(updates(&event), [Update::Line(line.into())]);
        }
    }

    fn hidden() -> TtyProgress {
        TtyProgress::with_target(ProgressDrawTarget::hidden())
    }

    #[test]
    fn renderer_tracks_running_steps_and_the_total() {
        let p = hidden();
        let r = Reason::Added;
        p.event(&Event::Plan {
            stops: 1,
            starts: 2,
            jobs: 2,
        });
        p.event(&Event::Stopping {
            name: "old",
            reason: &Reason::Removed,
        });
        p.event(&Event::Starting {
            name: "a",
            reason: &r,
        });
        p.event(&Event::Starting {
            name: "b",
            reason: &r,
        });
        p.event(&Event::WaitingReady {
            name: "b",
            check: "tcp 127.0.0.1:1",
        });
        assert_eq!(
            p.running(),
            [
                "starting a (added)",
                "starting b (waiting for tcp 127.0.0.1:1)",
                "stopping old (removed)"
            ]
        );
        assert_eq!(p.done(), (0, Some(3)));
        for (action, name) in [(Action::Stop, "old"), (Action::Start, "a")] {
            p.event(&Event::Done {
                action,
                name,
                after: Duration::ZERO,
            });
        }
        assert_eq!(p.running(), ["starting b (waiting for tcp 127.0.0.1:1)"]);
        assert_eq!(p.done(), (2, Some(3)));
        // a message for a step that is not running changes nothing
        p.event(&Event::Ready {
            name: "zzz",
            after: Duration::ZERO,
        });
        assert_eq!(p.running().len(), 1);
    }

    #[test]
    fn renderer_is_usable_from_many_threads() {
        fn assert_sync<T: Sync + Send>() {}
        assert_sync::<TtyProgress>();
        let p = hidden();
        let r = Reason::Added;
        std::thread::scope(|s| {
            for t in 0..8 {
                let (p, r) = (&p, &r);
                s.spawn(move || {
                    for i in 0..50 {
                        let name = format!("w{t}-{i}");
                        p.event(&Event::Starting {
                            name: &name,
                            reason: r,
                        });
                        p.event(&Event::Done {
                            action: Action::Start,
                            name: &name,
                            after: Duration::ZERO,
                        });
                    }
                });
            }
        });
        assert!(p.running().is_empty());
        assert_eq!(p.done().0, 400);
    }
}
