//! The supervisord activator (reference §5.7, fixing defect 18).
//!
//! Layout: the configuration directory is `$SUPERVISORD_CONF_DIR`, else
//! `<libDir>/supervisord`. It holds
//! * `supervisord.conf` — a copy of the profile's base configuration
//!   (socket, pidfile and logs under the state dirs, `[include]
//!   files=conf.d/*.conf`), marked by [`CONF_MARKER`] on its first line.
//!   A file without the marker belongs to the user and is used as is;
//! * `conf.d/<name>.conf` — a symlink to `<profile>/conf.d/<name>.conf` for
//!   each deployed program (program name = instance name);
//! * [`STARTED_MARKER`] — present while a supervisord that nixproc started
//!   runs; `finish` shuts that one down once nothing is deployed.
//!
//! Every `supervisorctl` call gets `-c <confdir>/supervisord.conf`, so it
//! talks to exactly the supervisord that reads this directory, never to
//! whatever the default config discovery finds (defect 18).
//!
//! * start  = link the conf, `reread`, `update <name>` (adds the group,
//!   which autostarts), then poll `status <name>` until RUNNING; STOPPED
//!   (autostart=false) gets one `start <name>`. BACKOFF, FATAL and EXITED
//!   fail the start with the tail of the program's log.
//! * stop   = `stop <name>`, `remove <name>`, unlink the conf, `reread`.
//!   A program supervisord does not know, or a supervisord that does not
//!   run, counts as stopped.
//! * status = `status <name>`: RUNNING → running; STOPPED, EXITED, FATAL,
//!   not loaded or no supervisord → stopped; anything else unknown.
//!
//! supervisorctl 4.2.5's exit codes, as relied on here: `status` 0 (all
//! listed processes running or starting), 3 (one is STOPPED, EXITED, FATAL
//! or UNKNOWN), 4 (no such process, or supervisord unreachable); `pid` 0
//! when supervisord answers, 7 when its socket does not exist, 4 when it
//! refuses the connection; `stop`/`remove` 1 for an unknown name; `start`
//! 0 for "already started", 7 for spawn errors. The output is what is
//! actually parsed; the codes are only used where they are unambiguous.

use std::fs;
use std::io::Write;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use nixproc_core::manifest::{Backend, InstanceEntry, Manifest};

use super::activator::{Activator, InstanceStatus};
use super::manifest::within_profile;
use super::runner::{Cmd, CmdOutput, Runner};
use super::select::ActivatorConfig;

/// Overrides the configuration directory.
pub const CONF_DIR_ENV: &str = "SUPERVISORD_CONF_DIR";
/// First line of a `supervisord.conf` nixproc may overwrite.
pub const CONF_MARKER: &str = "; Written by nixproc and replaced by each deployment. \
                               Delete this line to keep your own configuration.";
/// Name of the file recording that nixproc started the running supervisord.
pub const STARTED_MARKER: &str = "started-by-nixproc";
/// The base configuration's name, at the profile root and in the conf dir.
pub const MAIN_CONF: &str = "supervisord.conf";
/// Bytes of a failed program's log quoted in the error.
const LOG_TAIL_BYTES: u32 = 1600;

/// A program state as `supervisorctl status` prints it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProgramState {
    Stopped,
    Starting,
    Running,
    Backoff,
    Stopping,
    Exited,
    Fatal,
    Unknown,
}

impl ProgramState {
    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "STOPPED" => Self::Stopped,
            "STARTING" => Self::Starting,
            "RUNNING" => Self::Running,
            "BACKOFF" => Self::Backoff,
            "STOPPING" => Self::Stopping,
            "EXITED" => Self::Exited,
            "FATAL" => Self::Fatal,
            "UNKNOWN" => Self::Unknown,
            _ => return None,
        })
    }
}

/// What `supervisorctl status <name>` said about a program.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProgramStatus {
    /// supervisord does not run (its socket is missing or refuses).
    NoSupervisord,
    /// supervisord has no such program.
    NotLoaded,
    /// The states of the program's processes (one unless `numprocs` > 1),
    /// with supervisord's description of the first odd one out.
    Loaded {
        states: Vec<ProgramState>,
        line: String,
    },
}

/// Whether supervisorctl's output says it could not reach supervisord.
fn unreachable(out: &CmdOutput) -> bool {
    let text = format!("{}{}", out.stdout, out.stderr);
    text.lines()
        .any(|l| l.ends_with(" no such file") || l.ends_with(" refused connection"))
}

fn not_loaded(out: &CmdOutput) -> bool {
    let text = format!("{}{}", out.stdout, out.stderr);
    text.contains("ERROR (no such process)")
        || text.contains("ERROR (no such group)")
        || text.contains("no such process/group")
}

/// Parses `supervisorctl status <name>`: lines `<name> <STATE> <desc>`, or
/// `<name>:<process> …` for a group of several processes.
pub fn parse_status(name: &str, out: &CmdOutput) -> Result<ProgramStatus> {
    if unreachable(out) {
        return Ok(ProgramStatus::NoSupervisord);
    }
    if not_loaded(out) {
        return Ok(ProgramStatus::NotLoaded);
    }
    let mut states = Vec::new();
    let mut line = String::new();
    for l in out.stdout.lines() {
        let mut words = l.split_whitespace();
        let Some(first) = words.next() else { continue };
        let ours = first == name
            || first
                .strip_prefix(name)
                .is_some_and(|rest| rest.starts_with(':'));
        if !ours {
            continue;
        }
        let Some(state) = words.next().and_then(ProgramState::parse) else {
            continue;
        };
        if line.is_empty() || state != ProgramState::Running {
            line = l.split_whitespace().collect::<Vec<_>>().join(" ");
        }
        states.push(state);
    }
    if states.is_empty() {
        bail!(
            "`supervisorctl status {name}` {}: unexpected output{}",
            out.exit,
            if out.tail().is_empty() {
                String::new()
            } else {
                format!("\n{}", out.tail().trim_end())
            }
        );
    }
    Ok(ProgramStatus::Loaded { states, line })
}

