//! The store: objects, refs, snapshot, restore, verify, gc, export/import
//! (reference state-background.md §6.3–§6.9).
//!
//! Layout under the root (created by [`StateStore::open`]):
//!
//! ```text
//! lock                                  global flock (see crate::lock for who takes what)
//! objects/<id>/                         immutable once renamed in
//!     manifest.json                     cleartext: units, ciphertext digests, recipients
//!     secret.json.age                   plaintext digests (secret.json when unencrypted)
//!     unit-<name>.<ext>.zst.age         capture → zstd-3 → age (.zst when unencrypted)
//! instances/<i>/lock                    per-instance flock
//! instances/<i>/revisions/<rev>  -> ../../../objects/<id>   state left behind by revision <rev>
//! instances/<i>/generations/<n>  -> ../../../objects/<id>   state left behind by generation <n>
//! instances/<i>/manual/<tag|id>  -> ../../../objects/<id>   by hand (`manual/imported-<id>` by import)
//! tmp/<id>/  tmp/<id>.scratch/  tmp/restore-*/  tmp/import-*/   staging (gc removes leftovers)
//! trash/                                two-phase gc
//! ```
//!
//! **Atomicity.** A snapshot is written into `tmp/<id>/`, every file
//! fsynced, then the directory is renamed into `objects/` and `objects/`
//! fsynced; refs are created last (temporary symlink + rename). A crash
//! leaves no object or an unreferenced one, which `gc` removes. A ref of
//! the same key is replaced: the newest snapshot *leaving* a revision
//! wins.
//!
//! **Restore** stages and checks every unit (ciphertext digest and size,
//! age authentication, zstd checksum, plaintext digest and size from
//! `secret.json.age`) before the first one is applied; directories are
//! swapped in with two renames (see [`crate::adapters::directory`] for the
//! crash recovery between them).
//!
//! **Locks.** Methods take the locks they need themselves (table in
//! [`crate::lock`]). A caller that holds the global lock for longer (the
//! switch) takes it with [`StateStore::lock_exclusive`]; while the guard
//! lives, methods of the same store do not take the global lock again
//! (flock would deadlock against the own process). The per-instance lock
//! is never taken twice by one store: a second attempt is an error, not a
//! hang.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use nixproc_core::lifecycle::{StateSpec, StateUnit, UnitKind};
use sha2::{Digest, Sha256};

use crate::adapters::{self, UnitContext};
use crate::archive;
use crate::faults;
use crate::format::{
    FileEntry, Reason, SecretManifest, SnapshotManifest, UnitEntry, FORMAT_VERSION,
};
use crate::keys::Keys;
use crate::lock::{self, FileLock, LockMode};

/// An account to run engine tools as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunAs {
    pub user: String,
    pub uid: u32,
    pub gid: u32,
    pub home: Option<PathBuf>,
}

impl RunAs {
    /// Makes `cmd` run as this account: its uid and gid when that is
    /// another account than ours (std then drops the supplementary
    /// groups), and its `USER`, `LOGNAME` and `HOME`.
    pub fn apply(&self, cmd: &mut std::process::Command) {
        use std::os::unix::process::CommandExt;
        if self.uid != rustix::process::geteuid().as_raw() {
            cmd.uid(self.uid).gid(self.gid);
        }
        cmd.env("USER", &self.user).env("LOGNAME", &self.user);
        if let Some(h) = &self.home {
            cmd.env("HOME", h);
        }
    }
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
    /// `manual/<tag>` ref for manual snapshots (default: the object id).
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

/// Read/write buffer size of the pipelines.
const BUF: usize = 1 << 20;
/// zstd level of unit files (`compression: "zstd-3"`).
const ZSTD_LEVEL: i32 = 3;

/// A snapshot being taken: units are captured one by one (online units
/// before the instance stops, `stop` units after), then committed
/// atomically. Dropping it uncommitted removes the staged files.
///
/// Holds the global lock (shared, unless the store's own guard is held)
/// and the instance's lock from `begin` until it is committed or dropped.
pub struct PendingSnapshot<'s> {
    store: &'s StateStore,
    _global: Option<FileLock>,
    _instance: InstanceLock<'s>,
    dir: PathBuf,
    scratch: PathBuf,
    manifest: SnapshotManifest,
    secret: SecretManifest,
    spec: StateSpec,
    run_as: Option<RunAs>,
    keys: Keys,
    manual_ref: Option<String>,
    committed: bool,
}

impl PendingSnapshot<'_> {
    /// The id the object will have.
    pub fn id(&self) -> &str {
        &self.manifest.id
    }

    /// Captures the units of the spec for which `which` is true (each unit
    /// at most once).
    pub fn capture(&mut self, which: &dyn Fn(&StateUnit) -> bool) -> Result<()> {
        let todo: Vec<(String, StateUnit)> = self
            .spec
            .units
            .iter()
            .filter(|(name, unit)| !self.manifest.units.contains_key(*name) && which(unit))
            .map(|(n, u)| (n.clone(), u.clone()))
            .collect();
        for (name, unit) in todo {
            self.capture_unit(&name, &unit).with_context(|| {
                format!(
                    "snapshot of unit {name} of instance {}",
                    self.manifest.instance
                )
            })?;
            faults::point("snapshot.unit-written");
        }
        Ok(())
    }

    fn capture_unit(&mut self, name: &str, unit: &StateUnit) -> Result<()> {
        let adapter = adapters::adapter_for(unit);
        let suffix = if self.keys.no_encryption() {
            ".zst"
        } else {
            ".zst.age"
        };
        let file = format!("unit-{name}.{}{suffix}", adapter.extension());
        let scratch = self.scratch.join(name);
        make_dir(&scratch, 0o700)?;
        if let Some(r) = &self.run_as {
            chown_for(&scratch, r)?;
        }
        let ctx = UnitContext {
            instance: &self.manifest.instance,
            unit: name,
            run_as: self.run_as.as_ref(),
            scratch: &scratch,
        };
        let (plain, cipher) = write_pipeline(&self.keys, &self.dir.join(&file), true, |w| {
            adapter.capture(&ctx, w)
        })?;
        let _ = archive::remove_tree(&scratch);
        self.secret
            .plaintext_sha256
            .insert(name.to_string(), plain.sha256);
        self.secret
            .plaintext_size
            .insert(name.to_string(), plain.size);
        self.manifest.units.insert(
            name.to_string(),
            UnitEntry {
                kind: unit_type(unit).to_string(),
                file,
                sha256: cipher.sha256,
                size: cipher.size,
            },
        );
        Ok(())
    }

    /// Writes the manifests, fsyncs, renames into `objects/`, adds the refs.
    /// Every unit of the spec must have been captured.
    pub fn commit(mut self) -> Result<SnapshotManifest> {
        let missing: Vec<&String> = self
            .spec
            .units
            .keys()
            .filter(|n| !self.manifest.units.contains_key(*n))
            .collect();
        if !missing.is_empty() {
            bail!(
                "snapshot of instance {}: units not captured: {}",
                self.manifest.instance,
                join(missing)
            );
        }
        let secret_name = if self.keys.no_encryption() {
            "secret.json"
        } else {
            "secret.json.age"
        };
        let secret_json = serde_json::to_vec_pretty(&self.secret)?;
        let (_, cipher) = write_pipeline(&self.keys, &self.dir.join(secret_name), false, |w| {
            w.write_all(&secret_json)?;
            Ok(())
        })?;
        self.manifest.secret = Some(FileEntry {
            file: secret_name.to_string(),
            sha256: cipher.sha256,
            size: cipher.size,
        });
        write_file_synced(
            &self.dir.join("manifest.json"),
            self.manifest.to_json().as_bytes(),
        )?;
        fsync_dir(&self.dir)?;
        faults::point("snapshot.before-rename");
        let objects = self.store.root.join("objects");
        let dest = objects.join(&self.manifest.id);
        fs::rename(&self.dir, &dest)
            .with_context(|| format!("moving snapshot into {}", dest.display()))?;
        self.committed = true;
        fsync_dir(&objects)?;
        let _ = archive::remove_tree(&self.scratch);
        faults::point("snapshot.after-rename");
        faults::point("snapshot.before-refs");
        let m = &self.manifest;
        let store = self.store;
        store.set_ref(&m.instance, "revisions", &m.revision, &m.id)?;
        if let Some(g) = m.generation {
            store.set_ref(&m.instance, "generations", &g.to_string(), &m.id)?;
        }
        if let Some(key) = &self.manual_ref {
            store.set_ref(&m.instance, "manual", key, &m.id)?;
        }
        Ok(self.manifest.clone())
    }
}

