//! Command-line interface. One parser for every command; the original
//! tools' names (`nixproc-build`, `nixproc-sysvinit-switch`, …) are mapped
//! onto it through argv[0] by [`rewrite_argv0`].

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "nixproc",
    version,
    about = "Process management with Nix, for any process manager, as any user",
    long_about = None
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Build a profile from a processes model and print its store path.
    Build(BuildCmd),
    /// Build a processes model and deploy it (or undeploy, roll back, manage generations).
    Switch(SwitchCmd),
    /// Deploy an already built profile (a store path).
    Deploy(DeployCmd),
    /// Create the state directory tree (state, run, log, tmp, cache, …).
    InitState(InitStateCmd),
    /// Build a model for supervisord and run supervisord on it in the
    /// foreground, recording no generation (nixproc-supervisord-deploy-stateless).
    SupervisordStateless(StatelessCmd),
    /// Assign unique ids (ports, uids, gids) from idresources.nix to the
    /// instances that ask for them and write ids.nix (nixproc-id-assign).
    /// Usually: --id-resources idresources.nix --ids ids.nix --output-file ids.nix
    IdAssign(IdAssignCmd),
    /// Build a process package from an agnostic config (JSON), or with
    /// --base a process manager's own base configuration; print the store path
    /// (nixproc-generate-config).
    GenerateConfig(GenerateConfigCmd),
    /// Snapshots of stateful services: snapshot, list, show, restore, verify,
    /// gc, keygen, export, import.
    #[command(subcommand)]
    State(crate::state_cli::StateCmd),
    /// Every deployed instance: backend, state, PID, uptime, readiness.
    Status(crate::ops_cli::StatusCmd),
    /// Show (or follow, -f) the log of a deployed instance.
    Logs(crate::ops_cli::LogsCmd),
}

/// The state directories (nix-processmgmt's common options). Environment
/// variables are defaults; options on the command line win.
#[derive(Debug, Clone, Default, Args)]
pub struct DirOpts {
    /// Base directory for all variable data [default: /var]
    #[arg(long, env = "NIXPROC_STATE_DIR", value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// PID files and sockets [default: <state-dir>/run]
    #[arg(long, env = "NIXPROC_RUNTIME_DIR", value_name = "DIR")]
    pub runtime_dir: Option<PathBuf>,
    /// Log files [default: <state-dir>/log]
    #[arg(long, env = "NIXPROC_LOG_DIR", value_name = "DIR")]
    pub log_dir: Option<PathBuf>,
    /// Temporary files [default: /tmp, or <state-dir>/tmp]
    #[arg(long, env = "NIXPROC_TMP_DIR", value_name = "DIR")]
    pub tmp_dir: Option<PathBuf>,
    /// Caches [default: <state-dir>/cache]
    #[arg(long, env = "NIXPROC_CACHE_DIR", value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
    /// Spool files [default: <state-dir>/spool]
    #[arg(long, env = "NIXPROC_SPOOL_DIR", value_name = "DIR")]
    pub spool_dir: Option<PathBuf>,
    /// Lock files [default: <state-dir>/lock]
    #[arg(long, env = "NIXPROC_LOCK_DIR", value_name = "DIR")]
    pub lock_dir: Option<PathBuf>,
    /// Persistent state [default: <state-dir>/lib]
    #[arg(long, env = "NIXPROC_LIB_DIR", value_name = "DIR")]
    pub lib_dir: Option<PathBuf>,
    /// Never create users or switch to them (unprivileged deployments)
    /// (env NIXPROC_FORCE_DISABLE_USER_CHANGE=1 sets it too)
    #[arg(long, env = "NIXPROC_FORCE_DISABLE_USER_CHANGE", value_parser = clap::builder::FalseyValueParser::new())]
    pub force_disable_user_change: bool,
}

