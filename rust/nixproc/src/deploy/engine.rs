//! Executing a [`Plan`]: all stops, then all starts, undoing everything on
//! the first failure so the previous generation's processes run again.
//!
//! * A failing stop of a *removed* instance is a warning (it may already be
//!   dead); the switch goes on.
//! * A failing stop of a changed instance aborts before anything starts:
//!   the instances this switch already stopped are started again (old
//!   profile).
//! * A failing start aborts: the failed instance gets a best-effort stop,
//!   the instances this switch started are stopped (reverse order), and the
//!   ones it stopped are started again from the old profile (dependency
//!   order).
//!
//! Either way the error carries the partial result ([`Report`]), including
//! what is running now, so the caller knows the real state.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use anyhow::anyhow;
use serde::Serialize;

use super::activator::Activator;
use super::plan::{Action, Plan, PlanItem, Reason, Side, Skipped};
use super::progress::{Event, Progress};

/// A hook's refusal: which instance and why. The switch treats it like a
/// failed step of that instance and rolls back.
#[derive(Debug)]
pub struct HookFailure {
    pub instance: String,
    pub error: anyhow::Error,
}

/// Points between the phases of a switch where other subsystems act (state
/// snapshots, restores, migrations). The engine calls them; it does not
/// know what they do.
pub trait PhaseHooks: Sync {
    /// Every stop ran: the instances being replaced or removed are stopped,
    /// nothing new has started. An error aborts like a failed stop.
    fn after_stops(&self) -> Result<(), HookFailure> {
        Ok(())
    }
    /// Every start ran (and was ready). An error fails the switch: what
    /// started is stopped, what was stopped starts again.
    fn after_starts(&self) -> Result<(), HookFailure> {
        Ok(())
    }
    /// Rolling back: the new versions (`started_new`, which ran at least
    /// briefly) are stopped again and the old ones are not restarted yet —
    /// the moment to put the old state back. Returns warnings.
    fn before_restarting_old(&self, _started_new: &[String]) -> Vec<String> {
        Vec::new()
    }
}

/// No hooks.
pub struct NoHooks;

impl PhaseHooks for NoHooks {}

/// What [`execute`] needs besides the plan.
pub struct Context<'a> {
    /// The profile the stops' instance versions live in; `None` on a first
    /// deployment (the plan then has no stops).
    pub old_profile: Option<&'a Path>,
    pub new_profile: &'a Path,
    pub activator: &'a dyn Activator,
    pub progress: &'a dyn Progress,
    pub hooks: &'a dyn PhaseHooks,
}

/// One stop or start that was done.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Step {
    pub name: String,
    pub reason: Reason,
    pub side: Side,
}

/// An instance nixproc believes to be running, and which version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Active {
    pub name: String,
    pub revision: String,
}

/// The result of executing a plan (or, inside a [`SwitchFailure`], of the
/// part that ran, rollback included).
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct Report {
    pub stopped: Vec<Step>,
    pub started: Vec<Step>,
    pub skipped: Vec<Skipped>,
    /// Unchanged instances left alone.
    pub kept: Vec<String>,
    pub warnings: Vec<String>,
    /// What runs now, sorted by name: kept instances plus what was started,
    /// minus what was stopped.
    pub running: Vec<Active>,
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names = |steps: &[Step]| {
            steps
                .iter()
                .map(|s| s.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        };
        if !self.stopped.is_empty() {
            writeln!(f, "stopped: {}", names(&self.stopped))?;
        }
        if !self.started.is_empty() {
            writeln!(f, "started: {}", names(&self.started))?;
        }
        for s in &self.skipped {
            writeln!(f, "{}: {}", s.name, s.reason)?;
        }
        if !self.kept.is_empty() {
            writeln!(f, "kept: {}", self.kept.join(", "))?;
        }
        for w in &self.warnings {
            writeln!(f, "warning: {w}")?;
        }
        Ok(())
    }
}