impl Drop for PendingSnapshot<'_> {
    fn drop(&mut self) {
        if !self.committed {
            let _ = archive::remove_tree(&self.dir);
        }
        let _ = archive::remove_tree(&self.scratch);
    }
}

/// GC retention.
#[derive(Debug, Clone)]
pub struct GcOptions {
    /// Keep the newest N objects per instance (default 1).
    pub keep: usize,
    pub keep_within: Option<Duration>,
    pub dry_run: bool,
}

impl Default for GcOptions {
    fn default() -> Self {
        GcOptions {
            keep: 1,
            keep_within: None,
            dry_run: false,
        }
    }
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
    /// Object ids removed (or that would be, with `dry_run`), and leftovers
    /// as `tmp/<name>` / `trash/<name>`.
    pub removed: Vec<String>,
    pub kept: Vec<String>,
    pub freed_bytes: u64,
    /// Refs removed because their object is gone (`<instance>/<kind>/<key>`).
    pub dangling_refs: Vec<String>,
}

/// Result of a verify.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    pub id: String,
    /// Empty when everything checked out.
    pub problems: Vec<String>,
}

/// What a restore did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RestoreReport {
    /// Units applied.
    pub restored: Vec<String>,
    /// Units in the snapshot but not declared any more (left alone).
    pub ignored: Vec<String>,
}

pub struct StateStore {
    root: PathBuf,
    /// The global lock mode held by a guard of this store, if any.
    held: Mutex<Option<LockMode>>,
    /// Instances locked by this store.
    instances: Mutex<BTreeSet<String>>,
    waiting: Box<dyn Fn(&str) + Send + Sync>,
}

/// The global lock, held by [`StateStore::lock_exclusive`] /
/// [`StateStore::lock_shared`] until dropped; methods of the store do not
/// take it again meanwhile.
pub struct StoreLock<'s> {
    store: &'s StateStore,
    _lock: FileLock,
}

impl Drop for StoreLock<'_> {
    fn drop(&mut self) {
        *self.store.held.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }
}

struct InstanceLock<'s> {
    store: &'s StateStore,
    name: String,
    _lock: FileLock,
}

impl Drop for InstanceLock<'_> {
    fn drop(&mut self) {
        self.store
            .instances
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.name);
    }
}

impl StateStore {
    /// Opens (creating the layout if needed) the store at `root`.
    pub fn open(root: &Path) -> Result<Self> {
        fs::create_dir_all(root)
            .with_context(|| format!("creating state store {}", root.display()))?;
        // Traversable (run-as scratch dirs live below tmp/), not listable.
        for (sub, mode) in [
            ("objects", 0o700),
            ("instances", 0o700),
            ("tmp", 0o711),
            ("trash", 0o700),
        ] {
            make_dir(&root.join(sub), mode)?;
        }
        Ok(StateStore {
            root: root.to_path_buf(),
            held: Mutex::new(None),
            instances: Mutex::new(BTreeSet::new()),
            waiting: Box::new(|m| eprintln!("nixproc: {m}")),
        })
    }

    /// Replaces the "waiting for the lock …" message sink (default: stderr).
    pub fn on_lock_wait(&mut self, f: impl Fn(&str) + Send + Sync + 'static) {
        self.waiting = Box::new(f);
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Takes the global lock exclusively (waiting, with a message, when it
    /// is held) for the lifetime of the guard: the switch holds it while it
    /// snapshots and restores through this store.
    pub fn lock_exclusive(&self) -> Result<StoreLock<'_>> {
        self.take_guard(LockMode::Exclusive, true)?
            .ok_or_else(|| anyhow!("lock not taken"))
    }

    /// Like [`lock_exclusive`](Self::lock_exclusive) without waiting:
    /// `None` when another process holds the lock.
    pub fn try_lock_exclusive(&self) -> Result<Option<StoreLock<'_>>> {
        self.take_guard(LockMode::Exclusive, false)
    }

