//! `nixproc state …`: snapshots of stateful services by hand — take, list,
//! show, restore, verify, collect, move between machines (reference
//! state-background.md §6.5–6.10).
//!
//! Instances and their declared state come from the *current* generation
//! of the profile (`-p`, `--profile-dir`, as for `nixproc switch`).
//!
//! **Restore and running instances.** Replacing files under a running
//! process (directory and sqlite units, and every unit declared
//! `consistency = "stop"`) would leave it writing to what is gone, so
//! `restore` refuses while the process manager reports the instance
//! running — unless `--stop` is given: then nixproc stops it through the
//! process manager, restores and starts it again (also when the restore
//! fails: the old state is then still in place). Database units (the
//! restore ends the other sessions itself) and command units do not need
//! the stop. `snapshot` of an instance with `stop` units follows the same
//! rule. Every restore first takes a safety snapshot of the current state
//! (reason `pre-restore`) and says which writes it will undo; it asks for
//! confirmation unless `--yes`.

use std::collections::BTreeSet;
use std::fs;
use std::io::{self, BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use nixproc::deploy::{activator_for, read_manifest, Activator};
use nixproc::generations::{Generation, Profile};
use nixproc::stateful::{short, StateConfig};
use nixproc_core::lifecycle::{Consistency, StateSpec, StateUnit, UnitKind};
use nixproc_core::manifest::InstanceEntry;
use nixproc_state::store::GcReport;
use nixproc_state::{
    GcOptions, GcRoots, Keys, Reason, RunAs, Selector, SnapshotManifest, SnapshotRequest,
    StateStore,
};

use crate::cli::{DirOpts, StateKeyOpts};

#[derive(Debug, Subcommand)]
pub enum StateCmd {
    /// Create the host identity (age key) and print its recipient; refuses
    /// to overwrite an existing one.
    Keygen(KeygenCmd),
    /// Snapshot an instance's declared state now (reason: manual).
    Snapshot(SnapshotCmd),
    /// List snapshots: ID, reason, generation, revision, schema, size, created.
    List(ListCmd),
    /// Show one snapshot's manifest.
    Show(ShowCmd),
    /// Restore a snapshot into an instance (after a safety snapshot).
    Restore(RestoreCmd),
    /// Check snapshots: ciphertext digests (keyless), or with --deep decrypt
    /// and check every unit. Exits 1 when any has a problem.
    Verify(VerifyCmd),
    /// Remove snapshots no generation of the profile refers to, beyond the
    /// newest --keep per instance and those younger than --keep-within.
    Gc(GcCmd),
    /// Write one snapshot as a tar stream (to move it to another machine).
    Export(ExportCmd),
    /// Add an exported snapshot (checked before it is added).
    Import(ImportCmd),
}

/// Options every `nixproc state` command takes.
#[derive(Debug, Clone, Args)]
pub struct Common {
    /// Profile name (or a path containing '/')
    #[arg(short = 'p', long, default_value = "processes", value_name = "NAME")]
    pub profile: String,
    /// Directory holding the profile's generations
    /// [default: <lib-dir>/nixproc/profiles with --state-dir, else /nix/var/nix/profiles for root]
    #[arg(long, env = "NIXPROC_PROFILE_DIR", value_name = "DIR")]
    pub profile_dir: Option<PathBuf>,
    #[command(flatten)]
    pub dirs: DirOpts,
    #[command(flatten)]
    pub keys: StateKeyOpts,
}

#[derive(Debug, Args)]
pub struct KeygenCmd {
    #[command(flatten)]
    pub common: Common,
}

#[derive(Debug, Args)]
pub struct SnapshotCmd {
    /// The instance (process name)
    pub instance: String,
    /// Name the snapshot (`manual/<tag>`; default: its id)
    #[arg(long, value_name = "TAG")]
    pub tag: Option<String>,
    /// Stop the instance for the snapshot (needed for `stop` units while it runs)
    #[arg(long)]
    pub stop: bool,
    #[command(flatten)]
    pub common: Common,
}

#[derive(Debug, Args)]
pub struct ListCmd {
    /// Only this instance's snapshots
    pub instance: Option<String>,
    /// Print the manifests as JSON
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub common: Common,
}

#[derive(Debug, Args)]
pub struct ShowCmd {
    /// The snapshot id
    pub id: String,
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub common: Common,
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("which").required(true).args(["id", "revision", "generation", "latest"])))]
pub struct RestoreCmd {
    /// The instance to restore into
    pub instance: String,
    /// The snapshot id
    pub id: Option<String>,
    /// The snapshot the instance's revision R left behind (a prefix will do)
    #[arg(long, value_name = "R")]
    pub revision: Option<String>,
    /// The snapshot taken when generation N was left
    #[arg(long, value_name = "N")]
    pub generation: Option<u64>,
    /// The instance's newest snapshot
    #[arg(long)]
    pub latest: bool,
    /// Restore only this unit (repeatable; default: all declared units)
    #[arg(long = "unit", value_name = "UNIT")]
    pub units: Vec<String>,
    /// Stop the instance through its process manager for the restore and
    /// start it again afterwards
    #[arg(long)]
    pub stop: bool,
    /// Do not ask for confirmation
    #[arg(short = 'y', long)]
    pub yes: bool,
    #[command(flatten)]
    pub common: Common,
}