/// Whether `pid` names a live process; zombies count as dead (PID 1 may
/// not reap a daemonized supervisord).
pub fn pid_alive(pid: u32) -> bool {
    match fs::read(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            let Some(close) = stat.iter().rposition(|&b| b == b')') else {
                return false;
            };
            !matches!(
                stat[close + 1..].iter().find(|b| !b.is_ascii_whitespace()),
                Some(b'Z') | Some(b'X') | None
            )
        }
        Err(_) => false,
    }
}

pub struct SupervisordActivator<R> {
    runner: R,
    config: ActivatorConfig,
    conf_dir: PathBuf,
    supervisord: PathBuf,
    supervisorctl: PathBuf,
    /// How long a program may take to reach RUNNING, and supervisord to
    /// answer after being started or to exit after `shutdown`.
    timeout: Duration,
    /// Pause between status polls.
    poll: Duration,
    /// Serializes the configuration changes of parallel starts and stops
    /// (conf.d links, `reread`, `update`, `remove`): supervisord rereads
    /// the whole conf.d on each, so one change at a time. Waiting for a
    /// program to reach RUNNING, and `stop`, run outside it.
    ctl_lock: std::sync::Mutex<()>,
}

impl<R: Runner> SupervisordActivator<R> {
    /// Configuration directory from `$SUPERVISORD_CONF_DIR`, else
    /// `<libDir>/supervisord`; `supervisord`/`supervisorctl` from `PATH`.
    pub fn new(runner: R, config: &ActivatorConfig) -> Self {
        let conf_dir = std::env::var_os(CONF_DIR_ENV)
            .filter(|d| !d.is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(|| config.state.lib.join("supervisord"));
        SupervisordActivator {
            runner,
            config: config.clone(),
            conf_dir,
            supervisord: PathBuf::from("supervisord"),
            supervisorctl: PathBuf::from("supervisorctl"),
            timeout: Duration::from_secs(60),
            poll: Duration::from_millis(100),
            ctl_lock: std::sync::Mutex::new(()),
        }
    }

    pub fn with_conf_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.conf_dir = dir.into();
        self
    }

    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    pub fn with_poll_interval(mut self, poll: Duration) -> Self {
        self.poll = poll;
        self
    }

    pub fn conf_dir(&self) -> &Path {
        &self.conf_dir
    }

    pub fn main_conf(&self) -> PathBuf {
        self.conf_dir.join(MAIN_CONF)
    }

    pub fn runner(&self) -> &R {
        &self.runner
    }

    fn started_marker(&self) -> PathBuf {
        self.conf_dir.join(STARTED_MARKER)
    }

