//! State around a switch (reference state-background.md §6.4): the
//! [`SwitchHooks`] that snapshot stateful instances before a switch changes
//! them, restore the target revision's state on rollback, run schema
//! migrations after activation, and put the old state back when a switch
//! fails after a new version ran.
//!
//! * **Candidates** are instances of the old profile with declared state
//!   that the switch stops because their revision changes or they are
//!   removed (a restart because a dependency restarted changes no state).
//! * **Snapshot** (unless `--no-state-snapshot`): `online` units are
//!   captured before anything stops, `stop` units once the instance is
//!   stopped; one object per instance, referenced by the revision and the
//!   generation being left.
//! * **Rollback** (`--rollback`, `--switch-generation`): an instance whose
//!   target revision has another (or no) schema label needs a decision —
//!   `--restore-state`, `--keep-state`, or the instance's `rollback`
//!   policy; `ask` without a flag refuses before anything changes and says
//!   what each choice means. A restore takes the snapshot of the *target
//!   revision* (falling back to the target generation), never simply the
//!   latest, after the pre-switch snapshot of the current state (the safety
//!   snapshot). Equal labels: code only.
//! * **Migrations** (`schema.migrate`) run after all starts, in dependency
//!   order, for instances that are new or whose schema label changes, not
//!   for rollbacks. A failure fails the switch.
//! * **Failure after a new version ran**: the engine stops the new versions
//!   and, before it starts the old ones again, the pre-switch snapshot is
//!   restored, so the old code never runs on migrated state.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};

use anyhow::{anyhow, bail, Context as _, Result};
use nixproc_core::lifecycle::{Consistency, StateSpec};
use nixproc_core::manifest::{InstanceEntry, Manifest};
use nixproc_state::store::{PendingSnapshot, StoreLock};
use nixproc_state::{
    KeyConfig, Keys, Reason as SnapshotReason, RunAs, Selector, SnapshotRequest, StateStore,
};

use crate::deploy::engine::HookFailure;
use crate::deploy::plan::Reason;
use crate::deploy::switch::{PreparedPlan, SwitchHooks};
use crate::generations::Profile;

/// Where snapshots live and which keys they use.
#[derive(Debug, Clone)]
pub struct StateConfig {
    pub store_root: PathBuf,
    pub keys: KeyConfig,
}

impl StateConfig {
    /// Defaults under the lib dir (`<lib>/nixproc/…`): the store
    /// `snapshots/`, the host identity `state-identity.txt` (created on
    /// first use), extra recipients from `state-recipients.txt` and
    /// `/etc/nixproc/state-recipients.txt` when they exist.
    pub fn new(
        lib_dir: &Path,
        snapshot_dir: Option<PathBuf>,
        identities: Vec<PathBuf>,
        recipients: Vec<String>,
        no_encryption: bool,
    ) -> Self {
        let own = lib_dir.join("nixproc");
        let recipients_files = [
            own.join("state-recipients.txt"),
            PathBuf::from("/etc/nixproc/state-recipients.txt"),
        ]
        .into_iter()
        .filter(|p| p.exists())
        .collect();
        StateConfig {
            store_root: snapshot_dir.unwrap_or_else(|| own.join("snapshots")),
            keys: KeyConfig {
                host_identity: own.join("state-identity.txt"),
                create_host_identity: true,
                recipients: recipients
                    .into_iter()
                    .map(|r| r.trim().to_string())
                    .filter(|r| !r.is_empty())
                    .collect(),
                recipients_files,
                identity_files: identities,
                no_encryption,
            },
        }
    }
}

/// The store and keys, opened on first use (a switch of stateless
/// instances never touches them).
pub struct LazyStore {
    config: StateConfig,
    store: OnceLock<StateStore>,
    keys: OnceLock<Keys>,
}

impl LazyStore {
    pub fn new(config: StateConfig) -> Self {
        LazyStore {
            config,
            store: OnceLock::new(),
            keys: OnceLock::new(),
        }
    }