#[derive(Debug, Args)]
pub struct VerifyCmd {
    /// Snapshot ids
    #[arg(required_unless_present = "all")]
    pub ids: Vec<String>,
    /// Every snapshot in the store
    #[arg(long, conflicts_with = "ids")]
    pub all: bool,
    /// Decrypt and decompress every unit and check its plaintext digest
    /// (needs an identity)
    #[arg(long)]
    pub deep: bool,
    #[command(flatten)]
    pub common: Common,
}

#[derive(Debug, Args)]
pub struct GcCmd {
    /// Keep the newest N snapshots of every instance
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub keep: usize,
    /// Keep snapshots younger than this (e.g. 14d, 12h, 30m, 2w)
    #[arg(long, value_name = "AGE", value_parser = parse_age)]
    pub keep_within: Option<Duration>,
    /// Say what would be removed, remove nothing
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub common: Common,
}

#[derive(Debug, Args)]
pub struct ExportCmd {
    pub id: String,
    /// Write to FILE instead of stdout
    #[arg(short = 'o', long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    #[command(flatten)]
    pub common: Common,
}

#[derive(Debug, Args)]
pub struct ImportCmd {
    /// An exported snapshot (`-`: stdin)
    pub file: PathBuf,
    #[command(flatten)]
    pub common: Common,
}

pub fn run(cmd: StateCmd) -> Result<ExitCode> {
    match cmd {
        StateCmd::Keygen(c) => keygen(c),
        StateCmd::Snapshot(c) => snapshot(c),
        StateCmd::List(c) => list(c),
        StateCmd::Show(c) => show(c),
        StateCmd::Restore(c) => restore(c),
        StateCmd::Verify(c) => verify(c),
        StateCmd::Gc(c) => gc(c),
        StateCmd::Export(c) => export(c),
        StateCmd::Import(c) => import(c),
    }
}

/// `14d`, `12h`, `30m`, `45s`, `2w`.
fn parse_age(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(|| format!("{s:?}: give a unit (s, m, h, d, w), e.g. 14d"))?;
    let (n, unit) = s.split_at(split);
    let n: u64 = n
        .parse()
        .map_err(|_| format!("{s:?} is not an age such as 14d"))?;
    let secs = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86400,
        "w" => 7 * 86400,
        _ => return Err(format!("{s:?}: unknown unit {unit:?} (s, m, h, d, w)")),
    };
    Ok(Duration::from_secs(n.saturating_mul(secs)))
}

/// Where snapshots and keys live: the switch's defaults
/// (`<lib-dir>/nixproc/…`) under the options given.
fn config(c: &Common) -> Result<StateConfig> {
    Ok(crate::state_config(&crate::state_dirs(&c.dirs)?, &c.keys))
}

fn open_store(cfg: &StateConfig) -> Result<StateStore> {
    let mut store = StateStore::open(&cfg.store_root)
        .with_context(|| format!("opening the snapshot store {}", cfg.store_root.display()))?;
    store.on_lock_wait(|holder| {
        eprintln!("nixproc: waiting for the snapshot store lock (held by {holder})");
    });
    Ok(store)
}

