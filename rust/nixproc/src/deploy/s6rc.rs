//! The s6-rc activator, on plain s6: s6-rc itself is not packaged for
//! Debian bookworm, s6-svscan is. nixproc does what `s6-rc-compile` /
//! `s6-rc change` would do for the services of a profile:
//!
//! * **prepare**: check the profile's `etc/s6/sv` as an s6-rc source tree
//!   ([`check_profile`]: types, required files, names, pipelines, cycles);
//!   make sure an `s6-svscan` serves the scan dir `<runtime>/service`,
//!   else start one detached (`s6-setsid`, output to
//!   `<log>/s6-svscan.log`) and remember that nixproc started it
//!   (`<runtime>/nixproc-s6-svscan` holds its PID).
//! * **longrun start**: `<scan>/<service>/` gets a symlink to every file of
//!   the profile's service directory (s6-supervise needs a writable
//!   directory for `supervise/`), `log/` likewise from the companion log
//!   service, and a `down` file so it does not start on its own; it is
//!   renamed into place and `s6-svscanctl -a` picks it up. Once the log is
//!   ready, the `down` file goes and `s6-svc -wu -u` (`-wU` with a
//!   `notification-fd`) brings it up. A process that exits right away (its
//!   program missing, a port taken) fails the start: during a short settle
//!   time `s6-svstat` must keep reporting it up with the same PID.
//! * **longrun stop**: `s6-svc -wD -d`, `s6-svc -x` (log likewise, after
//!   the service, so it logs everything), wait for both `s6-supervise` to
//!   exit, remove the directory, `s6-svscanctl -an`.
//! * **oneshot**: start runs the `up` command line with `execlineb -P`,
//!   stop runs `down` (when there is one) and waits for the PID of the
//!   manifest's PID file to go; a state file under
//!   `<runtime>/nixproc-s6-oneshots` records that it is up. **bundle**:
//!   nothing to do (the engine starts the members).
//! * **finish**: when nothing is deployed any more and nixproc started the
//!   `s6-svscan`, `s6-svscanctl -t` and wait for it to go.
//!
//! s6 and execline programs are taken from PATH. PIDs are checked through
//! `/proc`, a zombie counting as gone (nothing may reap it).

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use nixproc_core::manifest::{Backend, InstanceEntry, Manifest, S6Kind};
use nixproc_core::s6rc::source::{check_tree, Tree};
use nixproc_core::s6rc::SOURCE_DIR;

use super::activator::{Activator, InstanceStatus};
use super::manifest::within_profile;
use super::runner::{Cmd, Runner};
use super::select::ActivatorConfig;

/// How long to wait for s6-svscan, a service to come up or to go down.
pub const DEFAULT_WAIT: Duration = Duration::from_secs(30);
/// How long a started longrun must stay up with the same PID.
pub const DEFAULT_SETTLE: Duration = Duration::from_millis(1000);

const POLL: Duration = Duration::from_millis(25);

/// Files of a source service directory that must not reach the scan dir
/// entry (s6-supervise's own, or ours).
const RESERVED: &[&str] = &["down", "supervise", "event", "log"];

pub struct S6RcActivator<R> {
    runner: R,
    config: ActivatorConfig,
    wait: Duration,
    settle: Duration,
}

impl<R: Runner> S6RcActivator<R> {
    pub fn new(runner: R, config: &ActivatorConfig) -> Self {
        S6RcActivator {
            runner,
            config: config.clone(),
            wait: DEFAULT_WAIT,
            settle: DEFAULT_SETTLE,
        }
    }

    /// Time limits: `wait` for every wait on s6, `settle` for a started
    /// longrun to prove it stays up.
    pub fn with_timeouts(mut self, wait: Duration, settle: Duration) -> Self {
        self.wait = wait;
        self.settle = settle;
        self
    }

    /// `<runtime>/service`.
    pub fn scan_dir(&self) -> PathBuf {
        self.config.state.runtime.join("service")
    }

    /// Present (holding the PID) while an s6-svscan started by nixproc runs.
    pub fn marker(&self) -> PathBuf {
        self.config.state.runtime.join("nixproc-s6-svscan")
    }

    fn oneshot_state(&self, name: &str) -> PathBuf {
        self.config
            .state
            .runtime
            .join("nixproc-s6-oneshots")
            .join(name)
    }

