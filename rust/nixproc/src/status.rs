//! `nixproc status`: what every instance of the current generation is
//! doing — backend, state, PID, uptime, user, readiness — as an aligned
//! table or a stable JSON array.
//!
//! * state: the activator's `status` (the backend's own answer: the init
//!   script's `status`, `supervisorctl status`, `systemctl is-active`, …).
//! * PID: the instance's PID file when the manifest names one and the
//!   process it names is alive; otherwise the backend's own bookkeeping
//!   where asking is cheap (`supervisorctl pid <name>`, `s6-svstat -o pid`,
//!   `systemctl show -p MainPID`, `docker inspect -f {{.State.Pid}}`).
//!   launchd, cygrunsrv and disnix have only the PID file.
//! * uptime: from `/proc/<pid>/stat` (start time in clock ticks since boot,
//!   against `/proc/uptime`), source `proc`; where /proc is not readable,
//!   the PID file's modification time, source `pid-file-mtime`; else none.
//! * readiness: one attempt of every declared check (the caller supplies
//!   the probe; see `ops_cli`), `-` when none is declared.
//!
//! Side effects (commands, /proc, the clock) sit behind [`Inspect`], so the
//! logic and the renderer are tested without processes.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use nixproc_core::manifest::{Backend, InstanceEntry, Manifest};
use serde::Serialize;

use crate::deploy::activator::{Activator, InstanceStatus};
use crate::deploy::runner::{Cmd, Runner};
use crate::deploy::select::ActivatorConfig;

/// Linux's `USER_HZ`, the unit of `/proc/<pid>/stat`'s start time: 100 on
/// every architecture nixproc runs on (sysconf(_SC_CLK_TCK) reports it).
const USER_HZ: u64 = 100;

/// How long a backend query for a PID may take.
const QUERY_TIMEOUT: Duration = Duration::from_secs(10);

/// One instance's line of `nixproc status`. Serialized (camelCase) as one
/// object of the `--json` array; every field is always present (`null`
/// when unknown), so scripts can rely on the keys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InstanceReport {
    pub name: String,
    /// The process manager (the manifest entry's backend type).
    pub backend: String,
    /// `running`, `stopped` or `unknown`.
    pub state: String,
    /// Why the state is unknown (the backend's exit code or error).
    pub state_detail: Option<String>,
    pub pid: Option<u32>,
    /// Where the PID comes from: `pid-file`, `supervisorctl`, `s6-svstat`,
    /// `systemctl`, `docker`.
    pub pid_source: Option<String>,
    pub uptime_seconds: Option<u64>,
    /// `proc` (the process's start time) or `pid-file-mtime`.
    pub uptime_source: Option<String>,
    pub user: Option<String>,
    pub readiness: Readiness,
}

/// The outcome of probing an instance's readiness checks once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "state")]
pub enum Readiness {
    /// The instance declares no readiness checks.
    None,
    /// Not probed (the instance does not run).
    NotProbed,
    /// Every check passed.
    Ready { checks: Vec<Check> },
    /// At least one check failed.
    NotReady { checks: Vec<Check> },
}

/// One readiness check's result, in words.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    /// What is checked: `tcp 127.0.0.1:5000`.
    pub check: String,
    pub ok: bool,
    /// Why it failed, or what it saw when it passed; may be empty.
    pub detail: String,
}

impl Readiness {
    /// From the results of one attempt of every check (empty: none
    /// declared).
    pub fn from_checks(checks: Vec<Check>) -> Self {
        if checks.is_empty() {
            Readiness::None
        } else if checks.iter().all(|c| c.ok) {
            Readiness::Ready { checks }
        } else {
            Readiness::NotReady { checks }
        }
    }

    /// The table's cell: `ready`, `not ready: <check>: <detail>`, `-`.
    pub fn cell(&self) -> String {
        match self {
            Readiness::None | Readiness::NotProbed => "-".to_string(),
            Readiness::Ready { .. } => "ready".to_string(),
            Readiness::NotReady { checks } => {
                let failed: Vec<String> = checks
                    .iter()
                    .filter(|c| !c.ok)
                    .map(|c| {
                        if c.detail.is_empty() {
                            c.check.clone()
                        } else {
                            format!("{}: {}", c.check, c.detail)
                        }
                    })
                    .collect();
                format!("not ready: {}", failed.join("; "))
            }
        }
    }
}