/// The profile, as `nixproc switch` finds it (`-p`, `--profile-dir`,
/// `NIX_USER_PROFILE_DIR`, `<lib-dir>/nixproc/profiles` with a state dir,
/// else Nix's or the user's profiles directory).
fn profile(c: &Common) -> Result<Profile> {
    crate::profile_at(&c.profile, c.profile_dir.as_deref(), &c.dirs)
}

/// The current generation and the named instance of its manifest, which
/// must declare state.
struct Deployed {
    generation: Generation,
    process_manager: String,
    entry: InstanceEntry,
    spec: StateSpec,
}

fn deployed(c: &Common, instance: &str) -> Result<Deployed> {
    let profile = profile(c)?;
    let generation = profile.current()?.with_context(|| {
        format!(
            "profile {} has no current generation: nothing is deployed",
            profile.path().display()
        )
    })?;
    let manifest = read_manifest(&generation.store_path)?;
    let process_manager = manifest.process_manager.clone();
    let Some(entry) = manifest.instances.into_iter().find(|i| i.name == instance) else {
        bail!(
            "generation {} of {} has no instance {instance}",
            generation.number,
            profile.path().display()
        );
    };
    let spec = entry.state.clone().with_context(|| {
        format!("instance {instance} declares no state (no `state` units in its process)")
    })?;
    Ok(Deployed {
        generation,
        process_manager,
        entry,
        spec,
    })
}

fn run_as(c: &Common, entry: &InstanceEntry) -> Result<Option<RunAs>> {
    nixproc::stateful::run_as(entry, c.dirs.force_disable_user_change)
}

/// Units a running process must not have replaced under it.
fn needs_stop(unit: &StateUnit) -> bool {
    unit.consistency == Consistency::Stop
        || matches!(
            unit.kind,
            UnitKind::Directory { .. } | UnitKind::Sqlite { .. }
        )
}

fn activator(c: &Common, d: &Deployed) -> Result<Box<dyn Activator>> {
    let cfg = crate::activator_config_for(&c.dirs, 3, false, false)?;
    activator_for(&d.process_manager, &cfg)
}

/// Stops the instance for the operation when `stop` (and it runs), or
/// refuses when it runs and `units` need it stopped. Returns the activator
/// to start it again with, when it was stopped here.
fn quiesce(
    c: &Common,
    d: &Deployed,
    units: &[&StateUnit],
    stop: bool,
    what: &str,
) -> Result<Option<Box<dyn Activator>>> {
    if !units.iter().any(|u| needs_stop(u)) {
        return Ok(None);
    }
    let act = activator(c, d)?;
    let status = act.status(&d.generation.store_path, &d.entry);
    let running = matches!(status, Ok(nixproc::deploy::InstanceStatus::Running));
    if let Err(e) = &status {
        eprintln!(
            "nixproc: warning: cannot tell whether {} runs: {e:#}",
            d.entry.name
        );
    }
    if !running {
        return Ok(None);
    }
    if !stop {
        bail!(
            "instance {} is running and its {what} replaces or reads files it writes: stop it \
             first, or pass --stop to have nixproc stop and restart it",
            d.entry.name
        );
    }
    eprintln!("nixproc: stopping {}", d.entry.name);
    act.stop(&d.generation.store_path, &d.entry)?;
    Ok(Some(act))
}

fn restart(d: &Deployed, act: Option<Box<dyn Activator>>) -> Result<()> {
    if let Some(act) = act {
        eprintln!("nixproc: starting {}", d.entry.name);
        act.start(&d.generation.store_path, &d.entry)
            .with_context(|| format!("starting {} again", d.entry.name))?;
    }
    Ok(())
}

fn keygen(k: KeygenCmd) -> Result<ExitCode> {
    let cfg = config(&k.common)?;
    let path = &cfg.keys.host_identity;
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let recipient = Keys::generate(path)?;
    eprintln!("nixproc: wrote the host identity {}", path.display());
    println!("{recipient}");
    Ok(ExitCode::SUCCESS)
}

