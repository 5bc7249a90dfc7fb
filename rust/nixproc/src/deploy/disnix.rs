//! The disnix activator: Dysnomia's `process` module, done natively
//! (reference §3.8.1 runtime contract, §5.7 "disnix"). Disnix itself is not
//! needed: the engine already orders instances by their dependencies, which
//! is what Disnix's `activatesAfter` does.
//!
//! Each instance is a component file `etc/dysnomia/process/<name>` in the
//! profile with `process=<program>` and `pidFile=<path>`:
//!
//! * start  = refuse when the PID file names a live process (a stale PID
//!   file is removed), run `process` (it must daemonize) through the
//!   runner, then wait until the PID file names a live process
//!   (`$NIXPROC_START_TIMEOUT` seconds, default 10); a failure carries the
//!   program's output and the tail of its log file;
//! * stop   = TERM the PID of the PID file, wait for it to exit
//!   (`$NIXPROC_STOP_TIMEOUT`, default 10 s), then KILL; remove the PID file;
//! * status = the PID file names a live process (`kill -0`).
//!
//! Differences to Dysnomia: a stale PID file does not block a start
//! forever; a start only succeeds once the process really runs (Dysnomia
//! only warns); a stop waits for the process to be gone. Users and groups of
//! `dysnomia-support` are the engine's job (as for every backend).

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use nixproc_core::manifest::{Backend, InstanceEntry};
use rustix::process::{kill_process, test_kill_process, Pid, Signal};

use super::activator::{Activator, InstanceStatus};
use super::runner::{Cmd, CommandFailed, Runner};
use super::select::ActivatorConfig;

/// How long a started process has to write its PID file.
pub const DEFAULT_START_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a process has to exit after TERM before it gets KILL.
pub const DEFAULT_STOP_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a process has to vanish after KILL.
const KILL_GRACE: Duration = Duration::from_secs(5);
const POLL: Duration = Duration::from_millis(50);
/// Lines of the log file quoted in a start error.
const LOG_TAIL_LINES: usize = 20;

pub struct DisnixActivator<R> {
    runner: R,
    config: ActivatorConfig,
    start_timeout: Duration,
    stop_timeout: Duration,
}

/// `$var` as a number of seconds (fractions allowed), else `default`.
fn timeout_from_env(var: &str, default: Duration) -> Duration {
    std::env::var(var)
        .ok()
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map(Duration::from_secs_f64)
        .unwrap_or(default)
}

/// What the component file says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Component {
    pub process: PathBuf,
    pub pid_file: PathBuf,
}

impl<R: Runner> DisnixActivator<R> {
    pub fn new(runner: R, config: &ActivatorConfig) -> Self {
        DisnixActivator {
            runner,
            config: config.clone(),
            start_timeout: timeout_from_env("NIXPROC_START_TIMEOUT", DEFAULT_START_TIMEOUT),
            stop_timeout: timeout_from_env("NIXPROC_STOP_TIMEOUT", DEFAULT_STOP_TIMEOUT),
        }
    }

    /// Overrides the start and stop timeouts (tests).
    pub fn with_timeouts(mut self, start: Duration, stop: Duration) -> Self {
        self.start_timeout = start;
        self.stop_timeout = stop;
        self
    }

    pub fn runner(&self) -> &R {
        &self.runner
    }

    /// Reads the instance's component file in `profile`. With `lenient`
    /// (stopping an instance of an old profile that may be gone), the
    /// manifest entry stands in for a missing file.
    pub fn component(
        &self,
        profile: &Path,
        inst: &InstanceEntry,
        lenient: bool,
    ) -> Result<Component> {
        let Backend::Disnix { component, process } = &inst.backend else {
            bail!(
                "{}: not a disnix instance (the profile was built for another process manager)",
                inst.name
            );
        };
        let path = profile.join(component);
        let (file_process, file_pid) = match fs::read_to_string(&path) {
            Ok(text) => parse_component(&text),
            Err(e) if lenient && e.kind() == io::ErrorKind::NotFound => (None, None),
            Err(e) => {
                return Err(e).with_context(|| {
                    format!(
                        "{}: cannot read its component file {}",
                        inst.name,
                        path.display()
                    )
                })
            }
        };
        let process = PathBuf::from(file_process.unwrap_or_else(|| process.clone()));
        let pid_file = match file_pid.or_else(|| inst.pid_file.clone()) {
            Some(p) => PathBuf::from(p),
            // Dysnomia's default.
            None => {
                let base = process
                    .file_name()
                    .ok_or_else(|| anyhow!("{}: no PID file known", inst.name))?;
                let mut name = base.to_os_string();
                name.push(".pid");
                self.config.state.runtime.join(name)
            }
        };
        Ok(Component { process, pid_file })
    }