    /// The global lock shared (several shared holders may run together).
    pub fn lock_shared(&self) -> Result<StoreLock<'_>> {
        self.take_guard(LockMode::Shared, true)?
            .ok_or_else(|| anyhow!("lock not taken"))
    }

    fn take_guard(&self, mode: LockMode, wait: bool) -> Result<Option<StoreLock<'_>>> {
        let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        if held.is_some() {
            bail!("the state store lock is already held by this process");
        }
        let path = self.root.join("lock");
        let l = if wait {
            Some(lock::lock(&path, mode, &*self.waiting)?)
        } else {
            lock::try_lock(&path, mode)?
        };
        Ok(l.map(|l| {
            *held = Some(mode);
            StoreLock {
                store: self,
                _lock: l,
            }
        }))
    }

    /// The global lock for one operation, unless a guard already covers it.
    fn global(&self, mode: LockMode) -> Result<Option<FileLock>> {
        let held = *self.held.lock().unwrap_or_else(|e| e.into_inner());
        match (held, mode) {
            (Some(LockMode::Exclusive), _) | (Some(LockMode::Shared), LockMode::Shared) => Ok(None),
            (Some(LockMode::Shared), LockMode::Exclusive) => bail!(
                "this operation needs the state store lock exclusively, but this process holds \
                 it shared"
            ),
            (None, _) => Ok(Some(lock::lock(
                &self.root.join("lock"),
                mode,
                &*self.waiting,
            )?)),
        }
    }

    fn instance_lock(&self, instance: &str) -> Result<InstanceLock<'_>> {
        check_name("instance", instance)?;
        {
            let mut set = self.instances.lock().unwrap_or_else(|e| e.into_inner());
            if !set.insert(instance.to_string()) {
                bail!("instance {instance} is already locked by this process (a snapshot in progress?)");
            }
        }
        let dir = self.root.join("instances").join(instance);
        let l = make_dir(&dir, 0o700)
            .and_then(|_| lock::lock(&dir.join("lock"), LockMode::Exclusive, &*self.waiting));
        match l {
            Ok(l) => Ok(InstanceLock {
                store: self,
                name: instance.to_string(),
                _lock: l,
            }),
            Err(e) => {
                self.instances
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(instance);
                Err(e)
            }
        }
    }

    /// Starts a snapshot; nothing is visible until `commit`.
    pub fn begin<'s>(
        &'s self,
        req: SnapshotRequest<'_>,
        keys: &Keys,
    ) -> Result<PendingSnapshot<'s>> {
        check_name("instance", req.instance)?;
        check_name("revision", req.revision)?;
        if let Some(t) = req.tag {
            check_name("tag", t)?;
        }
        if !keys.no_encryption() && keys.recipients().is_empty() {
            // The same message as Keys::load gives.
            keys.encrypt(io::sink())?;
        }
        let global = self.global(LockMode::Shared)?;
        let instance = self.instance_lock(req.instance)?;
        // A restore interrupted between its renames is settled first.
        recover_directories(req.spec)?;
        let now = time::OffsetDateTime::now_utc();
        let id = format!("{}-{}-{}", stamp(now), req.instance, random_hex());
        let dir = self.root.join("tmp").join(&id);
        let scratch = self.root.join("tmp").join(format!("{id}.scratch"));
        make_new_dir(&dir, 0o700)?;
        make_new_dir(&scratch, 0o711)?;
        let manual_ref = match (&req.reason, req.tag) {
            (_, Some(t)) => Some(t.to_string()),
            (Reason::Manual, None) => Some(id.clone()),
            _ => None,
        };
        let manifest = SnapshotManifest {
            format: FORMAT_VERSION,
            id,
            instance: req.instance.to_string(),
            reason: req.reason,
            tag: req.tag.map(str::to_string),
            created: rfc3339(now),
            tool: format!("nixproc {}", env!("CARGO_PKG_VERSION")),
            revision: req.revision.to_string(),
            profile: req.profile.map(|p| p.to_string_lossy().into_owned()),
            generation: req.generation,
            next_revision: req.next_revision.map(str::to_string),
            schema: req.spec.schema.as_ref().map(|s| s.version.clone()),
            units: BTreeMap::new(),
            recipients: keys.recipients(),
            compression: format!("zstd-{ZSTD_LEVEL}"),
            secret: None,
        };
        Ok(PendingSnapshot {
            store: self,
            _global: global,
            _instance: instance,
            dir,
            scratch,
            manifest,
            secret: SecretManifest::default(),
            spec: req.spec.clone(),
            run_as: req.run_as.cloned(),
            keys: keys.encrypt_only(),
            manual_ref,
            committed: false,
        })
    }

    /// Convenience: begin + capture all + commit.
    pub fn snapshot(&self, req: SnapshotRequest<'_>, keys: &Keys) -> Result<SnapshotManifest> {
        let mut p = self.begin(req, keys)?;
        p.capture(&|_| true)?;
        p.commit()
    }

    fn object_dir(&self, id: &str) -> Result<PathBuf> {
        check_name("snapshot id", id)?;
        Ok(self.root.join("objects").join(id))
    }

    /// The manifest of object `id` (`None` when there is no such object).
    pub fn manifest(&self, id: &str) -> Result<Option<SnapshotManifest>> {
        let path = self.object_dir(id)?.join("manifest.json");
        let text = match fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        };
        SnapshotManifest::parse(&text)
            .map(Some)
            .with_context(|| format!("snapshot {id}"))
    }

    pub fn find(&self, instance: &str, which: &Selector) -> Result<Option<SnapshotManifest>> {
        check_name("instance", instance)?;
        let by_ref = |kind: &str, key: &str| -> Result<Option<SnapshotManifest>> {
            check_name(kind, key)?;
            let link = self
                .root
                .join("instances")
                .join(instance)
                .join(kind)
                .join(key);
            match fs::read_link(&link) {
                Ok(t) => {
                    let id = t
                        .file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_default();
                    self.manifest(&id)
                }
                Err(_) => Ok(None),
            }
        };
        let m = match which {
            Selector::Id(id) => self.manifest(id)?,
            Selector::Revision(r) => by_ref("revisions", r)?,
            Selector::Generation(g) => by_ref("generations", &g.to_string())?,
            Selector::Latest => self.list(Some(instance))?.pop(),
        };
        if let Some(m) = &m {
            if m.instance != instance {
                bail!(
                    "snapshot {} belongs to instance {}, not {instance}",
                    m.id,
                    m.instance
                );
            }
        }
        Ok(m)
    }

    /// The ids of every object (including ones whose manifest is broken),
    /// sorted by name.
    pub fn object_ids(&self) -> Result<Vec<String>> {
        let dir = self.root.join("objects");
        let mut ids: Vec<String> = fs::read_dir(&dir)
            .with_context(|| format!("reading {}", dir.display()))?
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| !n.starts_with('.'))
            .collect();
        ids.sort();
        Ok(ids)
    }

    /// Objects (optionally of one instance), oldest first. Objects whose
    /// manifest cannot be read are left out (`verify` reports them).
    pub fn list(&self, instance: Option<&str>) -> Result<Vec<SnapshotManifest>> {
        let mut out: Vec<(time::OffsetDateTime, SnapshotManifest)> = Vec::new();
        for id in self.object_ids()? {
            let Ok(Some(m)) = self.manifest(&id) else {
                continue;
            };
            if instance.is_some_and(|i| i != m.instance) {
                continue;
            }
            let t = parse_time(&m.created).unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
            out.push((t, m));
        }
        out.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.id.cmp(&b.1.id)));
        Ok(out.into_iter().map(|(_, m)| m).collect())
    }

    /// Restores the units of `id` (all, or those named) into the live
    /// locations described by `spec`: deep-verifies and stages every unit
    /// first, applies only when all staged cleanly. The caller has stopped
    /// whatever must be stopped.
    pub fn restore(
        &self,
        id: &str,
        spec: &StateSpec,
        keys: &Keys,
        run_as: Option<&RunAs>,
        units: Option<&[String]>,
    ) -> Result<()> {
        self.restore_report(id, spec, keys, run_as, units)
            .map(|_| ())
    }

    /// [`restore`](Self::restore), saying which units were restored and
    /// which snapshot units are not declared any more (ignored).
    /// Takes the global lock exclusively and the instance's lock.
    pub fn restore_report(
        &self,
        id: &str,
        spec: &StateSpec,
        keys: &Keys,
        run_as: Option<&RunAs>,
        units: Option<&[String]>,
    ) -> Result<RestoreReport> {
        let _global = self.global(LockMode::Exclusive)?;
        let m = self
            .manifest(id)?
            .ok_or_else(|| anyhow!("there is no snapshot {id}"))?;
        let _instance = self.instance_lock(&m.instance)?;
        let dir = self.object_dir(id)?;
        // Which units.
        if let Some(names) = units {
            let unknown: Vec<&String> = names
                .iter()
                .filter(|n| !spec.units.contains_key(*n))
                .collect();
            if !unknown.is_empty() {
                bail!(
                    "instance {} declares no state unit {} (declared: {})",
                    m.instance,
                    join(unknown),
                    join(spec.units.keys())
                );
            }
        }
        let selected: Vec<(&String, &StateUnit)> = spec
            .units
            .iter()
            .filter(|(n, _)| units.is_none_or(|names| names.contains(n)))
            .collect();
        let absent: Vec<&String> = selected
            .iter()
            .map(|(n, _)| *n)
            .filter(|n| !m.units.contains_key(*n))
            .collect();
        if !absent.is_empty() {
            bail!(
                "snapshot {id} has no unit {} (declared after it was taken); restore the \
                 others by naming them, or take the unit's state as it is",
                join(absent)
            );
        }
        for (name, unit) in &selected {
            let kind = &m.units[*name].kind;
            if kind != unit_type(unit) {
                bail!(
                    "unit {name} is a {} now but a {kind} in snapshot {id}; not restoring a \
                     different kind of state",
                    unit_type(unit)
                );
            }
        }
        let ignored: Vec<String> = m
            .units
            .keys()
            .filter(|n| !spec.units.contains_key(*n))
            .cloned()
            .collect();
        let secret = self.read_secret(&dir, &m, keys)?;
        recover_directories(spec)?;
        // Stage and check everything.
        let scratch = self
            .root
            .join("tmp")
            .join(format!("restore-{}", random_hex()));
        make_new_dir(&scratch, 0o711)?;
        let _cleanup = RemoveOnDrop(scratch.clone());
        let mut staged = Vec::new();
        for (name, unit) in &selected {
            let entry = &m.units[*name];
            let unit_scratch = scratch.join(name.as_str());
            make_dir(&unit_scratch, 0o700)?;
            if let Some(r) = run_as {
                chown_for(&unit_scratch, r)?;
            }
            let adapter = adapters::adapter_for(unit);
            let ctx = UnitContext {
                instance: &m.instance,
                unit: name,
                run_as,
                scratch: &unit_scratch,
            };
            let damaged = |e: anyhow::Error| {
                anyhow!(
                    "snapshot {id} is damaged or cannot be read (unit {name}): {e:#}; nothing \
                     was changed"
                )
            };
            let file = check_file_name(&entry.file)
                .and_then(|_| File::open(dir.join(&entry.file)).context("opening the unit file"))
                .map_err(damaged)?;
            let mut r = read_pipeline(
                keys,
                file,
                &m.recipients,
                &format!("unit {name} of snapshot {id}"),
                true,
            )
            .map_err(damaged)?;
            let st = match adapter.stage(&ctx, &mut r.reader) {
                Ok(st) => st,
                Err(e) => {
                    // A damaged file shows as a failure of whatever read
                    // it: the digests tell the two apart.
                    let e = match r.finish(entry, &secret, name) {
                        Err(d) => damaged(anyhow!("{d:#} ({e:#})")),
                        Ok(()) => anyhow!(
                            "restoring unit {name} of snapshot {id} failed while staging, \
                             before anything live was touched: {e:#}"
                        ),
                    };
                    return Err(e);
                }
            };
            r.finish(entry, &secret, name).map_err(damaged)?;
            staged.push((name.to_string(), st, unit_scratch));
        }
        faults::point("restore.staged");
        let mut done = Vec::new();
        let total = staged.len();
        for (i, (name, st, unit_scratch)) in staged.into_iter().enumerate() {
            if i > 0 {
                faults::point("restore.between-units");
            }
            let unit = &spec.units[&name];
            let ctx = UnitContext {
                instance: &m.instance,
                unit: &name,
                run_as,
                scratch: &unit_scratch,
            };
            if let Err(e) = st.apply(&ctx) {
                let _ = unit;
                bail!(
                    "restoring unit {name} of snapshot {id} failed: {e:#}{}",
                    if done.is_empty() {
                        String::new()
                    } else {
                        format!(
                            " (already restored: {}; not restored: {} of {total} units)",
                            done.join(", "),
                            total - done.len()
                        )
                    }
                );
            }
            done.push(name);
        }
        Ok(RestoreReport {
            restored: done,
            ignored,
        })
    }

    fn read_secret(&self, dir: &Path, m: &SnapshotManifest, keys: &Keys) -> Result<SecretManifest> {
        let id = &m.id;
        let entry = m.secret.as_ref().ok_or_else(|| {
            anyhow!(
                "snapshot {id} is damaged: its manifest names no secret file; nothing was changed"
            )
        })?;
        let read = || -> Result<SecretManifest> {
            check_file_name(&entry.file)?;
            let file = File::open(dir.join(&entry.file)).context("opening the secret file")?;
            let mut r = read_pipeline(keys, file, &m.recipients, &format!("snapshot {id}"), false)?;
            let mut text = Vec::new();
            r.reader.read_to_end(&mut text)?;
            drop(r.reader);
            let c = lock_acc(&r.cipher).clone();
            if c.size != entry.size || c.hex() != entry.sha256 {
                bail!("{} does not match its digest in manifest.json", entry.file);
            }
            serde_json::from_slice(&text).context("secret.json")
        };
        read().map_err(|e| {
            if e.to_string().starts_with("cannot decrypt") {
                e
            } else {
                anyhow!("snapshot {id} is damaged: {e:#}; nothing was changed")
            }
        })
    }

    /// Keyless: ciphertext digests and sizes. With `deep`: decrypt,
    /// decompress, check plaintext digests (needs an identity).
    pub fn verify(&self, id: &str, deep: Option<&Keys>) -> Result<VerifyReport> {
        let dir = self.object_dir(id)?;
        if !dir.is_dir() {
            bail!("there is no snapshot {id}");
        }
        Ok(VerifyReport {
            id: id.to_string(),
            problems: verify_dir(&dir, id, deep),
        })
    }

    /// Creates `instances/<instance>/<kind>/<key>` → the object, replacing
    /// an older ref of the same key (temporary symlink + rename).
    fn set_ref(&self, instance: &str, kind: &str, key: &str, id: &str) -> Result<()> {
        check_name(kind, key)?;
        let dir = self.root.join("instances").join(instance).join(kind);
        fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let tmp = dir.join(format!(".{key}.tmp-{}", random_hex()));
        std::os::unix::fs::symlink(format!("../../../objects/{id}"), &tmp)
            .with_context(|| format!("creating {}", tmp.display()))?;
        fs::rename(&tmp, dir.join(key)).with_context(|| format!("creating ref {kind}/{key}"))?;
        fsync_dir(&dir).with_context(|| format!("syncing {}", dir.display()))
    }

    /// All refs: (instance, kind, key, object id).
    fn refs(&self) -> Result<Vec<(String, String, String, String)>> {
        let mut out = Vec::new();
        let inst = self.root.join("instances");
        for i in read_names(&inst)? {
            for kind in ["revisions", "generations", "manual"] {
                let d = inst.join(&i).join(kind);
                for key in read_names(&d)? {
                    let target = fs::read_link(d.join(&key))
                        .ok()
                        .and_then(|t| t.file_name().map(|n| n.to_string_lossy().into_owned()))
                        .unwrap_or_default();
                    out.push((i.clone(), kind.to_string(), key, target));
                }
            }
        }
        Ok(out)
    }

    /// Removes unreferenced objects and leftovers (see the module doc).
    /// Takes the global lock exclusively.
    pub fn gc(&self, opts: &GcOptions, roots: &GcRoots) -> Result<GcReport> {
        let _global = self.global(LockMode::Exclusive)?;
        let now = time::OffsetDateTime::now_utc();
        let ids = self.object_ids()?;
        let manifests: BTreeMap<String, Option<SnapshotManifest>> = ids
            .iter()
            .map(|id| (id.clone(), self.manifest(id).ok().flatten()))
            .collect();
        let mut keep: BTreeSet<String> = BTreeSet::new();
        let refs = self.refs()?;
        for (_, kind, key, target) in &refs {
            let rooted = match kind.as_str() {
                "manual" => true,
                "generations" => key
                    .parse::<u64>()
                    .is_ok_and(|g| roots.generations.contains(&g)),
                "revisions" => roots.revisions.contains(key),
                _ => false,
            };
            if rooted && manifests.contains_key(target) {
                keep.insert(target.clone());
            }
        }
        // Newest N per instance, and everything younger than keep_within.
        let mut by_instance: BTreeMap<&str, Vec<(time::OffsetDateTime, &str)>> = BTreeMap::new();
        for (id, m) in &manifests {
            let Some(m) = m else { continue };
            let t = parse_time(&m.created).unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
            by_instance.entry(&m.instance).or_default().push((t, id));
            if let Some(w) = opts.keep_within {
                if now - t <= w {
                    keep.insert(id.clone());
                }
            }
        }
        for list in by_instance.values_mut() {
            list.sort();
            for (_, id) in list.iter().rev().take(opts.keep) {
                keep.insert((*id).to_string());
            }
        }
        let mut report = GcReport::default();
        let objects = self.root.join("objects");
        let trash = self.root.join("trash");
        let tmp = self.root.join("tmp");
        let mut doomed: Vec<(PathBuf, String)> = Vec::new();
        for id in &ids {
            if keep.contains(id) {
                report.kept.push(id.clone());
            } else {
                doomed.push((objects.join(id), id.clone()));
            }
        }
        // Leftovers of interrupted snapshots, restores, imports (nothing is
        // in progress: gc holds the lock exclusively) and of an earlier gc.
        for n in read_names(&tmp)? {
            doomed.push((tmp.join(&n), format!("tmp/{n}")));
        }
        let earlier_trash = read_names(&trash)?;
        for n in &earlier_trash {
            report.removed.push(format!("trash/{n}"));
            report.freed_bytes += tree_size(&trash.join(n));
        }
        for (p, what) in &doomed {
            report.freed_bytes += tree_size(p);
            report.removed.push(what.clone());
        }
        let removed_ids: BTreeSet<&String> = doomed.iter().map(|(_, w)| w).collect();
        for (i, kind, key, target) in &refs {
            if !manifests.contains_key(target) || removed_ids.contains(target) {
                report.dangling_refs.push(format!("{i}/{kind}/{key}"));
            }
        }
        if opts.dry_run {
            return Ok(report);
        }
        for (p, _) in &doomed {
            let name = format!(
                "{}-{}",
                random_hex(),
                p.file_name().unwrap_or_default().to_string_lossy()
            );
            fs::rename(p, trash.join(name))
                .with_context(|| format!("moving {} to trash", p.display()))?;
        }
        fsync_dir(&objects)?;
        fsync_dir(&tmp)?;
        fsync_dir(&trash)?;
        faults::point("gc.moved-to-trash");
        for r in &report.dangling_refs {
            let _ = fs::remove_file(self.root.join("instances").join(r));
        }
        // Ref temporaries left by a crash between symlink and rename.
        for (i, kind) in read_names(&self.root.join("instances"))?
            .into_iter()
            .flat_map(|i| ["revisions", "generations", "manual"].map(|k| (i.clone(), k)))
        {
            let d = self.root.join("instances").join(&i).join(kind);
            for n in read_names_all(&d)? {
                if n.starts_with('.') && n.contains(".tmp-") {
                    let _ = fs::remove_file(d.join(n));
                }
            }
        }
        for n in read_names(&trash)? {
            archive::remove_tree(&trash.join(&n)).with_context(|| format!("removing trash/{n}"))?;
        }
        fsync_dir(&trash)?;
        Ok(report)
    }

    /// One object as a tar stream: `<id>/manifest.json` first, then the
    /// secret file and the unit files. Takes the global lock shared.
    pub fn export(&self, id: &str, out: &mut dyn Write) -> Result<()> {
        let _global = self.global(LockMode::Shared)?;
        let dir = self.object_dir(id)?;
        let m = self
            .manifest(id)?
            .ok_or_else(|| anyhow!("there is no snapshot {id}"))?;
        let mut files = vec!["manifest.json".to_string()];
        files.extend(m.secret.iter().map(|s| s.file.clone()));
        files.extend(m.units.values().map(|u| u.file.clone()));
        let mut b = tar::Builder::new(out);
        for f in files {
            if f != "manifest.json" {
                check_file_name(&f)?;
            }
            let path = dir.join(&f);
            let file = File::open(&path).with_context(|| format!("opening {}", path.display()))?;
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(tar::EntryType::Regular);
            h.set_mode(0o600);
            h.set_uid(0);
            h.set_gid(0);
            h.set_size(file.metadata()?.len());
            h.set_mtime(0);
            b.append_data(
                &mut h,
                format!("{id}/{f}"),
                BufReader::with_capacity(BUF, file),
            )
            .context("writing the export")?;
        }
        b.into_inner()
            .and_then(|w| w.flush())
            .context("writing the export")?;
        Ok(())
    }

    /// An exported object; checked (keyless verify) before it is added.
    /// Refs `revisions/<revision>` (unless a newer snapshot holds it) and
    /// `manual/imported-<id>`. Importing an identical object again is a
    /// no-op; a different object under an existing id is an error.
    /// Takes the global lock exclusively.
    pub fn import(&self, input: &mut dyn Read) -> Result<SnapshotManifest> {
        let _global = self.global(LockMode::Exclusive)?;
        let stage = self
            .root
            .join("tmp")
            .join(format!("import-{}", random_hex()));
        make_new_dir(&stage, 0o700)?;
        let _cleanup = RemoveOnDrop(stage.clone());
        archive::unpack(input, &stage).context("importing a snapshot")?;
        let names = read_names_all(&stage)?;
        let [id] = names.as_slice() else {
            bail!(
                "an exported snapshot holds exactly one directory (found: {})",
                join(&names)
            );
        };
        check_name("snapshot id", id)?;
        let src = stage.join(id);
        if !fs::symlink_metadata(&src)?.is_dir() {
            bail!("an exported snapshot holds one directory; {id} is not one");
        }
        let problems = verify_dir(&src, id, None);
        if !problems.is_empty() {
            bail!(
                "the imported snapshot {id} is damaged: {}",
                problems.join("; ")
            );
        }
        let text = fs::read_to_string(src.join("manifest.json"))?;
        let m = SnapshotManifest::parse(&text)?;
        check_name("instance", &m.instance)?;
        check_name("revision", &m.revision)?;
        let dest = self.object_dir(id)?;
        if dest.exists() {
            if !same_files(&src, &dest)? {
                bail!("a different snapshot with the id {id} exists already; not replacing it");
            }
        } else {
            for n in read_names_all(&src)? {
                File::open(src.join(n))?.sync_all()?;
            }
            fs::set_permissions(&src, fs::Permissions::from_mode(0o700))?;
            fsync_dir(&src)?;
            fs::rename(&src, &dest)
                .with_context(|| format!("moving the import into {}", dest.display()))?;
            fsync_dir(&self.root.join("objects"))?;
        }
        // The revision ref: unless a newer snapshot already left that revision.
        let current = self.find(&m.instance, &Selector::Revision(m.revision.clone()))?;
        let newer = current
            .is_some_and(|c| c.id != m.id && parse_time(&c.created) > parse_time(&m.created));
        if !newer {
            self.set_ref(&m.instance, "revisions", &m.revision, id)?;
        }
        self.set_ref(&m.instance, "manual", &format!("imported-{id}"), id)?;
        Ok(m)
    }

    /// Settles what a crash left half-done for `spec`'s units (a directory
    /// restore interrupted between its two renames: see
    /// [`crate::adapters::directory`]). Returns what was done.
    pub fn recover(&self, spec: &StateSpec) -> Result<Vec<String>> {
        recover_directories(spec)
    }
}

