//! The on-disk format of a snapshot object (format version 1).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub const FORMAT_VERSION: u32 = 1;

/// Why a snapshot was taken.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Reason {
    /// Automatically, before a switch stopped or replaced the instance.
    PreSwitch,
    /// Automatically, before a restore overwrote the current state (the
    /// "safety snapshot").
    PreRestore,
    /// By hand (`nixproc state snapshot`).
    Manual,
    /// Brought in by `nixproc state import`.
    Imported,
}

/// `objects/<id>/manifest.json`: readable without a key; no plaintext
/// digests, no secrets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SnapshotManifest {
    pub format: u32,
    /// `<UTC yyyymmddThhmmssZ>-<instance>-<8 hex>`: sortable, opaque.
    pub id: String,
    pub instance: String,
    pub reason: Reason,
    /// `manual/<tag>` ref, when given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    /// RFC 3339 UTC.
    pub created: String,
    /// `nixproc <version>`.
    pub tool: String,
    /// The instance's revision (manifest `revision` digest) whose state this is.
    pub revision: String,
    /// The profile (store path) that revision was deployed from, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
    /// The profile generation being left, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generation: Option<u64>,
    /// The revision the switch was going to, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_revision: Option<String>,
    /// `schema.version` of the revision, when declared.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<String>,
    pub units: BTreeMap<String, UnitEntry>,
    /// age recipients (public keys) the units are encrypted to; empty =
    /// not encrypted (`--no-encryption`).
    pub recipients: Vec<String>,
    /// e.g. `zstd-3`.
    pub compression: String,
}

/// One captured unit inside an object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UnitEntry {
    /// The unit type (`directory`, `postgresql-database`, …).
    #[serde(rename = "type")]
    pub kind: String,
    /// File name inside the object directory.
    pub file: String,
    /// SHA-256 of the file as stored (ciphertext), hex.
    pub sha256: String,
    /// Size of the stored file in bytes.
    pub size: u64,
}

/// `secret.json.age` (encrypted like the units): plaintext digests.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SecretManifest {
    /// unit → SHA-256 of the plaintext stream (before compression), hex.
    pub plaintext_sha256: BTreeMap<String, String>,
    /// unit → plaintext size in bytes.
    pub plaintext_size: BTreeMap<String, u64>,
}