/// The step that failed a switch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FailedStep {
    pub action: Action,
    pub name: String,
    pub reason: Reason,
    /// The activator's error, with the command's output tail.
    pub error: String,
}

/// One step of undoing a failed switch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RollbackStep {
    pub action: Action,
    pub name: String,
    pub side: Side,
    /// A best-effort stop of the instance whose start failed; its failure
    /// does not make the rollback incomplete.
    pub cleanup: bool,
    pub error: Option<String>,
}

/// A switch that failed and was rolled back (completely or not).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SwitchFailure {
    pub failed: FailedStep,
    pub rollback: Vec<RollbackStep>,
    /// The partial result after the rollback; `running` is what runs now.
    pub report: Report,
}

impl SwitchFailure {
    /// True when every rollback step (cleanups aside) succeeded: the
    /// previous generation's processes run again.
    pub fn restored(&self) -> bool {
        self.rollback.iter().all(|s| s.cleanup || s.error.is_none())
    }
}

fn verb(action: Action) -> &'static str {
    match action {
        Action::Stop => "stopping",
        Action::Start => "starting",
    }
}

fn past(action: Action) -> &'static str {
    match action {
        Action::Stop => "stopped",
        Action::Start => "started",
    }
}

impl fmt::Display for SwitchFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let failed = &self.failed;
        writeln!(
            f,
            "{} {} ({}) failed: {}",
            verb(failed.action),
            failed.name,
            failed.reason,
            failed.error.trim_end()
        )?;
        let done: Vec<String> = self
            .rollback
            .iter()
            .filter(|s| s.error.is_none())
            .map(|s| {
                let cleanup = if s.cleanup { ", cleanup" } else { "" };
                format!("{} {} ({}{cleanup})", past(s.action), s.name, s.side)
            })
            .collect();
        if done.is_empty() {
            writeln!(f, "nothing to roll back")?;
        } else {
            writeln!(f, "rolled back: {}", done.join(", "))?;
        }
        for s in self.rollback.iter().filter(|s| s.error.is_some()) {
            let what = if s.cleanup { "cleanup: " } else { "rollback: " };
            writeln!(
                f,
                "{what}{} {} ({} version) failed: {}",
                verb(s.action),
                s.name,
                s.side,
                s.error.as_deref().unwrap_or_default().trim_end()
            )?;
        }
        if self.restored() {
            write!(f, "the previous generation's processes are running again")
        } else {
            let running: Vec<&str> = self
                .report
                .running
                .iter()
                .map(|a| a.name.as_str())
                .collect();
            write!(
                f,
                "ROLLBACK INCOMPLETE; running now: {}",
                if running.is_empty() {
                    "nothing".to_string()
                } else {
                    running.join(", ")
                }
            )
        }
    }
}

/// Why a deployment failed.
#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    /// An activation step failed; the switch was rolled back.
    #[error("{0}")]
    Activation(Box<SwitchFailure>),
    /// Every process was switched but the profile generation could not be
    /// recorded; the next switch will diff against the old generation.
    #[error("the processes were switched, but recording the new generation failed: {error:#}")]
    NotRecorded {
        report: Box<Report>,
        error: anyhow::Error,
    },
    /// Failed before any process was touched.
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

impl DeployError {
    /// The partial result, when processes were touched.
    pub fn report(&self) -> Option<&Report> {
        match self {
            DeployError::Activation(f) => Some(&f.report),
            DeployError::NotRecorded { report, .. } => Some(report),
            DeployError::Other(_) => None,
        }
    }
}

struct Run<'a, 'p> {
    ctx: &'a Context<'a>,
    plan: &'p Plan,
    report: Report,
    running: BTreeMap<String, String>,
    stopped: Vec<&'p PlanItem>,
    started: Vec<&'p PlanItem>,
}