    fn ms(&self, d: Duration) -> String {
        d.as_millis().max(1).to_string()
    }

    fn ok(&self, cmd: Cmd) -> Result<bool> {
        Ok(self.runner.run(&cmd)?.success())
    }

    /// Polls `cond` until it holds, or fails with `what` after the wait.
    fn wait_until(&self, what: &str, mut cond: impl FnMut() -> Result<bool>) -> Result<()> {
        let start = Instant::now();
        loop {
            if cond()? {
                return Ok(());
            }
            if start.elapsed() >= self.wait {
                bail!("timed out after {:?} waiting for {what}", self.wait);
            }
            std::thread::sleep(POLL);
        }
    }

    fn svscan_listening(&self) -> Result<bool> {
        let scan = self.scan_dir();
        if !scan.join(".s6-svscan/control").exists() {
            return Ok(false);
        }
        self.ok(Cmd::new("s6-svscanctl").arg("-a").arg(&scan))
    }

    /// Starts s6-svscan on the scan dir unless one already serves it.
    pub fn ensure_svscan(&self) -> Result<()> {
        let scan = self.scan_dir();
        fs::create_dir_all(&scan).with_context(|| format!("creating {}", scan.display()))?;
        if self.svscan_listening()? {
            return Ok(());
        }
        fs::create_dir_all(&self.config.state.log)
            .with_context(|| format!("creating {}", self.config.state.log.display()))?;
        let log = self.config.state.log.join("s6-svscan.log");
        let cmd = Cmd::new("sh")
            .arg("-c")
            .arg(r#""$0" "$1" "$2" </dev/null >>"$3" 2>&1 & echo $! >"$4""#)
            .arg("s6-setsid")
            .arg("s6-svscan")
            .arg(&scan)
            .arg(&log)
            .arg(self.marker());
        self.runner
            .run_checked(&cmd)
            .context("starting s6-svscan")?;
        self.wait_until(&format!("s6-svscan on {}", scan.display()), || {
            if let Some(pid) = self.marker_pid() {
                if !pid_alive(pid) {
                    bail!(
                        "s6-svscan on {} exited at once; see {}",
                        scan.display(),
                        log.display()
                    );
                }
            }
            self.svscan_listening()
        })
    }

    fn marker_pid(&self) -> Option<i32> {
        fs::read_to_string(self.marker())
            .ok()
            .and_then(|s| s.trim().parse().ok())
    }

    fn entry(&self, inst: &InstanceEntry) -> Result<(S6Kind, PathBuf, Option<PathBuf>)> {
        let Backend::S6Rc { kind, dir, log_dir } = &inst.backend else {
            bail!("{} is not an s6-rc instance", inst.name);
        };
        let rel = |d: &str| -> Result<PathBuf> {
            let p = Path::new(d);
            if !within_profile(d) {
                bail!(
                    "{}: service directory `{d}` must be relative to the profile, without `..`",
                    inst.name
                );
            }
            Ok(p.to_path_buf())
        };
        Ok((*kind, rel(dir)?, log_dir.as_deref().map(rel).transpose()?))
    }

    fn svstat(&self, dir: &Path) -> Result<Option<(bool, i64)>> {
        let out = self
            .runner
            .run(&Cmd::new("s6-svstat").arg("-o").arg("up,pid").arg(dir))?;
        if !out.success() {
            return Ok(None);
        }
        let mut w = out.stdout.split_whitespace();
        let up = w.next() == Some("true");
        let pid = w.next().and_then(|p| p.parse().ok()).unwrap_or(-1);
        Ok(Some((up, pid)))
    }

    /// `(up, ready, pid)` of a supervised service.
    fn svstat_ready(&self, dir: &Path) -> Result<(bool, bool, i64)> {
        let out = self
            .runner
            .run(&Cmd::new("s6-svstat").arg("-o").arg("up,ready,pid").arg(dir))?;
        let mut w = out.stdout.split_whitespace();
        let up = out.success() && w.next() == Some("true");
        let ready = w.next() == Some("true");
        let pid = w.next().and_then(|p| p.parse().ok()).unwrap_or(-1);
        Ok((up, ready, pid))
    }

    fn start_longrun(
        &self,
        profile: &Path,
        inst: &InstanceEntry,
        dir: &Path,
        log_dir: Option<&Path>,
    ) -> Result<()> {
        let scan = self.scan_dir();
        let svc = scan.join(&inst.name);
        if fs::symlink_metadata(&svc).is_ok() {
            // A leftover of an interrupted run: take it down first.
            self.stop_longrun(&inst.name)?;
        }
        let staging = scan.join(format!(".nixproc-{}", inst.name));
        remove_all(&staging)?;
        fs::create_dir_all(&staging).with_context(|| format!("creating {}", staging.display()))?;
        link_files(&profile.join(dir), &staging)?;
        fs::write(staging.join("down"), "")?;
        if let Some(l) = log_dir {
            let log = staging.join("log");
            fs::create_dir(&log)?;
            link_files(&profile.join(l), &log)?;
        }
        fs::rename(&staging, &svc)
            .with_context(|| format!("moving {} into place", svc.display()))?;
        self.runner
            .run_checked(&Cmd::new("s6-svscanctl").arg("-a").arg(&scan))?;
        self.wait_until(&format!("s6-supervise of {}", inst.name), || {
            self.ok(Cmd::new("s6-svok").arg(&svc))
        })?;
        if log_dir.is_some() {
            let log = svc.join("log");
            self.wait_until(&format!("s6-supervise of {}/log", inst.name), || {
                self.ok(Cmd::new("s6-svok").arg(&log))
            })?;
            // Polled rather than `s6-svwait -U`: a logger that cannot
            // start (unknown logDirUser, unwritable logDir) is restarted
            // every second and would only fail at the timeout.
            let mut seen = None;
            self.wait_until(
                &format!("the log service of {} to be ready", inst.name),
                || {
                    let (up, ready, pid) = self.svstat_ready(&log)?;
                    match seen {
                        Some(p) if !up || p != pid => bail!(
                            "the log service of {} exited right after starting; it runs as \
                         logDirUser and writes under logDir (see s6-svscan's output in {})",
                            inst.name,
                            self.config.state.log.join("s6-svscan.log").display()
                        ),
                        _ => {}
                    }
                    if up {
                        seen = Some(pid);
                    }
                    Ok(up && ready)
                },
            )?;
        }
        fs::remove_file(svc.join("down"))?;
        let notify = profile.join(dir).join("notification-fd").exists();
        let up = self.runner.run(
            &Cmd::new("s6-svc")
                .arg(if notify { "-wU" } else { "-wu" })
                .arg("-T")
                .arg(self.ms(self.wait))
                .arg("-u")
                .arg(&svc)
                .timeout(self.wait + Duration::from_secs(5)),
        )?;
        if !up.success() {
            bail!(
                "{} did not come up{}{}",
                inst.name,
                tail(&up.tail()),
                log_hint(inst)
            );
        }
        // Up and staying up: same PID for the whole settle time.
        let first = self.svstat(&svc)?;
        let start = Instant::now();
        loop {
            let now = self.svstat(&svc)?;
            match (first, now) {
                (Some((true, p0)), Some((true, p))) if p0 == p && p > 0 => {}
                _ => bail!(
                    "{} exited right after starting (s6-supervise restarts it){}",
                    inst.name,
                    log_hint(inst)
                ),
            }
            if start.elapsed() >= self.settle {
                return Ok(());
            }
            std::thread::sleep(POLL);
        }
    }

    fn stop_longrun(&self, name: &str) -> Result<()> {
        let scan = self.scan_dir();
        let svc = scan.join(name);
        if fs::symlink_metadata(&svc).is_err() {
            return Ok(());
        }
        let log = svc.join("log");
        let mut dirs = vec![svc.clone()];
        if log.is_dir() {
            dirs.push(log);
        }
        for d in &dirs {
            if !self.ok(Cmd::new("s6-svok").arg(d))? {
                continue;
            }
            let down = |flags: &[&str]| -> Result<bool> {
                let mut c = Cmd::new("s6-svc")
                    .arg("-wD")
                    .arg("-T")
                    .arg(self.ms(self.wait))
                    .timeout(self.wait + Duration::from_secs(5));
                for f in flags {
                    c = c.arg(f);
                }
                Ok(self.runner.run(&c.arg(d))?.success())
            };
            if !down(&["-d"])? && !down(&["-k", "-d"])? {
                bail!("{} did not stop", d.display());
            }
            self.runner
                .run_checked(&Cmd::new("s6-svc").arg("-x").arg(d))?;
        }
        self.wait_until(&format!("s6-supervise of {name} to exit"), || {
            for d in &dirs {
                if self.ok(Cmd::new("s6-svok").arg(d))? {
                    return Ok(false);
                }
            }
            Ok(true)
        })?;
        remove_all(&svc)?;
        self.runner
            .run_checked(&Cmd::new("s6-svscanctl").arg("-an").arg(&scan))?;
        Ok(())
    }

    fn execlineb(&self, file: &Path, what: &str, name: &str) -> Result<()> {
        self.runner
            .run_checked(
                &Cmd::new("execlineb")
                    .arg("-P")
                    .arg(file)
                    .timeout(self.wait + Duration::from_secs(5)),
            )
            .with_context(|| format!("{name}: {what} failed"))?;
        Ok(())
    }
}

fn tail(t: &str) -> String {
    if t.trim().is_empty() {
        String::new()
    } else {
        format!("\n{}", t.trim_end())
    }
}

/// The last lines of the service's log, when it has one.
fn log_hint(inst: &InstanceEntry) -> String {
    let Some(f) = &inst.log_file else {
        return String::new();
    };
    let text = fs::read_to_string(f).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let last = &lines[lines.len().saturating_sub(10)..];
    if last.is_empty() {
        format!("; its log {f} is empty")
    } else {
        format!("; last lines of {f}:\n  {}", last.join("\n  "))
    }
}

fn remove_all(p: &Path) -> Result<()> {
    match fs::remove_dir_all(p) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).with_context(|| format!("removing {}", p.display())),
    }
}

