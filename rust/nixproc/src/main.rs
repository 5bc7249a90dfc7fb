//! `nixproc`: build processes models with Nix and deploy them.

mod cli;
mod nix;
mod ops_cli;
mod state_cli;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Parser;

use cli::{
    BuildCmd, Cli, Command, DeployCmd, DirOpts, GenerateConfigCmd, IdAssignCmd, InitStateCmd,
    ModelOpts, ProfileOpts, StatelessCmd, SwitchCmd,
};
use nixproc::deploy::{
    activator_for, credentials::AccountManager, Activator, ActivatorConfig, PlanOptions, Switch,
    SwitchOutcome, SystemRunner, Target,
};
use nixproc::generations::{format_generations, DeleteSpec, Profile};
use nixproc::lock::LockMode;
use nixproc::state_dirs::{init_state, StateDirOverrides, StateDirs, DEFAULT_STATE_DIR};
use nixproc::stateful::{LazyStore, StateChoice, StateConfig, StatefulHooks};

fn main() -> ExitCode {
    let args = cli::rewrite_argv0(std::env::args_os().collect());
    let cli = Cli::parse_from(args);
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("nixproc: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Build(b) => build(b),
        Command::Switch(s) => switch(s),
        Command::Deploy(d) => deploy_profile(d),
        Command::InitState(i) => init_state_cmd(i),
        Command::SupervisordStateless(s) => supervisord_stateless(s),
        Command::IdAssign(c) => id_assign(c),
        Command::GenerateConfig(c) => generate_config(c),
        Command::State(c) => state_cli::run(c),
        Command::Status(c) => ops_cli::status(c),
        Command::Logs(c) => ops_cli::logs(c),
    }
}

/// The state directories in effect, from the options (or their env vars).
fn state_dirs(d: &DirOpts) -> Result<StateDirs> {
    let abs = |o: &Option<PathBuf>| o.as_deref().map(absolute).transpose();
    Ok(StateDirs::from_state_dir(
        abs(&d.state_dir)?.unwrap_or_else(|| PathBuf::from(DEFAULT_STATE_DIR)),
        &StateDirOverrides {
            runtime: abs(&d.runtime_dir)?,
            log: abs(&d.log_dir)?,
            tmp: abs(&d.tmp_dir)?,
            cache: abs(&d.cache_dir)?,
            spool: abs(&d.spool_dir)?,
            lock: abs(&d.lock_dir)?,
            lib: abs(&d.lib_dir)?,
        },
    ))
}

/// Only directories given explicitly reach the model (nix-processmgmt's
/// forwarding rule): the model's own defaults derive the rest from stateDir.
fn explicit_dir_args(d: &DirOpts) -> Result<Vec<(String, String)>> {
    let given = [
        ("stateDir", &d.state_dir),
        ("runtimeDir", &d.runtime_dir),
        ("logDir", &d.log_dir),
        ("tmpDir", &d.tmp_dir),
        ("cacheDir", &d.cache_dir),
        ("spoolDir", &d.spool_dir),
        ("lockDir", &d.lock_dir),
        ("libDir", &d.lib_dir),
    ];
    given
        .into_iter()
        .filter_map(|(name, dir)| dir.as_ref().map(|p| (name, p)))
        .map(|(name, p)| {
            Ok((
                name.to_string(),
                absolute(p)?.to_string_lossy().into_owned(),
            ))
        })
        .collect()
}

/// Absolute without requiring existence (state dirs are created later).
fn absolute(p: &Path) -> Result<PathBuf> {
    if p.is_absolute() {
        Ok(p.to_path_buf())
    } else {
        Ok(std::env::current_dir()?.join(p))
    }
}