fn recover_directories(spec: &StateSpec) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for unit in spec.units.values() {
        if let UnitKind::Directory { path, .. } = &unit.kind {
            out.extend(adapters::directory::recover(Path::new(path))?);
        }
    }
    Ok(out)
}

/// The checks of a keyless (and with keys, deep) verify of an object
/// directory.
fn verify_dir(dir: &Path, id: &str, deep: Option<&Keys>) -> Vec<String> {
    let mut problems = Vec::new();
    let text = match fs::read_to_string(dir.join("manifest.json")) {
        Ok(t) => t,
        Err(e) => return vec![format!("manifest.json cannot be read: {e}")],
    };
    let m = match SnapshotManifest::parse(&text) {
        Ok(m) => m,
        Err(e) => return vec![format!("manifest.json: {e:#}")],
    };
    if m.id != id {
        problems.push(format!("manifest.json names id {}, not {id}", m.id));
    }
    for (what, v) in [("instance", &m.instance), ("revision", &m.revision)] {
        if let Err(e) = check_name(what, v) {
            problems.push(format!("manifest.json: {e}"));
        }
    }
    let mut expected: BTreeMap<String, (String, u64)> = BTreeMap::new();
    match &m.secret {
        Some(s) => {
            expected.insert(s.file.clone(), (s.sha256.clone(), s.size));
        }
        None => problems.push("manifest.json names no secret file".into()),
    }
    for (name, u) in &m.units {
        if let Err(e) = check_name("unit", name) {
            problems.push(format!("manifest.json: {e}"));
        }
        expected.insert(u.file.clone(), (u.sha256.clone(), u.size));
    }
    let present: BTreeSet<String> = match read_names_all(dir) {
        Ok(v) => v.into_iter().collect(),
        Err(e) => {
            problems.push(format!("cannot list the object: {e:#}"));
            return problems;
        }
    };
    for f in &present {
        if f != "manifest.json" && !expected.contains_key(f) {
            problems.push(format!("stray file {f}"));
        }
    }
    for (f, (sha, size)) in &expected {
        if let Err(e) = check_file_name(f) {
            problems.push(format!("manifest.json: {e}"));
            continue;
        }
        if !present.contains(f) {
            problems.push(format!("{f} is missing"));
            continue;
        }
        let p = dir.join(f);
        match fs::symlink_metadata(&p) {
            Ok(md) if md.is_file() => {}
            _ => {
                problems.push(format!("{f} is not a regular file"));
                continue;
            }
        }
        match hash_file(&p) {
            Ok(h) if h.size != *size => problems.push(format!(
                "{f} has {} bytes, the manifest says {size} (truncated or altered)",
                h.size
            )),
            Ok(h) if &h.hex() != sha => {
                problems.push(format!("{f}: SHA-256 differs from the manifest (altered)"))
            }
            Ok(_) => {}
            Err(e) => problems.push(format!("{f} cannot be read: {e}")),
        }
    }
    let Some(keys) = deep else { return problems };
    if !problems.is_empty() {
        return problems;
    }
    let secret = match read_secret_at(dir, &m, keys) {
        Ok(s) => s,
        Err(e) => {
            problems.push(format!("{e:#}"));
            return problems;
        }
    };
    for (name, u) in &m.units {
        let check = || -> Result<()> {
            let file = File::open(dir.join(&u.file))?;
            let mut r = read_pipeline(
                keys,
                file,
                &m.recipients,
                &format!("unit {name} of snapshot {id}"),
                true,
            )?;
            if u.kind == "directory" {
                let mut peek = PeekEmpty::new(&mut r.reader);
                if !peek.is_empty()? {
                    archive::check(&mut peek).context("the archive")?;
                }
            }
            r.finish(u, &secret, name)
        };
        if let Err(e) = check() {
            problems.push(format!("unit {name}: {e:#}"));
        }
    }
    problems
}