    pub fn store(&self) -> Result<&StateStore> {
        if let Some(s) = self.store.get() {
            return Ok(s);
        }
        let s = StateStore::open(&self.config.store_root).with_context(|| {
            format!(
                "opening the snapshot store {}",
                self.config.store_root.display()
            )
        })?;
        Ok(self.store.get_or_init(|| s))
    }

    pub fn keys(&self) -> Result<&Keys> {
        if let Some(k) = self.keys.get() {
            return Ok(k);
        }
        let k = Keys::load(&self.config.keys)?;
        Ok(self.keys.get_or_init(|| k))
    }
}

/// What to do with the state of instances whose schema differs on a
/// rollback, when the user said so on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StateChoice {
    /// `--restore-state`
    Restore,
    /// `--keep-state`
    Keep,
    /// Neither: the instance's declared policy decides (`ask` refuses).
    Declared,
}

/// What happens to one instance's state in this switch.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Decision {
    /// Restore this snapshot (of the target revision) once it is stopped.
    Restore { id: String, created: String },
    /// Keep the current state (code-only rollback).
    Keep,
}

/// The state hooks of one switch.
pub struct StatefulHooks<'a> {
    lazy: &'a LazyStore,
    profile: &'a Profile,
    choice: StateChoice,
    take_snapshots: bool,
    force_disable_user_change: bool,
    say: &'a (dyn Fn(&str) + Sync),
    inner: Mutex<Inner<'a>>,
}

#[derive(Default)]
struct Inner<'a> {
    lock: Option<StoreLock<'a>>,
    /// Snapshots begun before the stops, committed after them.
    pending: Vec<(String, PendingSnapshot<'a>)>,
    /// instance → id of the pre-switch snapshot committed in this switch.
    taken: BTreeMap<String, String>,
    decisions: BTreeMap<String, Decision>,
}

impl<'a> StatefulHooks<'a> {
    pub fn new(
        lazy: &'a LazyStore,
        profile: &'a Profile,
        choice: StateChoice,
        take_snapshots: bool,
        force_disable_user_change: bool,
        say: &'a (dyn Fn(&str) + Sync),
    ) -> Self {
        StatefulHooks {
            lazy,
            profile,
            choice,
            take_snapshots,
            force_disable_user_change,
            say,
            inner: Mutex::new(Inner::default()),
        }
    }

    fn inner(&self) -> std::sync::MutexGuard<'_, Inner<'a>> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn run_as(&self, inst: &InstanceEntry) -> Result<Option<RunAs>> {
        run_as(inst, self.force_disable_user_change)
    }
}

/// The account engine tools and migrations of `inst` run as: its user,
/// when nixproc is root and may switch users.
pub fn run_as(inst: &InstanceEntry, force_disable_user_change: bool) -> Result<Option<RunAs>> {
    if force_disable_user_change || !rustix::process::geteuid().is_root() {
        return Ok(None);
    }
    match &inst.user {
        None => Ok(None),
        Some(user) => lookup_user(user)
            .with_context(|| format!("instance {}: looking up user {user}", inst.name))
            .map(Some),
    }
}

/// Instances of `old` with state whose revision this plan changes or
/// removes, in stop order, with their new entry if any.
fn candidates(prepared: &PreparedPlan) -> Vec<(&InstanceEntry, Option<&InstanceEntry>)> {
    prepared
        .plan
        .stops
        .iter()
        .filter(|item| matches!(item.reason, Reason::Changed | Reason::Removed))
        .filter(|item| item.instance.state.is_some())
        .map(|item| (&item.instance, find(&prepared.new_manifest, &item.name)))
        .collect()
}

fn find<'m>(m: &'m Manifest, name: &str) -> Option<&'m InstanceEntry> {
    m.instances.iter().find(|i| i.name == name)
}

fn schema_label(inst: &InstanceEntry) -> Option<&str> {
    inst.state
        .as_ref()
        .and_then(|s| s.schema.as_ref())
        .map(|s| s.version.as_str())
}

/// Same non-empty schema label on both sides: state is shared as is.
fn compatible(old: &InstanceEntry, new: &InstanceEntry) -> bool {
    matches!((schema_label(old), schema_label(new)), (Some(a), Some(b)) if a == b)
}

fn describe_label(l: Option<&str>) -> String {
    l.map(|l| format!("'{l}'")).unwrap_or_else(|| "none".into())
}

