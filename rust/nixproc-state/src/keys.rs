//! SKELETON — age keys: host identity, recipients, identities for restore.

use std::path::PathBuf;

use anyhow::Result;

/// Where keys come from.
#[derive(Debug, Clone, Default)]
pub struct KeyConfig {
    /// The host identity file (created 0600 by `keygen`, or on first use
    /// when `create_host_identity`).
    pub host_identity: PathBuf,
    pub create_host_identity: bool,
    /// Extra recipients (`age1…`), e.g. from NIXPROC_STATE_RECIPIENTS.
    pub recipients: Vec<String>,
    /// Files with one recipient per line (`#` comments).
    pub recipients_files: Vec<PathBuf>,
    /// Identity files for decryption (`-i`); the host identity is tried too.
    pub identity_files: Vec<PathBuf>,
    /// Store units unencrypted (development only).
    pub no_encryption: bool,
}

pub struct Keys {}

impl Keys {
    pub fn load(_cfg: &KeyConfig) -> Result<Keys> {
        todo!()
    }
    /// The recipients units are encrypted to, as `age1…` strings.
    pub fn recipients(&self) -> Vec<String> {
        todo!()
    }
}