#[derive(Debug, Clone, Args)]
pub struct ModelOpts {
    /// Process manager to generate for
    #[arg(
        short = 'P',
        long,
        env = "NIXPROC_PROCESS_MANAGER",
        default_value = "sysvinit",
        value_name = "MANAGER"
    )]
    pub process_manager: String,
    /// A Nix expression (an attribute set) of extra arguments for the processes model
    #[arg(long, value_name = "EXPR")]
    pub extra_params: Option<String>,
    /// Show Nix's trace on evaluation errors
    #[arg(long)]
    pub show_trace: bool,
    #[command(flatten)]
    pub dirs: DirOpts,
    /// The processes model (a Nix file)
    #[arg(env = "NIXPROC_PROCESSES", value_name = "PATH")]
    pub processes: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct BuildCmd {
    #[command(flatten)]
    pub model: ModelOpts,
    /// Build the empty profile (what `switch --undeploy` deploys)
    #[arg(long)]
    pub undeploy: bool,
    /// Also create a GC-rooted symlink to the result
    #[arg(long, value_name = "PATH", conflicts_with = "no_out_link")]
    pub out_link: Option<PathBuf>,
    /// Create no result symlink (the default of `nixproc build`; accepted for compatibility)
    #[arg(long)]
    pub no_out_link: bool,
}

/// Where generations live and which runlevel/old profile a deploy uses.
#[derive(Debug, Clone, Args)]
pub struct ProfileOpts {
    /// Profile name (or a path containing '/')
    #[arg(short = 'p', long, default_value = "processes", value_name = "NAME")]
    pub profile: String,
    /// Directory holding the profile's generations
    /// [default: <lib-dir>/nixproc/profiles with --state-dir, else /nix/var/nix/profiles for root]
    #[arg(long, env = "NIXPROC_PROFILE_DIR", value_name = "DIR")]
    pub profile_dir: Option<PathBuf>,
    /// Compare against this profile instead of the current generation
    #[arg(short = 'o', long, value_name = "PATH")]
    pub old_profile: Option<PathBuf>,
    /// sysvinit runlevel whose start links are deployed
    #[arg(long, default_value_t = 3, value_name = "LEVEL")]
    pub runlevel: u32,
    /// systemd: deploy user units (`systemctl --user`) instead of system units;
    /// launchd: deploy agents of the calling user instead of system daemons
    #[arg(long)]
    pub user: bool,
    /// bsdrc: also install the scripts into BSDRC_TARGET_DIR and enable them in
    /// rc.conf, so they start at boot
    #[arg(long)]
    pub enable_at_boot: bool,
    /// Print what would be stopped, started and restarted, and change nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Print the plan or result as JSON
    #[arg(long)]
    pub json: bool,
    /// Do not restart unchanged instances whose dependencies restart
    #[arg(long)]
    pub no_restart_dependents: bool,
    /// Fail instead of waiting when another switch holds the profile lock
    #[arg(long)]
    pub no_wait: bool,
    /// Start (and stop) up to N independent instances at once
    #[arg(short = 'j', long, default_value_t = 8, value_name = "N")]
    pub jobs: usize,
    #[command(flatten)]
    pub state: StateSwitchOpts,
}

/// What a switch does with the state of stateful instances.
#[derive(Debug, Clone, Default, Args)]
pub struct StateSwitchOpts {
    /// Rolling back to revisions with another schema: restore their state
    /// snapshots (a safety snapshot of the current state is taken first)
    #[arg(long, conflicts_with = "keep_state")]
    pub restore_state: bool,
    /// Rolling back to revisions with another schema: keep the current state
    /// (code-only rollback)
    #[arg(long)]
    pub keep_state: bool,
    /// Take no automatic snapshot before the switch changes stateful
    /// instances (e.g. when file-system snapshots cover it)
    #[arg(long)]
    pub no_state_snapshot: bool,
    #[command(flatten)]
    pub keys: StateKeyOpts,
}

/// Where snapshots live and which keys encrypt and decrypt them.
#[derive(Debug, Clone, Default, Args)]
pub struct StateKeyOpts {
    /// The snapshot store [default: <lib-dir>/nixproc/snapshots]
    #[arg(long, env = "NIXPROC_SNAPSHOT_DIR", value_name = "DIR")]
    pub snapshot_dir: Option<PathBuf>,
    /// An age identity file to decrypt with (repeatable) [default: the host
    /// identity <lib-dir>/nixproc/state-identity.txt]
    #[arg(
        short = 'i',
        long = "identity",
        env = "NIXPROC_STATE_IDENTITY",
        value_name = "FILE"
    )]
    pub identities: Vec<PathBuf>,
    /// An extra age recipient (age1…) to encrypt to, e.g. an offline key
    /// (repeatable; also read from <lib-dir>/nixproc/state-recipients.txt)
    #[arg(
        long = "recipient",
        env = "NIXPROC_STATE_RECIPIENTS",
        value_delimiter = ',',
        value_name = "AGE1…"
    )]
    pub recipients: Vec<String>,
    /// Store snapshots unencrypted (development only)
    #[arg(long)]
    pub no_encryption: bool,
}

