//! The bsdrc activator.
//!
//! SKELETON (issue 4): wired into `select.rs`; every operation is an error
//! until the activator is written.

use std::path::Path;

use anyhow::{bail, Result};
use nixproc_core::manifest::InstanceEntry;

use super::activator::{Activator, InstanceStatus};
use super::runner::Runner;
use super::select::ActivatorConfig;

pub struct BsdrcActivator<R> {
    runner: R,
    #[allow(dead_code)]
    config: ActivatorConfig,
}

impl<R: Runner> BsdrcActivator<R> {
    pub fn new(runner: R, config: &ActivatorConfig) -> Self {
        BsdrcActivator {
            runner,
            config: config.clone(),
        }
    }

    pub fn runner(&self) -> &R {
        &self.runner
    }
}

impl<R: Runner> Activator for BsdrcActivator<R> {
    fn process_manager(&self) -> &str {
        "bsdrc"
    }

    fn start(&self, _profile: &Path, inst: &InstanceEntry) -> Result<()> {
        bail!("bsdrc: cannot start {}: not implemented yet", inst.name)
    }

    fn stop(&self, _profile: &Path, inst: &InstanceEntry) -> Result<()> {
        bail!("bsdrc: cannot stop {}: not implemented yet", inst.name)
    }

    fn status(&self, _profile: &Path, inst: &InstanceEntry) -> Result<InstanceStatus> {
        bail!("bsdrc: no status for {}: not implemented yet", inst.name)
    }
}