    fn ctl<I, S>(&self, args: I) -> Cmd
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        let mut cmd = Cmd::new(&self.supervisorctl)
            .arg("-c")
            .arg(self.main_conf());
        for a in args {
            cmd = cmd.arg(a);
        }
        cmd
    }

    /// The PID of the supervisord this conf dir talks to, if one answers.
    pub fn supervisord_pid(&self) -> Result<Option<u32>> {
        let out = self.runner.run(&self.ctl(["pid"]))?;
        Ok(if out.success() {
            out.stdout.trim().parse().ok()
        } else {
            None
        })
    }

    /// The program's conf link and its target in `profile`.
    fn program_conf(&self, profile: &Path, inst: &InstanceEntry) -> Result<(PathBuf, PathBuf)> {
        let config = match &inst.backend {
            Backend::Supervisord { config, .. } => config,
            _ => bail!("{} is not a supervisord instance", inst.name),
        };
        let rel = Path::new(config);
        if !within_profile(config) {
            bail!(
                "{}: program config path `{config}` must be relative to the profile, without `..`",
                inst.name
            );
        }
        if inst.name.is_empty()
            || inst.name.contains(['/', ':'])
            || inst.name.chars().any(char::is_whitespace)
        {
            bail!(
                "{:?} cannot be a supervisord program name (no '/', ':' or whitespace)",
                inst.name
            );
        }
        let link = self
            .conf_dir
            .join("conf.d")
            .join(format!("{}.conf", inst.name));
        Ok((link, profile.join(rel)))
    }

    fn status_of(&self, name: &str) -> Result<(ProgramStatus, CmdOutput)> {
        let out = self.runner.run(&self.ctl(["status", name]))?;
        Ok((parse_status(name, &out)?, out))
    }

    /// The last lines of a program's stdout and stderr logs, as far as
    /// supervisord keeps them.
    fn log_tail(&self, name: &str) -> String {
        let mut tail = String::new();
        for (label, extra) in [("stdout", None), ("stderr", Some("stderr"))] {
            let mut cmd = self
                .ctl(["tail"])
                .arg(format!("-{LOG_TAIL_BYTES}"))
                .arg(name);
            if let Some(e) = extra {
                cmd = cmd.arg(e);
            }
            let Ok(out) = self.runner.run(&cmd) else {
                continue;
            };
            let text = out.stdout.trim();
            if !out.success() || text.is_empty() || text.contains("ERROR (") {
                continue;
            }
            let lines: Vec<&str> = text.lines().collect();
            let skip = lines.len().saturating_sub(20);
            tail.push_str(&format!("\n{label} log of {name}:"));
            for l in &lines[skip..] {
                tail.push_str("\n  ");
                tail.push_str(l);
            }
        }
        tail
    }

    /// Polls until the program runs; fails on BACKOFF, FATAL, EXITED.
    fn wait_running(&self, name: &str) -> Result<()> {
        let deadline = Instant::now() + self.timeout;
        let mut started = false;
        loop {
            let (status, out) = self.status_of(name)?;
            let (states, line) = match status {
                ProgramStatus::NoSupervisord => {
                    bail!("{name}: supervisord stopped answering{}", fmt_out(&out))
                }
                ProgramStatus::NotLoaded => {
                    bail!(
                        "{name}: supervisord did not load the program after `update`{}",
                        fmt_out(&out)
                    )
                }
                ProgramStatus::Loaded { states, line } => (states, line),
            };
            use ProgramState::*;
            if states.iter().all(|s| *s == Running) {
                return Ok(());
            }
            if states
                .iter()
                .any(|s| matches!(s, Backoff | Fatal | Exited | Unknown))
                || (started && states.contains(&Stopped))
            {
                bail!(
                    "{name} did not start: supervisord reports `{line}`{}",
                    self.log_tail(name)
                );
            }
            if states.contains(&Stopped) {
                // autostart=false: start it explicitly (once).
                let out = self.runner.run(&self.ctl(["start", name]))?;
                if !out.success() {
                    bail!(
                        "{name} did not start: `supervisorctl start {name}` {}{}{}",
                        out.exit,
                        fmt_out(&out),
                        self.log_tail(name)
                    );
                }
                started = true;
                continue;
            }
            if Instant::now() >= deadline {
                bail!(
                    "{name} did not reach RUNNING within {}s: supervisord reports `{line}`{}",
                    self.timeout.as_secs_f64(),
                    self.log_tail(name)
                );
            }
            std::thread::sleep(self.poll);
        }
    }

    /// Writes the profile's `supervisord.conf` into the conf dir unless the
    /// user keeps their own there. Returns a warning, if any.
    fn install_main_conf(&self, new_profile: &Path) -> Result<Option<String>> {
        let target = self.main_conf();
        let existing = match fs::read_to_string(&target) {
            Ok(t) => Some(t),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(e).with_context(|| format!("reading {}", target.display())),
        };
        let ours = existing
            .as_deref()
            .is_none_or(|t| t.lines().next().map(str::trim_end) == Some(CONF_MARKER));
        if !ours {
            return Ok(self.check_user_conf(existing.as_deref().unwrap_or_default()));
        }
        let source = new_profile.join(MAIN_CONF);
        let body = match fs::read_to_string(&source) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && existing.is_some() => {
                // An empty profile without a base config: keep the last one.
                return Ok(None);
            }
            Err(e) => {
                return Err(e).with_context(|| {
                    format!(
                        "the profile has no readable {MAIN_CONF} ({})",
                        source.display()
                    )
                })
            }
        };
        let text = format!("{CONF_MARKER}\n{body}");
        if existing.as_deref() != Some(text.as_str()) {
            write_atomically(&target, &text)?;
        }
        Ok(None)
    }

    /// A user's own `supervisord.conf` must include `conf.d/*.conf` of the
    /// conf dir, or deployed programs are never seen.
    fn check_user_conf(&self, text: &str) -> Option<String> {
        let conf_d = self.conf_dir.join("conf.d");
        let mut section = String::new();
        for line in text.lines() {
            let l = line.trim();
            if let Some(s) = l.strip_prefix('[').and_then(|s| s.strip_suffix(']')) {
                section = s.trim().to_string();
                continue;
            }
            if section != "include" {
                continue;
            }
            let Some((key, value)) = l.split_once('=') else {
                continue;
            };
            if key.trim() != "files" {
                continue;
            }
            let includes = value.split_whitespace().any(|item| {
                let p = Path::new(item);
                let p = if p.is_absolute() {
                    p.to_path_buf()
                } else {
                    self.conf_dir.join(p)
                };
                p.parent() == Some(conf_d.as_path())
            });
            if includes {
                return None;
            }
        }
        Some(format!(
            "{} is not nixproc's (no marker line) and its [include] files= does not \
             cover {}/*.conf: supervisord will not see the deployed programs",
            self.main_conf().display(),
            conf_d.display()
        ))
    }

    /// Starts supervisord on the conf dir and waits until it answers.
    fn start_supervisord(&self) -> Result<u32> {
        let cmd = Cmd::new(&self.supervisord)
            .arg("-c")
            .arg(self.main_conf())
            .timeout(self.timeout);
        let out = self.runner.run(&cmd)?;
        if !out.success() {
            bail!(
                "cannot start supervisord: `{cmd}` {}{}",
                out.exit,
                fmt_out(&out)
            );
        }
        let deadline = Instant::now() + self.timeout;
        loop {
            if let Some(pid) = self.supervisord_pid()? {
                return Ok(pid);
            }
            if Instant::now() >= deadline {
                bail!(
                    "supervisord was started (`{cmd}`) but did not answer `supervisorctl -c {} pid` \
                     within {}s",
                    self.main_conf().display(),
                    self.timeout.as_secs_f64()
                );
            }
            std::thread::sleep(self.poll);
        }
    }
}

fn fmt_out(out: &CmdOutput) -> String {
    let tail = out.tail();
    if tail.is_empty() {
        String::new()
    } else {
        format!("\n{}", tail.trim_end())
    }
}

fn write_atomically(path: &Path, text: &str) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir)
        .with_context(|| format!("creating a temporary file in {}", dir.display()))?;
    tmp.write_all(text.as_bytes())?;
    {
        use std::os::unix::fs::PermissionsExt;
        tmp.as_file()
            .set_permissions(fs::Permissions::from_mode(0o644))?;
    }
    tmp.persist(path)
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// Points `link` at `target`, replacing whatever `link` was, atomically.
fn replace_symlink(target: &Path, link: &Path) -> Result<()> {
    let dir = link.parent().unwrap_or(Path::new("."));
    let tmp = dir.join(format!(
        ".{}.nixproc-tmp{}",
        link.file_name().unwrap_or_default().to_string_lossy(),
        std::process::id()
    ));
    let _ = fs::remove_file(&tmp);
    symlink(target, &tmp).with_context(|| format!("creating {}", tmp.display()))?;
    fs::rename(&tmp, link).with_context(|| format!("replacing {}", link.display()))?;
    Ok(())
}

impl<R: Runner> Activator for SupervisordActivator<R> {
    fn process_manager(&self) -> &str {
        "supervisord"
    }