#[derive(Debug, Args)]
pub struct SwitchCmd {
    #[command(flatten)]
    pub model: ModelOpts,
    #[command(flatten)]
    pub profile: ProfileOpts,
    #[command(flatten)]
    pub op: GenerationOp,
}

/// At most one of these; none means "build and deploy the model".
#[derive(Debug, Clone, Default, Args)]
#[group(multiple = false)]
pub struct GenerationOp {
    /// Stop and remove everything this profile deployed
    #[arg(long)]
    pub undeploy: bool,
    /// Deploy the generation before the current one
    #[arg(long)]
    pub rollback: bool,
    /// Deploy generation NUM
    #[arg(long, value_name = "NUM")]
    pub switch_generation: Option<u64>,
    /// List the profile's generations
    #[arg(long)]
    pub list_generations: bool,
    /// Delete generations: numbers, 'old', 'Nd' (older than N days) or '+N' (keep N)
    #[arg(long, value_name = "SPEC", num_args = 1..)]
    pub delete_generations: Option<Vec<String>>,
    /// Delete every generation (processes keep running)
    #[arg(long)]
    pub delete_all_generations: bool,
}

#[derive(Debug, Args)]
pub struct DeployCmd {
    /// The profile to deploy (a store path built by `nixproc build`)
    #[arg(value_name = "PROFILE_PATH")]
    pub profile_path: PathBuf,
    #[command(flatten)]
    pub profile: ProfileOpts,
    #[command(flatten)]
    pub dirs: DirOpts,
    /// Process manager (must match the profile)
    #[arg(
        short = 'P',
        long,
        env = "NIXPROC_PROCESS_MANAGER",
        default_value = "sysvinit"
    )]
    pub process_manager: String,
}

