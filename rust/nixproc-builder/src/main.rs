//! `nixproc-builder`: one static binary with two jobs.
//!
//! * `build` is the builder of every nixproc derivation (copied into the
//!   store with `builtins.path`; no nixpkgs, no shell needed).
//! * `start-daemon`, `daemonize`, `killproc` and `statusproc` are the run-time
//!   helpers called by generated init scripts (through
//!   `nix/sysvinit/init-functions.sh`).
//! * `foreground-proxy` is the run-time wrapper of programs under managers
//!   that want a foreground process (supervisord, …).
//! * `primop` runs a generator at build time (builder mode, where the plugin
//!   cannot load).
//! * `docker-base-image` writes the base image of docker containers.
//!
//! Built with `+crt-static`, so nothing here may depend on NSS.

mod daemon;
mod derivation;
mod docker_image;
mod primop;
mod procs;
mod proxy;
mod users;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use std::ffi::OsString;
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "nixproc-builder",
    version,
    about = "Builder of nixproc derivations and run-time helper of generated init scripts",
    after_help = "Errors are printed to stderr prefixed with `nixproc-builder: `."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Build a derivation: materialise a JSON spec of files, links and
    /// directories in $out, then run its postInstall.
    #[command(
        long_about = "Build a derivation: materialise a JSON spec of files, links and directories \
                      in $out, then run its postInstall.\n\n\
                      Spec: {\"files\": [{\"path\", \"text\", \"mode\"}], \"links\": [{\"path\", \
                      \"target\"}], \"dirs\": [path], \"single\": {\"text\", \"mode\"} | null, \
                      \"postInstall\": code | null, \"shell\": path | null}.\n\
                      Paths are relative, without '..'; each may be used once."
    )]
    Build {
        /// The JSON spec file (Nix: passAsFile = ["spec"] sets $specPath).
        #[arg(long, env = "specPath", value_name = "FILE")]
        spec: PathBuf,
        /// The output to create.
        #[arg(long, env = "out", value_name = "DIR")]
        out: PathBuf,
    },

    /// Start a program that daemonizes itself (LSB start_daemon).
    #[command(
        long_about = "Start a program that daemonizes itself (LSB start_daemon).\n\n\
                      Unless -f is given, does nothing if the program already runs (PIDFILE names \
                      a live process, or without -p a process runs PROGRAM's executable). Runs \
                      PROGRAM and waits for it; its failure is this command's failure. With -p, \
                      then waits until PIDFILE names a live process ($NIXPROC_START_TIMEOUT \
                      seconds, default 10)."
    )]
    StartDaemon {
        /// Start even if the program seems to be running already.
        #[arg(short = 'f', long = "force")]
        force: bool,
        /// Nice increment.
        #[arg(
            short = 'n',
            long = "nice",
            value_name = "NICE",
            allow_negative_numbers = true
        )]
        nice: Option<i32>,
        /// PID file the program writes.
        #[arg(short = 'p', long = "pidfile", value_name = "PIDFILE")]
        pidfile: Option<PathBuf>,
        /// Run the program as this user (root only; groups from /etc/group).
        #[arg(short = 'u', long = "user", value_name = "USER")]
        user: Option<String>,
        /// The program (a path, or a name searched in PATH) and its
        /// arguments, passed verbatim: options after PROGRAM are its own.
        #[arg(
            value_name = "PROGRAM [ARGS]...",
            required = true,
            trailing_var_arg = true,
            allow_hyphen_values = true
        )]
        command: Vec<OsString>,
    },

    /// Run a foreground program as a daemon (replaces libslack daemon).
    #[command(
        long_about = "Run a foreground program as a daemon (replaces libslack daemon).\n\n\
                      Forks, creates a session, forks again; the daemon changes directory, sets \
                      umask and nice, reads /dev/null, writes stdout/stderr to LOGFILE (appended, \
                      created 0640) or /dev/null, writes PIDFILE atomically (the program's own \
                      PID), switches user, and execs PROGRAM with the environment unchanged. \
                      Returns 0 once the exec succeeded; a failure is reported with its cause. \
                      If PIDFILE names a live process, prints that the program is already running \
                      and returns 0."
    )]
    Daemonize {
        /// Append the program's stdout and stderr to this file.
        #[arg(long, value_name = "LOGFILE")]
        output: Option<PathBuf>,
        /// Write the program's PID here.
        #[arg(long, value_name = "PIDFILE")]
        pidfile: Option<PathBuf>,
        /// Run the program as this user (root only; groups from /etc/group).
        #[arg(long, value_name = "USER")]
        user: Option<String>,
        /// Nice increment.
        #[arg(long, value_name = "N", allow_negative_numbers = true)]
        nice: Option<i32>,
        /// Working directory of the program (default: the current one).
        #[arg(long, value_name = "DIR")]
        directory: Option<PathBuf>,
        /// umask of the program, octal (default: inherited).
        #[arg(long, value_name = "UMASK", value_parser = parse_umask)]
        umask: Option<u32>,
        /// The program (a path, or a name searched in PATH) and its
        /// arguments, passed verbatim: options after PROGRAM are its own.
        #[arg(
            value_name = "PROGRAM [ARGS]...",
            required = true,
            trailing_var_arg = true,
            allow_hyphen_values = true
        )]
        command: Vec<OsString>,
    },

    /// Stop a program or send it a signal (LSB killproc).
    #[command(long_about = "Stop a program or send it a signal (LSB killproc).\n\n\
                      The processes are those named by PIDFILE, or without -p those running \
                      PROGRAM's executable. Without SIGNAL: sends TERM, waits up to \
                      $NIXPROC_STOP_TIMEOUT seconds (default 10), then KILL, and removes PIDFILE. \
                      A program that is not running is reported and counts as stopped (exit 0; \
                      a stale PIDFILE is removed); with an explicit SIGNAL it is exit 7.\n\
                      SIGNAL: -HUP, HUP, SIGHUP, -1, 1, …")]
    Killproc {
        /// PID file of the program.
        #[arg(short = 'p', long = "pidfile", value_name = "PIDFILE")]
        pidfile: Option<PathBuf>,
        /// The program.
        #[arg(value_name = "PROGRAM")]
        program: OsString,
        /// Signal to send instead of stopping.
        #[arg(value_name = "SIGNAL", allow_hyphen_values = true)]
        signal: Option<String>,
    },

    /// Report whether a program runs (LSB statusproc).
    #[command(long_about = "Report whether a program runs (LSB statusproc).\n\n\
                      Exit 0: running (prints the PIDs); 1: not running but PIDFILE exists; \
                      3: not running.")]
    Statusproc {
        /// PID file of the program.
        #[arg(short = 'p', long = "pidfile", value_name = "PIDFILE")]
        pidfile: Option<PathBuf>,
        /// The program.
        #[arg(value_name = "PROGRAM")]
        program: OsString,
    },

    /// Run a program for a manager that wants a foreground process.
    #[command(
        long_about = proxy::HELP,
        disable_help_flag = true
    )]
    ForegroundProxy {
        /// Options, `--`, PROGRAM and its arguments.
        #[arg(
            value_name = "ARGS",
            trailing_var_arg = true,
            allow_hyphen_values = true
        )]
        args: Vec<OsString>,
    },

    /// Write the docker base image archive (`docker load`-able).
    #[command(
        long_about = "Write the docker base image archive (`docker load`-able).\n\n\
                      The one image every nixproc container is created from: a single layer \
                      with /run, /tmp (1777), /var, /var/run -> /run, /etc/passwd and \
                      /etc/group (root, nobody/nogroup); no Cmd, no tag. Reproducible byte \
                      for byte."
    )]
    DockerBaseImage {
        /// Where the archive goes.
        #[arg(long, env = "out", value_name = "FILE")]
        out: PathBuf,
        /// Nix system or architecture of the image (e.g. x86_64-linux);
        /// default: this binary's.
        #[arg(long, value_name = "SYSTEM")]
        system: Option<String>,
    },

    /// Run a nixproc primop on a JSON argument (builder mode).
    #[command(
        long_about = "Run a nixproc primop on a JSON argument (builder mode).\n\n\
                      Reads the argument as JSON from FILE ($inputPath, set by \
                      passAsFile = [\"input\"]), writes the JSON of the result to $out. An \
                      error is printed as \"NAME: message\" and is exit status 1."
    )]
    Primop {
        /// The primop's Nix-visible name, e.g. createSupervisordProgram.
        #[arg(value_name = "NAME")]
        name: String,
        /// The JSON argument.
        #[arg(long, env = "inputPath", value_name = "FILE")]
        input: PathBuf,
        /// Where the JSON result goes.
        #[arg(long, env = "out", value_name = "FILE")]
        out: PathBuf,
    },
}

