//! The launchd activator.
//!
//! SKELETON (issue 4): wired into `select.rs`; every operation is an error
//! until the activator is written.

use std::path::Path;

use anyhow::{bail, Result};
use nixproc_core::manifest::InstanceEntry;

use super::activator::{Activator, InstanceStatus};
use super::runner::Runner;
use super::select::ActivatorConfig;

pub struct LaunchdActivator<R> {
    runner: R,
    #[allow(dead_code)]
    config: ActivatorConfig,
}

impl<R: Runner> LaunchdActivator<R> {
    pub fn new(runner: R, config: &ActivatorConfig) -> Self {
        LaunchdActivator {
            runner,
            config: config.clone(),
        }
    }

    pub fn runner(&self) -> &R {
        &self.runner
    }
}

impl<R: Runner> Activator for LaunchdActivator<R> {
    fn process_manager(&self) -> &str {
        "launchd"
    }

    fn start(&self, _profile: &Path, inst: &InstanceEntry) -> Result<()> {
        bail!("launchd: cannot start {}: not implemented yet", inst.name)
    }

    fn stop(&self, _profile: &Path, inst: &InstanceEntry) -> Result<()> {
        bail!("launchd: cannot stop {}: not implemented yet", inst.name)
    }

    fn status(&self, _profile: &Path, inst: &InstanceEntry) -> Result<InstanceStatus> {
        bail!("launchd: no status for {}: not implemented yet", inst.name)
    }
}