/// Executes `plan`: stops (in plan order), then starts (in plan order).
pub fn execute(plan: &Plan, ctx: &Context<'_>) -> Result<Report, DeployError> {
    if !plan.stops.is_empty() && ctx.old_profile.is_none() {
        return Err(anyhow!(
            "the plan stops instances but there is no old profile to stop them from"
        )
        .into());
    }
    let mut run = Run {
        ctx,
        plan,
        report: Report {
            skipped: plan.skipped.clone(),
            kept: plan.kept.iter().map(|k| k.name.clone()).collect(),
            ..Report::default()
        },
        running: plan
            .kept
            .iter()
            .map(|k| (k.name.clone(), k.instance.revision.clone()))
            .chain(
                plan.stops
                    .iter()
                    .map(|i| (i.name.clone(), i.instance.revision.clone())),
            )
            .collect(),
        stopped: Vec::new(),
        started: Vec::new(),
    };
    for s in &plan.skipped {
        ctx.progress.event(&Event::Skipping {
            name: &s.name,
            reason: &s.reason,
        });
    }
    run.stops()?;
    if let Err(f) = ctx.hooks.after_stops() {
        return Err(run.fail_hook(Action::Stop, f));
    }
    run.starts()?;
    if let Err(f) = ctx.hooks.after_starts() {
        return Err(run.fail_hook(Action::Start, f));
    }
    Ok(run.finish())
}

