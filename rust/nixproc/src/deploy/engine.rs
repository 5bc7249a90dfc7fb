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
//!
//! Parallelism ([`Context::jobs`]): within a phase, independent steps run
//! concurrently on up to `jobs` threads, along the dependency DAG:
//! * a stop begins once every instance depending on it (old manifest) that
//!   this plan stops has stopped;
//! * a start begins once every dependency of it that this plan starts has
//!   started *and is ready* (its readiness checks passed, see
//!   [`super::readiness`]); a readiness timeout is a failed start.
//!
//! Only edges to steps earlier in the plan count, so with `jobs = 1` the
//! steps run exactly in plan order. The first failure stops scheduling; the
//! steps already running finish; then the rollback runs sequentially
//! (new versions stopped in reverse completion order, the old ones started
//! in reverse stop-completion order — both respect the dependencies,
//! because a step only began after its prerequisites completed).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::path::Path;
use std::sync::{Condvar, Mutex};
use std::time::Instant;

use anyhow::anyhow;
use serde::Serialize;

use super::activator::Activator;
use super::plan::{Action, Plan, PlanItem, Reason, Side, Skipped};
use super::progress::{Event, Progress};
use super::readiness::{wait_ready, ProbeContext};

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
    /// At most this many stops or starts at once (0 counts as 1).
    pub jobs: usize,
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
    /// Stops that succeeded, in completion order.
    stopped: Vec<&'p PlanItem>,
    /// Starts that succeeded (and were ready), in completion order.
    started: Vec<&'p PlanItem>,
    /// Starts that failed besides the first failure, while it was being
    /// handled: they get a cleanup stop too.
    also_failed: Vec<&'p PlanItem>,
}

