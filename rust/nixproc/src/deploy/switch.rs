//! A whole switch: lock the profile, find the old and new profile, plan,
//! (init state,) execute, record the generation.
//!
//! Interrupted switches converge: before the first stop or start, a
//! journal `<profile-dir>/<name>.switch.json` is written (a header line
//! with the old and new profile, then one JSON line as each step begins
//! and when it is done, rollback steps included); it is removed once the
//! generation is recorded (or the rollback completed). A switch that finds
//! a journal first replays it to learn what actually runs — which
//! instances run their old version, which the interrupted target's, which
//! none, and which were between two states — and restores the old
//! generation's processes (stopping what the interrupted switch started,
//! starting what it stopped, journaling these steps too), then switches
//! as usual. If the interrupted switch had already recorded its
//! generation, the journal is just removed.
//!
//! Fault points for tests (`NIXPROC_FAULT=switch.<point>` SIGKILLs the
//! process there): `after-plan`, `after-first-stop`, `between-phases`,
//! `after-first-start`, `before-record`.

use std::collections::HashMap;
use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use anyhow::{bail, Context as _, Result};
use nixproc_core::manifest::Manifest;
use serde::{Deserialize, Serialize};

use super::activator::Activator;
use super::credentials::{AccountChanges, AccountSteps, Created};
use super::engine::{execute, Context, DeployError, HookFailure, NoHooks, PhaseHooks, Report};
use super::manifest::read_manifest;
use super::plan::{plan_with, Action, Plan, PlanOptions, Side};
use super::progress::{Event, Progress, StderrProgress};
use crate::generations::{Generation, Profile};
use crate::lock::LockMode;
use crate::state_dirs::{init_state, StateDirs};

/// What to deploy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A built profile (store path, or a symlink to one such as `result`);
    /// recorded as a new generation unless the newest one is the same path.
    Profile(PathBuf),
    /// The generation just below the current one; no new generation.
    Rollback,
    /// An existing generation; no new generation.
    Generation(u64),
}

/// A plan together with what it was made from (`--dry-run`, `--json`).
#[derive(Debug, Clone, Serialize)]
pub struct PreparedPlan {
    /// The profile stops run from; `None` on a first deployment.
    pub old_profile: Option<PathBuf>,
    pub new_profile: PathBuf,
    /// The existing generation the switch goes to (rollback,
    /// switch-generation); `None` for a new profile.
    pub generation: Option<u64>,
    pub plan: Plan,
    #[serde(skip)]
    pub old_manifest: Manifest,
    #[serde(skip)]
    pub new_manifest: Manifest,
}

/// A successful switch.
#[derive(Debug, Clone, Serialize)]
pub struct SwitchOutcome {
    pub plan: Plan,
    pub report: Report,
    /// The generation that is current now.
    pub generation: Generation,
}

/// What other subsystems (state management) do around a switch. Every
/// method has a do-nothing default.
pub trait SwitchHooks: Sync {
    /// The plan is made and the profile lock held; nothing stopped yet. An
    /// error aborts the switch before anything changes.
    fn before_stops(&self, _prepared: &PreparedPlan) -> Result<()> {
        Ok(())
    }
    /// See [`PhaseHooks::after_stops`].
    fn after_stops(&self, _prepared: &PreparedPlan) -> Result<(), HookFailure> {
        Ok(())
    }
    /// See [`PhaseHooks::after_starts`].
    fn after_starts(&self, _prepared: &PreparedPlan) -> Result<(), HookFailure> {
        Ok(())
    }
    /// See [`PhaseHooks::before_restarting_old`].
    fn before_restarting_old(
        &self,
        _prepared: &PreparedPlan,
        _started_new: &[String],
    ) -> Vec<String> {
        Vec::new()
    }
}

/// [`SwitchHooks`] bound to one prepared plan, as the engine calls them.
struct Bound<'a> {
    hooks: Option<&'a dyn SwitchHooks>,
    prepared: &'a PreparedPlan,
}

impl PhaseHooks for Bound<'_> {
    fn after_stops(&self) -> Result<(), HookFailure> {
        fault("switch.between-phases");
        match self.hooks {
            Some(h) => h.after_stops(self.prepared),
            None => Ok(()),
        }
    }
    fn after_starts(&self) -> Result<(), HookFailure> {
        match self.hooks {
            Some(h) => h.after_starts(self.prepared),
            None => Ok(()),
        }
    }
    fn before_restarting_old(&self, started_new: &[String]) -> Vec<String> {
        match self.hooks {
            Some(h) => h.before_restarting_old(self.prepared, started_new),
            None => Vec::new(),
        }
    }
}

use nixproc_state::faults::point as fault;
/// The fault points of a switch (`NIXPROC_FAULT`), for tests.
pub use nixproc_state::faults::SWITCH_POINTS as FAULT_POINTS;

/// The journal's first line.
#[derive(Debug, Serialize, Deserialize)]
struct JournalHeader {
    journal: u32,
    old_profile: Option<PathBuf>,
    new_profile: PathBuf,
}

/// One step of a switch, journaled when it begins and when it is done.
#[derive(Debug, Serialize, Deserialize)]
struct JournalStep {
    done: bool,
    action: Action,
    name: String,
    side: Side,
}

/// An open journal; appends one line per record (`O_APPEND`, a single
/// write each: a killed process leaves whole lines, or a torn last line
/// that replay ignores).
struct Journal {
    path: PathBuf,
    file: Mutex<fs::File>,
}

impl Journal {
    fn path_for(profile: &Profile) -> PathBuf {
        profile
            .dir()
            .join(format!("{}.switch.json", profile.name()))
    }