/// The side effects status needs: backend commands, `/proc`, files, the
/// clock. [`SystemInspect`] is the real one.
pub trait Inspect {
    fn runner(&self) -> &dyn Runner;
    /// The contents of `/proc/<pid>/stat`, if the process exists.
    fn proc_stat(&self, pid: u32) -> Option<String>;
    /// Seconds since boot (`/proc/uptime`'s first field).
    fn uptime_since_boot(&self) -> Option<f64>;
    fn read_file(&self, path: &Path) -> Option<String>;
    fn mtime(&self, path: &Path) -> Option<SystemTime>;
    fn now(&self) -> SystemTime;
}

/// The real system: commands through `runner`, the real /proc and clock.
pub struct SystemInspect<R> {
    pub runner: R,
}

impl<R: Runner> Inspect for SystemInspect<R> {
    fn runner(&self) -> &dyn Runner {
        &self.runner
    }

    fn proc_stat(&self, pid: u32) -> Option<String> {
        fs::read_to_string(format!("/proc/{pid}/stat")).ok()
    }

    fn uptime_since_boot(&self) -> Option<f64> {
        fs::read_to_string("/proc/uptime")
            .ok()?
            .split_whitespace()
            .next()?
            .parse()
            .ok()
    }

    fn read_file(&self, path: &Path) -> Option<String> {
        fs::read_to_string(path).ok()
    }

    fn mtime(&self, path: &Path) -> Option<SystemTime> {
        fs::metadata(path).ok()?.modified().ok()
    }

    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// The fields of `/proc/<pid>/stat` after the parenthesised command name
/// (which may contain spaces and parentheses): `[0]` is the state, `[19]`
/// the start time.
fn stat_fields(stat: &str) -> Option<Vec<&str>> {
    let close = stat.rfind(')')?;
    Some(stat[close + 1..].split_whitespace().collect())
}

/// Whether `/proc/<pid>/stat` describes a live process (not a zombie).
pub fn stat_alive(stat: &str) -> bool {
    stat_fields(stat)
        .and_then(|f| f.first().copied())
        .is_some_and(|s| s != "Z" && s != "X")
}

/// Seconds the process has run, from its stat line and the seconds since
/// boot.
pub fn uptime_from_stat(stat: &str, since_boot: f64) -> Option<u64> {
    let ticks: u64 = stat_fields(stat)?.get(19)?.parse().ok()?;
    let started = ticks as f64 / USER_HZ as f64;
    Some((since_boot - started).max(0.0) as u64)
}

fn parse_pid(text: &str) -> Option<u32> {
    text.trim().parse().ok().filter(|&p| p > 0)
}

/// The backend type's name as `-P` spells it.
pub fn backend_name(b: &Backend) -> &'static str {
    match b {
        Backend::Sysvinit { .. } => "sysvinit",
        Backend::Supervisord { .. } => "supervisord",
        Backend::Systemd { .. } => "systemd",
        Backend::S6Rc { .. } => "s6-rc",
        Backend::Bsdrc { .. } => "bsdrc",
        Backend::Launchd { .. } => "launchd",
        Backend::Cygrunsrv { .. } => "cygrunsrv",
        Backend::Docker { .. } => "docker",
        Backend::Disnix { .. } => "disnix",
    }
}

/// A PID and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PidInfo {
    pub pid: u32,
    pub source: &'static str,
    /// The PID file it was read from, for the mtime fallback of uptime.
    pub pid_file: Option<PathBuf>,
}

/// The instance's live PID: its PID file when that names a live process,
/// else the backend's bookkeeping where that is one cheap command.
pub fn find_pid(
    inst: &InstanceEntry,
    config: &ActivatorConfig,
    io: &dyn Inspect,
) -> Option<PidInfo> {
    if let Some(file) = inst.pid_file.as_deref() {
        let path = PathBuf::from(file);
        if let Some(pid) = io.read_file(&path).as_deref().and_then(parse_pid) {
            // Without /proc (not Linux) the PID file is all there is.
            let alive = match io.proc_stat(pid) {
                Some(stat) => stat_alive(&stat),
                None => io.uptime_since_boot().is_none(),
            };
            if alive {
                return Some(PidInfo {
                    pid,
                    source: "pid-file",
                    pid_file: Some(path),
                });
            }
        }
    }
    let (cmd, source) = backend_pid_query(inst, config)?;
    let out = io.runner().run(&cmd.timeout(QUERY_TIMEOUT)).ok()?;
    if !out.success() {
        return None;
    }
    let pid = parse_pid(&out.stdout)?;
    Some(PidInfo {
        pid,
        source,
        pid_file: None,
    })
}