/// Symlinks every entry of `src` (except [`RESERVED`] names) into `dst`,
/// pointing at the resolved store files.
fn link_files(src: &Path, dst: &Path) -> Result<()> {
    let entries = fs::read_dir(src)
        .with_context(|| format!("reading service directory {}", src.display()))?;
    for e in entries {
        let e = e?;
        let name = e.file_name();
        if RESERVED.iter().any(|r| name == *r) {
            continue;
        }
        let target = fs::canonicalize(e.path()).unwrap_or_else(|_| e.path());
        std::os::unix::fs::symlink(&target, dst.join(&name))
            .with_context(|| format!("linking {}", target.display()))?;
    }
    Ok(())
}

/// Whether `pid` runs: it exists and is not a zombie.
pub fn pid_alive(pid: i32) -> bool {
    if pid <= 0 {
        return false;
    }
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => false,
        Ok(stat) => stat
            .rsplit_once(')')
            .map(|(_, rest)| !rest.trim_start().starts_with(['Z', 'X']))
            .unwrap_or(false),
    }
}

/// Reads an s6-rc source directory (`<profile>/etc/s6/sv`): service name
/// → file name → contents (directories as empty strings).
pub fn read_source_tree(dir: &Path) -> Result<Tree> {
    let mut tree = Tree::new();
    for svc in fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let svc = svc?;
        let name = svc.file_name().to_string_lossy().into_owned();
        let path = svc.path();
        if !path.is_dir() {
            bail!("{}: not a service directory", path.display());
        }
        let mut files = BTreeMap::new();
        for f in fs::read_dir(&path)? {
            let f = f?;
            let text = if f.path().is_dir() {
                String::new()
            } else {
                let bytes = fs::read(f.path())
                    .with_context(|| format!("reading {}", f.path().display()))?;
                String::from_utf8_lossy(&bytes).into_owned()
            };
            files.insert(f.file_name().to_string_lossy().into_owned(), text);
        }
        tree.insert(name, files);
    }
    Ok(tree)
}