    fn prepare(&self, new_profile: &Path, new: &Manifest) -> Result<()> {
        let conf_d = self.conf_dir.join("conf.d");
        fs::create_dir_all(&conf_d).with_context(|| format!("creating {}", conf_d.display()))?;
        if let Some(warning) = self.install_main_conf(new_profile)? {
            eprintln!("nixproc: warning: {warning}");
        }
        if self.supervisord_pid()?.is_some() {
            return Ok(());
        }
        // Nothing to start: do not start supervisord just to stop nothing.
        if new.instances.is_empty() {
            let _ = fs::remove_file(self.started_marker());
            return Ok(());
        }
        for dir in [&self.config.state.runtime, &self.config.state.log] {
            fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        let pid = self.start_supervisord()?;
        fs::write(self.started_marker(), format!("{pid}\n"))
            .with_context(|| format!("writing {}", self.started_marker().display()))?;
        Ok(())
    }

    fn finish(&self, _new_profile: &Path, new: &Manifest) -> Result<()> {
        let marker = self.started_marker();
        if !new.instances.is_empty() || !marker.exists() {
            return Ok(());
        }
        let Some(pid) = self.supervisord_pid()? else {
            fs::remove_file(&marker).ok();
            return Ok(());
        };
        self.runner.run_checked(&self.ctl(["shutdown"]))?;
        let deadline = Instant::now() + self.timeout;
        while pid_alive(pid) {
            if Instant::now() >= deadline {
                bail!(
                    "supervisord (PID {pid}) did not exit within {}s after `shutdown`",
                    self.timeout.as_secs_f64()
                );
            }
            std::thread::sleep(self.poll);
        }
        fs::remove_file(&marker).with_context(|| format!("removing {}", marker.display()))?;
        Ok(())
    }

    fn start(&self, profile: &Path, inst: &InstanceEntry) -> Result<()> {
        let name = inst.name.as_str();
        let (link, target) = self.program_conf(profile, inst)?;
        if !target.exists() {
            bail!("{name}: program config {} does not exist", target.display());
        }
        let conf_d = link.parent().unwrap_or(&self.conf_dir);
        let changing = self.ctl_lock.lock().unwrap_or_else(|e| e.into_inner());
        fs::create_dir_all(conf_d).with_context(|| format!("creating {}", conf_d.display()))?;
        replace_symlink(&target, &link)?;
        self.runner.run_checked(&self.ctl(["reread"]))?;
        let out = self.runner.run_checked(&self.ctl(["update", name]))?;
        drop(changing);
        if out.stdout.contains("ERROR") {
            bail!(
                "{name}: `supervisorctl update {name}` failed{}",
                fmt_out(&out)
            );
        }
        self.wait_running(name)
    }

    fn stop(&self, profile: &Path, inst: &InstanceEntry) -> Result<()> {
        let name = inst.name.as_str();
        let (link, _) = self.program_conf(profile, inst)?;
        let out = self.runner.run(&self.ctl(["stop", name]))?;
        let down = unreachable(&out);
        if !out.success() && !down && !not_loaded(&out) {
            bail!(
                "{name}: `supervisorctl stop {name}` {}{}",
                out.exit,
                fmt_out(&out)
            );
        }
        let _changing = self.ctl_lock.lock().unwrap_or_else(|e| e.into_inner());
        if !down {
            let out = self.runner.run(&self.ctl(["remove", name]))?;
            if !out.success() && !not_loaded(&out) {
                bail!(
                    "{name}: `supervisorctl remove {name}` {}{}",
                    out.exit,
                    fmt_out(&out)
                );
            }
        }
        match fs::remove_file(&link) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).with_context(|| format!("removing {}", link.display())),
        }
        if !down {
            self.runner.run_checked(&self.ctl(["reread"]))?;
        }
        Ok(())
    }

    fn status(&self, profile: &Path, inst: &InstanceEntry) -> Result<InstanceStatus> {
        self.program_conf(profile, inst)?;
        let (status, out) = self.status_of(&inst.name)?;
        use ProgramState::*;
        Ok(match status {
            ProgramStatus::NoSupervisord if out.code() == Some(7) => InstanceStatus::Stopped,
            ProgramStatus::NotLoaded => InstanceStatus::Stopped,
            ProgramStatus::Loaded { states, .. } if states.iter().all(|s| *s == Running) => {
                InstanceStatus::Running
            }
            ProgramStatus::Loaded { states, .. }
                if states.iter().all(|s| matches!(s, Stopped | Exited | Fatal)) =>
            {
                InstanceStatus::Stopped
            }
            _ => InstanceStatus::Unknown { code: out.code() },
        })
    }
}

/// `nixproc supervisord-stateless`: runs `supervisord -n` on the profile's
/// own `supervisord.conf` until it exits; returns its exit code (128 +
/// signal when killed).
///
/// supervisord runs in nixproc's process group with inherited stdio, so a
/// terminal's Ctrl-C reaches it directly.
pub fn run_stateless(profile: &Path, config: &ActivatorConfig) -> Result<u8> {
    let mut cmd = stateless_command(profile, config)?;
    let status = cmd
        .status()
        .with_context(|| format!("cannot run {cmd:?}"))?;
    use std::os::unix::process::ExitStatusExt;
    let code = status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0));
    Ok(u8::try_from(code).unwrap_or(1))
}