/// The command asking the backend for the instance's main PID, if the
/// backend has a cheap one. Each prints just the PID (0 or -1 when none).
pub fn backend_pid_query(
    inst: &InstanceEntry,
    config: &ActivatorConfig,
) -> Option<(Cmd, &'static str)> {
    match &inst.backend {
        Backend::Supervisord { .. } => {
            let conf = crate::deploy::supervisord::SupervisordActivator::new(
                crate::deploy::runner::SystemRunner,
                config,
            )
            .main_conf();
            Some((
                Cmd::new("supervisorctl")
                    .arg("-c")
                    .arg(conf)
                    .arg("pid")
                    .arg(&inst.name),
                "supervisorctl",
            ))
        }
        Backend::S6Rc { kind, .. } if *kind == nixproc_core::manifest::S6Kind::Longrun => {
            let dir = config.state.runtime.join("service").join(&inst.name);
            Some((
                Cmd::new("s6-svstat").arg("-o").arg("pid").arg(dir),
                "s6-svstat",
            ))
        }
        Backend::Systemd { unit, .. } => {
            let mut cmd = Cmd::new("systemctl");
            if config.systemd_user {
                cmd = cmd.arg("--user");
            }
            Some((
                cmd.arg("show")
                    .arg("-p")
                    .arg("MainPID")
                    .arg("--value")
                    .arg(unit),
                "systemctl",
            ))
        }
        Backend::Docker { container, .. } => Some((
            Cmd::new("docker")
                .arg("inspect")
                .arg("-f")
                .arg("{{.State.Pid}}")
                .arg(container),
            "docker",
        )),
        _ => None,
    }
}

/// Seconds `pid` has run and where that figure comes from.
pub fn uptime(info: &PidInfo, io: &dyn Inspect) -> Option<(u64, &'static str)> {
    if let (Some(stat), Some(since_boot)) = (io.proc_stat(info.pid), io.uptime_since_boot()) {
        if let Some(up) = uptime_from_stat(&stat, since_boot) {
            return Some((up, "proc"));
        }
    }
    let file = info.pid_file.as_deref()?;
    let since = io.now().duration_since(io.mtime(file)?).ok()?;
    Some((since.as_secs(), "pid-file-mtime"))
}

/// The report of one instance. `readiness` is called only for running
/// instances.
pub fn inspect_instance(
    profile: &Path,
    inst: &InstanceEntry,
    act: &dyn Activator,
    config: &ActivatorConfig,
    io: &dyn Inspect,
    readiness: &dyn Fn(&InstanceEntry) -> Readiness,
) -> InstanceReport {
    let (state, state_detail) = match act.status(profile, inst) {
        Ok(InstanceStatus::Running) => ("running", None),
        Ok(InstanceStatus::Stopped) => ("stopped", None),
        // LSB init scripts: 1 = dead with a PID file left, 2 = dead with
        // a lock file left; not running either way.
        Ok(InstanceStatus::Unknown {
            code: Some(code @ (1 | 2)),
        }) if matches!(inst.backend, Backend::Sysvinit { .. }) => (
            "stopped",
            Some(format!(
                "dead, but its {} file remains (LSB status {code})",
                if code == 1 { "PID" } else { "lock" }
            )),
        ),
        Ok(InstanceStatus::Unknown { code }) => (
            "unknown",
            Some(match code {
                Some(c) => format!("the backend's status answered with exit code {c}"),
                None => "the backend's status gave no answer".to_string(),
            }),
        ),
        Err(e) => ("unknown", Some(format!("{e:#}"))),
    };
    let pid = if state == "stopped" {
        None
    } else {
        find_pid(inst, config, io)
    };
    let up = pid.as_ref().and_then(|p| uptime(p, io));
    let declared = inst
        .readiness
        .as_ref()
        .is_some_and(|r| !r.checks.is_empty());
    let readiness = if !declared {
        Readiness::None
    } else if state == "stopped" {
        Readiness::NotProbed
    } else {
        readiness(inst)
    };
    InstanceReport {
        name: inst.name.clone(),
        backend: backend_name(&inst.backend).to_string(),
        state: state.to_string(),
        state_detail,
        pid: pid.as_ref().map(|p| p.pid),
        pid_source: pid.as_ref().map(|p| p.source.to_string()),
        uptime_seconds: up.map(|u| u.0),
        uptime_source: up.map(|u| u.1.to_string()),
        user: inst.user.clone(),
        readiness,
    }
}