/// Checks a profile's s6-rc source tree, and that every instance of
/// `manifest` is a service of it.
pub fn check_profile(profile: &Path, manifest: &Manifest) -> Result<()> {
    let dir = profile.join(SOURCE_DIR);
    if manifest.instances.is_empty() && !dir.exists() {
        return Ok(());
    }
    let tree = read_source_tree(&dir)?;
    check_tree(&tree).map_err(|e| anyhow!("{}: {e}", dir.display()))?;
    for inst in &manifest.instances {
        if !tree.contains_key(&inst.name) {
            bail!(
                "{}: the manifest's service {} has no directory there",
                dir.display(),
                inst.name
            );
        }
    }
    Ok(())
}

impl<R: Runner> Activator for S6RcActivator<R> {
    fn process_manager(&self) -> &str {
        "s6-rc"
    }

    fn prepare(&self, new_profile: &Path, new: &Manifest) -> Result<()> {
        check_profile(new_profile, new)?;
        if new.instances.is_empty() {
            return Ok(());
        }
        self.ensure_svscan()
    }

    fn finish(&self, _new_profile: &Path, new: &Manifest) -> Result<()> {
        if !new.instances.is_empty() || !self.marker().exists() {
            return Ok(());
        }
        let scan = self.scan_dir();
        if self.svscan_listening()? {
            self.runner
                .run_checked(&Cmd::new("s6-svscanctl").arg("-t").arg(&scan))?;
        }
        if let Some(pid) = self.marker_pid() {
            self.wait_until("s6-svscan to exit", || Ok(!pid_alive(pid)))?;
        }
        fs::remove_file(self.marker())
            .with_context(|| format!("removing {}", self.marker().display()))?;
        Ok(())
    }

