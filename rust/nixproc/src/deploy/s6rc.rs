//! The s6-rc activator — being written (issue 3); this skeleton fixes the
//! constructor the CLI uses.

use std::path::Path;

use anyhow::{bail, Result};
use nixproc_core::manifest::InstanceEntry;

use super::activator::{Activator, InstanceStatus};
use super::runner::Runner;
use super::select::ActivatorConfig;

pub struct S6RcActivator<R> {
    runner: R,
    config: ActivatorConfig,
}

impl<R: Runner> S6RcActivator<R> {
    pub fn new(runner: R, config: &ActivatorConfig) -> Self {
        S6RcActivator {
            runner,
            config: config.clone(),
        }
    }
}

impl<R: Runner> Activator for S6RcActivator<R> {
    fn process_manager(&self) -> &str {
        "s6-rc"
    }

    fn start(&self, _profile: &Path, inst: &InstanceEntry) -> Result<()> {
        let _ = (&self.runner, &self.config);
        bail!("{}: the s6-rc activator is not implemented yet", inst.name)
    }

    fn stop(&self, _profile: &Path, inst: &InstanceEntry) -> Result<()> {
        bail!("{}: the s6-rc activator is not implemented yet", inst.name)
    }

    fn status(&self, _profile: &Path, inst: &InstanceEntry) -> Result<InstanceStatus> {
        bail!("{}: the s6-rc activator is not implemented yet", inst.name)
    }
}