fn calling_identity() -> Vec<(String, String)> {
    let run = |args: &[&str]| {
        std::process::Command::new("id")
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    let mut v = Vec::new();
    if let Some(u) = run(&["-un"]) {
        v.push(("callingUser".to_string(), u));
    }
    if let Some(g) = run(&["-gn"]) {
        v.push(("callingGroup".to_string(), g));
    }
    v
}

fn build_request(m: &ModelOpts, undeploy: bool) -> Result<nix::BuildRequest> {
    let processes = if undeploy {
        None
    } else {
        Some(m.processes.clone().context(
            "no processes model given: pass a file (e.g. processes.nix) or set NIXPROC_PROCESSES",
        )?)
    };
    let mut string_args = explicit_dir_args(&m.dirs)?;
    string_args.extend(calling_identity());
    Ok(nix::BuildRequest {
        processes,
        process_manager: m.process_manager.clone(),
        string_args,
        force_disable_user_change: m.dirs.force_disable_user_change,
        extra_params: m.extra_params.clone(),
        show_trace: m.show_trace,
        out_link: None,
    })
}

fn build(b: BuildCmd) -> Result<ExitCode> {
    let tc = nix::Toolchain::locate()?;
    let mut req = build_request(&b.model, b.undeploy)?;
    req.out_link = if b.no_out_link {
        None
    } else {
        b.out_link.clone()
    };
    let path = nix::build_profile(&tc, &req)?;
    println!("{}", path.display());
    Ok(ExitCode::SUCCESS)
}

/// Where the generations of a profile live: an explicit directory, then
/// NIX_USER_PROFILE_DIR (nix-processmgmt), then — for deployments with a
/// state dir of their own — inside it, so unprivileged deployments are
/// self-contained; otherwise Nix's profiles directory (root) or the user's
/// XDG state dir.
fn profile_for(p: &ProfileOpts, dirs: &DirOpts) -> Result<Profile> {
    profile_at(&p.profile, p.profile_dir.as_deref(), dirs)
}

/// The profile `name` (or a path containing '/') in `profile_dir`, else in
/// the default directory for these state dirs and this user.
pub(crate) fn profile_at(
    name: &str,
    profile_dir: Option<&Path>,
    dirs: &DirOpts,
) -> Result<Profile> {
    if name.contains('/') {
        let path = absolute(Path::new(name))?;
        let dir = path.parent().context("profile path has no directory")?;
        let name = path.file_name().context("profile path has no name")?;
        return Ok(Profile::new(dir, name.to_string_lossy()));
    }
    let dir = if let Some(d) = profile_dir {
        absolute(d)?
    } else if let Some(d) = std::env::var_os("NIX_USER_PROFILE_DIR").filter(|d| !d.is_empty()) {
        PathBuf::from(d)
    } else if dirs.state_dir.is_some() || dirs.lib_dir.is_some() {
        state_dirs(dirs)?.lib.join("nixproc/profiles")
    } else if rustix::process::geteuid().is_root() {
        let nix_state = std::env::var_os("NIX_STATE_DIR").unwrap_or_else(|| "/nix/var/nix".into());
        PathBuf::from(nix_state).join("profiles")
    } else {
        let base = std::env::var_os("XDG_STATE_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/state")))
            .context("cannot determine a profile directory: set HOME or --profile-dir")?;
        base.join("nixproc/profiles")
    };
    Ok(Profile::new(dir, name))
}

fn activator(process_manager: &str, p: &ProfileOpts, dirs: &DirOpts) -> Result<Box<dyn Activator>> {
    activator_for(process_manager, &activator_config(p, dirs)?)
}

fn activator_config(p: &ProfileOpts, dirs: &DirOpts) -> Result<ActivatorConfig> {
    activator_config_for(dirs, p.runlevel, p.user, p.enable_at_boot)
}

/// The activator configuration for these state dirs and backend options.
pub(crate) fn activator_config_for(
    dirs: &DirOpts,
    runlevel: u32,
    user: bool,
    enable_at_boot: bool,
) -> Result<ActivatorConfig> {
    Ok(ActivatorConfig {
        state: state_dirs(dirs)?,
        force_disable_user_change: dirs.force_disable_user_change,
        runlevel,
        systemd_user: user,
        enable_at_boot,
    })
}

