//! The deploy engine: diff two profiles' manifests into a [`Plan`], execute
//! it through a backend's [`Activator`] with rollback on failure, and record
//! profile generations.
//!
//! Entry point for the CLI: [`Switch`] (deploy a built profile, roll back,
//! switch to a generation, dry-run).

pub mod activator;
pub mod engine;
pub mod manifest;
pub mod plan;
pub mod progress;
pub mod runner;
pub mod switch;
pub mod sysvinit;
#[cfg(test)]
pub(crate) mod testutil;

pub use activator::{Activator, InstanceStatus};
pub use engine::{execute, Context, DeployError, Report, SwitchFailure};
pub use manifest::{dependency_order, read_manifest};
pub use plan::{plan, plan_with, Plan, PlanOptions};
pub use progress::{Event, Progress, StderrProgress};
pub use runner::{Cmd, CmdOutput, RecordingRunner, Runner, SystemRunner};
pub use switch::{PreparedPlan, Switch, SwitchOutcome, Target};
pub use sysvinit::{detect_runlevel, SysvinitActivator};