    fn create(profile: &Profile, old: Option<&Path>, new: &Path) -> Result<Self> {
        let path = Self::path_for(profile);
        let header = JournalHeader {
            journal: 1,
            old_profile: old.map(Path::to_path_buf),
            new_profile: new.to_path_buf(),
        };
        let tmp = path.with_extension("json.new");
        let mut text = serde_json::to_string(&header)?;
        text.push('\n');
        fs::write(&tmp, text).with_context(|| format!("writing {}", tmp.display()))?;
        fs::rename(&tmp, &path).with_context(|| format!("writing {}", path.display()))?;
        Self::open(path)
    }

    fn open(path: PathBuf) -> Result<Self> {
        let mut file = fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .with_context(|| format!("opening {}", path.display()))?;
        // End a torn last line, so the next record is a line of its own.
        let text = fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        if text.last().is_some_and(|b| *b != b'\n') {
            file.write_all(b"\n")?;
        }
        Ok(Journal {
            path,
            file: Mutex::new(file),
        })
    }

    fn record(&self, done: bool, action: Action, name: &str, side: Side) {
        let step = JournalStep {
            done,
            action,
            name: name.to_string(),
            side,
        };
        let mut line = serde_json::to_string(&step).unwrap_or_default();
        line.push('\n');
        let mut f = self.file.lock().unwrap_or_else(|e| e.into_inner());
        // A journal that cannot be written only weakens the recovery of a
        // switch that is interrupted as well; the switch itself goes on.
        let _ = f.write_all(line.as_bytes());
    }

    fn remove(self) -> Result<()> {
        fs::remove_file(&self.path).with_context(|| format!("removing {}", self.path.display()))
    }
}

/// Reads a journal: the header and the steps (a torn last line is
/// ignored).
fn read_journal(path: &Path) -> Result<(JournalHeader, Vec<JournalStep>)> {
    let text = fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut lines = text.lines();
    let header: JournalHeader = serde_json::from_str(lines.next().unwrap_or(""))
        .with_context(|| format!("{}: bad header", path.display()))?;
    let steps = lines
        .filter_map(|l| serde_json::from_str::<JournalStep>(l).ok())
        .collect();
    Ok((header, steps))
}

/// What runs of an instance, according to a journal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Actual {
    Runs(Side),
    /// A start or stop of this version began and did not finish.
    Maybe(Side),
    Stopped,
}

/// Replays the steps over `initial` (the old generation's instances run).
fn replay(initial: &[String], steps: &[JournalStep]) -> HashMap<String, Actual> {
    let mut state: HashMap<String, Actual> = initial
        .iter()
        .map(|n| (n.clone(), Actual::Runs(Side::Old)))
        .collect();
    for s in steps {
        let next = match (s.done, s.action) {
            (true, Action::Start) => Actual::Runs(s.side),
            (true, Action::Stop) => Actual::Stopped,
            (false, _) => Actual::Maybe(s.side),
        };
        state.insert(s.name.clone(), next);
    }
    state
}

/// Journals the steps the engine reports and reaches the per-step fault
/// points; passes every event on.
struct Journaling<'a> {
    inner: &'a dyn Progress,
    journal: &'a Journal,
    first_stop: AtomicBool,
    first_start: AtomicBool,
}

impl Progress for Journaling<'_> {
    fn event(&self, event: &Event<'_>) {
        match *event {
            Event::Stopping { name, .. } => {
                self.journal.record(false, Action::Stop, name, Side::Old)
            }
            Event::Starting { name, .. } => {
                self.journal.record(false, Action::Start, name, Side::New)
            }
            Event::Restoring { action, name, side } => {
                self.journal.record(false, action, name, side)
            }
            Event::Restored { action, name, side } => self.journal.record(true, action, name, side),
            Event::Done { action, name, .. } => {
                let side = match action {
                    Action::Stop => Side::Old,
                    Action::Start => Side::New,
                };
                self.journal.record(true, action, name, side);
            }
            _ => {}
        }
        self.inner.event(event);
        if let Event::Done { action, .. } = event {
            let (flag, point) = match action {
                Action::Stop => (&self.first_stop, "switch.after-first-stop"),
                Action::Start => (&self.first_start, "switch.after-first-start"),
            };
            if !flag.swap(true, Ordering::SeqCst) {
                fault(point);
            }
        }
    }
}

/// Configures and runs switches on one profile.
pub struct Switch<'a> {
    profile: &'a Profile,
    activator: &'a dyn Activator,
    progress: &'a dyn Progress,
    lock_mode: LockMode,
    plan_options: PlanOptions,
    old_profile: Option<PathBuf>,
    state: Option<(&'a StateDirs, bool)>,
    accounts: Option<&'a dyn AccountSteps>,
    hooks: Option<&'a dyn SwitchHooks>,
    jobs: usize,
}

impl<'a> Switch<'a> {
    /// Progress on stderr, waiting for the lock, dependents restart.
    pub fn new(profile: &'a Profile, activator: &'a dyn Activator) -> Self {
        Switch {
            profile,
            activator,
            progress: &StderrProgress,
            lock_mode: LockMode::Wait,
            plan_options: PlanOptions::default(),
            old_profile: None,
            state: None,
            accounts: None,
            hooks: None,
            jobs: 1,
        }
    }

    /// State snapshots, restores and migrations around the activation.
    pub fn hooks(mut self, hooks: &'a dyn SwitchHooks) -> Self {
        self.hooks = Some(hooks);
        self
    }

    /// `--jobs`: at most this many starts or stops at once (0 = 1).
    pub fn jobs(mut self, jobs: usize) -> Self {
        self.jobs = jobs.max(1);
        self
    }

    pub fn progress(mut self, progress: &'a dyn Progress) -> Self {
        self.progress = progress;
        self
    }

    /// [`LockMode::NoWait`] for `--no-wait`.
    pub fn lock_mode(mut self, mode: LockMode) -> Self {
        self.lock_mode = mode;
        self
    }

    pub fn plan_options(mut self, options: PlanOptions) -> Self {
        self.plan_options = options;
        self
    }