fn switch(s: SwitchCmd) -> Result<ExitCode> {
    let dirs = &s.model.dirs;
    let profile = profile_for(&s.profile, dirs)?;
    let op = &s.op;

    if op.list_generations {
        let gens = profile.generations()?;
        let current = profile.current()?.map(|g| g.number);
        print!("{}", format_generations(&gens, current));
        return Ok(ExitCode::SUCCESS);
    }
    if let Some(spec) = &op.delete_generations {
        let spec = DeleteSpec::parse(spec)?;
        let _lock = profile.lock(LockMode::Wait, &waiting(&profile))?;
        for g in profile.delete(&spec)? {
            eprintln!("nixproc: removed generation {}", g.number);
        }
        return Ok(ExitCode::SUCCESS);
    }
    if op.delete_all_generations {
        let _lock = profile.lock(LockMode::Wait, &waiting(&profile))?;
        for g in profile.delete_all()? {
            eprintln!("nixproc: removed generation {}", g.number);
        }
        return Ok(ExitCode::SUCCESS);
    }

    let target = if op.rollback {
        Target::Rollback
    } else if let Some(n) = op.switch_generation {
        Target::Generation(n)
    } else {
        let tc = nix::Toolchain::locate()?;
        let req = build_request(&s.model, op.undeploy)?;
        Target::Profile(nix::build_profile(&tc, &req)?)
    };
    let act = activator(&s.model.process_manager, &s.profile, dirs)?;
    activate(&profile, act.as_ref(), &s.profile, dirs, &target)
}

fn deploy_profile(d: DeployCmd) -> Result<ExitCode> {
    let profile = profile_for(&d.profile, &d.dirs)?;
    let act = activator(&d.process_manager, &d.profile, &d.dirs)?;
    activate(
        &profile,
        act.as_ref(),
        &d.profile,
        &d.dirs,
        &Target::Profile(d.profile_path.clone()),
    )
}

fn waiting(profile: &Profile) -> impl Fn() + '_ {
    move || {
        eprintln!(
            "nixproc: waiting for another nixproc switch on {}…",
            profile.path().display()
        )
    }
}

/// Plans (and unless --dry-run, executes) a switch to `target`.
fn activate(
    profile: &Profile,
    act: &dyn Activator,
    p: &ProfileOpts,
    dirs: &DirOpts,
    target: &Target,
) -> Result<ExitCode> {
    let state = state_dirs(dirs)?;
    let accounts = AccountManager::new(SystemRunner, &state.lib, dirs.force_disable_user_change);
    let snapshots = LazyStore::new(state_config(&state, &p.state.keys));
    let say = |m: &str| eprintln!("nixproc: {m}");
    let hooks = StatefulHooks::new(
        &snapshots,
        profile,
        if p.state.restore_state {
            StateChoice::Restore
        } else if p.state.keep_state {
            StateChoice::Keep
        } else {
            StateChoice::Declared
        },
        !p.state.no_state_snapshot,
        dirs.force_disable_user_change,
        &say,
    );
    let progress = nixproc::deploy::progress_tty::auto();
    let sw = Switch::new(profile, act)
        .progress(progress.as_ref())
        .old_profile(p.old_profile.clone())
        .lock_mode(if p.no_wait {
            LockMode::NoWait
        } else {
            LockMode::Wait
        })
        .plan_options(PlanOptions {
            restart_dependents: !p.no_restart_dependents,
        })
        .init_state(&state, dirs.force_disable_user_change)
        .accounts(&accounts)
        .hooks(&hooks)
        .jobs(p.jobs);

    if p.dry_run {
        let prepared = sw.plan(target)?;
        if p.json {
            println!("{}", serde_json::to_string_pretty(&prepared)?);
        } else {
            print!("{}", prepared.plan);
        }
        return Ok(ExitCode::SUCCESS);
    }

    match sw.run(target) {
        Ok(outcome) => {
            report(&outcome, p.json)?;
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            if p.json {
                if let Some(r) = e.report() {
                    println!("{}", serde_json::to_string_pretty(r)?);
                }
            }
            Err(anyhow::Error::new(e))
        }
    }
}

/// Where snapshots live and which keys they use (`StateKeyOpts` over the
/// defaults under the lib dir).
fn state_config(state: &StateDirs, keys: &cli::StateKeyOpts) -> StateConfig {
    StateConfig::new(
        &state.lib,
        keys.snapshot_dir.clone(),
        keys.identities.clone(),
        keys.recipients.clone(),
        keys.no_encryption,
    )
}

fn report(outcome: &SwitchOutcome, json: bool) -> Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(outcome)?);
    } else {
        eprintln!(
            "nixproc: generation {} is active: {}",
            outcome.generation.number,
            outcome.generation.store_path.display()
        );
    }
    Ok(())
}