    fn wait_until(&self, timeout: Duration, mut done: impl FnMut() -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if done() {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(POLL);
        }
    }
}

/// `process=` and `pidFile=` of a component file (other lines ignored, the
/// last occurrence wins, as with Dysnomia's `grep`).
pub fn parse_component(text: &str) -> (Option<String>, Option<String>) {
    let mut process = None;
    let mut pid_file = None;
    for line in text.lines() {
        if let Some(v) = line.strip_prefix("process=") {
            process = Some(v.to_string()).filter(|v| !v.is_empty());
        } else if let Some(v) = line.strip_prefix("pidFile=") {
            pid_file = Some(v.to_string()).filter(|v| !v.is_empty());
        }
    }
    (process, pid_file)
}

/// The PID a PID file names, if it holds one.
pub fn read_pid(pid_file: &Path) -> Option<Pid> {
    let text = fs::read_to_string(pid_file).ok()?;
    let n: i32 = text.split_whitespace().next()?.parse().ok()?;
    Pid::from_raw(n).filter(|_| n > 0)
}

/// Whether `pid` is a live process (`kill -0`; a process of another user
/// counts; a zombie does not).
pub fn alive(pid: Pid) -> bool {
    match test_kill_process(pid) {
        Ok(()) | Err(rustix::io::Errno::PERM) => {}
        Err(_) => return false,
    }
    match fs::read_to_string(format!("/proc/{}/stat", pid.as_raw_nonzero())) {
        Ok(stat) => {
            let state = stat
                .rfind(')')
                .and_then(|i| stat[i + 1..].split_whitespace().next());
            !matches!(state, Some("Z" | "X"))
        }
        // No procfs: kill -0 is all there is.
        Err(_) => true,
    }
}

fn live_pid(pid_file: &Path) -> Option<Pid> {
    read_pid(pid_file).filter(|p| alive(*p))
}

fn remove_if_exists(path: &Path) -> Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => {
            Err(e).with_context(|| format!("cannot remove {}", path.display()))
        }
        _ => Ok(()),
    }
}

/// The last lines of a log file, indented, or "" when there is none.
fn log_tail(log: Option<&str>) -> String {
    let Some(log) = log else {
        return String::new();
    };
    let Ok(text) = fs::read_to_string(log) else {
        return String::new();
    };
    let lines: Vec<&str> = text.trim_end().lines().collect();
    if lines.is_empty() {
        return String::new();
    }
    let skip = lines.len().saturating_sub(LOG_TAIL_LINES);
    let mut out = format!("\n{log}:");
    for l in &lines[skip..] {
        out.push_str("\n  ");
        out.push_str(l);
    }
    out
}

impl<R: Runner> Activator for DisnixActivator<R> {
    fn process_manager(&self) -> &str {
        "disnix"
    }

    fn start(&self, profile: &Path, inst: &InstanceEntry) -> Result<()> {
        let c = self.component(profile, inst, false)?;
        if let Some(pid) = live_pid(&c.pid_file) {
            bail!(
                "{}: already running (PID {} in {}); not starting a second copy",
                inst.name,
                pid.as_raw_nonzero(),
                c.pid_file.display()
            );
        }
        remove_if_exists(&c.pid_file)?;
        let cmd = Cmd::new(&c.process);
        let output = self.runner.run(&cmd)?;
        if !output.success() {
            let failed = CommandFailed { cmd, output };
            bail!(
                "{}: cannot start: {failed}{}",
                inst.name,
                log_tail(inst.log_file.as_deref())
            );
        }
        if !self.wait_until(self.start_timeout, || live_pid(&c.pid_file).is_some()) {
            let tail = output.tail();
            bail!(
                "{}: {} returned, but {} did not name a running process within {:?}{}{}",
                inst.name,
                c.process.display(),
                c.pid_file.display(),
                self.start_timeout,
                if tail.is_empty() {
                    String::new()
                } else {
                    format!("\n{}", tail.trim_end())
                },
                log_tail(inst.log_file.as_deref())
            );
        }
        Ok(())
    }