/// The reports of every instance of `manifest`, in its order (dependencies
/// first). Instances are inspected on up to `jobs` threads at once.
pub fn inspect_all(
    profile: &Path,
    manifest: &Manifest,
    act: &(dyn Activator + Sync),
    config: &ActivatorConfig,
    io: &(dyn Inspect + Sync),
    readiness: &(dyn Fn(&InstanceEntry) -> Readiness + Sync),
    jobs: usize,
) -> Vec<InstanceReport> {
    let n = manifest.instances.len();
    let jobs = jobs.clamp(1, n.max(1));
    let next = std::sync::atomic::AtomicUsize::new(0);
    let slots: Vec<std::sync::Mutex<Option<InstanceReport>>> =
        (0..n).map(|_| std::sync::Mutex::new(None)).collect();
    std::thread::scope(|s| {
        for _ in 0..jobs {
            s.spawn(|| loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(inst) = manifest.instances.get(i) else {
                    break;
                };
                let r = inspect_instance(profile, inst, act, config, io, readiness);
                *slots[i].lock().unwrap_or_else(|e| e.into_inner()) = Some(r);
            });
        }
    });
    slots
        .into_iter()
        .filter_map(|m| m.into_inner().unwrap_or_else(|e| e.into_inner()))
        .collect()
}

