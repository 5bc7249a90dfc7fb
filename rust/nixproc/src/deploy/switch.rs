//! A whole switch: lock the profile, find the old and new profile, plan,
//! (init state,) execute, record the generation.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _, Result};
use nixproc_core::manifest::Manifest;
use serde::Serialize;

use super::activator::Activator;
use super::engine::{execute, Context, DeployError, Report};
use super::manifest::read_manifest;
use super::plan::{plan_with, Plan, PlanOptions};
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

/// Configures and runs switches on one profile.
pub struct Switch<'a> {
    profile: &'a Profile,
    activator: &'a dyn Activator,
    progress: &'a dyn Progress,
    lock_mode: LockMode,
    plan_options: PlanOptions,
    old_profile: Option<PathBuf>,
    state: Option<(&'a StateDirs, bool)>,
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
        }
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
        let ctx = Context {
            old_profile: prepared.old_profile.as_deref(),
            new_profile: &prepared.new_profile,
            activator: self.activator,
            progress: self.progress,
        };
        let report = execute(&prepared.plan, &ctx)?;
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
        Ok(SwitchOutcome {
            plan: prepared.plan,
            report,
            generation,
        })
    }
}

fn canonical(path: &Path) -> Result<PathBuf> {
    std::fs::canonicalize(path)
        .with_context(|| format!("profile {} is not accessible", path.display()))
}