/// Executes `plan`: stops, then starts, each phase along the dependency
/// DAG with up to `ctx.jobs` steps at once.
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
        also_failed: Vec::new(),
    };
    for s in &plan.skipped {
        ctx.progress.event(&Event::Skipping {
            name: &s.name,
            reason: &s.reason,
        });
    }
    if !plan.is_empty() {
        ctx.progress.event(&Event::Plan {
            stops: plan.stops.len(),
            starts: plan.starts.len(),
            jobs: ctx.jobs.max(1),
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

/// How one step of a phase ended.
enum Outcome {
    Done,
    /// Failed, but the switch goes on (stop of a removed instance).
    Warned(String),
    Failed(anyhow::Error),
}

/// For each item, the indices of earlier items that must complete before
/// it begins. `edges(i)` names the instances item `i` waits for (stops:
/// its dependents; starts: its dependencies); only items earlier in the
/// list count, which keeps the graph acyclic and `jobs = 1` in plan order.
fn prerequisites(items: &[PlanItem], waits_for: &HashMap<&str, Vec<&str>>) -> Vec<Vec<usize>> {
    let index: HashMap<&str, usize> = items
        .iter()
        .enumerate()
        .map(|(i, it)| (it.name.as_str(), i))
        .collect();
    items
        .iter()
        .enumerate()
        .map(|(i, it)| {
            let mut pre: Vec<usize> = waits_for
                .get(it.name.as_str())
                .into_iter()
                .flatten()
                .filter_map(|n| index.get(n).copied())
                .filter(|&j| j < i)
                .collect();
            pre.sort_unstable();
            pre.dedup();
            pre
        })
        .collect()
}

struct Queue {
    /// Items whose prerequisites completed, not yet begun (smallest index
    /// first: plan order).
    ready: BTreeSet<usize>,
    /// Prerequisites not yet completed, per item.
    waiting: Vec<usize>,
    running: usize,
    failed: bool,
    /// Completed items in completion order.
    done: Vec<(usize, Outcome)>,
}

/// Runs `step` on every item along the DAG `pre` with at most `jobs` at
/// once; stops scheduling after the first [`Outcome::Failed`]. Returns the
/// completed items in completion order.
fn run_phase(
    items: &[PlanItem],
    pre: &[Vec<usize>],
    jobs: usize,
    step: &(dyn Fn(&PlanItem) -> Outcome + Sync),
) -> Vec<(usize, Outcome)> {
    let n = items.len();
    if n == 0 {
        return Vec::new();
    }
    let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (i, p) in pre.iter().enumerate() {
        for &j in p {
            dependents[j].push(i);
        }
    }
    let queue = Mutex::new(Queue {
        ready: (0..n).filter(|&i| pre[i].is_empty()).collect(),
        waiting: pre.iter().map(Vec::len).collect(),
        running: 0,
        failed: false,
        done: Vec::with_capacity(n),
    });
    let wake = Condvar::new();
    let lock = || queue.lock().unwrap_or_else(|e| e.into_inner());
    let worker = || loop {
        let mut q = lock();
        let i = loop {
            if q.failed {
                return;
            }
            if let Some(i) = q.ready.pop_first() {
                break i;
            }
            if q.running == 0 {
                // Nothing runs that could make more items ready.
                return;
            }
            q = wake.wait(q).unwrap_or_else(|e| e.into_inner());
        };
        q.running += 1;
        drop(q);
        let outcome = step(&items[i]);
        let mut q = lock();
        q.running -= 1;
        match outcome {
            Outcome::Failed(_) => q.failed = true,
            _ => {
                for &d in &dependents[i] {
                    q.waiting[d] -= 1;
                    if q.waiting[d] == 0 {
                        q.ready.insert(d);
                    }
                }
            }
        }
        q.done.push((i, outcome));
        drop(q);
        wake.notify_all();
    };
    let threads = jobs.clamp(1, n);
    if threads == 1 {
        worker();
    } else {
        std::thread::scope(|scope| {
            for _ in 0..threads {
                scope.spawn(worker);
            }
        });
    }
    queue.into_inner().unwrap_or_else(|e| e.into_inner()).done
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
        let ctx = self.ctx;
        let old_profile = self.old_profile();
        // A stop waits for the instances that depend on it.
        let mut dependents: HashMap<&str, Vec<&str>> = HashMap::new();
        for it in &plan.stops {
            for d in &it.instance.dependencies {
                dependents.entry(d.as_str()).or_default().push(&it.name);
            }
        }
        let pre = prerequisites(&plan.stops, &dependents);
        let step = |item: &PlanItem| {
            ctx.progress.event(&Event::Stopping {
                name: &item.name,
                reason: &item.reason,
            });
            let t0 = Instant::now();
            match ctx.activator.stop(old_profile, &item.instance) {
                Ok(()) => {
                    ctx.progress.event(&Event::Done {
                        action: Action::Stop,
                        name: &item.name,
                        after: t0.elapsed(),
                    });
                    Outcome::Done
                }
                // Not restarted by a rollback, not in the new
                // configuration: nixproc no longer tracks it.
                Err(e) if item.reason == Reason::Removed => Outcome::Warned(format!(
                    "stopping {} (removed) failed; it may already have been stopped: {e:#}",
                    item.name
                )),
                Err(e) => Outcome::Failed(e),
            }
        };
        let done = run_phase(&plan.stops, &pre, ctx.jobs, &step);
        let mut failure = None;
        for (i, outcome) in done {
            let item = &plan.stops[i];
            match outcome {
                Outcome::Done => {
                    self.running.remove(&item.name);
                    self.stopped.push(item);
                    self.report.stopped.push(Self::step(item));
                }
                Outcome::Warned(w) => {
                    self.running.remove(&item.name);
                    self.warn(w);
                }
                Outcome::Failed(e) if failure.is_none() => failure = Some((item, e)),
                Outcome::Failed(e) => self.warn(format!(
                    "stopping {} ({}) failed as well: {e:#}",
                    item.name, item.reason
                )),
            }
        }
        match failure {
            Some((item, e)) => Err(self.fail(item, e, true)),
            None => Ok(()),
        }
    }

    fn starts(&mut self) -> Result<(), DeployError> {
        let plan = self.plan;
        let ctx = self.ctx;
        let dependencies: HashMap<&str, Vec<&str>> = plan
            .starts
            .iter()
            .map(|it| {
                let deps = it.instance.dependencies.iter().map(String::as_str);
                (it.name.as_str(), deps.collect())
            })
            .collect();
        let pre = prerequisites(&plan.starts, &dependencies);
        let step = |item: &PlanItem| {
            ctx.progress.event(&Event::Starting {
                name: &item.name,
                reason: &item.reason,
            });
            let probe = match item.instance.readiness {
                Some(_) => ProbeContext::before_start(&item.instance),
                None => ProbeContext::default(),
            };
            let t0 = Instant::now();
            if let Err(e) = ctx.activator.start(ctx.new_profile, &item.instance) {
                return Outcome::Failed(e);
            }
            let after = t0.elapsed();
            if let Err(e) = wait_ready(&item.instance, &probe, t0, ctx.progress) {
                return Outcome::Failed(e);
            }
            ctx.progress.event(&Event::Done {
                action: Action::Start,
                name: &item.name,
                after,
            });
            Outcome::Done
        };
        let done = run_phase(&plan.starts, &pre, ctx.jobs, &step);
        let mut failure = None;
        for (i, outcome) in done {
            let item = &plan.starts[i];
            match outcome {
                Outcome::Done | Outcome::Warned(_) => {
                    self.running
                        .insert(item.name.clone(), item.instance.revision.clone());
                    self.started.push(item);
                    self.report.started.push(Self::step(item));
                }
                Outcome::Failed(e) if failure.is_none() => failure = Some((item, e)),
                Outcome::Failed(e) => {
                    self.warn(format!(
                        "starting {} ({}) failed as well: {e:#}",
                        item.name, item.reason
                    ));
                    self.also_failed.push(item);
                }
            }
        }
        match failure {
            Some((item, e)) => Err(self.fail(item, e, true)),
            None => Ok(()),
        }
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
                if result.is_ok() {
                    ctx.progress.event(&Event::Restored {
                        action,
                        name: &it.name,
                        side,
                    });
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
        for it in std::mem::take(&mut self.also_failed) {
            undo(self, Action::Stop, it, Side::New, true);
            started_new.push(it.name.clone());
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
                jobs: 1,
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

#[cfg(test)]
mod parallel {
    use std::collections::HashMap;
    use std::path::PathBuf;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use nixproc_core::lifecycle::{Readiness, ReadinessCheck};
    use nixproc_core::manifest::{InstanceEntry, Manifest};

    use super::*;
    use crate::deploy::activator::InstanceStatus;
    use crate::deploy::plan::plan;
    use crate::deploy::progress::RecordingProgress;
    use crate::deploy::testutil::{inst, manifest};

    /// One call of the fake activator: which, on which side, when.
    #[derive(Debug, Clone)]
    struct Call {
        action: Action,
        name: String,
        profile: PathBuf,
        begin: Instant,
        end: Instant,
    }

    /// An activator whose steps sleep; records every call with its begin
    /// and end, and the highest number of calls at once.
    #[derive(Default)]
    struct Timed {
        delay: HashMap<String, Duration>,
        default_delay: Duration,
        fail_start: Option<String>,
        /// Appends `<name> ready` to this file this long after the start.
        ready_line: HashMap<String, (PathBuf, Duration)>,
        calls: Mutex<Vec<Call>>,
        now: AtomicUsize,
        max: AtomicUsize,
    }

    impl Timed {
        fn step(&self, action: Action, profile: &Path, inst: &InstanceEntry) -> anyhow::Result<()> {
            let begin = Instant::now();
            let n = self.now.fetch_add(1, Ordering::SeqCst) + 1;
            self.max.fetch_max(n, Ordering::SeqCst);
            std::thread::sleep(*self.delay.get(&inst.name).unwrap_or(&self.default_delay));
            self.now.fetch_sub(1, Ordering::SeqCst);
            self.calls.lock().unwrap().push(Call {
                action,
                name: inst.name.clone(),
                profile: profile.to_path_buf(),
                begin,
                end: Instant::now(),
            });
            if action == Action::Start {
                if self.fail_start.as_deref() == Some(inst.name.as_str())
                    && profile.ends_with("new")
                {
                    anyhow::bail!("{} would not start", inst.name);
                }
                if let Some((file, after)) = self.ready_line.get(&inst.name) {
                    let (file, after, name) = (file.clone(), *after, inst.name.clone());
                    std::thread::spawn(move || {
                        std::thread::sleep(after);
                        let mut f = std::fs::OpenOptions::new()
                            .append(true)
                            .create(true)
                            .open(file)
                            .unwrap();
                        std::io::Write::write_all(&mut f, format!("{name} ready\n").as_bytes())
                            .unwrap();
                    });
                }
            }
            Ok(())
        }

        fn calls(&self) -> Vec<Call> {
            self.calls.lock().unwrap().clone()
        }

        fn call(&self, action: Action, name: &str) -> Call {
            self.calls()
                .into_iter()
                .find(|c| c.action == action && c.name == name)
                .unwrap_or_else(|| panic!("no {action} of {name}"))
        }
    }

    impl Activator for Timed {
        fn process_manager(&self) -> &str {
            "sysvinit"
        }
        fn start(&self, profile: &Path, inst: &InstanceEntry) -> anyhow::Result<()> {
            self.step(Action::Start, profile, inst)
        }
        fn stop(&self, profile: &Path, inst: &InstanceEntry) -> anyhow::Result<()> {
            self.step(Action::Stop, profile, inst)
        }
        fn status(&self, _: &Path, _: &InstanceEntry) -> anyhow::Result<InstanceStatus> {
            Ok(InstanceStatus::Running)
        }
    }

    fn exec(
        act: &Timed,
        old: &Manifest,
        new: &Manifest,
        jobs: usize,
    ) -> (Result<Report, DeployError>, RecordingProgress) {
        let progress = RecordingProgress::default();
        let ctx = Context {
            old_profile: Some(Path::new("/old")),
            new_profile: Path::new("/new"),
            activator: act,
            progress: &progress,
            hooks: &NoHooks,
            jobs,
        };
        (execute(&plan(old, new), &ctx), progress)
    }

    fn empty() -> Manifest {
        manifest(vec![])
    }

    fn independent(n: usize, rev: &str) -> Manifest {
        manifest(
            (0..n)
                .map(|i| inst(&format!("webapp{i:03}"), rev, &[]))
                .collect(),
        )
    }

    /// The reference workload: chains of 10 (webapp i depends on
    /// webapp i-1 unless i-1 is a multiple of 10) and a proxy on all.
    fn chains(n: usize, rev: &str) -> Manifest {
        let mut v: Vec<InstanceEntry> = (1..=n)
            .map(|i| {
                let dep = format!("webapp{}", i - 1);
                let deps: Vec<&str> = if i > 1 && (i - 1) % 10 != 0 {
                    vec![&dep]
                } else {
                    vec![]
                };
                inst(&format!("webapp{i}"), rev, &deps)
            })
            .collect();
        let names: Vec<String> = v.iter().map(|e| e.name.clone()).collect();
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        v.push(inst("nginx", rev, &refs));
        manifest(v)
    }

    #[test]
    fn hundred_independent_half_second_starts_finish_well_under_ten_seconds() {
        let act = Timed {
            default_delay: Duration::from_millis(500),
            ..Default::default()
        };
        let began = Instant::now();
        let (r, progress) = exec(&act, &empty(), &independent(100, "1"), 32);
        let took = began.elapsed();
        let report = r.unwrap();
        assert_eq!(report.started.len(), 100);
        assert_eq!(report.running.len(), 100);
        // The bound (sequential would be 50 s); 4 rounds of 0.5 s.
        assert!(took < Duration::from_secs(10), "took {took:?}");
        assert_eq!(act.max.load(Ordering::SeqCst), 32);
        eprintln!("100 × 0.5 s starts with 32 jobs: {took:?}");
        assert_eq!(
            progress.all_lines()[0],
            "0 to stop, 100 to start (32 at a time)"
        );
    }

    #[test]
    fn dependency_order_is_never_violated() {
        let mut act = Timed {
            default_delay: Duration::from_millis(3),
            ..Default::default()
        };
        // Uneven durations so completion order differs from plan order.
        for i in (1..=40).step_by(3) {
            act.delay
                .insert(format!("webapp{i}"), Duration::from_millis(15));
        }
        let v1 = chains(40, "1");
        let (r, _) = exec(&act, &empty(), &v1, 8);
        r.unwrap();
        let check_starts = |act: &Timed, m: &Manifest| {
            for e in &m.instances {
                let me = act.call(Action::Start, &e.name);
                for d in &e.dependencies {
                    let dep = act.call(Action::Start, d);
                    assert!(dep.end <= me.begin, "{} started before {d} was up", e.name);
                }
            }
        };
        check_starts(&act, &v1);
        assert!(act.max.load(Ordering::SeqCst) > 1, "ran in parallel");
        // Upgrade of everything: stops wait for their dependents.
        let act2 = Timed {
            delay: act.delay.clone(),
            default_delay: Duration::from_millis(3),
            ..Default::default()
        };
        let v2 = chains(40, "2");
        let (r, _) = exec(&act2, &v1, &v2, 8);
        let report = r.unwrap();
        for e in &v1.instances {
            let me = act2.call(Action::Stop, &e.name);
            for d in &e.dependencies {
                let dep = act2.call(Action::Stop, d);
                assert!(
                    me.end <= dep.begin,
                    "{d} stopped before its dependent {}",
                    e.name
                );
            }
        }
        check_starts(&act2, &v2);
        let last_stop = act2
            .calls()
            .iter()
            .filter(|c| c.action == Action::Stop)
            .map(|c| c.end)
            .max()
            .unwrap();
        let first_start = act2
            .calls()
            .iter()
            .filter(|c| c.action == Action::Start)
            .map(|c| c.begin)
            .min()
            .unwrap();
        assert!(last_stop <= first_start, "phases do not overlap");
        // `running` stays sorted whatever the completion order.
        let names: Vec<&str> = report.running.iter().map(|a| a.name.as_str()).collect();
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(names, sorted);
    }

    #[test]
    fn one_job_is_sequential_in_plan_order() {
        let act = Timed::default();
        let v1 = chains(15, "1");
        let (r, _) = exec(&act, &empty(), &v1, 1);
        r.unwrap();
        assert_eq!(act.max.load(Ordering::SeqCst), 1);
        let order: Vec<String> = act.calls().into_iter().map(|c| c.name).collect();
        let planned: Vec<String> = plan(&empty(), &v1)
            .starts
            .into_iter()
            .map(|i| i.name)
            .collect();
        assert_eq!(order, planned);
        let act = Timed {
            default_delay: Duration::from_millis(20),
            ..Default::default()
        };
        exec(&act, &empty(), &independent(12, "1"), 4).0.unwrap();
        assert_eq!(act.max.load(Ordering::SeqCst), 4, "at most `jobs` at once");
    }

    #[test]
    fn a_failure_in_the_middle_stops_scheduling_and_rolls_back() {
        let v1 = chains(30, "1");
        let v2 = chains(30, "2");
        let act = Timed {
            default_delay: Duration::from_millis(5),
            fail_start: Some("webapp13".into()),
            ..Default::default()
        };
        let (r, _) = exec(&act, &v1, &v2, 6);
        let err = r.unwrap_err();
        let DeployError::Activation(failure) = &err else {
            panic!("{err}")
        };
        assert_eq!(failure.failed.name, "webapp13");
        assert_eq!(failure.failed.error, "webapp13 would not start");
        assert!(failure.restored(), "{err}");
        // The old versions run again, all of them.
        let running: Vec<String> = failure
            .report
            .running
            .iter()
            .map(|a| format!("{}-{}", a.name, a.revision))
            .collect();
        let mut want: Vec<String> = v1
            .instances
            .iter()
            .map(|e| format!("{}-1", e.name))
            .collect();
        want.sort();
        assert_eq!(running, want);
        // webapp14 depends on webapp13: never started; nginx neither.
        let calls = act.calls();
        let new_starts = |n: &str| {
            calls
                .iter()
                .filter(|c| c.action == Action::Start && c.name == n && c.profile.ends_with("new"))
                .count()
        };
        assert_eq!(new_starts("webapp14"), 0);
        assert_eq!(new_starts("nginx"), 0);
        // Every new version that started was stopped again, before any old
        // version was started; the old ones restart in dependency order.
        let started_new: Vec<&Call> = calls
            .iter()
            .filter(|c| c.action == Action::Start && c.profile.ends_with("new"))
            .collect();
        let restarted_old: Vec<&Call> = calls
            .iter()
            .filter(|c| c.action == Action::Start && c.profile.ends_with("old"))
            .collect();
        assert_eq!(restarted_old.len(), v1.instances.len());
        let first_old = restarted_old.iter().map(|c| c.begin).min().unwrap();
        for s in &started_new {
            let stopped_again = calls.iter().any(|c| {
                c.action == Action::Stop
                    && c.name == s.name
                    && c.profile.ends_with("new")
                    && c.end <= first_old
            });
            assert!(
                stopped_again,
                "{} (new) not stopped before the old ones",
                s.name
            );
        }
        for e in &v1.instances {
            let me = restarted_old.iter().find(|c| c.name == e.name).unwrap();
            for d in &e.dependencies {
                let dep = restarted_old.iter().find(|c| &c.name == d).unwrap();
                assert!(
                    dep.end <= me.begin,
                    "rollback started {} before {d}",
                    e.name
                );
            }
        }
    }

    fn with_log_readiness(mut e: InstanceEntry, log: &Path, timeout: u64) -> InstanceEntry {
        e.readiness = Some(Readiness {
            checks: vec![ReadinessCheck::LogLine {
                file: Some(log.to_string_lossy().into()),
                contains: format!("{} ready", e.name),
            }],
            timeout,
            interval: 20,
        });
        e
    }

    #[test]
    fn a_dependent_starts_only_when_its_dependency_is_ready() {
        let tmp = tempfile::tempdir().unwrap();
        let log = tmp.path().join("db.log");
        let db = with_log_readiness(inst("db", "1", &[]), &log, 20);
        let m = manifest(vec![db, inst("web", "1", &["db"]), inst("other", "1", &[])]);
        let act = Timed {
            ready_line: [("db".to_string(), (log.clone(), Duration::from_millis(400)))].into(),
            ..Default::default()
        };
        let (r, progress) = exec(&act, &empty(), &m, 4);
        r.unwrap();
        let db_start = act.call(Action::Start, "db");
        let web = act.call(Action::Start, "web");
        let other = act.call(Action::Start, "other");
        assert!(
            web.begin >= db_start.end + Duration::from_millis(400),
            "web began {:?} after db's start returned",
            web.begin - db_start.end
        );
        assert!(
            other.begin < db_start.end + Duration::from_millis(400),
            "independent of db"
        );
        let lines = progress.all_lines();
        let pos = |prefix: &str| {
            lines
                .iter()
                .position(|l| l.starts_with(prefix))
                .unwrap_or_else(|| panic!("no {prefix:?} in {lines:?}"))
        };
        assert!(
            pos("waiting for db to be ready (log-line \"db ready\" in ") < pos("db is ready (")
        );
        assert!(pos("db is ready (") < pos("starting web"));
    }

    #[test]
    fn a_readiness_timeout_fails_the_start_and_rolls_back() {
        let tmp = tempfile::tempdir().unwrap();
        let log = tmp.path().join("db.log");
        let old = manifest(vec![inst("db", "1", &[]), inst("web", "1", &["db"])]);
        let new = manifest(vec![
            with_log_readiness(inst("db", "2", &[]), &log, 1),
            inst("web", "1", &["db"]),
        ]);
        let act = Timed::default();
        let (r, _) = exec(&act, &old, &new, 4);
        let err = r.unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.starts_with(&format!(
                "starting db (changed) failed: db is not ready: log-line \"db ready\" in {}: \
                 no such file or directory after 1 s\n",
                log.display()
            )),
            "{msg}"
        );
        assert!(
            msg.ends_with(
                "rolled back: stopped db (new, cleanup), started db (old), started web (old)\n\
                 the previous generation's processes are running again"
            ),
            "{msg}"
        );
        assert!(act
            .calls()
            .iter()
            .all(|c| !(c.name == "web" && c.profile.ends_with("new"))));
    }
}