fn read_secret_at(dir: &Path, m: &SnapshotManifest, keys: &Keys) -> Result<SecretManifest> {
    let entry = m.secret.as_ref().ok_or_else(|| anyhow!("no secret file"))?;
    let file = File::open(dir.join(&entry.file))?;
    let mut r = read_pipeline(
        keys,
        file,
        &m.recipients,
        &format!("snapshot {}", m.id),
        false,
    )?;
    let mut text = Vec::new();
    r.reader.read_to_end(&mut text)?;
    serde_json::from_slice(&text).context("secret.json")
}

/// A reader that can tell whether its input is empty before it is read.
pub(crate) struct PeekEmpty<'a> {
    inner: &'a mut dyn Read,
    first: Option<u8>,
    done: bool,
}

impl<'a> PeekEmpty<'a> {
    pub(crate) fn new(inner: &'a mut dyn Read) -> Self {
        PeekEmpty {
            inner,
            first: None,
            done: false,
        }
    }
    pub(crate) fn is_empty(&mut self) -> io::Result<bool> {
        if self.first.is_none() && !self.done {
            let mut b = [0u8];
            loop {
                match self.inner.read(&mut b) {
                    Ok(0) => self.done = true,
                    Ok(_) => self.first = Some(b[0]),
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(e),
                }
                break;
            }
        }
        Ok(self.first.is_none() && self.done)
    }
}

