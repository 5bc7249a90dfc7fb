//! SKELETON API — the contract the switch integration and the CLI code
//! against. Bodies to be implemented.
//!
//! The store: objects, refs, snapshot, restore, verify, gc, export/import.

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Result;
use nixproc_core::lifecycle::{StateSpec, StateUnit};

use crate::format::{Reason, SnapshotManifest};
use crate::keys::Keys;

/// An account to run engine tools as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunAs {
    pub user: String,
    pub uid: u32,
    pub gid: u32,
    pub home: Option<PathBuf>,
}

/// What to snapshot.
pub struct SnapshotRequest<'a> {
    pub instance: &'a str,
    pub spec: &'a StateSpec,
    /// The instance's revision digest (manifest `revision`).
    pub revision: &'a str,
    pub profile: Option<&'a Path>,
    pub generation: Option<u64>,
    pub next_revision: Option<&'a str>,
    pub reason: Reason,
    /// `manual/<tag>` ref for manual snapshots (default: the timestamp).
    pub tag: Option<&'a str>,
    pub run_as: Option<&'a RunAs>,
}

/// Which snapshot of an instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selector {
    /// The object id.
    Id(String),
    /// `revisions/<hash>`: the state left behind by that revision.
    Revision(String),
    /// `generations/<n>`.
    Generation(u64),
    /// The newest object of the instance.
    Latest,
}

/// A snapshot being taken: units are captured one by one (online units
/// before the instance stops, `stop` units after), then committed
/// atomically. Dropping it uncommitted removes the staged files.
pub struct PendingSnapshot<'s> {
    _store: &'s StateStore,
}

impl PendingSnapshot<'_> {
    /// Captures the units of the spec for which `which` is true (each unit
    /// at most once).
    pub fn capture(&mut self, _which: &dyn Fn(&StateUnit) -> bool) -> Result<()> {
        todo!()
    }
    /// Writes the manifests, fsyncs, renames into `objects/`, adds the refs.
    pub fn commit(self) -> Result<SnapshotManifest> {
        todo!()
    }
}

/// GC retention.
#[derive(Debug, Clone, Default)]
pub struct GcOptions {
    /// Keep the newest N objects per instance (default 1).
    pub keep: usize,
    pub keep_within: Option<Duration>,
    pub dry_run: bool,
}

/// What is still referenced from outside the store.
#[derive(Debug, Clone, Default)]
pub struct GcRoots {
    /// Profile generations that still exist.
    pub generations: BTreeSet<u64>,
    /// Instance revisions deployed in any existing generation.
    pub revisions: BTreeSet<String>,
}

#[derive(Debug, Clone, Default)]
pub struct GcReport {
    pub removed: Vec<String>,
    pub kept: Vec<String>,
    pub freed_bytes: u64,
}

/// Result of a verify.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    pub id: String,
    /// Empty when everything checked out.
    pub problems: Vec<String>,
}

pub struct StateStore {
    root: PathBuf,
}

impl StateStore {
    /// Opens (creating the layout if needed) the store at `root`.
    pub fn open(root: &Path) -> Result<Self> {
        Ok(StateStore {
            root: root.to_path_buf(),
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Starts a snapshot; nothing is visible until `commit`.
    pub fn begin<'s>(
        &'s self,
        _req: SnapshotRequest<'_>,
        _keys: &Keys,
    ) -> Result<PendingSnapshot<'s>> {
        todo!()
    }

    /// Convenience: begin + capture all + commit.
    pub fn snapshot(&self, _req: SnapshotRequest<'_>, _keys: &Keys) -> Result<SnapshotManifest> {
        todo!()
    }

    pub fn find(&self, _instance: &str, _which: &Selector) -> Result<Option<SnapshotManifest>> {
        todo!()
    }

    /// Objects (optionally of one instance), oldest first.
    pub fn list(&self, _instance: Option<&str>) -> Result<Vec<SnapshotManifest>> {
        todo!()
    }

    /// Restores the units of `id` (all, or those named) into the live
    /// locations described by `spec`: deep-verifies and stages every unit
    /// first, applies only when all staged cleanly. The caller has stopped
    /// whatever must be stopped.
    pub fn restore(
        &self,
        _id: &str,
        _spec: &StateSpec,
        _keys: &Keys,
        _run_as: Option<&RunAs>,
        _units: Option<&[String]>,
    ) -> Result<()> {
        todo!()
    }

    /// Keyless: ciphertext digests and sizes. With `deep`: decrypt,
    /// decompress, check plaintext digests (needs an identity).
    pub fn verify(&self, _id: &str, _deep: Option<&Keys>) -> Result<VerifyReport> {
        todo!()
    }

    pub fn gc(&self, _opts: &GcOptions, _roots: &GcRoots) -> Result<GcReport> {
        todo!()
    }

    /// One object as a tar stream.
    pub fn export(&self, _id: &str, _out: &mut dyn Write) -> Result<()> {
        todo!()
    }

    /// An exported object; checked (keyless verify) before it is added.
    pub fn import(&self, _input: &mut dyn Read) -> Result<SnapshotManifest> {
        todo!()
    }
}
