//! Choosing the activator for a `--process-manager`.

use anyhow::{bail, Result};

use super::activator::Activator;
use super::bsdrc::BsdrcActivator;
use super::cygrunsrv::CygrunsrvActivator;
use super::disnix::DisnixActivator;
use super::docker::DockerActivator;
use super::launchd::LaunchdActivator;
use super::runner::SystemRunner;
use super::s6rc::S6RcActivator;
use super::supervisord::SupervisordActivator;
use super::systemd::SystemdActivator;
use super::sysvinit::SysvinitActivator;
use crate::state_dirs::StateDirs;

/// What any activator may need to know about the deployment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActivatorConfig {
    /// The state directories in effect (`--state-dir` and friends).
    pub state: StateDirs,
    pub force_disable_user_change: bool,
    /// sysvinit: the runlevel whose start links are deployed.
    pub runlevel: u32,
    /// systemd: manage the user's units (`systemctl --user`); launchd: the
    /// user's agents.
    pub systemd_user: bool,
    /// bsdrc: install the scripts into the rc.d directory and enable them in
    /// rc.conf (the original's `--enable-at-boot`, defect 9).
    pub enable_at_boot: bool,
}

/// The process managers `nixproc switch` can deploy.
pub const DEPLOYABLE: &[&str] = &[
    "sysvinit",
    "bsdrc",
    "supervisord",
    "systemd",
    "launchd",
    "cygrunsrv",
    "s6-rc",
    "disnix",
    "docker",
];

pub fn activator_for(
    process_manager: &str,
    config: &ActivatorConfig,
) -> Result<Box<dyn Activator>> {
    Ok(match process_manager {
        "sysvinit" => Box::new(SysvinitActivator::new(SystemRunner).with_runlevel(config.runlevel)),
        "supervisord" => Box::new(SupervisordActivator::new(SystemRunner, config)),
        "systemd" => Box::new(SystemdActivator::new(SystemRunner, config)),
        "s6-rc" => Box::new(S6RcActivator::new(SystemRunner, config)),
        "bsdrc" => Box::new(BsdrcActivator::new(SystemRunner, config)),
        "launchd" => Box::new(LaunchdActivator::new(SystemRunner, config)),
        "cygrunsrv" => Box::new(CygrunsrvActivator::new(SystemRunner, config)),
        "docker" => Box::new(DockerActivator::new(SystemRunner, config)),
        "disnix" => Box::new(DisnixActivator::new(SystemRunner, config)),
        other => bail!(
            "process manager '{other}' cannot be deployed yet (supported: {})",
            DEPLOYABLE.join(", ")
        ),
    })
}