impl Read for PeekEmpty<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        if let Some(b) = self.first.take() {
            buf[0] = b;
            return Ok(1);
        }
        if self.done {
            return Ok(0);
        }
        self.inner.read(buf)
    }
}

// ---------------------------------------------------------------- pipelines

#[derive(Clone, Default)]
pub(crate) struct Acc {
    hasher: Sha256,
    size: u64,
}

impl Acc {
    fn hex(&self) -> String {
        hex::encode(self.hasher.clone().finalize())
    }
}

pub(crate) struct Digested {
    pub sha256: String,
    pub size: u64,
}

struct HashWriter<W> {
    inner: W,
    acc: Acc,
}

impl<W: Write> Write for HashWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.acc.hasher.update(&buf[..n]);
        self.acc.size += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

type SharedAcc = Arc<Mutex<Acc>>;

fn lock_acc(a: &SharedAcc) -> std::sync::MutexGuard<'_, Acc> {
    a.lock().unwrap_or_else(|e| e.into_inner())
}

struct HashReader<R> {
    inner: R,
    acc: SharedAcc,
}

impl<R: Read> Read for HashReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        let mut a = lock_acc(&self.acc);
        a.hasher.update(&buf[..n]);
        a.size += n as u64;
        Ok(n)
    }
}