    fn start(&self, profile: &Path, inst: &InstanceEntry) -> Result<()> {
        let (kind, dir, log_dir) = self.entry(inst)?;
        match kind {
            S6Kind::Longrun => self.start_longrun(profile, inst, &dir, log_dir.as_deref()),
            S6Kind::Oneshot => {
                self.execlineb(&profile.join(&dir).join("up"), "up", &inst.name)?;
                let state = self.oneshot_state(&inst.name);
                fs::create_dir_all(state.parent().expect("has a parent"))?;
                fs::write(&state, profile.as_os_str().as_encoded_bytes())?;
                Ok(())
            }
            S6Kind::Bundle => Ok(()),
        }
    }

    fn stop(&self, profile: &Path, inst: &InstanceEntry) -> Result<()> {
        let (kind, dir, _) = self.entry(inst)?;
        match kind {
            S6Kind::Longrun => self.stop_longrun(&inst.name),
            S6Kind::Oneshot => {
                let pid = inst
                    .pid_file
                    .as_ref()
                    .and_then(|f| fs::read_to_string(f).ok())
                    .and_then(|s| s.trim().parse::<i32>().ok());
                let down = profile.join(&dir).join("down");
                if down.exists() {
                    self.execlineb(&down, "down", &inst.name)?;
                }
                if let Some(pid) = pid {
                    self.wait_until(&format!("{} (PID {pid}) to exit", inst.name), || {
                        Ok(!pid_alive(pid))
                    })?;
                }
                let state = self.oneshot_state(&inst.name);
                match fs::remove_file(&state) {
                    Err(e) if e.kind() != io::ErrorKind::NotFound => {
                        Err(e).with_context(|| format!("removing {}", state.display()))
                    }
                    _ => Ok(()),
                }
            }
            S6Kind::Bundle => Ok(()),
        }
    }

