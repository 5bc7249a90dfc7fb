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
    /// The stored `secret.json.age` (or `secret.json` when unencrypted):
    /// its ciphertext digest, so a keyless verify covers it too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<FileEntry>,
}

/// A file of an object that is not a unit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FileEntry {
    pub file: String,
    pub sha256: String,
    pub size: u64,
}

impl SnapshotManifest {
    /// Parses a `manifest.json`, refusing formats this version does not
    /// know (a newer nixproc wrote it) with a message saying so.
    pub fn parse(text: &str) -> anyhow::Result<SnapshotManifest> {
        #[derive(Deserialize)]
        struct Probe {
            format: Option<serde_json::Value>,
        }
        let probe: Probe = serde_json::from_str(text)
            .map_err(|e| anyhow::anyhow!("not a snapshot manifest (invalid JSON: {e})"))?;
        match probe.format {
            Some(serde_json::Value::Number(n)) if n.as_u64() == Some(u64::from(FORMAT_VERSION)) => {
            }
            Some(f) => anyhow::bail!(
                "snapshot format {f} is not supported by this nixproc (it reads format \
                 {FORMAT_VERSION}); a newer nixproc wrote it"
            ),
            None => anyhow::bail!("not a snapshot manifest (no `format` field)"),
        }
        serde_json::from_str(text).map_err(|e| anyhow::anyhow!("invalid snapshot manifest: {e}"))
    }

    /// The manifest as written to disk (pretty JSON, trailing newline).
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("manifest serializes") + "\n"
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> SnapshotManifest {
        SnapshotManifest {
            format: FORMAT_VERSION,
            id: "20260512T101500Z-web-0011aabb".into(),
            instance: "web".into(),
            reason: Reason::PreSwitch,
            tag: None,
            created: "2026-05-12T10:15:00Z".into(),
            tool: "nixproc 0.1.0".into(),
            revision: "abc".into(),
            profile: None,
            generation: Some(4),
            next_revision: None,
            schema: Some("v1".into()),
            units: BTreeMap::from([(
                "files".to_string(),
                UnitEntry {
                    kind: "directory".into(),
                    file: "unit-files.tar.zst.age".into(),
                    sha256: "00".into(),
                    size: 1,
                },
            )]),
            recipients: vec!["age1x".into()],
            compression: "zstd-3".into(),
            secret: None,
        }
    }

    #[test]
    fn manifest_round_trips() {
        let m = sample();
        let text = m.to_json();
        assert!(text.contains("\"reason\": \"pre-switch\""));
        assert!(text.contains("\"type\": \"directory\""));
        assert_eq!(SnapshotManifest::parse(&text).unwrap(), m);
    }

    #[test]
    fn unknown_format_is_refused_clearly() {
        let text = sample().to_json().replace("\"format\": 1", "\"format\": 7");
        let e = SnapshotManifest::parse(&text).unwrap_err().to_string();
        assert!(e.contains("snapshot format 7 is not supported"), "{e}");
        let e = SnapshotManifest::parse("{}").unwrap_err().to_string();
        assert!(e.contains("no `format` field"), "{e}");
        let e = SnapshotManifest::parse("nope").unwrap_err().to_string();
        assert!(e.contains("invalid JSON"), "{e}");
    }

    #[test]
    fn unknown_reason_is_an_error() {
        let text = sample().to_json().replace("pre-switch", "whenever");
        assert!(SnapshotManifest::parse(&text).is_err());
    }
}
