//! `nixproc status` and `nixproc logs`: what the instances of a profile's
//! current generation are doing, and their output. The logic is in the
//! library ([`nixproc::status`], [`nixproc::logs`]); this module reads the
//! options, finds the profile and the activator, and prints.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use clap::Args;
use nixproc::deploy::{activator_for, read_manifest, readiness, ActivatorConfig};
use nixproc::generations::Profile;
use nixproc::logs::{log_source, print_last_lines, tail_and_follow, LogSource};
use nixproc::status::{inspect_all, render_table, Check, Readiness, SystemInspect};
use nixproc_core::manifest::{InstanceEntry, Manifest};

use crate::cli::DirOpts;

/// Which deployment: the profile, its process manager and state dirs.
#[derive(Debug, Clone, Args)]
pub struct TargetOpts {
    /// Profile name (or a path containing '/')
    #[arg(short = 'p', long, default_value = "processes", value_name = "NAME")]
    pub profile: String,
    /// Directory holding the profile's generations
    /// [default: <lib-dir>/nixproc/profiles with --state-dir, else /nix/var/nix/profiles for root]
    #[arg(long, env = "NIXPROC_PROFILE_DIR", value_name = "DIR")]
    pub profile_dir: Option<PathBuf>,
    /// Process manager to ask [default: the one the profile was built for]
    #[arg(short = 'P', long, value_name = "MANAGER")]
    pub process_manager: Option<String>,
    /// sysvinit runlevel the deployment uses
    #[arg(long, default_value_t = 3, value_name = "LEVEL")]
    pub runlevel: u32,
    /// systemd: user units (`systemctl --user`); launchd: the user's agents
    #[arg(long)]
    pub user: bool,
    #[command(flatten)]
    pub dirs: DirOpts,
}

#[derive(Debug, Args)]
pub struct StatusCmd {
    /// Print a JSON array (one object per instance) instead of the table
    #[arg(long)]
    pub json: bool,
    /// Inspect up to N instances at once
    #[arg(short = 'j', long, default_value_t = 8, value_name = "N")]
    pub jobs: usize,
    #[command(flatten)]
    pub target: TargetOpts,
}

#[derive(Debug, Args)]
pub struct LogsCmd {
    /// The instance (its process name, as `nixproc status` lists it)
    #[arg(value_name = "NAME")]
    pub name: String,
    /// Keep printing what the instance writes (Ctrl-C ends)
    #[arg(short = 'f', long)]
    pub follow: bool,
    /// How many of the last lines to print
    #[arg(short = 'n', long, default_value_t = 50, value_name = "LINES")]
    pub lines: usize,
    #[command(flatten)]
    pub target: TargetOpts,
}

/// The deployment `t` names: its current generation's store path and
/// manifest, and the activator configuration.
struct Deployed {
    profile: Profile,
    generation: u64,
    store_path: PathBuf,
    manifest: Manifest,
    config: ActivatorConfig,
    process_manager: String,
}

fn deployed(t: &TargetOpts) -> Result<Deployed> {
    let profile = crate::profile_at(&t.profile, t.profile_dir.as_deref(), &t.dirs)?;
    let generation = profile.current()?.with_context(|| {
        format!(
            "nothing is deployed on profile {} (it has no generation yet)",
            profile.path().display()
        )
    })?;
    let manifest = read_manifest(&generation.store_path)?;
    let process_manager = t
        .process_manager
        .clone()
        .unwrap_or_else(|| manifest.process_manager.clone());
    Ok(Deployed {
        config: crate::activator_config_for(&t.dirs, t.runlevel, t.user, false)?,
        profile,
        generation: generation.number,
        store_path: generation.store_path,
        manifest,
        process_manager,
    })
}

/// One attempt of every readiness check of a running instance.
fn probe_readiness(inst: &InstanceEntry) -> Readiness {
    let ctx = readiness::ProbeContext::new();
    Readiness::from_checks(
        readiness::probe(inst, &ctx)
            .into_iter()
            .map(|c| Check {
                check: c.check,
                ok: c.ok,
                detail: c.detail,
            })
            .collect(),
    )
}

pub fn status(cmd: StatusCmd) -> Result<ExitCode> {
    let d = deployed(&cmd.target)?;
    let act = activator_for(&d.process_manager, &d.config)?;
    let io = SystemInspect {
        runner: nixproc::deploy::SystemRunner,
    };
    let reports = inspect_all(
        &d.store_path,
        &d.manifest,
        act.as_ref(),
        &d.config,
        &io,
        &probe_readiness,
        cmd.jobs,
    );
    let mut out = std::io::stdout().lock();
    if cmd.json {
        serde_json::to_writer_pretty(&mut out, &reports)?;
        writeln!(out)?;
    } else {
        out.write_all(render_table(&reports).as_bytes())?;
    }
    Ok(ExitCode::SUCCESS)
}

/// `name` among the deployed instances, or an error listing them.
fn find_instance<'m>(d: &'m Deployed, name: &str) -> Result<&'m InstanceEntry> {
    if let Some(i) = d.manifest.instances.iter().find(|i| i.name == name) {
        return Ok(i);
    }
    let names: Vec<&str> = d
        .manifest
        .instances
        .iter()
        .map(|i| i.name.as_str())
        .collect();
    let known = if names.is_empty() {
        "none is deployed".to_string()
    } else {
        format!("deployed: {}", names.join(", "))
    };
    Err(anyhow!(
        "no instance named {name:?} in generation {} of profile {} ({known})",
        d.generation,
        d.profile.path().display()
    ))
}

/// Whether `e` is a write to a closed pipe (`nixproc logs -f | head`).
fn broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

pub fn logs(cmd: LogsCmd) -> Result<ExitCode> {
    let d = deployed(&cmd.target)?;
    let inst = find_instance(&d, &cmd.name)?;
    let files = match log_source(inst, &d.config, &d.store_path) {
        LogSource::File(f) => vec![f],
        LogSource::Files(v) => v,
        LogSource::Nothing(why) => bail!("{why}"),
        LogSource::Command(c) => {
            let c = c.cmd(cmd.lines, cmd.follow);
            let status = std::process::Command::new(&c.program)
                .args(&c.args)
                .status()
                .with_context(|| format!("cannot run `{c}`"))?;
            return Ok(match status.code() {
                Some(0) => ExitCode::SUCCESS,
                Some(n) => ExitCode::from(u8::try_from(n).unwrap_or(1)),
                None => ExitCode::FAILURE,
            });
        }
    };
    let mut out = std::io::stdout().lock();
    let result = if cmd.follow {
        tail_and_follow(
            &files,
            cmd.lines,
            &mut out,
            Duration::from_millis(250),
            &|| false,
        )
    } else {
        print_last_lines(&files, cmd.lines, &mut out)
    };
    match result {
        Err(e) if broken_pipe(&e) => Ok(ExitCode::SUCCESS),
        Err(e) => Err(e),
        Ok(()) => Ok(ExitCode::SUCCESS),
    }
}