    /// `--old-profile`: diff against this profile instead of the current
    /// generation.
    pub fn old_profile(mut self, old: Option<PathBuf>) -> Self {
        self.old_profile = old;
        self
    }

    /// Create the users and groups the new profile declares before
    /// activating, and remove the obsolete ones afterwards (reference §5.6).
    pub fn accounts(mut self, accounts: &'a dyn AccountSteps) -> Self {
        self.accounts = Some(accounts);
        self
    }

    /// Run `init_state(dirs, force_disable_user_change)` before activating
    /// (as the original deploy tools do).
    pub fn init_state(mut self, dirs: &'a StateDirs, force_disable_user_change: bool) -> Self {
        self.state = Some((dirs, force_disable_user_change));
        self
    }

    /// Plans without changing anything (`--dry-run`). Takes no lock.
    pub fn plan(&self, target: &Target) -> Result<PreparedPlan> {
        let (new_profile, generation) = match target {
            Target::Profile(path) => (canonical(path)?, None),
            Target::Rollback => {
                let g = self.profile.rollback_target()?;
                (canonical(&g.store_path)?, Some(g.number))
            }
            Target::Generation(n) => {
                let g = self.profile.generation(*n)?;
                (canonical(&g.store_path)?, Some(g.number))
            }
        };
        let old_profile = match &self.old_profile {
            Some(p) => Some(canonical(p)?),
            None => match self.profile.current()? {
                Some(g) => Some(canonical(&g.store_path).with_context(|| {
                    format!(
                        "the current generation {} of {}",
                        g.number,
                        self.profile.path().display()
                    )
                })?),
                None => None,
            },
        };
        let pm = self.activator.process_manager();
        let new_manifest = read_manifest(&new_profile)?;
        let old_manifest = match &old_profile {
            Some(p) => read_manifest(p)?,
            None => Manifest::empty(pm),
        };
        for (m, which, path) in [
            (&new_manifest, "new", Some(&new_profile)),
            (&old_manifest, "old", old_profile.as_ref()),
        ] {
            if !m.instances.is_empty() && m.process_manager != pm {
                bail!(
                    "the {which} profile {} is for process manager `{}`, not `{pm}`",
                    path.map(|p| p.display().to_string()).unwrap_or_default(),
                    m.process_manager
                );
            }
        }
        let mut plan = plan_with(&old_manifest, &new_manifest, &self.plan_options);
        plan.skip_where(|inst| self.activator.skip_reason(inst));
        Ok(PreparedPlan {
            old_profile,
            new_profile,
            generation,
            plan,
            old_manifest,
            new_manifest,
        })
    }

    /// Deploys `target` under the profile lock and records the generation.
    /// On failure the processes are rolled back and the profile is left at
    /// the previous generation.
    pub fn run(&self, target: &Target) -> Result<SwitchOutcome, DeployError> {
        let profile_path = self.profile.path();
        let _lock = self.profile.lock(self.lock_mode, &|| {
            self.progress.event(&Event::WaitingForLock {
                profile: &profile_path,
            })
        })?;
        let prepared = self.plan(target)?;
        if let Some((dirs, force_disable_user_change)) = self.state {
            init_state(dirs, force_disable_user_change)?;
        }
        // The current generation stays what it is: the plan holds.
        self.recover()?;
        let bound = Bound {
            hooks: self.hooks,
            prepared: &prepared,
        };
        self.activator
            .prepare(&prepared.new_profile, &prepared.new_manifest)
            .context("preparing the process manager")?;
        let accounts = match self.accounts.map(|a| (a, a.ensure(&prepared.new_profile))) {
            Some((a, Ok(changes))) => {
                self.report_accounts(&changes.created, "created");
                Some((a, changes))
            }
            Some((_, Err(e))) => {
                // Nothing was stopped or started: let the activator settle
                // on the old state (e.g. stop a supervisord `prepare` began).
                self.settle_on_old(&prepared);
                return Err(e.context("creating the profile's users and groups").into());
            }
            None => None,
        };
        if let Some(h) = self.hooks {
            if let Err(e) = h.before_stops(&prepared) {
                self.undo_accounts(accounts.as_ref().map(|(a, c)| (*a, c)));
                self.settle_on_old(&prepared);
                return Err(e.into());
            }
        }
        let journal = if prepared.plan.is_empty() {
            None
        } else {
            Some(
                Journal::create(
                    self.profile,
                    prepared.old_profile.as_deref(),
                    &prepared.new_profile,
                )
                .context("writing the switch journal")?,
            )
        };
        fault("switch.after-plan");
        let journaling = journal.as_ref().map(|journal| Journaling {
            inner: self.progress,
            journal,
            first_stop: AtomicBool::new(false),
            first_start: AtomicBool::new(false),
        });
        let ctx = Context {
            old_profile: prepared.old_profile.as_deref(),
            new_profile: &prepared.new_profile,
            activator: self.activator,
            progress: match &journaling {
                Some(j) => j,
                None => self.progress,
            },
            hooks: if self.hooks.is_some() || journal.is_some() {
                &bound
            } else {
                &NoHooks
            },
            jobs: self.jobs,
        };
        let mut report = match execute(&prepared.plan, &ctx) {
            Ok(r) => r,
            Err(e) => {
                // A complete rollback restored the old generation's
                // processes: nothing to recover. Otherwise the journal says
                // what runs, for the next switch.
                let restored = match &e {
                    DeployError::Activation(f) => f.restored(),
                    _ => true,
                };
                if let (Some(j), true) = (journal, restored) {
                    let _ = j.remove();
                }
                self.undo_accounts(accounts.as_ref().map(|(a, c)| (*a, c)));
                // The old generation is what runs now (the engine rolled
                // back): let the activator settle on it, e.g. stop a process
                // manager it started for a first deployment that failed.
                self.settle_on_old(&prepared);
                return Err(e);
            }
        };
        if let Some((a, _)) = &accounts {
            match a.remove_obsolete(&prepared.new_profile) {
                Ok(changes) => self.report_accounts(&changes.removed, "removed"),
                Err(e) => report
                    .warnings
                    .push(format!("removing obsolete users and groups: {e:#}")),
            }
        }
        if let Err(e) = self
            .activator
            .finish(&prepared.new_profile, &prepared.new_manifest)
        {
            report.warnings.push(format!("{e:#}"));
        }
        fault("switch.before-record");
        let recorded = match prepared.generation {
            Some(n) => self.profile.switch_to(n),
            None => self.profile.set(&prepared.new_profile),
        };
        let generation = match recorded {
            Ok(g) => g,
            Err(error) => {
                return Err(DeployError::NotRecorded {
                    report: Box::new(report),
                    error,
                })
            }
        };
        self.progress.event(&Event::Recorded {
            profile: &profile_path,
            generation: generation.number,
        });
        if let Some(j) = journal {
            if let Err(e) = j.remove() {
                report.warnings.push(format!("{e:#}"));
            }
        }
        Ok(SwitchOutcome {
            plan: prepared.plan,
            report,
            generation,
        })
    }
}