fn snapshot(s: SnapshotCmd) -> Result<ExitCode> {
    let c = &s.common;
    let d = deployed(c, &s.instance)?;
    let cfg = config(c)?;
    let store = open_store(&cfg)?;
    let keys = Keys::load(&cfg.keys)?;
    let run_as = run_as(c, &d.entry)?;
    store.recover(&d.spec)?;
    let stop_units: Vec<&StateUnit> = d
        .spec
        .units
        .values()
        .filter(|u| u.consistency == Consistency::Stop)
        .collect();
    let stopped = quiesce(c, &d, &stop_units, s.stop, "snapshot")?;
    let taken = store.snapshot(
        SnapshotRequest {
            instance: &s.instance,
            spec: &d.spec,
            revision: &d.entry.revision,
            profile: Some(&d.generation.store_path),
            generation: None,
            next_revision: None,
            reason: Reason::Manual,
            tag: s.tag.as_deref(),
            run_as: run_as.as_ref(),
        },
        &keys,
    );
    restart(&d, stopped)?;
    let m = taken?;
    println!("{}", m.id);
    Ok(ExitCode::SUCCESS)
}

fn total_size(m: &SnapshotManifest) -> u64 {
    m.units.values().map(|u| u.size).sum()
}

fn human(bytes: u64) -> String {
    const U: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = bytes as f64;
    let mut i = 0;
    while v >= 1024.0 && i + 1 < U.len() {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.1} {}", U[i])
    }
}

fn reason(r: &Reason) -> String {
    serde_json::to_value(r)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_else(|| format!("{r:?}"))
}