/// The capture side of a two-thread pipeline: hashes the plaintext and
/// hands 1 MiB chunks to the compressing/encrypting thread.
struct ChanWriter {
    tx: Option<SyncSender<Vec<u8>>>,
    buf: Vec<u8>,
    acc: Acc,
}

impl ChanWriter {
    fn send(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = std::mem::replace(&mut self.buf, Vec::with_capacity(BUF));
        self.acc.hasher.update(&chunk);
        self.acc.size += chunk.len() as u64;
        match &self.tx {
            Some(tx) if tx.send(chunk).is_ok() => Ok(()),
            _ => Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "the compressing thread stopped",
            )),
        }
    }
    fn close(mut self) -> io::Result<Acc> {
        self.send()?;
        self.tx = None;
        Ok(self.acc)
    }
}

impl Write for ChanWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let room = BUF - self.buf.len();
        let n = data.len().min(room);
        self.buf.extend_from_slice(&data[..n]);
        if self.buf.len() >= BUF {
            self.send()?;
        }
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The restore side of a two-thread pipeline: chunks decrypted and
/// decompressed by a worker thread.
struct ChanReader {
    rx: Receiver<io::Result<Vec<u8>>>,
    cur: Vec<u8>,
    pos: usize,
}

impl Read for ChanReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.cur.len() {
            match self.rx.recv() {
                Ok(Ok(chunk)) => {
                    self.cur = chunk;
                    self.pos = 0;
                }
                Ok(Err(e)) => return Err(e),
                // The worker is done (it sends errors before it stops).
                Err(_) => return Ok(0),
            }
        }
        let n = buf.len().min(self.cur.len() - self.pos);
        buf[..n].copy_from_slice(&self.cur[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// Writes `path` (new, 0600, fsynced): `fill` → plaintext digest →
/// zstd-3 with checksum (when `compress`) → age → ciphertext digest.
fn write_pipeline(
    keys: &Keys,
    path: &Path,
    compress: bool,
    fill: impl FnOnce(&mut dyn Write) -> Result<()>,
) -> Result<(Digested, Digested)> {
    let run = || -> Result<(Digested, Digested)> {
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)?;
        let cipher = HashWriter {
            inner: BufWriter::with_capacity(BUF, file),
            acc: Acc::default(),
        };
        let sink = keys.encrypt(cipher)?;
        let (plain, sink) = if compress {
            // Capture (and the plaintext digest) on this thread; zstd,
            // age, the ciphertext digest and the writes on another.
            let (tx, rx) = sync_channel::<Vec<u8>>(4);
            std::thread::scope(|sc| -> Result<_> {
                let worker = sc.spawn(move || -> io::Result<_> {
                    let mut enc = zstd::stream::write::Encoder::new(sink, ZSTD_LEVEL)?;
                    enc.include_checksum(true)?;
                    for chunk in rx {
                        enc.write_all(&chunk)?;
                    }
                    enc.finish()
                });
                let mut w = ChanWriter {
                    tx: Some(tx),
                    buf: Vec::with_capacity(BUF),
                    acc: Acc::default(),
                };
                let filled = fill(&mut w);
                let closed = w.close();
                let done = worker
                    .join()
                    .map_err(|_| anyhow!("the compressing thread panicked"))?;
                // The worker's error explains a broken pipe on this side.
                let sink = done?;
                filled?;
                Ok((closed?, sink))
            })?
        } else {
            let mut w = HashWriter {
                inner: sink,
                acc: Acc::default(),
            };
            fill(&mut w)?;
            (w.acc, w.inner)
        };
        let cipher = sink.finish()?;
        let file = cipher.inner.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        Ok((
            Digested {
                sha256: plain.hex(),
                size: plain.size,
            },
            Digested {
                sha256: cipher.acc.hex(),
                size: cipher.acc.size,
            },
        ))
    };
    run().with_context(|| format!("writing {}", path.display()))
}

pub(crate) struct UnitReader {
    pub reader: Box<dyn Read>,
    cipher: SharedAcc,
    plain: SharedAcc,
}

impl UnitReader {
    /// Reads what the consumer left, then compares sizes and digests with
    /// the manifest (ciphertext) and the secret manifest (plaintext).
    fn finish(mut self, entry: &UnitEntry, secret: &SecretManifest, name: &str) -> Result<()> {
        io::copy(&mut self.reader, &mut io::sink()).context("reading the unit to its end")?;
        drop(self.reader);
        let c = lock_acc(&self.cipher);
        if c.size != entry.size || c.hex() != entry.sha256 {
            bail!("{} does not match its digest in manifest.json", entry.file);
        }
        let p = lock_acc(&self.plain);
        let (Some(sha), Some(size)) = (
            secret.plaintext_sha256.get(name),
            secret.plaintext_size.get(name),
        ) else {
            bail!("secret.json has no digest for unit {name}");
        };
        if p.size != *size || &p.hex() != sha {
            bail!("the content of unit {name} does not match its recorded digest");
        }
        Ok(())
    }
}

/// Opens a stored file for reading: ciphertext digest → age → zstd (when
/// `compressed`) → plaintext digest. Compressed units are decrypted and
/// decompressed on a worker thread while the caller consumes them.
fn read_pipeline(
    keys: &Keys,
    file: File,
    recipients: &[String],
    what: &str,
    compressed: bool,
) -> Result<UnitReader> {
    let cipher: SharedAcc = Arc::default();
    let plain: SharedAcc = Arc::default();
    let hr = HashReader {
        inner: BufReader::with_capacity(BUF, file),
        acc: cipher.clone(),
    };
    let dec = keys.decrypt(hr, recipients, what)?;
    if !compressed {
        return Ok(UnitReader {
            reader: Box::new(HashReader {
                inner: dec,
                acc: plain.clone(),
            }),
            cipher,
            plain,
        });
    }
    let (tx, rx) = sync_channel::<io::Result<Vec<u8>>>(4);
    let acc = plain.clone();
    std::thread::Builder::new()
        .name("nixproc-state-read".into())
        .spawn(move || {
            let mut decoder = match zstd::stream::read::Decoder::with_buffer(
                BufReader::with_capacity(BUF, dec),
            ) {
                Ok(d) => d,
                Err(e) => {
                    let _ = tx.send(Err(e));
                    return;
                }
            };
            loop {
                let mut chunk = vec![0u8; BUF];
                let mut n = 0;
                // Fill the chunk (fewer, larger messages).
                let res = loop {
                    match decoder.read(&mut chunk[n..]) {
                        Ok(0) => break Ok(()),
                        Ok(k) => {
                            n += k;
                            if n == chunk.len() {
                                break Ok(());
                            }
                        }
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => break Err(e),
                    }
                };
                chunk.truncate(n);
                if n > 0 {
                    let mut a = lock_acc(&acc);
                    a.hasher.update(&chunk);
                    a.size += n as u64;
                }
                let last = n < BUF;
                match res {
                    Err(e) => {
                        let _ = tx.send(Err(e));
                        return;
                    }
                    Ok(()) if n > 0 => {
                        if tx.send(Ok(chunk)).is_err() {
                            return; // the consumer stopped
                        }
                    }
                    Ok(()) => {}
                }
                if last {
                    return;
                }
            }
        })
        .context("starting the reading thread")?;
    Ok(UnitReader {
        reader: Box::new(ChanReader {
            rx,
            cur: Vec::new(),
            pos: 0,
        }),
        cipher,
        plain,
    })
}

fn hash_file(path: &Path) -> io::Result<Acc> {
    let mut f = File::open(path)?;
    let mut acc = Acc::default();
    let mut buf = vec![0u8; BUF];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            return Ok(acc);
        }
        acc.hasher.update(&buf[..n]);
        acc.size += n as u64;
    }
}