impl StatefulHooks<'_> {
    /// Decides restore/keep for every instance a rollback changes
    /// incompatibly; errors (before anything changes) on `ask`.
    fn decide(&self, prepared: &PreparedPlan) -> Result<BTreeMap<String, Decision>> {
        let mut decisions = BTreeMap::new();
        if prepared.generation.is_none() {
            return Ok(decisions); // a forward switch migrates, never restores
        }
        let mut undecided = Vec::new();
        for (old, new) in candidates(prepared) {
            let Some(new) = new else { continue };
            let Some(new_state) = &new.state else {
                continue;
            };
            if compatible(old, new) {
                (self.say)(&format!(
                    "{}: schema {} is unchanged; rolling back code only",
                    new.name,
                    describe_label(schema_label(new))
                ));
                continue;
            }
            let choice = match self.choice {
                StateChoice::Restore => Some(true),
                StateChoice::Keep => Some(false),
                StateChoice::Declared => match new_state.rollback {
                    nixproc_core::lifecycle::RollbackPolicy::Restore => Some(true),
                    nixproc_core::lifecycle::RollbackPolicy::Keep => Some(false),
                    nixproc_core::lifecycle::RollbackPolicy::Ask => None,
                },
            };
            let target = self.target_snapshot(prepared, new)?;
            match choice {
                Some(false) => {
                    (self.say)(&format!(
                        "{}: keeping the current state (schema {}) for revision {} (schema {})",
                        new.name,
                        describe_label(schema_label(old)),
                        short(&new.revision),
                        describe_label(schema_label(new))
                    ));
                    decisions.insert(new.name.clone(), Decision::Keep);
                }
                Some(true) => {
                    let Some(snap) = target else {
                        bail!(
                            "{}: no snapshot of revision {} (or of generation {}) to restore; \
                             rerun with --keep-state to roll back code only",
                            new.name,
                            short(&new.revision),
                            prepared.generation.unwrap_or_default()
                        );
                    };
                    (self.say)(&format!(
                        "{}: restoring the state of revision {} from snapshot {} ({}); \
                         everything written since then is replaced (the current state is \
                         kept in a safety snapshot first)",
                        new.name,
                        short(&new.revision),
                        snap.id,
                        snap.created
                    ));
                    decisions.insert(
                        new.name.clone(),
                        Decision::Restore {
                            id: snap.id,
                            created: snap.created,
                        },
                    );
                }
                None => undecided.push((old, new, target)),
            }
        }
        if !undecided.is_empty() {
            let mut msg = String::from(
                "this rollback changes the schema of stateful instances; say what to do with \
                 their state:\n",
            );
            for (old, new, target) in undecided {
                let what = match target {
                    Some(s) => format!(
                        "--restore-state brings back snapshot {} of {} (writes since then are \
                         lost, kept in a safety snapshot)",
                        s.id, s.created
                    ),
                    None => "no snapshot of that revision exists: only --keep-state is possible"
                        .to_string(),
                };
                msg.push_str(&format!(
                    "  {}: schema {} → {}; {what}\n",
                    new.name,
                    describe_label(schema_label(old)),
                    describe_label(schema_label(new)),
                ));
            }
            msg.push_str(
                "rerun with --restore-state or --keep-state (or declare rollback = \"restore\" \
                 or \"keep\"); nothing was changed",
            );
            bail!(msg);
        }
        Ok(decisions)
    }

    /// The snapshot that holds the state of `new`'s revision: the one taken
    /// when leaving that revision, else when leaving the target generation.
    fn target_snapshot(
        &self,
        prepared: &PreparedPlan,
        new: &InstanceEntry,
    ) -> Result<Option<nixproc_state::SnapshotManifest>> {
        let store = self.lazy.store()?;
        if let Some(s) = store.find(&new.name, &Selector::Revision(new.revision.clone()))? {
            return Ok(Some(s));
        }
        match prepared.generation {
            Some(g) => Ok(store
                .find(&new.name, &Selector::Generation(g))?
                .filter(|s| s.revision == new.revision)),
            None => Ok(None),
        }
    }

    fn begin_snapshots(&self, prepared: &PreparedPlan, leaving: Option<u64>) -> Result<()> {
        let store = self.lazy.store()?;
        let keys = self.lazy.keys()?;
        let restoring: BTreeSet<String> = self
            .inner()
            .decisions
            .iter()
            .filter(|(_, d)| matches!(d, Decision::Restore { .. }))
            .map(|(n, _)| n.clone())
            .collect();
        for (old, new) in candidates(prepared) {
            // A restore always gets its safety snapshot, even with
            // --no-state-snapshot.
            let restoring = restoring.contains(&old.name);
            if !self.take_snapshots && !restoring {
                continue;
            }
            let spec = old.state.as_ref().expect("candidates have state");
            let run_as = self.run_as(old)?;
            let mut pending = store
                .begin(
                    SnapshotRequest {
                        instance: &old.name,
                        spec,
                        revision: &old.revision,
                        profile: prepared.old_profile.as_deref(),
                        generation: leaving,
                        next_revision: new.map(|n| n.revision.as_str()),
                        reason: if restoring {
                            SnapshotReason::PreRestore
                        } else {
                            SnapshotReason::PreSwitch
                        },
                        tag: None,
                        run_as: run_as.as_ref(),
                    },
                    keys,
                )
                .with_context(|| format!("snapshot of {} before the switch", old.name))?;
            pending
                .capture(&|u| u.consistency == Consistency::Online)
                .with_context(|| format!("snapshot of {} before the switch", old.name))?;
            self.inner().pending.push((old.name.clone(), pending));
        }
        Ok(())
    }

    fn commit_snapshots(&self) -> Result<(), HookFailure> {
        let pending = std::mem::take(&mut self.inner().pending);
        for (name, mut p) in pending {
            let fail = |error: anyhow::Error| HookFailure {
                instance: name.clone(),
                error: error.context(format!("snapshot of {name} before the switch")),
            };
            p.capture(&|u| u.consistency == Consistency::Stop)
                .map_err(fail)?;
            let m = p.commit().map_err(fail)?;
            (self.say)(&format!("{name}: snapshot {} taken", m.id));
            self.inner().taken.insert(name, m.id);
        }
        Ok(())
    }

    fn restore(&self, inst: &InstanceEntry, id: &str, spec: &StateSpec) -> Result<()> {
        let store = self.lazy.store()?;
        let keys = self.lazy.keys()?;
        let run_as = self.run_as(inst)?;
        store
            .restore(id, spec, keys, run_as.as_ref(), None)
            .with_context(|| format!("restoring snapshot {id} of {}", inst.name))
    }

    fn migrate(&self, prepared: &PreparedPlan, inst: &InstanceEntry) -> Result<()> {
        let Some(state) = &inst.state else {
            return Ok(());
        };
        let Some(migrate) = state.schema.as_ref().and_then(|s| s.migrate.as_deref()) else {
            return Ok(());
        };
        if self.inner().decisions.contains_key(&inst.name) {
            return Ok(()); // rolled back: restored or kept on purpose
        }
        if let Some(old) = find(&prepared.old_manifest, &inst.name) {
            if compatible(old, inst) {
                return Ok(());
            }
            if prepared.generation.is_some() {
                return Ok(()); // never migrate on a rollback
            }
        }
        (self.say)(&format!(
            "{}: migrating state to schema {}",
            inst.name,
            describe_label(schema_label(inst))
        ));
        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .arg(migrate)
            .env("NIXPROC_INSTANCE", &inst.name);
        if let Some(r) = self.run_as(inst)? {
            r.apply(&mut cmd);
        }
        let out = cmd
            .output()
            .with_context(|| format!("running the migration of {}", inst.name))?;
        if !out.status.success() {
            bail!(
                "migration of {} to schema {} failed ({}): {}",
                inst.name,
                describe_label(schema_label(inst)),
                out.status,
                tail(&out.stderr, &out.stdout)
            );
        }
        Ok(())
    }
}

