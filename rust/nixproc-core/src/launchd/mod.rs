//! launchd (macOS property lists, reference §3.5).
//!
//! SKELETON: the registry entries point here; the generator is being
//! written (issue 4). Every call is an error until then.

use std::collections::BTreeMap;

use crate::agnostic::ManagedProcess;
use crate::error::{Error, Result};
use crate::package::PackageSpec;
use crate::value::Value;

/// Composition parameters, fixed once per model by the Nix layer
/// (`nix/default.nix`, `compositions.launchd`): the generator must accept all
/// of them.
pub const COMPOSITION_KEYS: &[&str] = &[
    "runtimeDir",
    "logDir",
    "tmpDir",
    "forceDisableUserChange",
    "ids",
    "shell",
    "foregroundProxy",
    "callingUser",
    "callingGroup",
    "prefix",
];

fn not_yet() -> Error {
    Error::invalid("processManager", "launchd is not implemented yet")
}

/// agnostic → launchd arguments.
pub fn translate(_p: &ManagedProcess, _composition: &Value) -> Result<BTreeMap<String, Value>> {
    Err(not_yet())
}

/// `builtins.createLaunchdDaemon`.
pub fn create_launchd_daemon(_v: &Value) -> Result<PackageSpec> {
    Err(not_yet())
}