/// The `supervisord -n -c <profile>/supervisord.conf` command of stateless
/// mode, with the runtime and log directories it writes to created. The
/// CLI `exec`s it, so signals reach supervisord directly.
pub fn stateless_command(
    profile: &Path,
    config: &ActivatorConfig,
) -> Result<std::process::Command> {
    let conf = profile.join(MAIN_CONF);
    if !conf.is_file() {
        bail!(
            "{} has no {MAIN_CONF}: not a supervisord profile",
            profile.display()
        );
    }
    for dir in [&config.state.runtime, &config.state.log] {
        fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let mut cmd = std::process::Command::new("supervisord");
    cmd.arg("-n")
        .arg("-c")
        .arg(&conf)
        .stdin(Stdio::inherit())
        .stdout(Stdio::inherit())
        .stderr(Stdio::inherit());
    Ok(cmd)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deploy::runner::ExitKind;
    use crate::state_dirs::{StateDirOverrides, StateDirs};
    use nixproc_core::manifest::MANIFEST_VERSION;
    use std::collections::VecDeque;
    use std::sync::Mutex;

    /// Answers commands from per-pattern queues (the last answer of a
    /// queue repeats; no match → success without output) and records the
    /// rendered command lines.
    #[derive(Default)]
    struct Script {
        rules: Mutex<Vec<(String, VecDeque<CmdOutput>)>>,
        log: Mutex<Vec<String>>,
        strip: String,
    }

    impl Script {
        fn new(strip: &Path) -> Self {
            Script {
                strip: strip.display().to_string(),
                ..Default::default()
            }
        }

        fn on(self, pattern: &str, answers: Vec<CmdOutput>) -> Self {
            self.rules
                .lock()
                .unwrap()
                .push((pattern.to_string(), answers.into()));
            self
        }

        fn lines(&self) -> Vec<String> {
            self.log.lock().unwrap().clone()
        }
    }

    impl Runner for Script {
        fn run(&self, cmd: &Cmd) -> Result<CmdOutput> {
            let line = cmd.to_string().replace(&self.strip, "");
            self.log.lock().unwrap().push(line.clone());
            let mut rules = self.rules.lock().unwrap();
            for (pattern, answers) in rules.iter_mut() {
                if line.contains(pattern.as_str()) {
                    return Ok(if answers.len() > 1 {
                        answers.pop_front().unwrap()
                    } else {
                        answers.front().cloned().unwrap_or_else(CmdOutput::ok)
                    });
                }
            }
            Ok(CmdOutput::ok())
        }
    }

    fn stdout(code: i32, text: &str) -> CmdOutput {
        CmdOutput {
            exit: ExitKind::Exited(code),
            stdout: text.to_string(),
            stderr: String::new(),
        }
    }

    fn status_line(name: &str, state: &str, desc: &str) -> CmdOutput {
        let code = match state {
            "STOPPED" | "EXITED" | "FATAL" | "UNKNOWN" => 3,
            _ => 0,
        };
        stdout(code, &format!("{name:<33}{state:<10}{desc}\n"))
    }

    const NO_SOCKET: &str = "unix:///s/run/supervisord.sock no such file\n";

    fn inst(name: &str) -> InstanceEntry {
        InstanceEntry {
            key: name.into(),
            name: name.into(),
            description: name.into(),
            revision: "1".into(),
            dependencies: vec![],
            pid_file: None,
            log_file: None,
            user: None,
            backend: Backend::Supervisord {
                config: format!("conf.d/{name}.conf"),
                priority: 1,
            },
            state: None,
            readiness: None,
        }
    }

    fn manifest(instances: Vec<InstanceEntry>) -> Manifest {
        Manifest {
            version: MANIFEST_VERSION,
            process_manager: "supervisord".into(),
            instances,
        }
    }

    struct Env {
        tmp: tempfile::TempDir,
        profile: PathBuf,
        config: ActivatorConfig,
    }

    impl Env {
        fn new() -> Self {
            let tmp = tempfile::tempdir().unwrap();
            let profile = tmp.path().join("profile");
            fs::create_dir_all(profile.join("conf.d")).unwrap();
            fs::write(profile.join(MAIN_CONF), "[include]\nfiles=conf.d/*.conf\n").unwrap();
            for n in ["web", "db"] {
                fs::write(
                    profile.join(format!("conf.d/{n}.conf")),
                    format!("[program:{n}]\ncommand=sleep 1\n"),
                )
                .unwrap();
            }
            let config = ActivatorConfig {
                state: StateDirs::from_state_dir(
                    tmp.path().join("s"),
                    &StateDirOverrides::default(),
                ),
                force_disable_user_change: true,
                runlevel: 3,
                systemd_user: false,
                enable_at_boot: false,
            };
            Env {
                tmp,
                profile,
                config,
            }
        }

        fn act<'a>(&self, runner: &'a Script) -> SupervisordActivator<&'a Script> {
            SupervisordActivator::new(runner, &self.config)
                .with_conf_dir(self.tmp.path().join("s/lib/supervisord"))
                .with_poll_interval(Duration::ZERO)
                .with_timeout(Duration::from_secs(5))
        }

        fn script(&self) -> Script {
            Script::new(self.tmp.path())
        }

        fn link(&self, name: &str) -> PathBuf {
            self.tmp
                .path()
                .join(format!("s/lib/supervisord/conf.d/{name}.conf"))
        }
    }

    const CTL: &str = "supervisorctl -c /s/lib/supervisord/supervisord.conf";

    fn ctl(args: &str) -> String {
        format!("{CTL} {args}")
    }

    #[test]
    fn conf_dir_defaults_to_the_lib_dir() {
        let env = Env::new();
        let r = env.script();
        if std::env::var_os(CONF_DIR_ENV).is_none() {
            let act = SupervisordActivator::new(&r, &env.config);
            assert_eq!(act.conf_dir(), env.tmp.path().join("s/lib/supervisord"));
        }
        assert_eq!(
            env.act(&r).main_conf(),
            env.tmp.path().join("s/lib/supervisord/supervisord.conf")
        );
    }

    #[test]
    fn start_links_rereads_updates_and_waits_for_running() {
        let env = Env::new();
        let r = env.script().on(
            "status web",
            vec![
                status_line("web", "STARTING", ""),
                status_line("web", "STARTING", ""),
                status_line("web", "RUNNING", "pid 42, uptime 0:00:01"),
            ],
        );
        env.act(&r).start(&env.profile, &inst("web")).unwrap();
        assert_eq!(
            r.lines(),
            [
                ctl("reread"),
                ctl("update web"),
                ctl("status web"),
                ctl("status web"),
                ctl("status web"),
            ]
        );
        assert_eq!(
            fs::read_link(env.link("web")).unwrap(),
            env.profile.join("conf.d/web.conf")
        );
    }

    #[test]
    fn start_replaces_an_existing_link() {
        let env = Env::new();
        fs::create_dir_all(env.link("web").parent().unwrap()).unwrap();
        symlink("/elsewhere/web.conf", env.link("web")).unwrap();
        let r = env
            .script()
            .on("status web", vec![status_line("web", "RUNNING", "")]);
        env.act(&r).start(&env.profile, &inst("web")).unwrap();
        assert_eq!(
            fs::read_link(env.link("web")).unwrap(),
            env.profile.join("conf.d/web.conf")
        );
        let leftovers: Vec<_> = fs::read_dir(env.link("web").parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(leftovers, ["web.conf"]);
    }

    #[test]
    fn a_program_that_exits_at_once_fails_the_start_with_its_log() {
        for state in ["BACKOFF", "FATAL", "EXITED"] {
            let env = Env::new();
            let r = env
                .script()
                .on(
                    "status web",
                    vec![
                        status_line("web", "STARTING", ""),
                        status_line(
                            "web",
                            state,
                            "Exited too quickly (process log may have details)",
                        ),
                    ],
                )
                .on("tail -1600 web stderr", vec![stdout(0, "")])
                .on(
                    "tail -1600 web",
                    vec![stdout(0, "listening\ncannot bind port 80\n")],
                );
            let err = env
                .act(&r)
                .start(&env.profile, &inst("web"))
                .unwrap_err()
                .to_string();
            assert_eq!(
                err,
                format!(
                    "web did not start: supervisord reports `web {state} Exited too quickly \
                     (process log may have details)`\nstdout log of web:\n  listening\n  \
                     cannot bind port 80"
                ),
                "{state}"
            );
            assert_eq!(
                r.lines()[r.lines().len() - 2..],
                [ctl("tail -1600 web"), ctl("tail -1600 web stderr")]
            );
        }
    }

    #[test]
    fn autostart_false_gets_one_explicit_start() {
        let env = Env::new();
        let r = env.script().on(
            "status web",
            vec![
                status_line("web", "STOPPED", "Not started"),
                status_line("web", "RUNNING", "pid 7, uptime 0:00:01"),
            ],
        );
        env.act(&r).start(&env.profile, &inst("web")).unwrap();
        assert_eq!(
            r.lines(),
            [
                ctl("reread"),
                ctl("update web"),
                ctl("status web"),
                ctl("start web"),
                ctl("status web"),
            ]
        );

        let r = env
            .script()
            .on(
                "status web",
                vec![status_line("web", "STOPPED", "Not started")],
            )
            .on("start web", vec![stdout(7, "web: ERROR (spawn error)\n")]);
        let err = env
            .act(&r)
            .start(&env.profile, &inst("web"))
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("web did not start: `supervisorctl start web` exited with status 7\nstdout:\n  web: ERROR (spawn error)"),
            "{err}"
        );
    }

    #[test]
    fn start_times_out_on_a_program_stuck_starting() {
        let env = Env::new();
        let r = env
            .script()
            .on("status web", vec![status_line("web", "STARTING", "")]);
        let err = env
            .act(&r)
            .with_timeout(Duration::from_millis(50))
            .start(&env.profile, &inst("web"))
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with(
                "web did not reach RUNNING within 0.05s: supervisord reports `web STARTING`"
            ),
            "{err}"
        );
    }

    #[test]
    fn start_failures_of_reread_and_update_are_errors() {
        let env = Env::new();
        let r = env
            .script()
            .on("reread", vec![stdout(2, "ERROR: CANT_REREAD: bad\n")]);
        let err = format!(
            "{:#}",
            env.act(&r).start(&env.profile, &inst("web")).unwrap_err()
        );
        assert!(err.contains("reread` exited with status 2"), "{err}");
        assert!(err.contains("CANT_REREAD"), "{err}");

        let r = env
            .script()
            .on("update web", vec![stdout(1, "ERROR: no such group: web\n")]);
        let err = format!(
            "{:#}",
            env.act(&r).start(&env.profile, &inst("web")).unwrap_err()
        );
        assert!(err.contains("update web` exited with status 1"), "{err}");

        let mut missing = inst("web");
        missing.backend = Backend::Supervisord {
            config: "conf.d/missing.conf".into(),
            priority: 1,
        };
        let r = env.script();
        let err = env
            .act(&r)
            .start(&env.profile, &missing)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("program config") && err.contains("does not exist"),
            "{err}"
        );
        assert!(r.lines().is_empty());
    }

    #[test]
    fn bad_entries_are_rejected() {
        let env = Env::new();
        let r = env.script();
        let act = env.act(&r);
        let mut e = inst("web");
        e.backend = Backend::Supervisord {
            config: "../web.conf".into(),
            priority: 1,
        };
        assert!(act
            .start(&env.profile, &e)
            .unwrap_err()
            .to_string()
            .contains("without `..`"));
        let mut e = inst("we b");
        e.backend = Backend::Supervisord {
            config: "conf.d/web.conf".into(),
            priority: 1,
        };
        assert!(act
            .stop(&env.profile, &e)
            .unwrap_err()
            .to_string()
            .contains("cannot be a supervisord program name"));
        let mut e = inst("web");
        e.backend = Backend::Systemd {
            unit: "web.service".into(),
            path: "etc/systemd/system/web.service".into(),
        };
        assert_eq!(
            act.status(&env.profile, &e).unwrap_err().to_string(),
            "web is not a supervisord instance"
        );
        assert!(r.lines().is_empty());
    }

    #[test]
    fn stop_stops_removes_unlinks_and_rereads() {
        let env = Env::new();
        let r = env.script();
        let act = env.act(&r);
        fs::create_dir_all(env.link("web").parent().unwrap()).unwrap();
        symlink(env.profile.join("conf.d/web.conf"), env.link("web")).unwrap();
        act.stop(&env.profile, &inst("web")).unwrap();
        assert_eq!(
            r.lines(),
            [ctl("stop web"), ctl("remove web"), ctl("reread")]
        );
        assert!(fs::symlink_metadata(env.link("web")).is_err());
    }

    #[test]
    fn stop_of_an_unknown_program_or_without_supervisord_succeeds() {
        let env = Env::new();
        let r = env
            .script()
            .on(
                "stop web",
                vec![stdout(1, "web: ERROR (no such process)\n")],
            )
            .on(
                "remove web",
                vec![stdout(1, "ERROR: no such process/group: web\n")],
            );
        env.act(&r).stop(&env.profile, &inst("web")).unwrap();
        assert_eq!(
            r.lines(),
            [ctl("stop web"), ctl("remove web"), ctl("reread")]
        );

        fs::create_dir_all(env.link("web").parent().unwrap()).unwrap();
        symlink(env.profile.join("conf.d/web.conf"), env.link("web")).unwrap();
        let r = env.script().on("stop web", vec![stdout(7, NO_SOCKET)]);
        env.act(&r).stop(&env.profile, &inst("web")).unwrap();
        assert_eq!(r.lines(), [ctl("stop web")]);
        assert!(fs::symlink_metadata(env.link("web")).is_err());
    }

    #[test]
    fn a_failing_stop_is_an_error_and_keeps_the_link() {
        let env = Env::new();
        fs::create_dir_all(env.link("web").parent().unwrap()).unwrap();
        symlink(env.profile.join("conf.d/web.conf"), env.link("web")).unwrap();
        let r = env.script().on(
            "stop web",
            vec![stdout(1, "web: ERROR (abnormal termination)\n")],
        );
        let err = env
            .act(&r)
            .stop(&env.profile, &inst("web"))
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "web: `supervisorctl stop web` exited with status 1\nstdout:\n  web: ERROR (abnormal termination)"
        );
        assert!(fs::symlink_metadata(env.link("web")).is_ok());
    }

    #[test]
    fn status_maps_supervisord_states() {
        let env = Env::new();
        let cases = [
            (
                status_line("web", "RUNNING", "pid 1"),
                InstanceStatus::Running,
            ),
            (status_line("web", "STOPPED", ""), InstanceStatus::Stopped),
            (status_line("web", "FATAL", ""), InstanceStatus::Stopped),
            (status_line("web", "EXITED", ""), InstanceStatus::Stopped),
            (
                status_line("web", "STARTING", ""),
                InstanceStatus::Unknown { code: Some(0) },
            ),
            (
                status_line("web", "BACKOFF", ""),
                InstanceStatus::Unknown { code: Some(0) },
            ),
            (
                stdout(4, "web: ERROR (no such process)\n"),
                InstanceStatus::Stopped,
            ),
            (stdout(7, NO_SOCKET), InstanceStatus::Stopped),
            (
                stdout(4, "unix:///s/run/supervisord.sock refused connection\n"),
                InstanceStatus::Unknown { code: Some(4) },
            ),
            (
                stdout(
                    0,
                    "web:web_00                       RUNNING   pid 1\n\
                     web:web_01                       RUNNING   pid 2\n",
                ),
                InstanceStatus::Running,
            ),
            (
                stdout(
                    3,
                    "web:web_00                       RUNNING   pid 1\n\
                     web:web_01                       FATAL     Exited too quickly\n",
                ),
                InstanceStatus::Unknown { code: Some(3) },
            ),
        ];
        for (answer, expected) in cases {
            let r = env.script().on("status web", vec![answer.clone()]);
            assert_eq!(
                env.act(&r).status(&env.profile, &inst("web")).unwrap(),
                expected,
                "{answer:?}"
            );
            assert_eq!(r.lines(), [ctl("status web")]);
        }
        let r = env.script().on("status web", vec![stdout(0, "garbage\n")]);
        let err = env
            .act(&r)
            .status(&env.profile, &inst("web"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("unexpected output"), "{err}");
    }

    #[test]
    fn status_parsing_ignores_other_programs() {
        let out = stdout(
            0,
            "webapp                           FATAL     x\nweb                              RUNNING   pid 3, uptime 0:01:00\n",
        );
        assert_eq!(
            parse_status("web", &out).unwrap(),
            ProgramStatus::Loaded {
                states: vec![ProgramState::Running],
                line: "web RUNNING pid 3, uptime 0:01:00".into(),
            }
        );
    }

    #[test]
    fn prepare_installs_the_config_and_starts_supervisord() {
        let env = Env::new();
        let r = env.script().on(
            "pid",
            vec![
                stdout(7, NO_SOCKET),
                stdout(7, NO_SOCKET),
                stdout(0, "4242\n"),
            ],
        );
        let act = env.act(&r);
        act.prepare(&env.profile, &manifest(vec![inst("web")]))
            .unwrap();
        assert_eq!(
            r.lines(),
            [
                ctl("pid"),
                "supervisord -c /s/lib/supervisord/supervisord.conf".to_string(),
                ctl("pid"),
                ctl("pid"),
            ]
        );
        assert_eq!(
            fs::read_to_string(act.main_conf()).unwrap(),
            format!("{CONF_MARKER}\n[include]\nfiles=conf.d/*.conf\n")
        );
        assert!(act.conf_dir().join("conf.d").is_dir());
        assert_eq!(
            fs::read_to_string(act.conf_dir().join(STARTED_MARKER)).unwrap(),
            "4242\n"
        );
        assert!(env.config.state.runtime.is_dir() && env.config.state.log.is_dir());
    }

    #[test]
    fn prepare_leaves_a_running_supervisord_and_updates_our_config() {
        let env = Env::new();
        let r = env.script().on("pid", vec![stdout(0, "17\n")]);
        let act = env.act(&r);
        fs::create_dir_all(act.conf_dir()).unwrap();
        fs::write(act.main_conf(), format!("{CONF_MARKER}\nold\n")).unwrap();
        act.prepare(&env.profile, &manifest(vec![inst("web")]))
            .unwrap();
        assert_eq!(r.lines(), [ctl("pid")]);
        assert_eq!(
            fs::read_to_string(act.main_conf()).unwrap(),
            format!("{CONF_MARKER}\n[include]\nfiles=conf.d/*.conf\n")
        );
        assert!(!act.conf_dir().join(STARTED_MARKER).exists());
    }

    #[test]
    fn prepare_keeps_a_users_own_config() {
        let env = Env::new();
        let r = env.script().on("pid", vec![stdout(0, "17\n")]);
        let act = env.act(&r);
        fs::create_dir_all(act.conf_dir()).unwrap();
        let own = "[supervisord]\n[include]\nfiles = /etc/other/*.conf\n";
        fs::write(act.main_conf(), own).unwrap();
        act.prepare(&env.profile, &manifest(vec![inst("web")]))
            .unwrap();
        assert_eq!(fs::read_to_string(act.main_conf()).unwrap(), own);

        let warning = act.check_user_conf(own).unwrap();
        assert!(warning.contains("does not cover"), "{warning}");
        assert_eq!(
            act.check_user_conf("[include]\nfiles = conf.d/*.conf other/*.ini\n"),
            None
        );
        let abs = format!(
            "[include]\nfiles={}/conf.d/*.conf\n",
            act.conf_dir().display()
        );
        assert_eq!(act.check_user_conf(&abs), None);
        assert!(act
            .check_user_conf("[program:x]\nfiles=conf.d/*.conf\n")
            .is_some());
    }

    #[test]
    fn prepare_does_not_start_supervisord_for_an_empty_profile() {
        let env = Env::new();
        let r = env.script().on("pid", vec![stdout(7, NO_SOCKET)]);
        let act = env.act(&r);
        fs::create_dir_all(act.conf_dir()).unwrap();
        fs::write(act.conf_dir().join(STARTED_MARKER), "1\n").unwrap();
        act.prepare(&env.profile, &manifest(vec![])).unwrap();
        assert_eq!(r.lines(), [ctl("pid")]);
        assert!(
            !act.conf_dir().join(STARTED_MARKER).exists(),
            "stale marker removed"
        );
    }

    #[test]
    fn prepare_reports_a_supervisord_that_cannot_start() {
        let env = Env::new();
        let r = env.script().on("pid", vec![stdout(7, NO_SOCKET)]).on(
            "supervisord -c",
            vec![stdout(
                2,
                "Error: Another program is already listening on a port\n",
            )],
        );
        let err = env
            .act(&r)
            .prepare(&env.profile, &manifest(vec![inst("web")]))
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("cannot start supervisord: `supervisord -c "),
            "{err}"
        );
        assert!(err.contains("already listening"), "{err}");

        let r = env.script().on("pid", vec![stdout(7, NO_SOCKET)]);
        let err = env
            .act(&r)
            .with_timeout(Duration::from_millis(30))
            .prepare(&env.profile, &manifest(vec![inst("web")]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("did not answer"), "{err}");
    }

    #[test]
    fn prepare_without_a_base_config_is_an_error() {
        let env = Env::new();
        fs::remove_file(env.profile.join(MAIN_CONF)).unwrap();
        let r = env.script();
        let err = format!(
            "{:#}",
            env.act(&r)
                .prepare(&env.profile, &manifest(vec![inst("web")]))
                .unwrap_err()
        );
        assert!(
            err.contains("the profile has no readable supervisord.conf"),
            "{err}"
        );
    }

    #[test]
    fn finish_shuts_down_only_a_supervisord_nixproc_started_once_empty() {
        // A PID that is certainly gone: a reaped child.
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead = child.id();
        child.wait().unwrap();

        let env = Env::new();
        let r = env
            .script()
            .on("pid", vec![stdout(0, &format!("{dead}\n"))]);
        let act = env.act(&r);
        fs::create_dir_all(act.conf_dir()).unwrap();

        // Not started by nixproc: left alone.
        act.finish(&env.profile, &manifest(vec![])).unwrap();
        assert!(r.lines().is_empty());

        fs::write(act.conf_dir().join(STARTED_MARKER), format!("{dead}\n")).unwrap();
        // Something is still deployed: left alone.
        act.finish(&env.profile, &manifest(vec![inst("web")]))
            .unwrap();
        assert!(r.lines().is_empty());

        act.finish(&env.profile, &manifest(vec![])).unwrap();
        assert_eq!(r.lines(), [ctl("pid"), ctl("shutdown")]);
        assert!(!act.conf_dir().join(STARTED_MARKER).exists());
    }

    #[test]
    fn every_supervisorctl_call_names_the_config() {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead = child.id();
        child.wait().unwrap();
        let env = Env::new();
        let r = env
            .script()
            .on("status", vec![status_line("web", "RUNNING", "")])
            .on(
                "pid",
                vec![stdout(7, NO_SOCKET), stdout(0, &format!("{dead}\n"))],
            );
        let act = env.act(&r);
        act.prepare(&env.profile, &manifest(vec![inst("web")]))
            .unwrap();
        act.start(&env.profile, &inst("web")).unwrap();
        act.status(&env.profile, &inst("web")).unwrap();
        act.stop(&env.profile, &inst("web")).unwrap();
        act.finish(&env.profile, &manifest(vec![])).unwrap();
        let lines = r.lines();
        assert!(lines.contains(&ctl("shutdown")), "{lines:?}");
        for l in lines.iter().filter(|l| l.starts_with("supervisorctl")) {
            assert!(l.starts_with(CTL), "{l}");
        }
    }

    #[test]
    fn zombies_and_missing_pids_are_dead() {
        assert!(pid_alive(std::process::id()));
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        // Exited but not reaped yet: a zombie.
        let deadline = Instant::now() + Duration::from_secs(10);
        while pid_alive(pid) {
            assert!(Instant::now() < deadline, "child did not exit");
            std::thread::sleep(Duration::from_millis(10));
        }
        child.wait().unwrap();
        assert!(!pid_alive(pid));
    }

    #[test]
    fn stateless_needs_a_supervisord_profile() {
        let env = Env::new();
        let err = run_stateless(env.tmp.path(), &env.config)
            .unwrap_err()
            .to_string();
        assert!(err.contains("has no supervisord.conf"), "{err}");
    }
}