impl SwitchHooks for StatefulHooks<'_> {
    fn before_stops(&self, prepared: &PreparedPlan) -> Result<()> {
        let cands = candidates(prepared);
        let migrations = prepared.new_manifest.instances.iter().any(|i| {
            i.state
                .as_ref()
                .is_some_and(|s| s.schema.as_ref().is_some_and(|s| s.migrate.is_some()))
        });
        if cands.is_empty() && !migrations {
            return Ok(());
        }
        if !cands.is_empty() {
            let store = self.lazy.store()?;
            let lock = store.lock_exclusive()?;
            self.inner().lock = Some(lock);
        }
        let decisions = self.decide(prepared)?;
        self.inner().decisions = decisions;
        let leaving = self.profile.current()?.map(|g| g.number);
        if !cands.is_empty() {
            self.begin_snapshots(prepared, leaving)?;
        }
        Ok(())
    }

    fn after_stops(&self, prepared: &PreparedPlan) -> Result<(), HookFailure> {
        self.commit_snapshots()?;
        let decisions = self.inner().decisions.clone();
        for (name, decision) in decisions {
            let Decision::Restore { id, created } = decision else {
                continue;
            };
            let fail = |error: anyhow::Error| HookFailure {
                instance: name.clone(),
                error,
            };
            let new = find(&prepared.new_manifest, &name)
                .ok_or_else(|| fail(anyhow!("{name} is not in the target profile")))?;
            let spec = new
                .state
                .as_ref()
                .expect("decisions are for stateful instances");
            self.restore(new, &id, spec).map_err(fail)?;
            (self.say)(&format!("{name}: state of {created} restored"));
        }
        Ok(())
    }

    fn after_starts(&self, prepared: &PreparedPlan) -> Result<(), HookFailure> {
        for item in &prepared.plan.starts {
            if matches!(item.reason, Reason::DependencyRestarted { .. }) {
                continue;
            }
            self.migrate(prepared, &item.instance)
                .map_err(|error| HookFailure {
                    instance: item.name.clone(),
                    error,
                })?;
        }
        Ok(())
    }

    fn before_restarting_old(
        &self,
        prepared: &PreparedPlan,
        started_new: &[String],
    ) -> Vec<String> {
        let mut warnings = Vec::new();
        let taken = self.inner().taken.clone();
        for name in started_new {
            // The pre-switch snapshot holds the state the old version
            // expects (also after a rollback restore swapped state in).
            let Some(id) = taken.get(name) else { continue };
            let Some(old) = find(&prepared.old_manifest, name) else {
                continue;
            };
            let Some(spec) = &old.state else { continue };
            match self.restore(old, id, spec) {
                Ok(()) => (self.say)(&format!(
                    "{name}: state restored from snapshot {id} taken before the switch"
                )),
                Err(e) => warnings.push(format!(
                    "{name}: putting back the state from before the switch failed; the \
                     snapshot {id} holds it (nixproc state restore {name} {id}): {e:#}"
                )),
            }
        }
        warnings
    }
}

/// uid, gid and home of `user` (`getent passwd`).
fn lookup_user(user: &str) -> Result<RunAs> {
    let out = Command::new("getent")
        .arg("passwd")
        .arg(user)
        .output()
        .context("running getent")?;
    if !out.status.success() {
        bail!("no such user {user}");
    }
    let line = String::from_utf8_lossy(&out.stdout);
    let f: Vec<&str> = line.trim_end().split(':').collect();
    if f.len() < 7 {
        bail!("unexpected getent output for {user}: {line}");
    }
    Ok(RunAs {
        user: user.to_string(),
        uid: f[2].parse().context("uid")?,
        gid: f[3].parse().context("gid")?,
        home: Some(PathBuf::from(f[5])),
    })
}

/// A revision digest shortened for messages and listings.
pub fn short(rev: &str) -> &str {
    &rev[..rev.len().min(12)]
}

fn tail(stderr: &[u8], stdout: &[u8]) -> String {
    let text = if stderr.iter().any(|b| !b.is_ascii_whitespace()) {
        stderr
    } else {
        stdout
    };
    let s = String::from_utf8_lossy(text);
    let lines: Vec<&str> = s.trim_end().lines().collect();
    lines[lines.len().saturating_sub(10)..].join("\n")
}