impl Switch<'_> {
    /// Finishes what an interrupted switch left (its journal): restores the
    /// processes of the generation that is still current. Runs under the
    /// profile lock, before planning.
    fn recover(&self) -> Result<()> {
        let path = Journal::path_for(self.profile);
        if !path.exists() {
            return Ok(());
        }
        self.progress.event(&Event::Resuming { journal: &path });
        let (header, steps) = read_journal(&path)?;
        let recorded = match self.profile.current()? {
            Some(g) => fs::canonicalize(&g.store_path).ok() == Some(header.new_profile.clone()),
            None => false,
        };
        if recorded {
            // Killed after recording: the switch was complete.
            return fs::remove_file(&path).with_context(|| format!("removing {}", path.display()));
        }
        let what = || {
            format!(
                "recovering from the interrupted switch to {} (journal {})",
                header.new_profile.display(),
                path.display()
            )
        };
        let pm = self.activator.process_manager();
        let new_m = read_manifest(&header.new_profile).with_context(what)?;
        let old_m = match &header.old_profile {
            Some(p) => read_manifest(p).with_context(what)?,
            None => Manifest::empty(pm),
        };
        let old_profile = header.old_profile.as_deref().unwrap_or(&header.new_profile);
        let started =
            |i: &&nixproc_core::manifest::InstanceEntry| self.activator.skip_reason(i).is_none();
        let initial: Vec<String> = old_m
            .instances
            .iter()
            .filter(started)
            .map(|i| i.name.clone())
            .collect();
        let state = replay(&initial, &steps);
        let journal = Journal::open(path.clone())?;
        self.activator
            .prepare(&header.new_profile, &new_m)
            .with_context(what)?;
        let warn = |message: String| self.progress.event(&Event::Warning { message: &message });
        // 1. What the interrupted switch started (or may have): stop it.
        for inst in new_m.instances.iter().rev().filter(started) {
            if let Some(Actual::Runs(Side::New) | Actual::Maybe(Side::New)) = state.get(&inst.name)
            {
                self.progress.event(&Event::Restoring {
                    action: Action::Stop,
                    name: &inst.name,
                    side: Side::New,
                });
                journal.record(false, Action::Stop, &inst.name, Side::New);
                match self.activator.stop(&header.new_profile, inst) {
                    Ok(()) => journal.record(true, Action::Stop, &inst.name, Side::New),
                    Err(e) => warn(format!(
                        "recovery: stopping {} (new version) failed: {e:#}",
                        inst.name
                    )),
                }
            }
        }
        // 2. Old versions between two states: stop them for a clean start.
        for inst in old_m.instances.iter().rev().filter(started) {
            if state.get(&inst.name) == Some(&Actual::Maybe(Side::Old)) {
                journal.record(false, Action::Stop, &inst.name, Side::Old);
                match self.activator.stop(old_profile, inst) {
                    Ok(()) => journal.record(true, Action::Stop, &inst.name, Side::Old),
                    Err(e) => warn(format!(
                        "recovery: stopping {} (old version) failed: {e:#}",
                        inst.name
                    )),
                }
            }
        }
        // 3. Start the old generation's instances that do not run.
        for inst in old_m.instances.iter().filter(started) {
            if state.get(&inst.name) != Some(&Actual::Runs(Side::Old)) {
                self.progress.event(&Event::Restoring {
                    action: Action::Start,
                    name: &inst.name,
                    side: Side::Old,
                });
                journal.record(false, Action::Start, &inst.name, Side::Old);
                self.activator
                    .start(old_profile, inst)
                    .with_context(|| format!("starting {} (old version)", inst.name))
                    .with_context(what)?;
                journal.record(true, Action::Start, &inst.name, Side::Old);
            }
        }
        journal.remove()
    }

    /// Lets the activator settle on the old generation after a failure.
    fn settle_on_old(&self, prepared: &PreparedPlan) {
        let old = prepared
            .old_profile
            .as_deref()
            .unwrap_or(&prepared.new_profile);
        if let Err(f) = self.activator.finish(old, &prepared.old_manifest) {
            self.progress.event(&Event::Warning {
                message: &format!("{f:#}"),
            });
        }
    }

    /// Removes the accounts a failed switch created.
    fn undo_accounts(&self, accounts: Option<(&dyn AccountSteps, &AccountChanges)>) {
        if let Some((a, changes)) = accounts {
            if let Err(u) = a.undo(changes) {
                self.progress.event(&Event::Warning {
                    message: &format!("removing the users and groups this switch created: {u:#}"),
                });
            }
        }
    }

    fn report_accounts(&self, accounts: &Created, verb: &str) {
        for (kind, names) in [("group", &accounts.groups), ("user", &accounts.users)] {
            for name in names {
                self.progress.event(&Event::Account {
                    what: &format!("{verb} {kind}"),
                    name,
                });
            }
        }
    }
}