/// The list as a table.
fn format_list(ms: &[SnapshotManifest]) -> String {
    let rows: Vec<[String; 7]> = ms
        .iter()
        .map(|m| {
            [
                m.id.clone(),
                reason(&m.reason),
                m.generation.map(|g| g.to_string()).unwrap_or("-".into()),
                short(&m.revision).to_string(),
                m.schema.clone().unwrap_or("-".into()),
                human(total_size(m)),
                m.created.clone(),
            ]
        })
        .collect();
    let head = [
        "ID", "REASON", "GEN", "REVISION", "SCHEMA", "SIZE", "CREATED",
    ];
    let mut width = head.map(|h| h.chars().count());
    for r in &rows {
        for (w, cell) in width.iter_mut().zip(r) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: &[&str]| {
        let mut s = String::new();
        for (i, (cell, w)) in cells.iter().zip(width).enumerate() {
            if i + 1 == cells.len() {
                s.push_str(cell);
            } else {
                s.push_str(&format!("{cell:<w$}  "));
            }
        }
        s.push('\n');
        s
    };
    let mut out = line(&head);
    for r in &rows {
        out.push_str(&line(&r.iter().map(String::as_str).collect::<Vec<_>>()));
    }
    out
}

fn list(l: ListCmd) -> Result<ExitCode> {
    let store = open_store(&config(&l.common)?)?;
    let ms = store.list(l.instance.as_deref())?;
    if l.json {
        println!("{}", serde_json::to_string_pretty(&ms)?);
    } else if ms.is_empty() {
        eprintln!("nixproc: no snapshots");
    } else {
        print!("{}", format_list(&ms));
    }
    Ok(ExitCode::SUCCESS)
}

fn format_show(m: &SnapshotManifest) -> String {
    let mut s = String::new();
    let mut kv = |k: &str, v: &str| s.push_str(&format!("{k:<13} {v}\n"));
    kv("id:", &m.id);
    kv("instance:", &m.instance);
    kv("reason:", &reason(&m.reason));
    if let Some(t) = &m.tag {
        kv("tag:", t);
    }
    kv("created:", &m.created);
    kv("revision:", &m.revision);
    if let Some(p) = &m.profile {
        kv("profile:", p);
    }
    if let Some(g) = m.generation {
        kv("generation:", &g.to_string());
    }
    if let Some(n) = &m.next_revision {
        kv("next:", n);
    }
    kv("schema:", m.schema.as_deref().unwrap_or("-"));
    kv("tool:", &m.tool);
    kv("compression:", &m.compression);
    kv(
        "encrypted to:",
        &if m.recipients.is_empty() {
            "nobody (unencrypted)".to_string()
        } else {
            m.recipients.join(", ")
        },
    );
    s.push_str("units:\n");
    for (name, u) in &m.units {
        s.push_str(&format!(
            "  {name}: {} {} ({}) sha256 {}\n",
            u.kind,
            u.file,
            human(u.size),
            u.sha256
        ));
    }
    s
}

fn show(sh: ShowCmd) -> Result<ExitCode> {
    let store = open_store(&config(&sh.common)?)?;
    let m = store
        .manifest(&sh.id)?
        .with_context(|| format!("there is no snapshot {}", sh.id))?;
    if sh.json {
        println!("{}", serde_json::to_string_pretty(&m)?);
    } else {
        print!("{}", format_show(&m));
    }
    Ok(ExitCode::SUCCESS)
}

/// The snapshot a restore selects, which must belong to `instance`.
fn select(store: &StateStore, r: &RestoreCmd) -> Result<SnapshotManifest> {
    let inst = &r.instance;
    let (sel, what) = if let Some(id) = &r.id {
        (Selector::Id(id.clone()), format!("snapshot {id}"))
    } else if let Some(g) = r.generation {
        (
            Selector::Generation(g),
            format!("snapshot of {inst} taken when generation {g} was left"),
        )
    } else if let Some(rev) = &r.revision {
        (
            Selector::Revision(rev.clone()),
            format!("snapshot of {inst} for revision {rev}"),
        )
    } else {
        (Selector::Latest, format!("snapshot of {inst}"))
    };
    let found = match store.find(inst, &sel)? {
        Some(m) => Some(m),
        None => match &r.revision {
            // A revision prefix: unique among the instance's snapshots.
            Some(rev) => {
                let revs: BTreeSet<String> = store
                    .list(Some(inst))?
                    .into_iter()
                    .map(|m| m.revision)
                    .filter(|x| x.starts_with(rev.as_str()))
                    .collect();
                match revs.len() {
                    0 => None,
                    1 => store.find(inst, &Selector::Revision(revs.into_iter().next().unwrap()))?,
                    _ => bail!("revision prefix {rev} is ambiguous for {inst}"),
                }
            }
            None => None,
        },
    };
    let m = found.with_context(|| format!("there is no {what}"))?;
    if &m.instance != inst {
        bail!(
            "snapshot {} belongs to instance {}, not {inst}",
            m.id,
            m.instance
        );
    }
    Ok(m)
}

fn confirm(prompt: &str) -> Result<bool> {
    if !io::stdin().is_terminal() {
        bail!("{prompt}\nnot confirmed: pass --yes to restore without asking");
    }
    eprint!("{prompt}\nRestore? [y/N] ");
    io::stderr().flush()?;
    let mut answer = String::new();
    io::stdin().lock().read_line(&mut answer)?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes"))
}

fn restore(r: RestoreCmd) -> Result<ExitCode> {
    let c = &r.common;
    let d = deployed(c, &r.instance)?;
    let cfg = config(c)?;
    let store = open_store(&cfg)?;
    let target = select(&store, &r)?;
    let units: Vec<String> = if r.units.is_empty() {
        target
            .units
            .keys()
            .filter(|u| d.spec.units.contains_key(*u))
            .cloned()
            .collect()
    } else {
        r.units.clone()
    };
    for u in &units {
        if !d.spec.units.contains_key(u) {
            bail!(
                "instance {} declares no state unit {u} (declared: {})",
                r.instance,
                d.spec.units.keys().cloned().collect::<Vec<_>>().join(", ")
            );
        }
        if !target.units.contains_key(u) {
            bail!("snapshot {} has no unit {u}", target.id);
        }
    }
    // Decryption keys first: a snapshot we cannot read must not cost a
    // stop or a safety snapshot.
    let keys = Keys::load(&cfg.keys)?;
    let prompt = format!(
        "Restoring {} of {} from snapshot {} ({}, revision {}) replaces the current state: \
         state written since {} will be lost (a safety snapshot of it is taken first).",
        units.join(", "),
        r.instance,
        target.id,
        reason(&target.reason),
        short(&target.revision),
        target.created
    );
    if !r.yes && !confirm(&prompt)? {
        eprintln!("nixproc: not restored");
        return Ok(ExitCode::FAILURE);
    }
    if r.yes {
        eprintln!("nixproc: {prompt}");
    }
    let run_as = run_as(c, &d.entry)?;
    for done in store.recover(&d.spec)? {
        eprintln!("nixproc: recovered: {done}");
    }
    let chosen: Vec<&StateUnit> = units.iter().map(|u| &d.spec.units[u]).collect();
    let stopped = quiesce(c, &d, &chosen, r.stop, "restore")?;
    let outcome = (|| -> Result<(SnapshotManifest, Vec<String>)> {
        let safety = store
            .snapshot(
                SnapshotRequest {
                    instance: &r.instance,
                    spec: &d.spec,
                    revision: &d.entry.revision,
                    profile: Some(&d.generation.store_path),
                    generation: None,
                    next_revision: None,
                    reason: Reason::PreRestore,
                    tag: None,
                    run_as: run_as.as_ref(),
                },
                &keys,
            )
            .context("taking the safety snapshot of the current state (nothing was restored)")?;
        eprintln!("nixproc: safety snapshot {}", safety.id);
        let report =
            store.restore_report(&target.id, &d.spec, &keys, run_as.as_ref(), Some(&units))?;
        Ok((safety, report.restored))
    })();
    let started = restart(&d, stopped);
    let (safety, restored) = outcome?;
    started?;
    println!(
        "restored {} of {} from {} (the state before is in {})",
        restored.join(", "),
        r.instance,
        target.id,
        safety.id
    );
    Ok(ExitCode::SUCCESS)
}

fn verify(v: VerifyCmd) -> Result<ExitCode> {
    let cfg = config(&v.common)?;
    let store = open_store(&cfg)?;
    let keys = if v.deep {
        Some(Keys::load(&cfg.keys)?)
    } else {
        None
    };
    let ids = if v.all { store.object_ids()? } else { v.ids };
    let mut bad = 0;
    for id in &ids {
        match store.verify(id, keys.as_ref()) {
            Ok(rep) if rep.problems.is_empty() => println!("{id}: ok"),
            Ok(rep) => {
                bad += 1;
                println!("{id}: {} problem(s)", rep.problems.len());
                for p in &rep.problems {
                    println!("  {p}");
                }
            }
            Err(e) => {
                bad += 1;
                println!("{id}: {e:#}");
            }
        }
    }
    if bad > 0 {
        eprintln!(
            "nixproc: {bad} of {} snapshot(s) failed verification",
            ids.len()
        );
        return Ok(ExitCode::FAILURE);
    }
    if ids.is_empty() {
        eprintln!("nixproc: no snapshots to verify");
    }
    Ok(ExitCode::SUCCESS)
}

/// GC roots: the profile's existing generations, and the revisions of the
/// instances in their manifests.
fn gc_roots(c: &Common) -> Result<GcRoots> {
    let profile = profile(c)?;
    let mut roots = GcRoots::default();
    for g in profile.generations()? {
        roots.generations.insert(g.number);
        match read_manifest(&g.store_path) {
            Ok(m) => roots
                .revisions
                .extend(m.instances.into_iter().map(|i| i.revision)),
            Err(e) => eprintln!(
                "nixproc: warning: generation {} ({}): {e:#}; its revisions are not roots",
                g.number,
                g.store_path.display()
            ),
        }
    }
    Ok(roots)
}

fn format_gc(rep: &GcReport, dry_run: bool) -> String {
    let verb = if dry_run { "would remove" } else { "removed" };
    let mut s = String::new();
    for id in &rep.removed {
        s.push_str(&format!("{verb} {id}\n"));
    }
    for r in &rep.dangling_refs {
        s.push_str(&format!("{verb} dangling ref {r}\n"));
    }
    s.push_str(&format!(
        "{verb} {} snapshot(s), {}; kept {}\n",
        rep.removed.len(),
        human(rep.freed_bytes),
        rep.kept.len()
    ));
    s
}

fn gc(g: GcCmd) -> Result<ExitCode> {
    let store = open_store(&config(&g.common)?)?;
    let roots = gc_roots(&g.common)?;
    let rep = store.gc(
        &GcOptions {
            keep: g.keep,
            keep_within: g.keep_within,
            dry_run: g.dry_run,
        },
        &roots,
    )?;
    print!("{}", format_gc(&rep, g.dry_run));
    Ok(ExitCode::SUCCESS)
}

fn export(e: ExportCmd) -> Result<ExitCode> {
    let store = open_store(&config(&e.common)?)?;
    match &e.output {
        Some(path) => {
            let tmp = path.with_extension("part");
            let mut f = io::BufWriter::new(
                fs::File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?,
            );
            store.export(&e.id, &mut f)?;
            f.into_inner().map_err(|e| e.into_error())?.sync_all()?;
            fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))?;
        }
        None => {
            let stdout = io::stdout();
            let mut out = io::BufWriter::new(stdout.lock());
            store.export(&e.id, &mut out)?;
            out.flush()?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn import(i: ImportCmd) -> Result<ExitCode> {
    let store = open_store(&config(&i.common)?)?;
    let m = if i.file == Path::new("-") {
        store.import(&mut io::stdin().lock())?
    } else {
        let mut f = io::BufReader::new(
            fs::File::open(&i.file).with_context(|| format!("opening {}", i.file.display()))?,
        );
        store.import(&mut f)?
    };
    println!("{}", m.id);
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_parse_with_units() {
        assert_eq!(parse_age("14d"), Ok(Duration::from_secs(14 * 86400)));
        assert_eq!(parse_age("2w"), Ok(Duration::from_secs(14 * 86400)));
        assert_eq!(parse_age("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_age("12h"), Ok(Duration::from_secs(12 * 3600)));
        assert!(parse_age("14").unwrap_err().contains("give a unit"));
        assert!(parse_age("3y").unwrap_err().contains("unknown unit"));
        assert!(parse_age("d").is_err());
    }

    #[test]
    fn files_and_processes_need_a_stop_databases_do_not() {
        let unit = |kind, consistency| StateUnit { kind, consistency };
        let dir = UnitKind::Directory {
            path: "/d".into(),
            exclude: vec![],
        };
        let pg = UnitKind::PostgresqlDatabase {
            database: "x".into(),
            host: None,
            port: None,
            user: None,
            credentials_file: None,
            package: None,
        };
        assert!(needs_stop(&unit(dir, Consistency::Online)));
        assert!(!needs_stop(&unit(pg.clone(), Consistency::Online)));
        assert!(needs_stop(&unit(pg, Consistency::Stop)));
    }

    /// Built from JSON, as the store writes it (fields added to the
    /// format later default).
    fn manifest(id: &str, reason: Reason, generation: Option<u64>) -> SnapshotManifest {
        serde_json::from_value(serde_json::json!({
            "format": 1,
            "id": id,
            "instance": "app",
            "reason": reason,
            "created": "2026-05-12T10:15:00Z",
            "tool": "nixproc 0.1.0",
            "revision": "0123456789abcdef0123",
            "generation": generation,
            "schema": "v1",
            "units": {"files": {
                "type": "directory",
                "file": "unit-files.tar.zst.age",
                "sha256": "ab".repeat(32),
                "size": 3 * 1024 * 1024 / 2,
            }},
            "recipients": [],
            "compression": "zstd-3",
        }))
        .unwrap()
    }

    #[test]
    fn the_list_is_an_aligned_table() {
        let t = format_list(&[
            manifest("20260512T101500Z-app-3fa2c1de", Reason::PreSwitch, Some(41)),
            manifest("20260512T111500Z-app-00000001", Reason::PreRestore, None),
        ]);
        assert_eq!(
            t,
            "ID                             REASON       GEN  REVISION      SCHEMA  SIZE     CREATED\n\
             20260512T101500Z-app-3fa2c1de  pre-switch   41   0123456789ab  v1      1.5 MiB  2026-05-12T10:15:00Z\n\
             20260512T111500Z-app-00000001  pre-restore  -    0123456789ab  v1      1.5 MiB  2026-05-12T10:15:00Z\n"
        );
    }

    #[test]
    fn show_names_every_field_and_says_when_unencrypted() {
        let s = format_show(&manifest("x", Reason::Manual, None));
        assert!(s.contains("reason:       manual\n"), "{s}");
        assert!(s.contains("encrypted to: nobody (unencrypted)\n"), "{s}");
        assert!(s.contains("  files: directory unit-files.tar.zst.age (1.5 MiB) sha256 abab"));
    }

    #[test]
    fn sizes_read_as_humans_write_them() {
        assert_eq!(human(512), "512 B");
        assert_eq!(human(2048), "2.0 KiB");
        assert_eq!(human(5 * 1024 * 1024 * 1024), "5.0 GiB");
    }
}
