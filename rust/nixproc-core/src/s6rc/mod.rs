//! s6rc backend — being written (issue 3). Contract: see agnostic.rs and
//! the brief; this skeleton only fixes the signatures.

use std::collections::BTreeMap;

use crate::agnostic::ManagedProcess;
use crate::error::{Error, Result};
use crate::package::{FileSpec, PackageSpec};
use crate::value::Value;

/// Composition parameters, fixed once per model by the Nix layer.
pub const COMPOSITION_KEYS: &[&str] = &[
    "runtimeDir",
    "logDir",
    "tmpDir",
    "forceDisableUserChange",
    "logDirUser",
    "logDirGroup",
    "execline",
    "s6",
    "foregroundProxy",
    "shell",
    "ids",
    "callingUser",
    "callingGroup",
];

/// `builtins.createS6RCService`.
pub fn create_s6rc_service(_v: &Value) -> Result<PackageSpec> {
    Err(Error::Model(
        "createS6RCService: not implemented yet".into(),
    ))
}

/// agnostic → s6rc arguments (without composition keys).
pub fn translate(_p: &ManagedProcess, _composition: &Value) -> Result<BTreeMap<String, Value>> {
    Err(Error::Model("s6rc translation: not implemented yet".into()))
}

/// Files the profile root gets besides the packages' own.
pub fn profile_files(_composition: &Value, _services: &[String]) -> Result<Vec<FileSpec>> {
    Ok(Vec::new())
}