    fn status(&self, _profile: &Path, inst: &InstanceEntry) -> Result<InstanceStatus> {
        let (kind, _, _) = self.entry(inst)?;
        Ok(match kind {
            S6Kind::Longrun => {
                let svc = self.scan_dir().join(&inst.name);
                if !svc.exists() {
                    return Ok(InstanceStatus::Stopped);
                }
                let out = self
                    .runner
                    .run(&Cmd::new("s6-svstat").arg("-o").arg("up").arg(&svc))?;
                match (out.code(), out.stdout.trim()) {
                    (Some(0), "true") => InstanceStatus::Running,
                    (Some(0), "false") => InstanceStatus::Stopped,
                    (code, _) => InstanceStatus::Unknown { code },
                }
            }
            S6Kind::Oneshot => {
                let pid = inst
                    .pid_file
                    .as_ref()
                    .and_then(|f| fs::read_to_string(f).ok())
                    .and_then(|s| s.trim().parse::<i32>().ok());
                match pid {
                    Some(pid) if pid_alive(pid) => InstanceStatus::Running,
                    Some(_) => InstanceStatus::Stopped,
                    None if self.oneshot_state(&inst.name).exists() => InstanceStatus::Running,
                    None => InstanceStatus::Stopped,
                }
            }
            S6Kind::Bundle => InstanceStatus::Running,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deploy::runner::RecordingRunner;
    use crate::state_dirs::{StateDirOverrides, StateDirs};

    fn inst(name: &str, kind: S6Kind, dir: &str) -> InstanceEntry {
        InstanceEntry {
            key: name.into(),
            name: name.into(),
            description: name.into(),
            revision: "1".into(),
            dependencies: vec![],
            pid_file: None,
            log_file: None,
            user: None,
            backend: Backend::S6Rc {
                kind,
                dir: dir.into(),
                log_dir: None,
            },
            state: None,
            readiness: None,
        }
    }

    fn activator<'a>(
        tmp: &Path,
        runner: &'a RecordingRunner,
    ) -> S6RcActivator<&'a RecordingRunner> {
        let config = ActivatorConfig {
            state: StateDirs::from_state_dir(tmp.join("var"), &StateDirOverrides::default()),
            force_disable_user_change: false,
            runlevel: 3,
            systemd_user: false,
            enable_at_boot: false,
        };
        S6RcActivator::new(runner, &config)
    }

    #[test]
    fn bundles_and_absent_longruns_need_no_commands() {
        let tmp = tempfile::tempdir().unwrap();
        let runner = RecordingRunner::new();
        let act = activator(tmp.path(), &runner);
        let b = inst("all", S6Kind::Bundle, "etc/s6/sv/all");
        act.start(tmp.path(), &b).unwrap();
        act.stop(tmp.path(), &b).unwrap();
        let l = inst("web-srv", S6Kind::Longrun, "etc/s6/sv/web-srv");
        act.stop(tmp.path(), &l).unwrap();
        assert_eq!(act.status(tmp.path(), &l).unwrap(), InstanceStatus::Stopped);
        assert_eq!(act.status(tmp.path(), &b).unwrap(), InstanceStatus::Running);
        assert!(runner.commands().is_empty());
    }

    #[test]
    fn oneshots_run_up_and_down_with_execlineb() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("etc/s6/sv/init");
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join("down"), "x").unwrap();
        let runner = RecordingRunner::new();
        let act = activator(tmp.path(), &runner);
        let o = inst("init", S6Kind::Oneshot, "etc/s6/sv/init");
        act.start(tmp.path(), &o).unwrap();
        assert_eq!(act.status(tmp.path(), &o).unwrap(), InstanceStatus::Running);
        act.stop(tmp.path(), &o).unwrap();
        assert_eq!(act.status(tmp.path(), &o).unwrap(), InstanceStatus::Stopped);
        assert_eq!(
            runner.lines(tmp.path()),
            [
                "execlineb -P /etc/s6/sv/init/up",
                "execlineb -P /etc/s6/sv/init/down"
            ]
        );
        let failing = RecordingRunner::new().fail("up", "boom");
        let act = activator(tmp.path(), &failing);
        let e = format!("{:#}", act.start(tmp.path(), &o).unwrap_err());
        assert!(e.starts_with("init: up failed: "), "{e}");
        assert!(e.contains("boom"), "{e}");
    }

    #[test]
    fn service_dirs_must_stay_inside_the_profile() {
        let tmp = tempfile::tempdir().unwrap();
        let runner = RecordingRunner::new();
        let act = activator(tmp.path(), &runner);
        for d in ["../x", "/etc/s6/sv/x", ""] {
            let e = act
                .start(tmp.path(), &inst("x", S6Kind::Oneshot, d))
                .unwrap_err();
            assert!(
                e.to_string().contains("must be relative to the profile"),
                "{e}"
            );
        }
        let mut other = inst("x", S6Kind::Oneshot, "a");
        other.backend = Backend::Systemd {
            unit: "x.service".into(),
            path: "x".into(),
        };
        assert!(act.stop(tmp.path(), &other).is_err());
    }

    #[test]
    fn pid_alive_treats_missing_as_dead() {
        assert!(pid_alive(std::process::id() as i32));
        assert!(!pid_alive(0));
        assert!(!pid_alive(-1));
        assert!(!pid_alive(i32::MAX));
    }
}
