//! The interface every backend's activator implements. The engine only
//! talks to this trait; backends run their commands through a
//! [`super::runner::Runner`] so tests can record them.

use std::path::Path;

use anyhow::Result;
use nixproc_core::manifest::{InstanceEntry, Manifest};
use serde::Serialize;

/// What a backend says about an instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "state")]
pub enum InstanceStatus {
    Running,
    Stopped,
    /// The backend answered something else (e.g. an LSB status code other
    /// than 0 or 3); `code` is its exit status when there was one.
    Unknown {
        code: Option<i32>,
    },
}

/// Starts, stops and inspects instances of one process manager.
///
/// `profile` is the profile directory (a store path) the instance version
/// belongs to: stops get the old profile, starts the new one, and a
/// rollback starts old versions from the old profile again.
///
/// A switch with `--jobs` > 1 calls `start` and `stop` of independent
/// instances from several threads at once (never `start` and `stop` of the
/// same instance): an activator whose process manager's control interface
/// is not safe for concurrent use serializes those calls itself.
pub trait Activator: Sync {
    /// The `processManager` of the manifests this activator can deploy
    /// (e.g. `"sysvinit"`).
    fn process_manager(&self) -> &str;

    /// Why this instance is not started by this activator at all (e.g.
    /// "no start link for runlevel 3"), or `None` when it is. Such
    /// instances appear in the plan as skipped, never silently.
    fn skip_reason(&self, _inst: &InstanceEntry) -> Option<String> {
        None
    }

    /// Runs once per switch, before the first stop or start (after
    /// `init-state`): make sure the process manager itself runs — start
    /// supervisord or s6-svscan under the state dir when it does not — and
    /// install its base configuration from `new_profile`. Nothing is
    /// stopped or started yet, so an error here aborts the switch cleanly.
    fn prepare(&self, _new_profile: &Path, _new: &Manifest) -> Result<()> {
        Ok(())
    }

    /// Runs once after every stop and start of a switch succeeded: e.g.
    /// shut down a process manager nixproc started itself once nothing is
    /// deployed any more (`--undeploy`). An error is reported as a warning;
    /// the processes already are in the new state.
    fn finish(&self, _new_profile: &Path, _new: &Manifest) -> Result<()> {
        Ok(())
    }

    fn start(&self, profile: &Path, inst: &InstanceEntry) -> Result<()>;

    fn stop(&self, profile: &Path, inst: &InstanceEntry) -> Result<()>;

    fn status(&self, profile: &Path, inst: &InstanceEntry) -> Result<InstanceStatus>;
}