fn parse_umask(s: &str) -> Result<u32, String> {
    daemon::parse_umask(s).map_err(|e| e.to_string())
}

fn run(cli: Cli) -> Result<i32> {
    match cli.command {
        Command::Build { spec, out } => {
            let text = std::fs::read_to_string(&spec)
                .with_context(|| format!("cannot read spec {}", spec.display()))?;
            let spec = derivation::parse_spec(&text)?;
            derivation::build(&spec, &out)?;
            Ok(0)
        }
        Command::StartDaemon {
            force,
            nice,
            pidfile,
            user,
            command,
        } => daemon::start_daemon(
            &daemon::StartOptions {
                force,
                nice,
                pidfile,
                user,
            },
            &command[0],
            &command[1..],
        ),
        Command::Daemonize {
            output,
            pidfile,
            user,
            nice,
            directory,
            umask,
            command,
        } => daemon::daemonize(
            &daemon::DaemonizeOptions {
                output,
                pidfile,
                user,
                nice,
                directory,
                umask,
            },
            &command[0],
            &command[1..],
        ),
        Command::Killproc {
            pidfile,
            program,
            signal,
        } => procs::killproc(pidfile.as_deref(), &program, signal.as_deref()),
        Command::Statusproc { pidfile, program } => procs::statusproc(pidfile.as_deref(), &program),
        Command::ForegroundProxy { args } => Ok(proxy::main(&args)),
        Command::DockerBaseImage { out, system } => {
            let system = system.unwrap_or_else(|| std::env::consts::ARCH.to_string());
            docker_image::build(&out, docker_image::docker_architecture(&system)?)?;
            Ok(0)
        }
        Command::Primop { name, input, out } => Ok(primop::run(&name, &input, &out)),
    }
}

fn main() {
    // The proxy parses its own command line: `--` and every argument after
    // it must reach the program untouched, and its errors exit 111.
    let argv: Vec<OsString> = std::env::args_os().collect();
    if argv.get(1).is_some_and(|a| a == "foreground-proxy") {
        std::process::exit(proxy::main(&argv[2..]));
    }
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => {
            // --help, --version
            let _ = e.print();
            std::process::exit(0);
        }
        Err(e) => {
            eprint!("nixproc-builder: {}", e.render());
            std::process::exit(1);
        }
    };
    let code = match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("nixproc-builder: {e:#}");
            1
        }
    };
    std::process::exit(code);
}
