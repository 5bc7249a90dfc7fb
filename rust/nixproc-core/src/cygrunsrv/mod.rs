//! cygrunsrv (Cygwin Windows services, reference §3.6).
//!
//! SKELETON: the registry entries point here; the generator is being
//! written (issue 4). Every call is an error until then.

use std::collections::BTreeMap;

use crate::agnostic::ManagedProcess;
use crate::error::{Error, Result};
use crate::package::PackageSpec;
use crate::value::Value;

/// Composition parameters, fixed once per model by the Nix layer
/// (`nix/default.nix`, `compositions.cygrunsrv`): the generator must accept all
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
    Error::invalid("processManager", "cygrunsrv is not implemented yet")
}

/// agnostic → cygrunsrv arguments.
pub fn translate(_p: &ManagedProcess, _composition: &Value) -> Result<BTreeMap<String, Value>> {
    Err(not_yet())
}

/// `builtins.createCygrunsrvParams`.
pub fn create_cygrunsrv_params(_v: &Value) -> Result<PackageSpec> {
    Err(not_yet())
}