// ---------------------------------------------------------------- helpers

/// The unit type as written in manifests.
pub fn unit_type(unit: &StateUnit) -> &'static str {
    match unit.kind {
        UnitKind::Directory { .. } => "directory",
        UnitKind::Sqlite { .. } => "sqlite",
        UnitKind::PostgresqlDatabase { .. } => "postgresql-database",
        UnitKind::MysqlDatabase { .. } => "mysql-database",
        UnitKind::Command { .. } => "command",
    }
}

/// Names that become file names in the store (instances, revisions, tags,
/// ids, units): `[A-Za-z0-9._+@-]`, not starting with `.`, 1–200 bytes.
pub fn check_name(what: &str, s: &str) -> Result<()> {
    let ok = !s.is_empty()
        && s.len() <= 200
        && !s.starts_with('.')
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '+' | '@'));
    if ok {
        Ok(())
    } else {
        bail!(
            "{what} {s:?} cannot name a file in the state store (letters, digits, '.', '_', \
             '-', '+', '@'; not starting with '.')"
        )
    }
}

fn check_file_name(f: &str) -> Result<()> {
    if f.is_empty() || f.contains('/') || f.starts_with('.') || f == "manifest.json" {
        bail!("{f:?} is not a valid object file name");
    }
    Ok(())
}

fn stamp(t: time::OffsetDateTime) -> String {
    format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

fn rfc3339(t: time::OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .expect("UTC time formats")
}

fn parse_time(s: &str) -> Option<time::OffsetDateTime> {
    time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok()
}

/// 8 hex digits from the kernel's random source.
pub fn random_hex() -> String {
    let mut b = [0u8; 4];
    if File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut b))
        .is_err()
    {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        b = (t.subsec_nanos() ^ std::process::id()).to_le_bytes();
    }
    hex::encode(b)
}

/// fsyncs a directory (its entries are durable afterwards).
pub fn fsync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

fn write_file_synced(path: &Path, data: &[u8]) -> Result<()> {
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    f.write_all(data)?;
    f.sync_all()?;
    Ok(())
}

fn make_dir(p: &Path, mode: u32) -> Result<()> {
    match fs::DirBuilder::new().mode(mode).create(p) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists && p.is_dir() => Ok(()),
        Err(e) => Err(e).with_context(|| format!("creating {}", p.display())),
    }
}

fn make_new_dir(p: &Path, mode: u32) -> Result<()> {
    fs::DirBuilder::new()
        .mode(mode)
        .create(p)
        .with_context(|| format!("creating {}", p.display()))?;
    // The umask may have taken bits away.
    fs::set_permissions(p, fs::Permissions::from_mode(mode))?;
    Ok(())
}

fn chown_for(p: &Path, r: &RunAs) -> Result<()> {
    if !rustix::process::geteuid().is_root() {
        return Ok(());
    }
    std::os::unix::fs::chown(p, Some(r.uid), Some(r.gid))
        .with_context(|| format!("giving {} to {}", p.display(), r.user))
}

/// Names in a directory except dot files (missing directory: none).
fn read_names(d: &Path) -> Result<Vec<String>> {
    Ok(read_names_all(d)?
        .into_iter()
        .filter(|n| !n.starts_with('.'))
        .collect())
}

fn read_names_all(d: &Path) -> Result<Vec<String>> {
    let it = match fs::read_dir(d) {
        Ok(it) => it,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("reading {}", d.display())),
    };
    let mut v: Vec<String> = it
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    Ok(v)
}

fn tree_size(p: &Path) -> u64 {
    match fs::symlink_metadata(p) {
        Ok(m) if m.is_dir() => fs::read_dir(p)
            .map(|it| {
                it.filter_map(|e| e.ok())
                    .map(|e| tree_size(&e.path()))
                    .sum()
            })
            .unwrap_or(0),
        Ok(m) => m.len(),
        Err(_) => 0,
    }
}

fn same_files(a: &Path, b: &Path) -> Result<bool> {
    let na = read_names_all(a)?;
    if na != read_names_all(b)? {
        return Ok(false);
    }
    for n in na {
        let (x, y) = (hash_file(&a.join(&n))?, hash_file(&b.join(&n))?);
        if x.size != y.size || x.hex() != y.hex() {
            return Ok(false);
        }
    }
    Ok(true)
}

fn join<T: std::fmt::Display>(it: impl IntoIterator<Item = T>) -> String {
    it.into_iter()
        .map(|x| x.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = archive::remove_tree(&self.0);
    }
}