impl<'a, 'p> Run<'a, 'p> {
    fn old_profile(&self) -> &'a Path {
        // Checked in `execute` for plans with stops; rollback starts only
        // instances that were stopped.
        self.ctx.old_profile.unwrap_or(self.ctx.new_profile)
    }

    fn step(item: &PlanItem) -> Step {
        Step {
            name: item.name.clone(),
            reason: item.reason.clone(),
            side: item.side,
        }
    }

    fn warn(&mut self, message: String) {
        self.ctx
            .progress
            .event(&Event::Warning { message: &message });
        self.report.warnings.push(message);
    }

    fn stops(&mut self) -> Result<(), DeployError> {
        let plan = self.plan;
        for item in &plan.stops {
            self.ctx.progress.event(&Event::Stopping {
                name: &item.name,
                reason: &item.reason,
            });
            match self.ctx.activator.stop(self.old_profile(), &item.instance) {
                Ok(()) => {
                    self.running.remove(&item.name);
                    self.stopped.push(item);
                    self.report.stopped.push(Self::step(item));
                }
                Err(e) if item.reason == Reason::Removed => {
                    // Not restarted by a rollback, not in the new
                    // configuration: nixproc no longer tracks it.
                    self.running.remove(&item.name);
                    self.warn(format!(
                        "stopping {} (removed) failed; it may already have been stopped: {e:#}",
                        item.name
                    ));
                }
                Err(e) => return Err(self.fail(item, e, true)),
            }
        }
        Ok(())
    }

    fn starts(&mut self) -> Result<(), DeployError> {
        let plan = self.plan;
        for item in &plan.starts {
            self.ctx.progress.event(&Event::Starting {
                name: &item.name,
                reason: &item.reason,
            });
            match self
                .ctx
                .activator
                .start(self.ctx.new_profile, &item.instance)
            {
                Ok(()) => {
                    self.running
                        .insert(item.name.clone(), item.instance.revision.clone());
                    self.started.push(item);
                    self.report.started.push(Self::step(item));
                }
                Err(e) => return Err(self.fail(item, e, true)),
            }
        }
        Ok(())
    }

    /// Undoes this switch after a hook refused at the end of the `phase`.
    fn fail_hook(&mut self, phase: Action, f: HookFailure) -> DeployError {
        let plan = self.plan;
        let items = match phase {
            Action::Stop => &plan.stops,
            Action::Start => &plan.starts,
        };
        match items.iter().find(|i| i.name == f.instance).or(items.last()) {
            // The instance's own step succeeded: no cleanup stop of it.
            Some(item) => self.fail(item, f.error, false),
            None => DeployError::Other(f.error.context(format!("instance {}", f.instance))),
        }
    }

    /// Undoes this switch after `item` failed with `error`; `cleanup`: give
    /// the failed instance a best-effort stop (its start did not complete).
    fn fail(&mut self, item: &'p PlanItem, error: anyhow::Error, cleanup: bool) -> DeployError {
        let ctx = self.ctx;
        ctx.progress.event(&Event::RollingBack {
            failed: &item.name,
            action: item.action,
        });
        let mut rollback = Vec::new();
        let mut undo =
            |run: &mut Self, action: Action, it: &PlanItem, side: Side, cleanup: bool| {
                ctx.progress.event(&Event::Restoring {
                    action,
                    name: &it.name,
                    side,
                });
                let profile = match side {
                    Side::Old => run.old_profile(),
                    Side::New => ctx.new_profile,
                };
                let result = match action {
                    Action::Stop => ctx.activator.stop(profile, &it.instance),
                    Action::Start => ctx.activator.start(profile, &it.instance),
                };
                match (&result, action) {
                    (Ok(()), Action::Stop) => {
                        run.running.remove(&it.name);
                    }
                    (Ok(()), Action::Start) => {
                        run.running
                            .insert(it.name.clone(), it.instance.revision.clone());
                    }
                    (Err(_), _) => {}
                }
                rollback.push(RollbackStep {
                    action,
                    name: it.name.clone(),
                    side,
                    cleanup,
                    error: result.err().map(|e| format!("{e:#}")),
                });
            };
        let mut started_new: Vec<String> = Vec::new();
        if item.action == Action::Start && cleanup {
            undo(self, Action::Stop, item, Side::New, true);
            started_new.push(item.name.clone());
        }
        let started = std::mem::take(&mut self.started);
        for it in started.iter().rev() {
            undo(self, Action::Stop, it, Side::New, false);
        }
        started_new.extend(started.iter().map(|it| it.name.clone()));
        for w in ctx.hooks.before_restarting_old(&started_new) {
            self.warn(w);
        }
        // Stops ran in reverse dependency order; restart in dependency order.
        let stopped = std::mem::take(&mut self.stopped);
        for it in stopped.iter().rev() {
            undo(self, Action::Start, it, Side::Old, false);
        }
        let failure = SwitchFailure {
            failed: FailedStep {
                action: item.action,
                name: item.name.clone(),
                reason: item.reason.clone(),
                error: format!("{error:#}"),
            },
            rollback,
            report: std::mem::take(&mut self.report),
        };
        let mut failure = failure;
        failure.report.running = self.running_now();
        DeployError::Activation(Box::new(failure))
    }

    fn running_now(&self) -> Vec<Active> {
        self.running
            .iter()
            .map(|(name, revision)| Active {
                name: name.clone(),
                revision: revision.clone(),
            })
            .collect()
    }

    fn finish(mut self) -> Report {
        self.report.running = self.running_now();
        self.report
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::deploy::plan::plan;
    use crate::deploy::progress::RecordingProgress;
    use crate::deploy::runner::RecordingRunner;
    use crate::deploy::sysvinit::SysvinitActivator;
    use crate::deploy::testutil::{upgrade_pair, write_profile};
    use nixproc_core::manifest::Manifest;

    struct Fixture {
        tmp: tempfile::TempDir,
        old: Manifest,
        new: Manifest,
    }

    impl Fixture {
        /// old: webapp1-3 ← nginx; new: webapp1 changed, webapp3 removed,
        /// webapp4 added, nginx changed, webapp2 unchanged.
        fn new() -> Self {
            let tmp = tempfile::tempdir().unwrap();
            let (old, new) = upgrade_pair();
            write_profile(&tmp.path().join("old"), &old);
            write_profile(&tmp.path().join("new"), &new);
            Fixture { tmp, old, new }
        }

        fn dir(&self, which: &str) -> PathBuf {
            self.tmp.path().join(which)
        }

        fn run(&self, runner: &RecordingRunner) -> (Result<Report, DeployError>, Vec<String>) {
            self.run_with(runner, &RecordingProgress::default())
        }

        fn run_with(
            &self,
            runner: &RecordingRunner,
            progress: &RecordingProgress,
        ) -> (Result<Report, DeployError>, Vec<String>) {
            let act = SysvinitActivator::new(runner);
            let (old, new) = (self.dir("old"), self.dir("new"));
            let ctx = Context {
                old_profile: Some(&old),
                new_profile: &new,
                activator: &act,
                progress,
                hooks: &crate::deploy::engine::NoHooks,
            };
            let result = execute(&plan(&self.old, &self.new), &ctx);
            (result, runner.lines(self.tmp.path()))
        }

        /// The message with the temporary directory stripped.
        fn message(&self, err: &DeployError) -> String {
            err.to_string()
                .replace(&self.tmp.path().to_string_lossy().to_string(), "")
        }
    }

    fn running(report: &Report) -> Vec<String> {
        report
            .running
            .iter()
            .map(|a| format!("{}-{}", a.name, a.revision))
            .collect()
    }

    const HAPPY: [&str; 6] = [
        "/old/etc/rc.d/init.d/nginx stop",
        "/old/etc/rc.d/init.d/webapp3 stop",
        "/old/etc/rc.d/init.d/webapp1 stop",
        "/new/etc/rc.d/init.d/webapp1 start",
        "/new/etc/rc.d/init.d/webapp4 start",
        "/new/etc/rc.d/init.d/nginx start",
    ];

    #[test]
    fn happy_path_commands() {
        let f = Fixture::new();
        let runner = RecordingRunner::new();
        let (result, lines) = f.run(&runner);
        let report = result.unwrap();
        assert_eq!(lines, HAPPY);
        assert!(
            lines.iter().all(|l| !l.contains("webapp2")),
            "unchanged never touched"
        );
        assert_eq!(
            running(&report),
            ["nginx-2", "webapp1-2", "webapp2-1", "webapp4-1"]
        );
        assert_eq!(report.kept, ["webapp2"]);
        assert!(report.warnings.is_empty());
        assert_eq!(
            report.to_string(),
            "stopped: nginx, webapp3, webapp1\nstarted: webapp1, webapp4, nginx\nkept: webapp2\n"
        );
    }

    #[test]
    fn failing_start_rolls_back_exactly() {
        let f = Fixture::new();
        let runner =
            RecordingRunner::new().fail("/new/etc/rc.d/init.d/webapp4 start", "port 8080 in use");
        let (result, lines) = f.run(&runner);
        let err = result.unwrap_err();
        assert_eq!(
            lines,
            [
                "/old/etc/rc.d/init.d/nginx stop",
                "/old/etc/rc.d/init.d/webapp3 stop",
                "/old/etc/rc.d/init.d/webapp1 stop",
                "/new/etc/rc.d/init.d/webapp1 start",
                "/new/etc/rc.d/init.d/webapp4 start",
                // rollback: clean up the failed start, stop what was
                // started, start the old versions in dependency order
                "/new/etc/rc.d/init.d/webapp4 stop",
                "/new/etc/rc.d/init.d/webapp1 stop",
                "/old/etc/rc.d/init.d/webapp1 start",
                "/old/etc/rc.d/init.d/webapp3 start",
                "/old/etc/rc.d/init.d/nginx start",
            ]
        );
        assert_eq!(
            f.message(&err),
            "starting webapp4 (added) failed: `/new/etc/rc.d/init.d/webapp4 start` exited with status 1\n\
             stderr:\n  port 8080 in use\n\
             rolled back: stopped webapp4 (new, cleanup), stopped webapp1 (new), started webapp1 (old), \
             started webapp3 (old), started nginx (old)\n\
             the previous generation's processes are running again"
        );
        let DeployError::Activation(failure) = &err else {
            panic!()
        };
        assert!(failure.restored());
        assert_eq!(failure.failed.name, "webapp4");
        assert_eq!(
            running(&failure.report),
            ["nginx-1", "webapp1-1", "webapp2-1", "webapp3-1"]
        );
        assert_eq!(err.report().unwrap().started.len(), 1);
    }

    #[test]
    fn failing_stop_of_removed_instance_is_a_warning() {
        let f = Fixture::new();
        let runner = RecordingRunner::new().fail("webapp3 stop", "no such process");
        let (result, lines) = f.run(&runner);
        let report = result.unwrap();
        assert_eq!(lines, HAPPY);
        assert_eq!(report.warnings.len(), 1);
        let w = report.warnings[0].replace(&f.tmp.path().to_string_lossy().to_string(), "");
        assert_eq!(
            w,
            "stopping webapp3 (removed) failed; it may already have been stopped: \
             `/old/etc/rc.d/init.d/webapp3 stop` exited with status 1\nstderr:\n  no such process"
        );
        assert_eq!(
            running(&report),
            ["nginx-2", "webapp1-2", "webapp2-1", "webapp4-1"]
        );
    }

    #[test]
    fn failing_stop_of_changed_instance_aborts_before_starting() {
        let f = Fixture::new();
        let runner = RecordingRunner::new().fail("/old/etc/rc.d/init.d/webapp1 stop", "busy");
        let (result, lines) = f.run(&runner);
        let err = result.unwrap_err();
        assert_eq!(
            lines,
            [
                "/old/etc/rc.d/init.d/nginx stop",
                "/old/etc/rc.d/init.d/webapp3 stop",
                "/old/etc/rc.d/init.d/webapp1 stop",
                "/old/etc/rc.d/init.d/webapp3 start",
                "/old/etc/rc.d/init.d/nginx start",
            ]
        );
        assert_eq!(
            f.message(&err),
            "stopping webapp1 (changed) failed: `/old/etc/rc.d/init.d/webapp1 stop` exited with status 1\n\
             stderr:\n  busy\n\
             rolled back: started webapp3 (old), started nginx (old)\n\
             the previous generation's processes are running again"
        );
        assert_eq!(
            running(err.report().unwrap()),
            ["nginx-1", "webapp1-1", "webapp2-1", "webapp3-1"]
        );
    }

    #[test]
    fn incomplete_rollback_says_what_runs() {
        let f = Fixture::new();
        let runner = RecordingRunner::new()
            .fail("/new/etc/rc.d/init.d/nginx start", "bad config")
            .fail("/old/etc/rc.d/init.d/webapp1 start", "gone");
        let (result, _lines) = f.run(&runner);
        let err = result.unwrap_err();
        let DeployError::Activation(failure) = &err else {
            panic!()
        };
        assert!(!failure.restored());
        let msg = f.message(&err);
        assert!(
            msg.contains(
                "rollback: starting webapp1 (old version) failed: `/old/etc/rc.d/init.d/webapp1 start` \
                 exited with status 1\nstderr:\n  gone\n"
            ),
            "{msg}"
        );
        assert!(
            msg.ends_with("ROLLBACK INCOMPLETE; running now: nginx, webapp2, webapp3"),
            "{msg}"
        );
    }

    #[test]
    fn progress_lines() {
        let f = Fixture::new();
        let runner = RecordingRunner::new().fail("/new/etc/rc.d/init.d/webapp4 start", "x");
        let progress = RecordingProgress::default();
        let _ = f.run_with(&runner, &progress);
        assert_eq!(
            progress.lines(),
            [
                "stopping nginx (changed)",
                "stopping webapp3 (removed)",
                "stopping webapp1 (changed)",
                "starting webapp1 (changed)",
                "starting webapp4 (added)",
                "starting webapp4 failed; restoring the previous processes",
                "rollback: stopping webapp4 (new version)",
                "rollback: stopping webapp1 (new version)",
                "rollback: starting webapp1 (old version)",
                "rollback: starting webapp3 (old version)",
                "rollback: starting nginx (old version)",
            ]
        );
    }
}