fn init_state_cmd(i: InitStateCmd) -> Result<ExitCode> {
    let dirs = state_dirs(&i.dirs)?;
    let rep = init_state(&dirs, i.dirs.force_disable_user_change)?;
    for d in &rep.created {
        eprintln!("nixproc: created {}", d.display());
    }
    Ok(ExitCode::SUCCESS)
}

/// nixproc-supervisord-deploy-stateless: build, init-state, run supervisord
/// in the foreground on the profile (exec); no generation is recorded.
fn supervisord_stateless(s: StatelessCmd) -> Result<ExitCode> {
    let model = ModelOpts {
        process_manager: "supervisord".into(),
        extra_params: s.extra_params,
        show_trace: s.show_trace,
        dirs: s.dirs,
        processes: s.processes,
    };
    let tc = nix::Toolchain::locate()?;
    let req = build_request(&model, false)?;
    let path = nix::build_profile(&tc, &req)?;
    let dirs = state_dirs(&model.dirs)?;
    init_state(&dirs, model.dirs.force_disable_user_change)?;
    let mut cmd = nixproc::deploy::supervisord::stateless_command(
        &path,
        &ActivatorConfig {
            state: dirs,
            force_disable_user_change: model.dirs.force_disable_user_change,
            runlevel: 3,
            systemd_user: false,
            enable_at_boot: false,
        },
    )?;
    // Replace nixproc: Ctrl-C and TERM reach supervisord, which stops its
    // programs; nothing is recorded, so nothing has to run afterwards.
    use std::os::unix::process::CommandExt;
    let err = cmd.exec();
    Err(anyhow::Error::new(err).context(format!("cannot run {cmd:?}")))
}

/// nixproc id-assign: evaluate the model's id requirements (without
/// building anything), assign, write ids.nix (or XML) to a file or stdout.
fn id_assign(c: IdAssignCmd) -> Result<ExitCode> {
    use nixproc::id_assign::{assign_and_render, evaluate, write_atomically, EvalRequest, Format};
    // The model is evaluated with exactly the arguments a build passes.
    let model = build_request(&c.model, false)?;
    if let Some(ids) = c.ids.as_deref().filter(|p| !p.exists()) {
        eprintln!(
            "nixproc: {} does not exist yet: assigning every id afresh",
            ids.display()
        );
    }
    let req = EvalRequest {
        processes: model
            .processes
            .expect("a model is required unless undeploying"),
        id_resources: c.id_resources.clone(),
        ids: c.ids.clone(),
        service_property: c.service_property.clone(),
        process_manager: model.process_manager,
        string_args: model.string_args,
        force_disable_user_change: model.force_disable_user_change,
        extra_params: model.extra_params,
        show_trace: model.show_trace,
    };
    let tc = nix::Toolchain::locate()?;
    let inputs = evaluate(tc.command("nix-instantiate"), &tc.nix_dir, &req)?;
    let format = if c.output_xml {
        Format::Xml
    } else {
        Format::Nix
    };
    let text = assign_and_render(&inputs, format)?;
    match &c.output_file {
        Some(out) => write_atomically(out, &text)?,
        None => print!("{text}"),
    }
    Ok(ExitCode::SUCCESS)
}

/// nixproc generate-config: a process package from an agnostic JSON config,
/// or (--base) a process manager's base configuration; prints the store path.
fn generate_config(c: GenerateConfigCmd) -> Result<ExitCode> {
    let req = nixproc::generate_config::Request {
        process_manager: c.process_manager.clone(),
        config: c.config.clone(),
        base: c.base,
        create_managed_process_expr: c.create_managed_process_expr.clone(),
        string_args: explicit_dir_args(&c.dirs)?,
        force_disable_user_change: c.dirs.force_disable_user_change,
        show_trace: c.show_trace,
        out_link: if c.no_out_link {
            None
        } else {
            c.out_link.clone()
        },
    };
    // Bad arguments are reported before looking for the toolchain.
    req.checked_process_manager()?;
    let tc = nix::Toolchain::locate()?;
    let path = nixproc::generate_config::build(tc.command("nix-build"), &tc.nix_dir, &req)?;
    println!("{}", path.display());
    Ok(ExitCode::SUCCESS)
}
