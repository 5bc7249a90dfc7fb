//! The deploy engine: diff two profiles' manifests into a [`Plan`], execute
//! it through a backend's [`Activator`] with rollback on failure, and record
//! profile generations.
//!
//! Entry point for the CLI: [`Switch`] (deploy a built profile, roll back,
//! switch to a generation, dry-run).
//!
//! Decisions (and why):
//! * Change detection is by the manifest's content `revision`, not by store
//!   path; an unchanged instance whose dependency restarts restarts too
//!   ([`PlanOptions::restart_dependents`], default on), because otherwise a
//!   dependency would be stopped under a running dependent (defect 15).
//! * Every switch runs under the profile lock (defect 13) and is
//!   transactional: the first failure undoes what the switch did and the
//!   profile stays at the previous generation (defect 14).
//! * Rollback and switch-generation re-point the profile at an existing
//!   generation instead of creating a new one (defects 1 and 2).
//! * Instances not started in the configured runlevel are listed as skipped
//!   in the plan and the progress output (defect 17).
//! * Command output is captured in unlinked temporary files rather than
//!   pipes: an init script's daemon that keeps stdout open would otherwise
//!   block the deploy, or die of SIGPIPE once nixproc exits.

pub mod activator;
pub mod bsdrc;
pub mod credentials;
pub mod cygrunsrv;
pub mod disnix;
pub mod docker;
pub mod engine;
pub mod launchd;
pub mod manifest;
pub mod plan;
pub mod progress;
pub mod progress_tty;
pub mod readiness;
pub mod runner;
pub mod s6rc;
pub mod select;
pub mod supervisord;
pub mod switch;
pub mod systemd;
pub mod sysvinit;
#[cfg(test)]
pub(crate) mod testutil;

pub use activator::{Activator, InstanceStatus};
pub use engine::{
    execute, Context, DeployError, HookFailure, NoHooks, PhaseHooks, Report, SwitchFailure,
};
pub use manifest::{dependency_order, read_manifest};
pub use plan::{plan, plan_with, Plan, PlanOptions};
pub use progress::{Event, Progress, StderrProgress};
pub use readiness::{probe, wait_ready, CheckResult, ProbeContext};
pub use runner::{Cmd, CmdOutput, RecordingRunner, Runner, SystemRunner};
pub use select::{activator_for, ActivatorConfig, DEPLOYABLE};
pub use switch::{PreparedPlan, Switch, SwitchHooks, SwitchOutcome, Target};
pub use sysvinit::{detect_runlevel, SysvinitActivator};
