//! The systemd activator — being written (issue 3); this skeleton fixes the
//! constructor the CLI uses.

use std::path::Path;

use anyhow::{bail, Result};
use nixproc_core::manifest::InstanceEntry;

use super::activator::{Activator, InstanceStatus};
use super::runner::Runner;
use super::select::ActivatorConfig;

pub struct SystemdActivator<R> {
    runner: R,
    config: ActivatorConfig,
}

impl<R: Runner> SystemdActivator<R> {
    pub fn new(runner: R, config: &ActivatorConfig) -> Self {
        SystemdActivator {
            runner,
            config: config.clone(),
        }
    }
}

impl<R: Runner> Activator for SystemdActivator<R> {
    fn process_manager(&self) -> &str {
        "systemd"
    }

    fn start(&self, _profile: &Path, inst: &InstanceEntry) -> Result<()> {
        let _ = (&self.runner, &self.config);
        bail!(
            "{}: the systemd activator is not implemented yet",
            inst.name
        )
    }

    fn stop(&self, _profile: &Path, inst: &InstanceEntry) -> Result<()> {
        bail!(
            "{}: the systemd activator is not implemented yet",
            inst.name
        )
    }

    fn status(&self, _profile: &Path, inst: &InstanceEntry) -> Result<InstanceStatus> {
        bail!(
            "{}: the systemd activator is not implemented yet",
            inst.name
        )
    }
}
