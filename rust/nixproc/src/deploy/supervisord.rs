//! The supervisord activator — being written (issue 3); this skeleton fixes the
//! constructor the CLI uses.

use std::path::Path;

use anyhow::{bail, Result};
use nixproc_core::manifest::InstanceEntry;

use super::activator::{Activator, InstanceStatus};
use super::runner::Runner;
use super::select::ActivatorConfig;

pub struct SupervisordActivator<R> {
    runner: R,
    config: ActivatorConfig,
}

impl<R: Runner> SupervisordActivator<R> {
    pub fn new(runner: R, config: &ActivatorConfig) -> Self {
        SupervisordActivator {
            runner,
            config: config.clone(),
        }
    }
}

impl<R: Runner> Activator for SupervisordActivator<R> {
    fn process_manager(&self) -> &str {
        "supervisord"
    }

    fn start(&self, _profile: &Path, inst: &InstanceEntry) -> Result<()> {
        let _ = (&self.runner, &self.config);
        bail!(
            "{}: the supervisord activator is not implemented yet",
            inst.name
        )
    }

    fn stop(&self, _profile: &Path, inst: &InstanceEntry) -> Result<()> {
        bail!(
            "{}: the supervisord activator is not implemented yet",
            inst.name
        )
    }

    fn status(&self, _profile: &Path, inst: &InstanceEntry) -> Result<InstanceStatus> {
        bail!(
            "{}: the supervisord activator is not implemented yet",
            inst.name
        )
    }
}

/// `nixproc supervisord-stateless`: runs `supervisord -n` on the profile's
/// own `supervisord.conf` until it exits; returns its exit code.
pub fn run_stateless(profile: &Path, config: &ActivatorConfig) -> Result<u8> {
    let _ = config;
    bail!(
        "{}: stateless supervisord is not implemented yet",
        profile.display()
    )
}