fn canonical(path: &Path) -> Result<PathBuf> {
    std::fs::canonicalize(path)
        .with_context(|| format!("profile {} is not accessible", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deploy::credentials::AccountChanges;
    use crate::deploy::progress::RecordingProgress;
    use crate::deploy::runner::RecordingRunner;
    use crate::deploy::sysvinit::SysvinitActivator;
    use crate::deploy::testutil::{inst, manifest, write_profile};
    use crate::generations::NoGcRoots;
    use crate::lock::LockMode;
    use crate::state_dirs::StateDirOverrides;

    struct Env {
        tmp: tempfile::TempDir,
        profile: Profile,
    }

    impl Env {
        fn new() -> Self {
            let tmp = tempfile::tempdir().unwrap();
            let profile = Profile::new(tmp.path().join("profiles"), "processes")
                .with_gc_roots(Box::new(NoGcRoots));
            let store =
                |name: &str, m: Manifest| write_profile(&tmp.path().join("store").join(name), &m);
            store(
                "s1",
                manifest(vec![
                    inst("webapp1", "1", &[]),
                    inst("nginx", "1", &["webapp1"]),
                ]),
            );
            store(
                "s2",
                manifest(vec![
                    inst("webapp1", "1", &[]),
                    inst("webapp2", "1", &[]),
                    inst("nginx", "2", &["webapp1", "webapp2"]),
                ]),
            );
            store(
                "s3",
                manifest(vec![
                    inst("webapp1", "3", &[]),
                    inst("nginx", "2", &["webapp1"]),
                ]),
            );
            store("empty", Manifest::empty("sysvinit"));
            let mut other = manifest(vec![inst("x", "1", &[])]);
            other.process_manager = "supervisord".into();
            store("supervisord", other);
            Env { tmp, profile }
        }

        fn store(&self, name: &str) -> Target {
            Target::Profile(self.tmp.path().join("store").join(name))
        }

        fn run(
            &self,
            runner: &RecordingRunner,
            target: &Target,
        ) -> (Result<SwitchOutcome, DeployError>, Vec<String>) {
            let act = SysvinitActivator::new(runner);
            let progress = RecordingProgress::default();
            let before = runner.commands().len();
            let result = Switch::new(&self.profile, &act)
                .progress(&progress)
                .run(target);
            let root = std::fs::canonicalize(self.tmp.path()).unwrap();
            let lines = runner.lines(&root).split_off(before);
            (result, lines)
        }

        fn current(&self) -> u64 {
            self.profile.current().unwrap().unwrap().number
        }

        fn numbers(&self) -> Vec<u64> {
            self.profile
                .generations()
                .unwrap()
                .iter()
                .map(|g| g.number)
                .collect()
        }
    }

    #[test]
    fn deploy_upgrade_rollback_switch_generation() {
        let env = Env::new();
        let runner = RecordingRunner::new();
        let (r, lines) = env.run(&runner, &env.store("s1"));
        assert_eq!(r.unwrap().generation.number, 1);
        assert_eq!(
            lines,
            [
                "/store/s1/etc/rc.d/init.d/webapp1 start",
                "/store/s1/etc/rc.d/init.d/nginx start"
            ]
        );

        let (r, lines) = env.run(&runner, &env.store("s2"));
        assert_eq!(r.unwrap().generation.number, 2);
        assert_eq!(
            lines,
            [
                "/store/s1/etc/rc.d/init.d/nginx stop",
                "/store/s2/etc/rc.d/init.d/webapp2 start",
                "/store/s2/etc/rc.d/init.d/nginx start",
            ]
        );
        let (r, _) = env.run(&runner, &env.store("s3"));
        assert_eq!(r.unwrap().generation.number, 3);

        // Rollback walks back: 3 → 2 → 1, without new generations.
        let (r, lines) = env.run(&runner, &Target::Rollback);
        assert_eq!(r.unwrap().generation.number, 2);
        assert_eq!(
            lines,
            [
                "/store/s3/etc/rc.d/init.d/nginx stop",
                "/store/s3/etc/rc.d/init.d/webapp1 stop",
                "/store/s2/etc/rc.d/init.d/webapp1 start",
                "/store/s2/etc/rc.d/init.d/webapp2 start",
                "/store/s2/etc/rc.d/init.d/nginx start",
            ]
        );
        let (r, _) = env.run(&runner, &Target::Rollback);
        assert_eq!(r.unwrap().generation.number, 1);
        assert_eq!(env.numbers(), [1, 2, 3]);
        let (r, lines) = env.run(&runner, &Target::Rollback);
        assert_eq!(
            r.unwrap_err().to_string(),
            "no generation before 1 to roll back to"
        );
        assert!(lines.is_empty());

        // Switch to an arbitrary generation.
        let (r, _) = env.run(&runner, &Target::Generation(3));
        assert_eq!(r.unwrap().generation.number, 3);
        assert_eq!(env.current(), 3);
        let (r, _) = env.run(&runner, &Target::Generation(7));
        assert!(r.unwrap_err().to_string().contains("has no generation 7"));

        // A new deployment after a rollback gets max + 1.
        env.run(&runner, &Target::Rollback).0.unwrap();
        let (r, _) = env.run(&runner, &env.store("s1"));
        assert_eq!(r.unwrap().generation.number, 4);
    }

    /// Account steps that record what the switch asks of them.
    #[derive(Default)]
    struct FakeAccounts {
        fail_ensure: bool,
        calls: std::cell::RefCell<Vec<String>>,
    }

    impl AccountSteps for FakeAccounts {
        fn ensure(&self, p: &Path) -> Result<AccountChanges> {
            let name = p.file_name().unwrap().to_string_lossy();
            self.calls.borrow_mut().push(format!("ensure {name}"));
            if self.fail_ensure {
                bail!("useradd: boom");
            }
            let mut c = AccountChanges::default();
            c.created.users.insert("web".into());
            Ok(c)
        }
        fn remove_obsolete(&self, p: &Path) -> Result<AccountChanges> {
            let name = p.file_name().unwrap().to_string_lossy();
            self.calls
                .borrow_mut()
                .push(format!("remove_obsolete {name}"));
            Ok(Default::default())
        }
        fn undo(&self, c: &AccountChanges) -> Result<()> {
            self.calls
                .borrow_mut()
                .push(format!("undo {:?}", c.created.users));
            Ok(())
        }
    }

    fn run_with_accounts(
        env: &Env,
        runner: &RecordingRunner,
        accounts: &FakeAccounts,
        target: &Target,
    ) -> (Result<SwitchOutcome, DeployError>, Vec<String>) {
        let act = SysvinitActivator::new(runner);
        let progress = RecordingProgress::default();
        let result = Switch::new(&env.profile, &act)
            .progress(&progress)
            .accounts(accounts)
            .run(target);
        (result, progress.lines())
    }

    #[test]
    fn accounts_exist_before_starts_and_obsolete_ones_go_after() {
        let env = Env::new();
        let accounts = FakeAccounts::default();
        let (r, progress) =
            run_with_accounts(&env, &RecordingRunner::new(), &accounts, &env.store("s1"));
        r.unwrap();
        assert_eq!(
            *accounts.calls.borrow(),
            ["ensure s1", "remove_obsolete s1"]
        );
        assert_eq!(progress[0], "created user web");
    }

    #[test]
    fn a_failed_start_undoes_the_accounts_it_created() {
        let env = Env::new();
        let accounts = FakeAccounts::default();
        let failing = RecordingRunner::new().fail("webapp1 start", "boom");
        let (r, _) = run_with_accounts(&env, &failing, &accounts, &env.store("s1"));
        assert!(r.is_err());
        assert_eq!(*accounts.calls.borrow(), ["ensure s1", "undo {\"web\"}"]);
        assert!(env.profile.current().unwrap().is_none());
    }

    #[test]
    fn failing_account_creation_starts_nothing() {
        let env = Env::new();
        let accounts = FakeAccounts {
            fail_ensure: true,
            ..Default::default()
        };
        let runner = RecordingRunner::new();
        let (r, _) = run_with_accounts(&env, &runner, &accounts, &env.store("s1"));
        let err = format!("{:#}", anyhow::Error::from(r.unwrap_err()));
        assert!(
            err.contains("creating the profile's users and groups"),
            "{err}"
        );
        assert!(err.contains("useradd: boom"), "{err}");
        assert!(runner.commands().is_empty(), "nothing started");
        assert!(env.profile.current().unwrap().is_none());
    }

    #[test]
    fn failed_switch_keeps_previous_generation() {
        let env = Env::new();
        let ok = RecordingRunner::new();
        env.run(&ok, &env.store("s1")).0.unwrap();
        let failing = RecordingRunner::new().fail("s2/etc/rc.d/init.d/webapp2 start", "boom");
        let (r, lines) = env.run(&failing, &env.store("s2"));
        let err = r.unwrap_err();
        assert!(matches!(err, DeployError::Activation(_)));
        assert_eq!(
            lines,
            [
                "/store/s1/etc/rc.d/init.d/nginx stop",
                "/store/s2/etc/rc.d/init.d/webapp2 start",
                "/store/s2/etc/rc.d/init.d/webapp2 stop",
                "/store/s1/etc/rc.d/init.d/nginx start",
            ]
        );
        assert_eq!(env.numbers(), [1]);
        assert_eq!(env.current(), 1);
    }

    #[test]
    fn undeploy_stops_everything_and_records_a_generation() {
        let env = Env::new();
        let runner = RecordingRunner::new();
        env.run(&runner, &env.store("s2")).0.unwrap();
        let (r, lines) = env.run(&runner, &env.store("empty"));
        assert_eq!(r.unwrap().generation.number, 2);
        assert_eq!(
            lines,
            [
                "/store/s2/etc/rc.d/init.d/nginx stop",
                "/store/s2/etc/rc.d/init.d/webapp2 stop",
                "/store/s2/etc/rc.d/init.d/webapp1 stop",
            ]
        );
    }

    #[test]
    fn dry_run_changes_nothing() {
        let env = Env::new();
        let runner = RecordingRunner::new();
        env.run(&runner, &env.store("s1")).0.unwrap();
        let act = SysvinitActivator::new(&runner);
        let before = runner.commands().len();
        let prepared = Switch::new(&env.profile, &act)
            .plan(&env.store("s2"))
            .unwrap();
        assert_eq!(
            prepared.plan.to_string(),
            "stop    nginx     (changed)\nstart   webapp2   (added)\nstart   nginx     (changed)\nkeep    webapp1\n"
        );
        assert_eq!(prepared.generation, None);
        assert!(prepared.old_profile.unwrap().ends_with("store/s1"));
        assert_eq!(runner.commands().len(), before);
        assert_eq!(env.numbers(), [1]);
        let json = serde_json::to_value(
            Switch::new(&env.profile, &act)
                .plan(&Target::Generation(1))
                .unwrap(),
        )
        .unwrap();
        assert_eq!(json["generation"], 1);
        assert_eq!(json["plan"]["kept"][0]["name"], "nginx");
    }

    #[test]
    fn concurrent_switch_with_no_wait_fails() {
        let env = Env::new();
        let runner = RecordingRunner::new();
        let act = SysvinitActivator::new(&runner);
        let held = env.profile.lock(LockMode::NoWait, &|| {}).unwrap();
        let err = Switch::new(&env.profile, &act)
            .lock_mode(LockMode::NoWait)
            .run(&env.store("s1"))
            .unwrap_err();
        assert!(
            err.to_string().starts_with("another nixproc switch holds "),
            "{err}"
        );
        assert!(runner.commands().is_empty());
        drop(held);
        Switch::new(&env.profile, &act)
            .progress(&crate::deploy::progress::SilentProgress)
            .lock_mode(LockMode::NoWait)
            .run(&env.store("s1"))
            .unwrap();
    }

    #[test]
    fn process_manager_mismatch_is_refused() {
        let env = Env::new();
        let runner = RecordingRunner::new();
        let (r, lines) = env.run(&runner, &env.store("supervisord"));
        let msg = r.unwrap_err().to_string();
        assert!(
            msg.contains("is for process manager `supervisord`, not `sysvinit`"),
            "{msg}"
        );
        assert!(lines.is_empty());
    }

    #[test]
    fn old_profile_override_and_init_state() {
        let env = Env::new();
        let runner = RecordingRunner::new();
        let act = SysvinitActivator::new(&runner);
        let state = env.tmp.path().join("var");
        let dirs = StateDirs::from_state_dir(&state, &StateDirOverrides::default());
        let out = Switch::new(&env.profile, &act)
            .progress(&crate::deploy::progress::SilentProgress)
            .old_profile(Some(env.tmp.path().join("store/s1")))
            .init_state(&dirs, true)
            .run(&env.store("s2"))
            .unwrap();
        assert!(state.join("log").is_dir());
        // Diffed against s1 although nothing was deployed before.
        assert_eq!(out.report.stopped.len(), 1);
        assert_eq!(out.report.kept, ["webapp1"]);
    }
}

#[cfg(test)]
mod recovery {
    use super::*;
    use crate::deploy::progress::RecordingProgress;
    use crate::deploy::runner::RecordingRunner;
    use crate::deploy::sysvinit::SysvinitActivator;
    use crate::deploy::testutil::{inst, manifest, write_profile};
    use crate::generations::NoGcRoots;

    struct Env {
        tmp: tempfile::TempDir,
        root: PathBuf,
        profile: Profile,
    }

    impl Env {
        /// s1: webapp1 ← nginx; s2 adds webapp2 (nginx depends on both).
        fn new() -> Self {
            let tmp = tempfile::tempdir().unwrap();
            let root = fs::canonicalize(tmp.path()).unwrap();
            let profile =
                Profile::new(root.join("profiles"), "processes").with_gc_roots(Box::new(NoGcRoots));
            write_profile(
                &root.join("store/s1"),
                &manifest(vec![
                    inst("webapp1", "1", &[]),
                    inst("nginx", "1", &["webapp1"]),
                ]),
            );
            write_profile(
                &root.join("store/s2"),
                &manifest(vec![
                    inst("webapp1", "1", &[]),
                    inst("webapp2", "1", &[]),
                    inst("nginx", "2", &["webapp1", "webapp2"]),
                ]),
            );
            Env { tmp, root, profile }
        }

        fn store(&self, name: &str) -> PathBuf {
            self.root.join("store").join(name)
        }

        fn journal(&self) -> PathBuf {
            self.root.join("profiles/processes.switch.json")
        }

        fn run(
            &self,
            runner: &RecordingRunner,
            to: &str,
        ) -> (Result<SwitchOutcome, DeployError>, Vec<String>, Vec<String>) {
            let act = SysvinitActivator::new(runner);
            let progress = RecordingProgress::default();
            let before = runner.commands().len();
            let result = Switch::new(&self.profile, &act)
                .progress(&progress)
                .run(&Target::Profile(self.store(to)));
            let lines = runner.lines(&self.root).split_off(before);
            (result, lines, progress.lines())
        }

        /// A journal as a switch s1 → s2 leaves it when killed.
        fn interrupted(&self, steps: &[(bool, Action, &str, Side)]) {
            let j =
                Journal::create(&self.profile, Some(&self.store("s1")), &self.store("s2")).unwrap();
            for (done, action, name, side) in steps {
                j.record(*done, *action, name, *side);
            }
            // A torn last line, as a kill in the middle of a write leaves.
            let mut f = fs::OpenOptions::new()
                .append(true)
                .open(self.journal())
                .unwrap();
            f.write_all(b"{\"done\":tr").unwrap();
        }
    }

    #[test]
    fn a_switch_writes_a_journal_and_removes_it_once_recorded() {
        let env = Env::new();
        let runner = RecordingRunner::new();
        env.run(&runner, "s1").0.unwrap();
        assert!(!env.journal().exists());
        // A no-op switch writes none.
        let (r, lines, _) = env.run(&runner, "s1");
        r.unwrap();
        assert!(lines.is_empty());
        assert!(!env.journal().exists());
        let _ = &env.tmp;
    }

    #[test]
    fn a_killed_switch_is_undone_then_done_again() {
        let env = Env::new();
        let runner = RecordingRunner::new();
        env.run(&runner, "s1").0.unwrap();
        // Killed while starting nginx (new): nginx (old) stopped, webapp2
        // started, nginx maybe started.
        env.interrupted(&[
            (false, Action::Stop, "nginx", Side::Old),
            (true, Action::Stop, "nginx", Side::Old),
            (false, Action::Start, "webapp2", Side::New),
            (true, Action::Start, "webapp2", Side::New),
            (false, Action::Start, "nginx", Side::New),
        ]);
        let (r, lines, progress) = env.run(&runner, "s2");
        assert_eq!(r.unwrap().generation.number, 2);
        assert_eq!(
            lines,
            [
                // recovery: stop what the killed switch started (or may
                // have), restart the old nginx
                "/store/s2/etc/rc.d/init.d/nginx stop",
                "/store/s2/etc/rc.d/init.d/webapp2 stop",
                "/store/s1/etc/rc.d/init.d/nginx start",
                // the switch itself
                "/store/s1/etc/rc.d/init.d/nginx stop",
                "/store/s2/etc/rc.d/init.d/webapp2 start",
                "/store/s2/etc/rc.d/init.d/nginx start",
            ]
        );
        assert!(
            progress[0].starts_with("an interrupted switch left "),
            "{progress:?}"
        );
        assert!(!env.journal().exists());
        assert_eq!(
            env.profile
                .generations()
                .unwrap()
                .iter()
                .map(|g| g.number)
                .collect::<Vec<_>>(),
            [1, 2]
        );
    }

    #[test]
    fn a_switch_killed_after_recording_only_loses_its_journal() {
        let env = Env::new();
        let runner = RecordingRunner::new();
        env.run(&runner, "s1").0.unwrap();
        env.run(&runner, "s2").0.unwrap();
        env.interrupted(&[(true, Action::Start, "nginx", Side::New)]);
        let (r, lines, _) = env.run(&runner, "s2");
        assert_eq!(r.unwrap().generation.number, 2);
        assert!(lines.is_empty(), "{lines:?}");
        assert!(!env.journal().exists());
    }

    #[test]
    fn an_incomplete_rollback_keeps_the_journal_for_the_next_switch() {
        let env = Env::new();
        env.run(&RecordingRunner::new(), "s1").0.unwrap();
        let failing = RecordingRunner::new()
            .fail("s2/etc/rc.d/init.d/nginx start", "bad config")
            .fail("s1/etc/rc.d/init.d/nginx start", "port in use");
        let (r, _, _) = env.run(&failing, "s2");
        let DeployError::Activation(f) = r.unwrap_err() else {
            panic!()
        };
        assert!(!f.restored());
        assert!(env.journal().exists(), "kept: nginx does not run");
        let runner = RecordingRunner::new();
        let (r, lines, _) = env.run(&runner, "s2");
        r.unwrap();
        assert_eq!(
            lines,
            [
                // nginx (old) was between two states: stopped, started
                "/store/s1/etc/rc.d/init.d/nginx stop",
                "/store/s1/etc/rc.d/init.d/nginx start",
                "/store/s1/etc/rc.d/init.d/nginx stop",
                "/store/s2/etc/rc.d/init.d/webapp2 start",
                "/store/s2/etc/rc.d/init.d/nginx start",
            ]
        );
        assert!(!env.journal().exists());
    }

    #[test]
    fn a_failed_recovery_keeps_the_journal_and_touches_nothing_else() {
        let env = Env::new();
        env.run(&RecordingRunner::new(), "s1").0.unwrap();
        env.interrupted(&[(true, Action::Stop, "nginx", Side::Old)]);
        let runner = RecordingRunner::new().fail("s1/etc/rc.d/init.d/nginx start", "no");
        let (r, lines, _) = env.run(&runner, "s2");
        let msg = format!("{:#}", anyhow::Error::from(r.unwrap_err()));
        assert!(
            msg.starts_with("recovering from the interrupted switch to "),
            "{msg}"
        );
        assert!(msg.contains("starting nginx (old version)"), "{msg}");
        assert_eq!(lines, ["/store/s1/etc/rc.d/init.d/nginx start"]);
        assert!(env.journal().exists());
        assert_eq!(env.profile.current().unwrap().unwrap().number, 1);
    }
}

#[cfg(test)]
mod real_scripts {
    use super::*;
    use crate::deploy::progress::SilentProgress;
    use crate::deploy::runner::SystemRunner;
    use crate::deploy::sysvinit::SysvinitActivator;
    use crate::deploy::testutil::{inst, log_lines, manifest, write_profile_with_scripts};
    use crate::generations::NoGcRoots;

    #[test]
    fn deploy_upgrade_fail_rollback_undeploy() {
        let tmp = tempfile::tempdir().unwrap();
        let log = tmp.path().join("log");
        let store = |name: &str, m: Manifest| {
            let p = tmp.path().join("store").join(name);
            write_profile_with_scripts(&p, &log, &m);
            Target::Profile(p)
        };
        let v1 = store(
            "v1",
            manifest(vec![
                inst("webapp", "1", &[]),
                inst("nginx", "1", &["webapp"]),
            ]),
        );
        let v2 = store(
            "v2",
            manifest(vec![
                inst("webapp", "2", &[]),
                inst("nginx", "1", &["webapp"]),
            ]),
        );
        let bad = store(
            "bad",
            manifest(vec![
                inst("webapp", "bad", &[]),
                inst("nginx", "1", &["webapp"]),
            ]),
        );
        let empty = store("empty", Manifest::empty("sysvinit"));
        let profile = Profile::new(tmp.path().join("profiles"), "processes")
            .with_gc_roots(Box::new(NoGcRoots));
        let act = SysvinitActivator::new(SystemRunner);
        let switch = Switch::new(&profile, &act).progress(&SilentProgress);

        switch.run(&v1).unwrap();
        assert_eq!(log_lines(&log), ["webapp-1 start", "nginx-1 start"]);
        switch.run(&v2).unwrap();
        assert_eq!(
            log_lines(&log),
            [
                "nginx-1 stop",
                "webapp-1 stop",
                "webapp-2 start",
                "nginx-1 start"
            ]
        );
        let err = switch.run(&bad).unwrap_err();
        assert!(err.to_string().contains("cannot bind port"), "{err}");
        assert_eq!(
            log_lines(&log),
            [
                "nginx-1 stop",
                "webapp-2 stop",
                "webapp-bad start",
                "webapp-bad stop",
                "webapp-2 start",
                "nginx-1 start",
            ]
        );
        assert_eq!(profile.current().unwrap().unwrap().number, 2);
        assert_eq!(switch.run(&Target::Rollback).unwrap().generation.number, 1);
        assert_eq!(
            log_lines(&log),
            [
                "nginx-1 stop",
                "webapp-2 stop",
                "webapp-1 start",
                "nginx-1 start"
            ]
        );
        assert_eq!(switch.run(&empty).unwrap().generation.number, 3);
        assert_eq!(log_lines(&log), ["nginx-1 stop", "webapp-1 stop"]);
    }
}
