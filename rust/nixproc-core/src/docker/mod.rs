//! docker (one container per process, reference §3.9).
//!
//! SKELETON: the registry entries point here; the generator is being
//! written (issue 4). Every call is an error until then.

use std::collections::BTreeMap;

use crate::agnostic::ManagedProcess;
use crate::error::{Error, Result};
use crate::package::PackageSpec;
use crate::value::Value;

/// Composition parameters, fixed once per model by the Nix layer
/// (`nix/default.nix`, `compositions.docker`): the generator must accept all
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
    "stateDir",
];

fn not_yet() -> Error {
    Error::invalid("processManager", "docker is not implemented yet")
}

/// agnostic → docker arguments.
pub fn translate(_p: &ManagedProcess, _composition: &Value) -> Result<BTreeMap<String, Value>> {
    Err(not_yet())
}

/// `builtins.createDockerContainer`.
pub fn create_docker_container(_v: &Value) -> Result<PackageSpec> {
    Err(not_yet())
}