/// `45s`, `12m03s`, `3h04m`, `2d03h`.
pub fn format_uptime(secs: u64) -> String {
    let (d, h, m, s) = (secs / 86400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    if d > 0 {
        format!("{d}d{h:02}h")
    } else if h > 0 {
        format!("{h}h{m:02}m")
    } else if m > 0 {
        format!("{m}m{s:02}s")
    } else {
        format!("{s}s")
    }
}

/// A cell without control characters (a newline in a readiness detail
/// must not break the table): each becomes a space.
fn clean(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// The aligned table (`docker ps` style): a header, one line per instance,
/// columns separated by at least two spaces, the last one unpadded.
pub fn render_table(reports: &[InstanceReport]) -> String {
    const HEADER: [&str; 7] = [
        "NAME",
        "BACKEND",
        "STATE",
        "PID",
        "UPTIME",
        "USER",
        "READINESS",
    ];
    let rows: Vec<[String; 7]> = reports
        .iter()
        .map(|r| {
            [
                clean(&r.name),
                r.backend.clone(),
                r.state.clone(),
                r.pid.map_or("-".to_string(), |p| p.to_string()),
                r.uptime_seconds.map_or("-".to_string(), format_uptime),
                clean(r.user.as_deref().unwrap_or("-")),
                clean(&r.readiness.cell()),
            ]
        })
        .collect();
    let mut widths = HEADER.map(|h| h.chars().count());
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let header = HEADER.map(String::from);
    for row in std::iter::once(&header).chain(&rows) {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            if i + 1 == row.len() {
                line.push_str(cell);
            } else {
                line.push_str(cell);
                let pad = widths[i] - cell.chars().count() + 2;
                line.extend(std::iter::repeat_n(' ', pad));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deploy::runner::{CmdOutput, RecordingRunner};
    use crate::state_dirs::StateDirs;
    use anyhow::Result;
    use nixproc_core::lifecycle::{Readiness as Declared, ReadinessCheck};
    use std::collections::BTreeMap;
    use std::sync::Mutex;

    struct Fake {
        runner: RecordingRunner,
        stats: BTreeMap<u32, String>,
        since_boot: Option<f64>,
        files: BTreeMap<PathBuf, String>,
        mtimes: BTreeMap<PathBuf, SystemTime>,
        now: SystemTime,
    }

    impl Fake {
        fn new(runner: RecordingRunner) -> Self {
            Fake {
                runner,
                stats: BTreeMap::new(),
                since_boot: Some(10_000.0),
                files: BTreeMap::new(),
                mtimes: BTreeMap::new(),
                now: SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000),
            }
        }
    }

    impl Inspect for Fake {
        fn runner(&self) -> &dyn Runner {
            &self.runner
        }
        fn proc_stat(&self, pid: u32) -> Option<String> {
            self.stats.get(&pid).cloned()
        }
        fn uptime_since_boot(&self) -> Option<f64> {
            self.since_boot
        }
        fn read_file(&self, path: &Path) -> Option<String> {
            self.files.get(path).cloned()
        }
        fn mtime(&self, path: &Path) -> Option<SystemTime> {
            self.mtimes.get(path).copied()
        }
        fn now(&self) -> SystemTime {
            self.now
        }
    }

    /// A stat line of a running process started `start_ticks` after boot;
    /// the command name has spaces and parentheses on purpose.
    fn stat(pid: u32, state: &str, start_ticks: u64) -> String {
        let mut f = vec![state.to_string()];
        f.extend((1..19).map(|i| i.to_string()));
        f.push(start_ticks.to_string());
        f.extend(["0", "0"].map(String::from));
        format!("{pid} (web app (x)) {}", f.join(" "))
    }

    fn config() -> ActivatorConfig {
        ActivatorConfig {
            state: StateDirs::from_state_dir("/s", &Default::default()),
            force_disable_user_change: true,
            runlevel: 3,
            systemd_user: false,
            enable_at_boot: false,
        }
    }

    fn entry(name: &str, backend: Backend) -> InstanceEntry {
        InstanceEntry {
            key: name.into(),
            name: name.into(),
            description: name.into(),
            revision: "r".into(),
            dependencies: vec![],
            pid_file: None,
            log_file: None,
            user: None,
            backend,
            state: None,
            readiness: None,
        }
    }

    fn sysv(name: &str) -> InstanceEntry {
        let mut e = entry(
            name,
            Backend::Sysvinit {
                script: format!("etc/rc.d/init.d/{name}"),
                start_runlevels: vec![3],
                sequence: 0,
            },
        );
        e.pid_file = Some(format!("/s/run/{name}.pid"));
        e
    }

    fn supervisord(name: &str) -> InstanceEntry {
        entry(
            name,
            Backend::Supervisord {
                config: format!("conf.d/{name}.conf"),
                priority: 1,
            },
        )
    }

    /// An activator answering from a table.
    struct Act(BTreeMap<String, Result<InstanceStatus, String>>);

    impl Activator for Act {
        fn process_manager(&self) -> &str {
            "sysvinit"
        }
        fn start(&self, _: &Path, _: &InstanceEntry) -> Result<()> {
            unreachable!("status never starts")
        }
        fn stop(&self, _: &Path, _: &InstanceEntry) -> Result<()> {
            unreachable!("status never stops")
        }
        fn status(&self, _: &Path, inst: &InstanceEntry) -> Result<InstanceStatus> {
            self.0[&inst.name].clone().map_err(|e| anyhow::anyhow!(e))
        }
    }

    fn act(states: &[(&str, Result<InstanceStatus, String>)]) -> Act {
        Act(states
            .iter()
            .map(|(n, s)| (n.to_string(), s.clone()))
            .collect())
    }

    fn no_probe(_: &InstanceEntry) -> Readiness {
        panic!("readiness must not be probed here")
    }

    #[test]
    fn pid_from_pid_file_and_uptime_from_proc() {
        let mut io = Fake::new(RecordingRunner::new());
        io.files.insert("/s/run/web.pid".into(), "4242\n".into());
        // started 9,000 s after boot, boot was 10,000 s ago: up 1,000 s.
        io.stats.insert(4242, stat(4242, "S", 900_000));
        let r = inspect_instance(
            Path::new("/p"),
            &sysv("web"),
            &act(&[("web", Ok(InstanceStatus::Running))]),
            &config(),
            &io,
            &no_probe,
        );
        assert_eq!(r.state, "running");
        assert_eq!(r.pid, Some(4242));
        assert_eq!(r.pid_source.as_deref(), Some("pid-file"));
        assert_eq!(r.uptime_seconds, Some(1000));
        assert_eq!(r.uptime_source.as_deref(), Some("proc"));
        assert_eq!(r.readiness, Readiness::None);
        assert!(io.runner.commands().is_empty(), "no backend query needed");
    }

    #[test]
    fn stale_pid_file_of_a_dead_or_zombie_process_gives_no_pid() {
        for stat_line in [None, Some(stat(77, "Z", 5))] {
            let mut io = Fake::new(RecordingRunner::new());
            io.files.insert("/s/run/web.pid".into(), "77".into());
            if let Some(s) = stat_line {
                io.stats.insert(77, s);
            }
            let r = inspect_instance(
                Path::new("/p"),
                &sysv("web"),
                &act(&[("web", Ok(InstanceStatus::Unknown { code: Some(4) }))]),
                &config(),
                &io,
                &no_probe,
            );
            assert_eq!(r.state, "unknown");
            assert_eq!(
                r.state_detail.as_deref(),
                Some("the backend's status answered with exit code 4")
            );
            assert_eq!((r.pid, r.uptime_seconds), (None, None));
        }
    }

    #[test]
    fn dead_sysvinit_instances_with_a_pid_file_left_are_stopped() {
        let mut io = Fake::new(RecordingRunner::new());
        io.files.insert("/s/run/web.pid".into(), "77".into());
        let r = inspect_instance(
            Path::new("/p"),
            &sysv("web"),
            &act(&[("web", Ok(InstanceStatus::Unknown { code: Some(1) }))]),
            &config(),
            &io,
            &no_probe,
        );
        assert_eq!(r.state, "stopped");
        assert_eq!(
            r.state_detail.as_deref(),
            Some("dead, but its PID file remains (LSB status 1)")
        );
        assert_eq!(r.pid, None);
        // other backends' codes mean what their activator says
        let r = inspect_instance(
            Path::new("/p"),
            &supervisord("web"),
            &act(&[("web", Ok(InstanceStatus::Unknown { code: Some(1) }))]),
            &config(),
            &Fake::new(RecordingRunner::new()),
            &no_probe,
        );
        assert_eq!(r.state, "unknown");
    }

    #[test]
    fn garbage_in_the_pid_file_is_no_pid() {
        for text in ["", "abc", "0", "-5", "12 13"] {
            let mut io = Fake::new(RecordingRunner::new());
            io.files.insert("/s/run/web.pid".into(), text.into());
            assert_eq!(find_pid(&sysv("web"), &config(), &io), None, "{text:?}");
        }
    }

    #[test]
    fn without_proc_the_pid_file_counts_and_its_mtime_gives_the_uptime() {
        let mut io = Fake::new(RecordingRunner::new());
        io.since_boot = None;
        io.files.insert("/s/run/web.pid".into(), "31".into());
        io.mtimes
            .insert("/s/run/web.pid".into(), io.now - Duration::from_secs(3725));
        let r = inspect_instance(
            Path::new("/p"),
            &sysv("web"),
            &act(&[("web", Ok(InstanceStatus::Running))]),
            &config(),
            &io,
            &no_probe,
        );
        assert_eq!(r.pid, Some(31));
        assert_eq!(r.uptime_seconds, Some(3725));
        assert_eq!(r.uptime_source.as_deref(), Some("pid-file-mtime"));
    }

    #[test]
    fn supervisord_pid_comes_from_supervisorctl_with_the_deployments_config() {
        let mut io = Fake::new(RecordingRunner::new().respond(
            "pid web",
            CmdOutput {
                exit: crate::deploy::runner::ExitKind::Exited(0),
                stdout: "5150\n".into(),
                stderr: String::new(),
            },
        ));
        io.stats.insert(5150, stat(5150, "S", 100));
        let r = inspect_instance(
            Path::new("/p"),
            &supervisord("web"),
            &act(&[("web", Ok(InstanceStatus::Running))]),
            &config(),
            &io,
            &no_probe,
        );
        assert_eq!(r.pid, Some(5150));
        assert_eq!(r.pid_source.as_deref(), Some("supervisorctl"));
        assert_eq!(r.uptime_seconds, Some(9999));
        assert_eq!(
            io.runner.lines(Path::new("")),
            ["supervisorctl -c /s/lib/supervisord/supervisord.conf pid web"]
        );
    }

    #[test]
    fn backend_answering_zero_or_failing_gives_no_pid() {
        for out in [
            CmdOutput {
                exit: crate::deploy::runner::ExitKind::Exited(0),
                stdout: "0\n".into(),
                stderr: String::new(),
            },
            CmdOutput::exited(4, "unix:///s/run/supervisord.sock no such file"),
        ] {
            let io = Fake::new(RecordingRunner::new().respond("pid", out));
            assert_eq!(find_pid(&supervisord("web"), &config(), &io), None);
        }
    }

    #[test]
    fn pid_queries_per_backend() {
        let cfg = config();
        let q =
            |b: Backend| backend_pid_query(&entry("web", b), &cfg).map(|(c, s)| (c.to_string(), s));
        assert_eq!(
            q(Backend::Systemd {
                unit: "nix-process-web.service".into(),
                path: "etc/systemd/system/nix-process-web.service".into()
            }),
            Some((
                "systemctl show -p MainPID --value nix-process-web.service".into(),
                "systemctl"
            ))
        );
        assert_eq!(
            q(Backend::S6Rc {
                kind: nixproc_core::manifest::S6Kind::Longrun,
                dir: "etc/s6/sv/web".into(),
                log_dir: None
            }),
            Some(("s6-svstat -o pid /s/run/service/web".into(), "s6-svstat"))
        );
        assert_eq!(
            q(Backend::S6Rc {
                kind: nixproc_core::manifest::S6Kind::Oneshot,
                dir: "etc/s6/sv/web".into(),
                log_dir: None
            }),
            None,
            "a oneshot has no process"
        );
        assert_eq!(
            q(Backend::Docker {
                container: "nixproc-web".into(),
                image_tag: "web:latest".into(),
                image: "/nix/store/x-image.tar".into(),
                create_params: "p".into(),
                priority: 1
            }),
            Some((
                "docker inspect -f '{{.State.Pid}}' nixproc-web".into(),
                "docker"
            ))
        );
        for b in [
            Backend::Launchd {
                label: "org.nixos.web".into(),
                plist: "p".into(),
            },
            Backend::Cygrunsrv {
                service: "nixproc-web".into(),
                params: "p".into(),
            },
            Backend::Bsdrc {
                script: "etc/rc.d/web".into(),
            },
        ] {
            assert_eq!(q(b), None);
        }
        let mut user = config();
        user.systemd_user = true;
        let e = entry(
            "web",
            Backend::Systemd {
                unit: "u.service".into(),
                path: "p".into(),
            },
        );
        assert_eq!(
            backend_pid_query(&e, &user).unwrap().0.to_string(),
            "systemctl --user show -p MainPID --value u.service"
        );
    }

    #[test]
    fn stopped_instances_have_no_pid_and_are_not_probed() {
        let mut io = Fake::new(RecordingRunner::new());
        io.files.insert("/s/run/web.pid".into(), "4242".into());
        io.stats.insert(4242, stat(4242, "S", 1));
        let mut e = sysv("web");
        e.readiness = Some(Declared {
            checks: vec![ReadinessCheck::Tcp {
                host: "127.0.0.1".into(),
                port: 1,
            }],
            timeout: 5,
            interval: 100,
        });
        let r = inspect_instance(
            Path::new("/p"),
            &e,
            &act(&[("web", Ok(InstanceStatus::Stopped))]),
            &config(),
            &io,
            &no_probe,
        );
        assert_eq!(r.state, "stopped");
        assert_eq!(r.pid, None);
        assert_eq!(r.readiness, Readiness::NotProbed);
        assert_eq!(r.readiness.cell(), "-");
    }

    #[test]
    fn running_instances_with_checks_are_probed() {
        let io = Fake::new(RecordingRunner::new());
        let mut e = sysv("web");
        e.readiness = Some(Declared {
            checks: vec![ReadinessCheck::Tcp {
                host: "127.0.0.1".into(),
                port: 1,
            }],
            timeout: 5,
            interval: 100,
        });
        let probed = Mutex::new(Vec::new());
        let probe = |i: &InstanceEntry| {
            probed.lock().unwrap().push(i.name.clone());
            Readiness::from_checks(vec![Check {
                check: "tcp 127.0.0.1:1".into(),
                ok: false,
                detail: "connection refused".into(),
            }])
        };
        let r = inspect_instance(
            Path::new("/p"),
            &e,
            &act(&[("web", Ok(InstanceStatus::Running))]),
            &config(),
            &io,
            &probe,
        );
        assert_eq!(*probed.lock().unwrap(), ["web"]);
        assert_eq!(
            r.readiness.cell(),
            "not ready: tcp 127.0.0.1:1: connection refused"
        );
    }

    #[test]
    fn activator_errors_are_unknown_with_the_error() {
        let io = Fake::new(RecordingRunner::new());
        let r = inspect_instance(
            Path::new("/p"),
            &sysv("web"),
            &act(&[("web", Err("supervisorctl: not found".into()))]),
            &config(),
            &io,
            &no_probe,
        );
        assert_eq!(r.state, "unknown");
        assert_eq!(r.state_detail.as_deref(), Some("supervisorctl: not found"));
    }

    #[test]
    fn readiness_summary() {
        let ok = Check {
            check: "tcp a:1".into(),
            ok: true,
            detail: String::new(),
        };
        let bad = Check {
            check: "http http://a/".into(),
            ok: false,
            detail: "HTTP 503".into(),
        };
        let bare = Check {
            check: "command `x`".into(),
            ok: false,
            detail: String::new(),
        };
        assert_eq!(Readiness::from_checks(vec![]), Readiness::None);
        assert_eq!(Readiness::from_checks(vec![ok.clone()]).cell(), "ready");
        assert_eq!(
            Readiness::from_checks(vec![ok, bad, bare]).cell(),
            "not ready: http http://a/: HTTP 503; command `x`"
        );
    }

    #[test]
    fn uptime_formats() {
        assert_eq!(format_uptime(0), "0s");
        assert_eq!(format_uptime(59), "59s");
        assert_eq!(format_uptime(60), "1m00s");
        assert_eq!(format_uptime(725), "12m05s");
        assert_eq!(format_uptime(3600 * 3 + 240), "3h04m");
        assert_eq!(format_uptime(86400 * 2 + 3600 * 3 + 59), "2d03h");
    }

    #[test]
    fn stat_parsing_survives_odd_command_names() {
        let s = stat(1, "R", 250);
        assert!(stat_alive(&s));
        assert_eq!(uptime_from_stat(&s, 10.0), Some(7));
        // a process that started after the uptime was read: not negative
        assert_eq!(uptime_from_stat(&s, 1.0), Some(0));
        assert!(!stat_alive("1 (x) Z 0"));
        assert!(!stat_alive("garbage"));
        assert_eq!(uptime_from_stat("1 (x) S 1 2", 5.0), None);
    }

    fn report(name: &str, state: &str, pid: Option<u32>, up: Option<u64>) -> InstanceReport {
        InstanceReport {
            name: name.into(),
            backend: "sysvinit".into(),
            state: state.into(),
            state_detail: None,
            pid,
            pid_source: pid.map(|_| "pid-file".into()),
            uptime_seconds: up,
            uptime_source: up.map(|_| "proc".into()),
            user: None,
            readiness: Readiness::None,
        }
    }

    #[test]
    fn table_is_aligned_with_dashes_for_unknowns() {
        let mut nginx = report("nginx", "running", Some(123456), Some(3725));
        nginx.user = Some("www-data".into());
        nginx.readiness = Readiness::Ready { checks: vec![] };
        let rows = [
            report("webapp1", "running", Some(42), Some(5)),
            report("w2", "stopped", None, None),
            nginx,
        ];
        assert_eq!(
            render_table(&rows),
            "\
NAME     BACKEND   STATE    PID     UPTIME  USER      READINESS
webapp1  sysvinit  running  42      5s      -         -
w2       sysvinit  stopped  -       -       -         -
nginx    sysvinit  running  123456  1h02m   www-data  ready
"
        );
    }

    #[test]
    fn table_cells_cannot_break_lines_and_non_ascii_aligns() {
        let mut a = report("wébäpp", "running", Some(1), Some(1));
        a.readiness = Readiness::NotReady {
            checks: vec![Check {
                check: "command `echo $(x)\n;`".into(),
                ok: false,
                detail: "exit 1\r\nstderr: %s \\ '\"".into(),
            }],
        };
        let b = report("b", "unknown", None, None);
        let t = render_table(&[a, b]);
        assert_eq!(t.lines().count(), 3, "{t}");
        assert_eq!(
            t,
            "\
NAME    BACKEND   STATE    PID  UPTIME  USER  READINESS
wébäpp  sysvinit  running  1    1s      -     not ready: command `echo $(x) ;`: exit 1  stderr: %s \\ '\"
b       sysvinit  unknown  -    -       -     -
"
        );
    }

    #[test]
    fn empty_table_is_the_header() {
        assert_eq!(
            render_table(&[]),
            "NAME  BACKEND  STATE  PID  UPTIME  USER  READINESS\n"
        );
    }

    #[test]
    fn json_keys_are_stable() {
        let mut r = report("web", "running", Some(7), Some(9));
        r.readiness = Readiness::from_checks(vec![Check {
            check: "tcp 127.0.0.1:5000".into(),
            ok: true,
            detail: String::new(),
        }]);
        let v = serde_json::to_value([&r, &report("x", "stopped", None, None)]).unwrap();
        assert_eq!(
            v,
            serde_json::json!([
                {
                    "name": "web", "backend": "sysvinit", "state": "running",
                    "stateDetail": null, "pid": 7, "pidSource": "pid-file",
                    "uptimeSeconds": 9, "uptimeSource": "proc", "user": null,
                    "readiness": {"state": "ready", "checks": [
                        {"check": "tcp 127.0.0.1:5000", "ok": true, "detail": ""}
                    ]}
                },
                {
                    "name": "x", "backend": "sysvinit", "state": "stopped",
                    "stateDetail": null, "pid": null, "pidSource": null,
                    "uptimeSeconds": null, "uptimeSource": null, "user": null,
                    "readiness": {"state": "none"}
                }
            ])
        );
    }

    #[test]
    fn inspect_all_keeps_manifest_order_whatever_the_jobs() {
        let io = Fake::new(RecordingRunner::new());
        let names = ["c", "a", "b", "d", "e"];
        let manifest = Manifest {
            version: 1,
            process_manager: "sysvinit".into(),
            instances: names.iter().map(|n| sysv(n)).collect(),
        };
        let a = act(&names
            .iter()
            .map(|n| (*n, Ok(InstanceStatus::Stopped)))
            .collect::<Vec<_>>());
        for jobs in [0, 1, 3, 16] {
            let r = inspect_all(
                Path::new("/p"),
                &manifest,
                &a,
                &config(),
                &io,
                &no_probe,
                jobs,
            );
            let got: Vec<&str> = r.iter().map(|r| r.name.as_str()).collect();
            assert_eq!(got, names, "jobs {jobs}");
        }
    }
}