#[derive(Debug, Args)]
pub struct StatelessCmd {
    /// A Nix expression (an attribute set) of extra arguments for the processes model
    #[arg(long, value_name = "EXPR")]
    pub extra_params: Option<String>,
    /// Show Nix's trace on evaluation errors
    #[arg(long)]
    pub show_trace: bool,
    #[command(flatten)]
    pub dirs: DirOpts,
    /// The processes model (a Nix file)
    #[arg(env = "NIXPROC_PROCESSES", value_name = "PATH")]
    pub processes: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct IdAssignCmd {
    /// The id resources: { <resource> = { min; max; scope ? "global"; step ? 1; }; }
    #[arg(long, value_name = "FILE")]
    pub id_resources: PathBuf,
    /// Previous assignments (an ids.nix) to keep stable; a file that does not
    /// exist yet means none
    #[arg(long, value_name = "FILE")]
    pub ids: Option<PathBuf>,
    /// The instance attribute listing the resources an instance needs ids from
    #[arg(long, default_value = "requiresUniqueIdsFor", value_name = "NAME")]
    pub service_property: String,
    /// Write the result here (atomically) instead of to stdout; may be the
    /// --ids file itself
    #[arg(long, value_name = "FILE")]
    pub output_file: Option<PathBuf>,
    /// Write dydisnix's XML form instead of Nix
    #[arg(long)]
    pub output_xml: bool,
    /// The model, evaluated as `nixproc build` would (only the id
    /// requirements are read)
    #[command(flatten)]
    pub model: ModelOpts,
}

#[derive(Debug, Args)]
pub struct GenerateConfigCmd {
    /// Process manager to build for (required)
    #[arg(short = 'P', long, value_name = "MANAGER")]
    pub process_manager: Option<String>,
    /// A Nix file giving createManagedProcess (a function of the state
    /// parameters returning it, or a set with a createManagedProcess
    /// attribute) [default: nixproc's own]
    #[arg(long, value_name = "FILE")]
    pub create_managed_process_expr: Option<PathBuf>,
    /// Build the process manager's base configuration (supervisord.conf,
    /// the s6-svscan scan directory) for the state directories instead
    #[arg(long)]
    pub base: bool,
    /// Show Nix's trace on evaluation errors
    #[arg(long)]
    pub show_trace: bool,
    /// Also create a GC-rooted symlink to the result
    #[arg(long, value_name = "PATH", conflicts_with = "no_out_link")]
    pub out_link: Option<PathBuf>,
    /// Create no result symlink (the default of `nixproc generate-config`)
    #[arg(long)]
    pub no_out_link: bool,
    #[command(flatten)]
    pub dirs: DirOpts,
    /// The agnostic config: a <name>.json written by createManagedProcess
    /// with processManager = null
    #[arg(value_name = "CONFIG.json")]
    pub config: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct InitStateCmd {
    #[command(flatten)]
    pub dirs: DirOpts,
}

/// Maps the original tools' names onto subcommands:
/// `nixproc-build` → `nixproc build --out-link result` (unless
/// `--no-out-link`), `nixproc-<pm>-switch` → `nixproc switch -P <pm>`,
/// `nixproc-<pm>-deploy` → `nixproc deploy -P <pm>`,
/// `nixproc-init-state` → `nixproc init-state`, `nixproc-id-assign` →
/// `nixproc id-assign`, `nixproc-generate-config` → `nixproc
/// generate-config --out-link result` (unless `--no-out-link`).
pub fn rewrite_argv0(args: Vec<OsString>) -> Vec<OsString> {
    let Some(first) = args.first() else {
        return args;
    };
    let name = Path::new(first)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let rest = args[1..].to_vec();
    let mut out: Vec<OsString> = vec!["nixproc".into()];
    let with =
        |out: &mut Vec<OsString>, words: &[&str]| out.extend(words.iter().map(OsString::from));
    if name == "nixproc-build" {
        with(&mut out, &["build"]);
        let wants_link = !rest
            .iter()
            .any(|a| a == "--no-out-link" || a == "--out-link");
        if wants_link {
            with(&mut out, &["--out-link", "result"]);
        }
    } else if name == "nixproc-supervisord-deploy-stateless" {
        with(&mut out, &["supervisord-stateless"]);
    } else if name == "nixproc-init-state" {
        with(&mut out, &["init-state"]);
    } else if name == "nixproc-id-assign" {
        with(&mut out, &["id-assign"]);
    } else if name == "nixproc-generate-config" {
        // Like nix-build (and the original): a `result` link unless told not to.
        with(&mut out, &["generate-config"]);
        let wants_link = !rest
            .iter()
            .any(|a| a == "--no-out-link" || a == "--out-link");
        if wants_link {
            with(&mut out, &["--out-link", "result"]);
        }
    } else if let Some(pm) = name
        .strip_prefix("nixproc-")
        .and_then(|n| n.strip_suffix("-switch"))
    {
        with(&mut out, &["switch", "--process-manager", pm]);
    } else if let Some(pm) = name
        .strip_prefix("nixproc-")
        .and_then(|n| n.strip_suffix("-deploy"))
    {
        with(&mut out, &["deploy", "--process-manager", pm]);
    } else {
        return args;
    }
    out.extend(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(words: &[&str]) -> Cli {
        let args = rewrite_argv0(words.iter().map(OsString::from).collect());
        Cli::try_parse_from(args).expect("parses")
    }

    #[test]
    fn original_switch_name_selects_process_manager() {
        let cli = parse(&[
            "/usr/bin/nixproc-sysvinit-switch",
            "--state-dir",
            "/tmp/s",
            "m.nix",
        ]);
        let Command::Switch(s) = cli.command else {
            panic!("not switch")
        };
        assert_eq!(s.model.process_manager, "sysvinit");
        assert_eq!(s.model.processes.as_deref(), Some(Path::new("m.nix")));
        assert_eq!(s.model.dirs.state_dir.as_deref(), Some(Path::new("/tmp/s")));
    }

    #[test]
    fn original_names_of_every_backend() {
        for (tool, pm) in [
            ("nixproc-supervisord-switch", "supervisord"),
            ("nixproc-systemd-switch", "systemd"),
            ("nixproc-s6-rc-switch", "s6-rc"),
        ] {
            let Command::Switch(s) = parse(&[tool, "m.nix"]).command else {
                panic!("{tool}: not switch")
            };
            assert_eq!(s.model.process_manager, pm);
        }
        let Command::Deploy(d) = parse(&["nixproc-s6-rc-deploy", "/nix/store/x"]).command else {
            panic!("not deploy")
        };
        assert_eq!(d.process_manager, "s6-rc");
        let Command::SupervisordStateless(s) = parse(&[
            "nixproc-supervisord-deploy-stateless",
            "--state-dir",
            "/s",
            "m.nix",
        ])
        .command
        else {
            panic!("not stateless")
        };
        assert_eq!(s.processes.as_deref(), Some(Path::new("m.nix")));
        let Command::Switch(s) = parse(&["nixproc-systemd-switch", "--user", "m.nix"]).command
        else {
            panic!()
        };
        assert!(s.profile.user);
    }

    #[test]
    fn nixproc_build_compat_makes_result_link_unless_told_not_to() {
        let Command::Build(b) = parse(&["nixproc-build", "m.nix"]).command else {
            panic!()
        };
        assert_eq!(b.out_link.as_deref(), Some(Path::new("result")));
        let Command::Build(b) = parse(&["nixproc-build", "--no-out-link", "m.nix"]).command else {
            panic!()
        };
        assert_eq!(b.out_link, None);
    }

    #[test]
    fn generation_operations_are_exclusive() {
        let args = ["nixproc", "switch", "--rollback", "--undeploy"];
        assert!(Cli::try_parse_from(args).is_err());
        let Command::Switch(s) = parse(&["nixproc", "switch", "--switch-generation", "4"]).command
        else {
            panic!()
        };
        assert_eq!(s.op.switch_generation, Some(4));
    }

    #[test]
    fn id_assign_original_name_and_options() {
        let Command::IdAssign(c) = parse(&[
            "/bin/nixproc-id-assign",
            "--id-resources",
            "idresources.nix",
            "--ids",
            "ids.nix",
            "--output-file",
            "ids.nix",
            "--state-dir",
            "/s",
            "--output-xml",
            "processes.nix",
        ])
        .command
        else {
            panic!("not id-assign")
        };
        assert_eq!(c.id_resources, Path::new("idresources.nix"));
        assert_eq!(c.ids.as_deref(), Some(Path::new("ids.nix")));
        assert_eq!(c.output_file.as_deref(), Some(Path::new("ids.nix")));
        assert_eq!(c.service_property, "requiresUniqueIdsFor");
        assert!(c.output_xml);
        assert_eq!(c.model.dirs.state_dir.as_deref(), Some(Path::new("/s")));
        assert_eq!(
            c.model.processes.as_deref(),
            Some(Path::new("processes.nix"))
        );
        let missing = Cli::try_parse_from(["nixproc", "id-assign", "p.nix"]).unwrap_err();
        assert!(missing.to_string().contains("--id-resources"), "{missing}");
    }

    #[test]
    fn generate_config_original_name_makes_result_link() {
        let Command::GenerateConfig(c) = parse(&[
            "nixproc-generate-config",
            "-P",
            "supervisord",
            "--create-managed-process-expr",
            "cmp.nix",
            "--log-dir",
            "/l",
            "webapp.json",
        ])
        .command
        else {
            panic!("not generate-config")
        };
        assert_eq!(c.process_manager.as_deref(), Some("supervisord"));
        assert_eq!(
            c.create_managed_process_expr.as_deref(),
            Some(Path::new("cmp.nix"))
        );
        assert_eq!(c.dirs.log_dir.as_deref(), Some(Path::new("/l")));
        assert_eq!(c.out_link.as_deref(), Some(Path::new("result")));
        assert_eq!(c.config.as_deref(), Some(Path::new("webapp.json")));
        let Command::GenerateConfig(c) = parse(&[
            "nixproc-generate-config",
            "--no-out-link",
            "-P",
            "s6-rc",
            "--base",
        ])
        .command
        else {
            panic!("not generate-config")
        };
        assert!(c.base && c.no_out_link && c.out_link.is_none());
        let Command::GenerateConfig(c) = parse(&["nixproc", "generate-config", "x.json"]).command
        else {
            panic!("not generate-config")
        };
        assert_eq!(c.process_manager, None);
        assert_eq!(c.out_link, None);
    }

    #[test]
    fn force_disable_user_change_flag() {
        let Command::InitState(i) =
            parse(&["nixproc-init-state", "--force-disable-user-change"]).command
        else {
            panic!()
        };
        assert!(i.dirs.force_disable_user_change);
        let Command::Switch(s) =
            parse(&["nixproc", "switch", "--force-disable-user-change", "m.nix"]).command
        else {
            panic!()
        };
        assert!(s.model.dirs.force_disable_user_change);
        assert_eq!(s.model.processes.as_deref(), Some(Path::new("m.nix")));
    }
}