    fn stop(&self, profile: &Path, inst: &InstanceEntry) -> Result<()> {
        let c = self.component(profile, inst, true)?;
        let Some(pid) = read_pid(&c.pid_file) else {
            // Not running (or an unreadable PID file): nothing to signal.
            return remove_if_exists(&c.pid_file);
        };
        if alive(pid) {
            match kill_process(pid, Signal::TERM) {
                Ok(()) | Err(rustix::io::Errno::SRCH) => {}
                Err(e) => bail!(
                    "{}: cannot send TERM to PID {} (from {}): {e}",
                    inst.name,
                    pid.as_raw_nonzero(),
                    c.pid_file.display()
                ),
            }
            if !self.wait_until(self.stop_timeout, || !alive(pid)) {
                let _ = kill_process(pid, Signal::KILL);
                if !self.wait_until(KILL_GRACE, || !alive(pid)) {
                    bail!(
                        "{}: PID {} survived TERM and KILL",
                        inst.name,
                        pid.as_raw_nonzero()
                    );
                }
            }
        }
        // The process may have removed it, or a new one may have replaced it.
        if read_pid(&c.pid_file) == Some(pid) || !c.pid_file.exists() {
            remove_if_exists(&c.pid_file)?;
        }
        Ok(())
    }

    fn status(&self, profile: &Path, inst: &InstanceEntry) -> Result<InstanceStatus> {
        let c = self.component(profile, inst, true)?;
        Ok(if live_pid(&c.pid_file).is_some() {
            InstanceStatus::Running
        } else {
            InstanceStatus::Stopped
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deploy::engine::{execute, Context as EngineContext, DeployError};
    use crate::deploy::plan::plan;
    use crate::deploy::progress::RecordingProgress;
    use crate::deploy::runner::{CmdOutput, RecordingRunner, SystemRunner};
    use crate::state_dirs::{StateDirOverrides, StateDirs};
    use nixproc_core::manifest::{Manifest, MANIFEST_VERSION};
    use std::os::unix::fs::PermissionsExt;
    use std::process::{Child, Command};

    const SHORT: Duration = Duration::from_millis(600);

    struct Env {
        tmp: tempfile::TempDir,
        children: Vec<Child>,
    }

    impl Drop for Env {
        fn drop(&mut self) {
            for c in &mut self.children {
                let _ = c.kill();
                let _ = c.wait();
            }
            // Daemons started by the scripts write their PID here.
            if let Ok(entries) = fs::read_dir(self.run()) {
                for e in entries.flatten() {
                    if let Some(pid) = read_pid(&e.path()) {
                        let _ = kill_process(pid, Signal::KILL);
                    }
                }
            }
        }
    }

    impl Env {
        fn new() -> Env {
            let tmp = tempfile::tempdir().unwrap();
            fs::create_dir_all(tmp.path().join("state/run")).unwrap();
            Env {
                tmp,
                children: Vec::new(),
            }
        }

        fn run(&self) -> PathBuf {
            self.tmp.path().join("state/run")
        }

        fn pid_file(&self, name: &str) -> PathBuf {
            self.run().join(format!("{name}.pid"))
        }

        fn config(&self) -> ActivatorConfig {
            ActivatorConfig {
                state: StateDirs::from_state_dir(
                    self.tmp.path().join("state"),
                    &StateDirOverrides::default(),
                ),
                force_disable_user_change: true,
                runlevel: 3,
                systemd_user: false,
                enable_at_boot: false,
            }
        }

        fn activator<R: Runner>(&self, runner: R) -> DisnixActivator<R> {
            DisnixActivator::new(runner, &self.config()).with_timeouts(SHORT, SHORT)
        }

        /// A profile with one component per instance, whose program is a
        /// script of the given body (`$PIDFILE` set).
        fn profile(&self, dir: &str, m: &Manifest, body: &dyn Fn(&str) -> String) -> PathBuf {
            let p = self.tmp.path().join(dir);
            for e in &m.instances {
                let Backend::Disnix { component, .. } = &e.backend else {
                    unreachable!()
                };
                let prog = p.join("bin").join(format!("{}-process-wrapper", e.name));
                fs::create_dir_all(prog.parent().unwrap()).unwrap();
                let pid = self.pid_file(&e.name);
                fs::write(
                    &prog,
                    format!(
                        "#!/bin/sh\nPIDFILE='{}'\n{}\n",
                        pid.display(),
                        body(&e.revision)
                    ),
                )
                .unwrap();
                fs::set_permissions(&prog, fs::Permissions::from_mode(0o755)).unwrap();
                let file = p.join(component);
                fs::create_dir_all(file.parent().unwrap()).unwrap();
                fs::write(
                    file,
                    format!("process={}\npidFile={}\n", prog.display(), pid.display()),
                )
                .unwrap();
            }
            p
        }

        /// A real process the test owns (reaped on drop).
        fn spawn(&mut self, script: &str) -> Pid {
            let c = Command::new("sh").arg("-c").arg(script).spawn().unwrap();
            let pid = Pid::from_raw(c.id() as i32).unwrap();
            self.children.push(c);
            pid
        }
    }

    fn inst(name: &str, rev: &str, deps: &[&str]) -> InstanceEntry {
        InstanceEntry {
            key: name.to_string(),
            name: name.to_string(),
            description: format!("{name} service"),
            revision: rev.to_string(),
            dependencies: deps.iter().map(|d| d.to_string()).collect(),
            pid_file: None,
            log_file: None,
            user: None,
            backend: Backend::Disnix {
                component: format!("etc/dysnomia/process/{name}"),
                process: format!("/nix/store/x/bin/{name}-process-wrapper"),
            },
            state: None,
            readiness: None,
        }
    }

    fn manifest(instances: Vec<InstanceEntry>) -> Manifest {
        Manifest {
            version: MANIFEST_VERSION,
            process_manager: "disnix".into(),
            instances,
        }
    }

    /// A daemon: a background sleeper whose PID goes to $PIDFILE.
    fn daemon(_rev: &str) -> String {
        "sleep 30 >/dev/null 2>&1 &\necho $! > \"$PIDFILE\"".into()
    }

    fn switch<R: Runner>(
        act: &DisnixActivator<R>,
        old: Option<(&Path, &Manifest)>,
        new: (&Path, &Manifest),
    ) -> Result<(), DeployError> {
        let empty = manifest(vec![]);
        let old_m = old.map(|(_, m)| m).unwrap_or(&empty);
        let progress = RecordingProgress::default();
        act.prepare(new.0, new.1)?;
        let ctx = EngineContext {
            old_profile: old.map(|(p, _)| p),
            new_profile: new.0,
            activator: act,
            progress: &progress,
            hooks: &crate::deploy::engine::NoHooks,
            jobs: 1,
        };
        execute(&plan(old_m, new.1), &ctx)?;
        act.finish(new.0, new.1)?;
        Ok(())
    }

    #[test]
    fn component_file_parsing() {
        assert_eq!(
            parse_component("process=/a/b=c\npidFile=/run/x.pid\nother=1\n"),
            (Some("/a/b=c".into()), Some("/run/x.pid".into()))
        );
        assert_eq!(parse_component("process=\n"), (None, None));
    }

    #[test]
    fn pid_file_defaults() {
        let env = Env::new();
        let act = env.activator(RecordingRunner::new());
        let p = env.tmp.path().join("p");
        fs::create_dir_all(p.join("etc/dysnomia/process")).unwrap();
        fs::write(p.join("etc/dysnomia/process/a"), "process=/bin/a-wrapper\n").unwrap();
        // Without pidFile= and a manifest PID file: Dysnomia's default.
        let c = act.component(&p, &inst("a", "1", &[]), false).unwrap();
        assert_eq!(c.process, Path::new("/bin/a-wrapper"));
        assert_eq!(c.pid_file, env.run().join("a-wrapper.pid"));
        let mut with_pid = inst("a", "1", &[]);
        with_pid.pid_file = Some("/x/a.pid".into());
        let c = act.component(&p, &with_pid, false).unwrap();
        assert_eq!(c.pid_file, Path::new("/x/a.pid"));
        // A missing file is an error for a start, the manifest for a stop.
        let e = act.component(&p, &inst("b", "1", &[]), false).unwrap_err();
        assert!(
            format!("{e:#}").contains("b: cannot read its component file"),
            "{e:#}"
        );
        let c = act.component(&p, &inst("b", "1", &[]), true).unwrap();
        assert_eq!(c.process, Path::new("/nix/store/x/bin/b-process-wrapper"));
    }

    #[test]
    fn start_stop_status_with_real_daemons() {
        let env = Env::new();
        let m = manifest(vec![inst("db", "1", &[]), inst("web", "1", &["db"])]);
        let p1 = env.profile("p1", &m, &daemon);
        let act = env.activator(SystemRunner);
        switch(&act, None, (&p1, &m)).unwrap();
        let db = read_pid(&env.pid_file("db")).unwrap();
        let web = read_pid(&env.pid_file("web")).unwrap();
        assert!(alive(db) && alive(web));
        for i in &m.instances {
            assert_eq!(act.status(&p1, i).unwrap(), InstanceStatus::Running);
        }
        // A second start refuses: the PID file names a live process.
        let e = act.start(&p1, &m.instances[0]).unwrap_err();
        assert!(
            format!("{e}").starts_with("db: already running (PID "),
            "{e}"
        );

        // Undeploy: both stopped, PID files gone.
        let empty = manifest(vec![]);
        let p0 = env.profile("p0", &empty, &daemon);
        switch(&act, Some((&p1, &m)), (&p0, &empty)).unwrap();
        assert!(!alive(db) && !alive(web));
        assert!(!env.pid_file("db").exists() && !env.pid_file("web").exists());
        for i in &m.instances {
            assert_eq!(act.status(&p1, i).unwrap(), InstanceStatus::Stopped);
        }
    }

    #[test]
    fn start_runs_the_component_process_only() {
        let env = Env::new();
        let m = manifest(vec![inst("a", "1", &[])]);
        let p = env.profile("p", &m, &daemon);
        let act = env.activator(RecordingRunner::new());
        // The recorded runner starts nothing, so no PID file appears.
        let e = act.start(&p, &m.instances[0]).unwrap_err();
        assert_eq!(
            act.runner().lines(env.tmp.path()),
            ["/p/bin/a-process-wrapper"]
        );
        let msg = format!("{e}").replace(&env.tmp.path().display().to_string(), "");
        assert_eq!(
            msg,
            "a: /p/bin/a-process-wrapper returned, but /state/run/a.pid did not name a running \
             process within 600ms"
        );
    }

    #[test]
    fn stale_pid_file_is_replaced() {
        let mut env = Env::new();
        let m = manifest(vec![inst("a", "1", &[])]);
        let p = env.profile("p", &m, &daemon);
        // A PID that is no process any more (a reaped child).
        let mut c = Command::new("true").spawn().unwrap();
        let dead = c.id();
        c.wait().unwrap();
        fs::write(env.pid_file("a"), format!("{dead}\n")).unwrap();
        let act = env.activator(SystemRunner);
        assert_eq!(
            act.status(&p, &m.instances[0]).unwrap(),
            InstanceStatus::Stopped
        );
        act.start(&p, &m.instances[0]).unwrap();
        let pid = read_pid(&env.pid_file("a")).unwrap();
        assert_ne!(pid.as_raw_nonzero().get() as u32, dead);
        act.stop(&p, &m.instances[0]).unwrap();
        // Stopping what is not running is fine, and removes garbage.
        fs::write(env.pid_file("a"), "garbage").unwrap();
        act.stop(&p, &m.instances[0]).unwrap();
        assert!(!env.pid_file("a").exists());
        let sleeper = env.spawn("sleep 30");
        fs::write(env.pid_file("a"), format!("{}", sleeper.as_raw_nonzero())).unwrap();
        act.stop(&p, &m.instances[0]).unwrap();
        assert!(!alive(sleeper));
    }

    #[test]
    fn failing_process_reports_output_and_log() {
        let env = Env::new();
        let log = env.tmp.path().join("a.log");
        fs::write(&log, "line 1\nbind: address in use\n").unwrap();
        let mut a = inst("a", "1", &[]);
        a.log_file = Some(log.display().to_string());
        let m = manifest(vec![a]);
        let failing = env.profile("p", &m, &|_| "echo 'cannot start' >&2; exit 3".into());
        let act = env.activator(SystemRunner);
        let e = format!("{}", act.start(&failing, &m.instances[0]).unwrap_err());
        assert!(e.starts_with("a: cannot start: `"), "{e}");
        assert!(e.contains("exited with status 3"), "{e}");
        assert!(e.contains("cannot start\n"), "{e}");
        assert!(e.ends_with(":\n  line 1\n  bind: address in use"), "{e}");

        // Returns successfully, writes no PID file: the output is quoted.
        let m = manifest(vec![inst("b", "1", &[])]);
        let p = env.profile("q", &m, &|_| "echo forked".into());
        let e = format!("{}", act.start(&p, &m.instances[0]).unwrap_err());
        assert!(e.contains("did not name a running process"), "{e}");
        assert!(e.ends_with("stdout:\n  forked"), "{e}");

        // The recorded failure path: the runner's answer is reported.
        let act = env.activator(
            RecordingRunner::new()
                .respond("a-process-wrapper", CmdOutput::exited(1, "no such user")),
        );
        let e = format!("{}", act.start(&failing, &inst("a", "1", &[])).unwrap_err());
        assert!(e.contains("no such user"), "{e}");
    }

    #[test]
    fn stop_kills_what_ignores_term() {
        let mut env = Env::new();
        let m = manifest(vec![inst("a", "1", &[])]);
        let p = env.profile("p", &m, &daemon);
        let stubborn = env.spawn("trap '' TERM; while :; do sleep 0.1; done");
        std::thread::sleep(Duration::from_millis(100));
        fs::write(env.pid_file("a"), format!("{}", stubborn.as_raw_nonzero())).unwrap();
        let act = env.activator(RecordingRunner::new());
        let started = Instant::now();
        act.stop(&p, &m.instances[0]).unwrap();
        assert!(started.elapsed() >= SHORT);
        assert!(!alive(stubborn));
        assert!(!env.pid_file("a").exists());
        assert!(act.runner().commands().is_empty());
    }

    #[test]
    fn failed_start_rolls_back() {
        let env = Env::new();
        let m = manifest(vec![inst("db", "1", &[]), inst("web", "bad", &["db"])]);
        let p = env.profile("p", &m, &|rev| {
            if rev == "bad" {
                "exit 1".into()
            } else {
                daemon(rev)
            }
        });
        let act = env.activator(SystemRunner);
        let e = switch(&act, None, (&p, &m)).unwrap_err();
        assert!(format!("{e:#}").contains("web: cannot start"), "{e:#}");
        // db was stopped again.
        assert!(!env.pid_file("db").exists());
    }

    #[test]
    fn other_backends_are_refused() {
        let env = Env::new();
        let act = env.activator(RecordingRunner::new());
        let mut i = inst("a", "1", &[]);
        i.backend = Backend::Bsdrc {
            script: "etc/rc.d/a".into(),
        };
        let e = act.start(env.tmp.path(), &i).unwrap_err();
        assert_eq!(
            e.to_string(),
            "a: not a disnix instance (the profile was built for another process manager)"
        );
    }

    #[test]
    fn timeouts_from_the_environment() {
        assert_eq!(
            timeout_from_env("NIXPROC_TEST_DISNIX_UNSET", DEFAULT_START_TIMEOUT),
            Duration::from_secs(10)
        );
    }
}
