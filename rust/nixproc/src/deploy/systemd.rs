//! The systemd activator (reference §5.7 "systemd"): links the profile's
//! units into a directory on systemd's unit path and drives them with
//! `systemctl`.
//!
//! * target dir: `$SYSTEMD_TARGET_DIR`, else `/etc/systemd/system`; with
//!   `--user`, `$XDG_CONFIG_HOME/systemd/user` or `~/.config/systemd/user`,
//!   and every `systemctl` call gets `--user`;
//! * start  = link `<unit>` (and its `.wants` directory) to the resolved
//!   file in the store, `daemon-reload` if a link changed, `systemctl
//!   start`, then `systemctl is-active` must say `active`;
//! * stop   = `systemctl stop`, remove the links (the `daemon-reload` that
//!   forgets the unit runs before the next start, or at the end);
//! * status = `systemctl is-active`.
//!
//! Differences to the original deploy tool, and why:
//! * units are stopped and started one by one in dependency order by the
//!   engine (defect 16 of the original: file-name order), and a start is
//!   only successful when the unit is active afterwards;
//! * links point at the resolved store file, not into the profile, so a
//!   unit keeps working when old generations are garbage-collected; kept
//!   units are re-pointed at the new profile's file when a switch finishes;
//! * `daemon-reload` runs only when links changed since the last one
//!   (tracked in an atomic flag), not once per unit;
//! * files in the target directory that are not symbolic links are never
//!   replaced or removed (an administrator's own unit of the same name);
//! * before anything is touched, `prepare` checks that a systemd instance
//!   answers, so on a machine without systemd as PID 1 (or without a
//!   `systemd --user` instance) the switch fails cleanly.
//!
//! Not done (yet): boot persistence (`systemctl enable`; an `[Install]`
//! section can be set through `overrides.systemd.Install`, but nothing
//! enables it), and creating the users and groups of `dysnomia-support`.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use nixproc_core::manifest::{Backend, InstanceEntry, Manifest};

use super::activator::{Activator, InstanceStatus};
use super::manifest::within_profile;
use super::runner::{Cmd, CmdOutput, CommandFailed, Runner, DEFAULT_TIMEOUT};
use super::select::ActivatorConfig;

/// Time limit of `systemctl start`/`stop`: systemd's own job timeout
/// (`TimeoutStartSec`, 90 s by default) should end a job first.
pub const JOB_TIMEOUT: Duration = Duration::from_secs(300);

/// How long a unit may stay `activating` after `systemctl start` returned
/// (e.g. while `Restart=` retries) before the start counts as failed.
pub const ACTIVATING_GRACE: Duration = Duration::from_secs(10);

const ACTIVATING_POLL: Duration = Duration::from_millis(250);

/// The unit directory systemd reads for system units.
pub const SYSTEM_TARGET_DIR: &str = "/etc/systemd/system";

pub struct SystemdActivator<R> {
    runner: R,
    user: bool,
    /// Where the links go, or why that cannot be determined.
    target: Result<PathBuf, String>,
    /// Links changed since the last `daemon-reload`.
    reload_needed: AtomicBool,
    /// Held by a start from linking its unit to the `daemon-reload` that
    /// makes systemd see it, so a parallel start cannot clear the flag
    /// between another start's link and its reload.
    reload_lock: Mutex<()>,
    grace: Duration,
}

impl<R: Runner> SystemdActivator<R> {
    /// The target directory comes from the environment (see
    /// [`target_dir`]).
    pub fn new(runner: R, config: &ActivatorConfig) -> Self {
        let user = config.systemd_user;
        SystemdActivator {
            runner,
            user,
            target: target_dir(|k| std::env::var(k).ok(), user),
            reload_needed: AtomicBool::new(false),
            reload_lock: Mutex::new(()),
            grace: ACTIVATING_GRACE,
        }
    }

    /// Uses `dir` instead of the environment's target directory.
    pub fn with_target_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.target = Ok(dir.into());
        self
    }

    /// How long a unit may stay `activating` after its start.
    pub fn with_activating_grace(mut self, grace: Duration) -> Self {
        self.grace = grace;
        self
    }

    pub fn runner(&self) -> &R {
        &self.runner
    }

    pub fn target(&self) -> Result<&Path> {
        self.target.as_deref().map_err(|e| anyhow!("{e}"))
    }

    fn systemctl(&self) -> Cmd {
        let cmd = Cmd::new("systemctl");
        if self.user {
            cmd.arg("--user")
        } else {
            cmd
        }
    }

    fn mode(&self) -> &'static str {
        if self.user {
            "systemctl --user"
        } else {
            "systemctl"
        }
    }

    /// `systemctl status` of `unit`, for error messages (its output
    /// includes the journal's last lines).
    fn status_tail(&self, unit: &str) -> String {
        let cmd = self
            .systemctl()
            .arg("status")
            .arg("--no-pager")
            .arg("--full")
            .arg("--lines=20")
            .arg(unit)
            .timeout(DEFAULT_TIMEOUT);
        match self.runner.run(&cmd) {
            Ok(out) => {
                let tail = out.tail();
                if tail.is_empty() {
                    String::new()
                } else {
                    format!("\n`{cmd}`:\n{}", tail.trim_end())
                }
            }
            Err(e) => format!("\n(`{cmd}` could not run: {e:#})"),
        }
    }

    fn reload_if_needed(&self) -> Result<()> {
        if self.reload_needed.swap(false, Ordering::SeqCst) {
            let cmd = self.systemctl().arg("daemon-reload");
            if let Err(e) = self.runner.run_checked(&cmd) {
                self.reload_needed.store(true, Ordering::SeqCst);
                return Err(e);
            }
        }
        Ok(())
    }

    /// Links `<target>/<unit>` (and `<unit>.wants`) to the resolved files of
    /// `profile`; notes whether anything changed.
    fn install(&self, profile: &Path, inst: &InstanceEntry) -> Result<()> {
        let (unit, rel) = unit_of(inst)?;
        let target = self.target()?;
        let source = profile.join(rel);
        let resolved = fs::canonicalize(&source).with_context(|| {
            format!(
                "{}: unit file {} is not accessible",
                inst.name,
                source.display()
            )
        })?;
        fs::create_dir_all(target)
            .with_context(|| format!("creating the unit directory {}", target.display()))?;
        let mut changed = replace_link(&target.join(unit), &resolved)?;
        let wants_link = target.join(format!("{unit}.wants"));
        let wants = profile.join(format!("{rel}.wants"));
        if wants.is_dir() {
            let resolved = fs::canonicalize(&wants)
                .with_context(|| format!("resolving {}", wants.display()))?;
            if is_real_dir(&wants_link) {
                // Someone's own `systemctl add-wants`; Wants= in the unit
                // carries the dependencies anyway.
            } else {
                changed |= replace_link(&wants_link, &resolved)?;
            }
        } else {
            changed |= remove_link(&wants_link)?;
        }
        if changed {
            self.reload_needed.store(true, Ordering::SeqCst);
        }
        Ok(())
    }

    /// Removes the links of `inst` from the target directory.
    fn uninstall(&self, inst: &InstanceEntry) -> Result<()> {
        let (unit, _) = unit_of(inst)?;
        let target = self.target()?;
        let mut changed = remove_link(&target.join(unit))?;
        changed |= remove_link(&target.join(format!("{unit}.wants")))?;
        if changed {
            self.reload_needed.store(true, Ordering::SeqCst);
        }
        Ok(())
    }

    fn is_active(&self, unit: &str) -> Result<CmdOutput> {
        let cmd = self
            .systemctl()
            .arg("is-active")
            .arg(unit)
            .timeout(DEFAULT_TIMEOUT);
        self.runner.run(&cmd)
    }

    /// Waits (up to the grace period) while the unit is `activating`.
    fn check_active(&self, inst: &InstanceEntry, unit: &str) -> Result<()> {
        let mut waited = Duration::ZERO;
        loop {
            let out = self.is_active(unit)?;
            let state = out.stdout.trim();
            match state {
                "active" => return Ok(()),
                "activating" | "reloading" if waited < self.grace => {
                    std::thread::sleep(ACTIVATING_POLL);
                    waited += ACTIVATING_POLL;
                }
                _ => {
                    let state = if state.is_empty() { "unknown" } else { state };
                    bail!(
                        "{}: {unit} is {state} after `{} start`{}",
                        inst.name,
                        self.mode(),
                        self.status_tail(unit)
                    )
                }
            }
        }
    }

    /// Points the links of instances kept running by a switch at the new
    /// profile's files (same content), so they survive garbage collection of
    /// the old generation.
    fn refresh_links(&self, new_profile: &Path, new: &Manifest) -> Result<()> {
        let target = self.target()?;
        for inst in &new.instances {
            let (unit, _) = unit_of(inst)?;
            let link = target.join(unit);
            if fs::symlink_metadata(&link).is_ok_and(|m| m.file_type().is_symlink()) {
                self.install(new_profile, inst)?;
            }
        }
        Ok(())
    }
}

impl<R: Runner> Activator for SystemdActivator<R> {
    fn process_manager(&self) -> &str {
        "systemd"
    }

    fn prepare(&self, _new_profile: &Path, _new: &Manifest) -> Result<()> {
        self.target()?;
        let cmd = self
            .systemctl()
            .arg("show")
            .arg("--property=Version")
            .timeout(Duration::from_secs(20));
        let out = self.runner.run(&cmd)?;
        if out.success() {
            return Ok(());
        }
        let why = if self.user {
            "with --user, a `systemd --user` instance must be running for this user and \
             XDG_RUNTIME_DIR must point at its runtime directory (e.g. /run/user/$UID; \
             `loginctl enable-linger` keeps one running without a login session)"
        } else {
            "this machine does not run systemd as PID 1 (use another process manager, e.g. \
             sysvinit or supervisord, or --user with a running `systemd --user`)"
        };
        bail!(
            "no systemd instance is reachable: {why}\n{}",
            CommandFailed { cmd, output: out }
        )
    }

    fn finish(&self, new_profile: &Path, new: &Manifest) -> Result<()> {
        self.refresh_links(new_profile, new)?;
        self.reload_if_needed()
    }

    fn start(&self, profile: &Path, inst: &InstanceEntry) -> Result<()> {
        let (unit, _) = unit_of(inst)?;
        if let (true, Some(u)) = (self.user, &inst.user) {
            bail!(
                "{}: the unit sets User={u}, but a `systemd --user` instance cannot switch \
                 users; build the profile with forceDisableUserChange = true",
                inst.name
            );
        }
        {
            let _linking = self.reload_lock.lock().unwrap_or_else(|e| e.into_inner());
            self.install(profile, inst)?;
            self.reload_if_needed()?;
        }
        let cmd = self.systemctl().arg("start").arg(unit).timeout(JOB_TIMEOUT);
        let out = self.runner.run(&cmd)?;
        if !out.success() {
            bail!(
                "{}{}",
                CommandFailed { cmd, output: out },
                self.status_tail(unit)
            );
        }
        self.check_active(inst, unit)
    }

    fn stop(&self, _profile: &Path, inst: &InstanceEntry) -> Result<()> {
        let (unit, _) = unit_of(inst)?;
        let cmd = self.systemctl().arg("stop").arg(unit).timeout(JOB_TIMEOUT);
        // A unit that did not stop keeps its links: it still belongs to the
        // generation that stays current.
        self.runner.run_checked(&cmd)?;
        self.uninstall(inst)
    }

    fn status(&self, _profile: &Path, inst: &InstanceEntry) -> Result<InstanceStatus> {
        let (unit, _) = unit_of(inst)?;
        let out = self.is_active(unit)?;
        Ok(match out.stdout.trim() {
            "active" | "reloading" => InstanceStatus::Running,
            "inactive" | "failed" => InstanceStatus::Stopped,
            _ => InstanceStatus::Unknown { code: out.code() },
        })
    }
}

/// The directory the unit links go to: `$SYSTEMD_TARGET_DIR`, else
/// `/etc/systemd/system`, or for `--user` `$XDG_CONFIG_HOME/systemd/user`
/// (an absolute `XDG_CONFIG_HOME` only, as the XDG spec says) or
/// `$HOME/.config/systemd/user`.
pub fn target_dir(env: impl Fn(&str) -> Option<String>, user: bool) -> Result<PathBuf, String> {
    let set = |k: &str| env(k).filter(|v| !v.is_empty());
    if let Some(dir) = set("SYSTEMD_TARGET_DIR") {
        return Ok(PathBuf::from(dir));
    }
    if !user {
        return Ok(PathBuf::from(SYSTEM_TARGET_DIR));
    }
    if let Some(xdg) = set("XDG_CONFIG_HOME").filter(|x| x.starts_with('/')) {
        return Ok(Path::new(&xdg).join("systemd/user"));
    }
    match set("HOME") {
        Some(home) => Ok(Path::new(&home).join(".config/systemd/user")),
        None => Err(
            "cannot find the user unit directory: neither SYSTEMD_TARGET_DIR, \
                     XDG_CONFIG_HOME nor HOME is set"
                .into(),
        ),
    }
}

/// The unit file name and its path in the profile, checked.
fn unit_of(inst: &InstanceEntry) -> Result<(&str, &str)> {
    let (unit, path) = match &inst.backend {
        Backend::Systemd { unit, path } => (unit.as_str(), path.as_str()),
        _ => bail!("{} is not a systemd instance", inst.name),
    };
    let plain = !unit.is_empty() && !unit.contains('/') && !unit.starts_with('.');
    if !plain || !unit.ends_with(".service") {
        bail!("{}: `{unit}` is not a service unit name", inst.name);
    }
    if !within_profile(path) {
        bail!(
            "{}: unit path `{path}` must be relative to the profile, without `..`",
            inst.name
        );
    }
    Ok((unit, path))
}

fn is_real_dir(p: &Path) -> bool {
    fs::symlink_metadata(p).is_ok_and(|m| m.file_type().is_dir())
}

/// Makes `link` a symbolic link to `to`; `Ok(true)` when it changed.
/// Anything at `link` that is not a symbolic link is left alone (error).
fn replace_link(link: &Path, to: &Path) -> Result<bool> {
    match fs::symlink_metadata(link) {
        Ok(m) if m.file_type().is_symlink() => {
            if fs::read_link(link)? == to {
                return Ok(false);
            }
            // Atomic replacement: a new link beside it, renamed over it.
            let name = link
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let tmp = link.with_file_name(format!(".{name}.nixproc-new"));
            let _ = fs::remove_file(&tmp);
            std::os::unix::fs::symlink(to, &tmp)
                .with_context(|| format!("creating {}", tmp.display()))?;
            fs::rename(&tmp, link).with_context(|| format!("replacing {}", link.display()))?;
            Ok(true)
        }
        Ok(_) => bail!(
            "{} exists and is not a symbolic link; nixproc only replaces the links it \
             creates (move that file away to deploy this unit)",
            link.display()
        ),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            std::os::unix::fs::symlink(to, link)
                .with_context(|| format!("creating {}", link.display()))?;
            Ok(true)
        }
        Err(e) => Err(e).with_context(|| format!("inspecting {}", link.display())),
    }
}

/// Removes `link` when it is a symbolic link; `Ok(true)` when it did.
fn remove_link(link: &Path) -> Result<bool> {
    match fs::symlink_metadata(link) {
        Ok(m) if m.file_type().is_symlink() => {
            fs::remove_file(link).with_context(|| format!("removing {}", link.display()))?;
            Ok(true)
        }
        Ok(_) => Ok(false),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e).with_context(|| format!("inspecting {}", link.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deploy::engine::DeployError;
    use crate::deploy::runner::{ExitKind, RecordingRunner};
    use crate::deploy::testutil::switch;
    use crate::state_dirs::StateDirs;
    use nixproc_core::manifest::MANIFEST_VERSION;

    fn sd_inst(name: &str, rev: &str, deps: &[&str]) -> InstanceEntry {
        let base = format!("nix-process-{name}");
        InstanceEntry {
            key: name.to_string(),
            name: base.clone(),
            description: format!("{name} service"),
            revision: rev.to_string(),
            dependencies: deps.iter().map(|d| format!("nix-process-{d}")).collect(),
            pid_file: None,
            log_file: None,
            user: None,
            backend: Backend::Systemd {
                unit: format!("{base}.service"),
                path: format!("etc/systemd/system/{base}.service"),
            },
            state: None,
            readiness: None,
        }
    }

    fn sd_manifest(instances: Vec<InstanceEntry>) -> Manifest {
        Manifest {
            version: MANIFEST_VERSION,
            process_manager: "systemd".into(),
            instances,
        }
    }

    /// A profile with each unit file (its text names the revision) and the
    /// `.wants` links of its dependencies, as the generator lays them out.
    fn write_profile(dir: &Path, m: &Manifest) {
        let units = dir.join("etc/systemd/system");
        fs::create_dir_all(&units).unwrap();
        for e in &m.instances {
            let Backend::Systemd { unit, .. } = &e.backend else {
                unreachable!()
            };
            fs::write(
                units.join(unit),
                format!("[Service]\nExecStart=/bin/true {}\n", e.revision),
            )
            .unwrap();
            if !e.dependencies.is_empty() {
                let wants = units.join(format!("{unit}.wants"));
                fs::create_dir_all(&wants).unwrap();
                for d in &e.dependencies {
                    std::os::unix::fs::symlink(
                        format!("../{d}.service"),
                        wants.join(format!("{d}.service")),
                    )
                    .unwrap();
                }
            }
        }
    }

    fn config(user: bool) -> ActivatorConfig {
        ActivatorConfig {
            state: StateDirs::default(),
            force_disable_user_change: false,
            runlevel: 3,
            systemd_user: user,
            enable_at_boot: false,
        }
    }

    fn active() -> CmdOutput {
        CmdOutput {
            exit: ExitKind::Exited(0),
            stdout: "active\n".into(),
            stderr: String::new(),
        }
    }

    fn stdout(code: i32, text: &str) -> CmdOutput {
        CmdOutput {
            exit: ExitKind::Exited(code),
            stdout: text.into(),
            stderr: String::new(),
        }
    }

    struct Env {
        tmp: tempfile::TempDir,
        target: PathBuf,
    }

    impl Env {
        fn new() -> Env {
            let tmp = tempfile::tempdir().unwrap();
            let target = tmp.path().join("target");
            Env { tmp, target }
        }

        fn profile(&self, name: &str, m: &Manifest) -> PathBuf {
            let p = self.tmp.path().join(name);
            write_profile(&p, m);
            fs::canonicalize(p).unwrap()
        }

        fn activator(
            &self,
            runner: RecordingRunner,
            user: bool,
        ) -> SystemdActivator<RecordingRunner> {
            SystemdActivator::new(runner, &config(user))
                .with_target_dir(&self.target)
                .with_activating_grace(Duration::ZERO)
        }

        fn link(&self, name: &str) -> Option<PathBuf> {
            fs::read_link(self.target.join(name)).ok()
        }
    }

    /// prepare, execute, finish: what a switch does with the activator.

    #[test]
    fn first_deploy_links_reloads_starts_and_checks() {
        let env = Env::new();
        let m = sd_manifest(vec![sd_inst("db", "1", &[]), sd_inst("web", "1", &["db"])]);
        let p1 = env.profile("p1", &m);
        let act = env.activator(RecordingRunner::new().respond("is-active", active()), false);
        switch(&act, None, (&p1, &m)).unwrap();
        assert_eq!(
            act.runner().lines(Path::new("")),
            [
                "systemctl show --property=Version",
                "systemctl daemon-reload",
                "systemctl start nix-process-db.service",
                "systemctl is-active nix-process-db.service",
                "systemctl daemon-reload",
                "systemctl start nix-process-web.service",
                "systemctl is-active nix-process-web.service",
            ]
        );
        let units = p1.join("etc/systemd/system");
        assert_eq!(
            env.link("nix-process-web.service"),
            Some(units.join("nix-process-web.service"))
        );
        assert_eq!(
            env.link("nix-process-web.service.wants"),
            Some(units.join("nix-process-web.service.wants"))
        );
        assert_eq!(env.link("nix-process-db.service.wants"), None);
        // The dependency resolves through the target directory.
        let dep = env
            .target
            .join("nix-process-web.service.wants/nix-process-db.service");
        assert_eq!(
            fs::read_link(dep).unwrap(),
            Path::new("../nix-process-db.service")
        );
    }

    #[test]
    fn switch_with_one_changed_unit() {
        let env = Env::new();
        let old = sd_manifest(vec![sd_inst("a", "1", &[]), sd_inst("b", "1", &[])]);
        let new = sd_manifest(vec![sd_inst("a", "2", &[]), sd_inst("b", "1", &[])]);
        let (p1, p2) = (env.profile("p1", &old), env.profile("p2", &new));
        let act = env.activator(RecordingRunner::new().respond("is-active", active()), false);
        switch(&act, None, (&p1, &old)).unwrap();
        let act = env.activator(RecordingRunner::new().respond("is-active", active()), false);
        switch(&act, Some((&p1, &old)), (&p2, &new)).unwrap();
        assert_eq!(
            act.runner().lines(Path::new("")),
            [
                "systemctl show --property=Version",
                "systemctl stop nix-process-a.service",
                "systemctl daemon-reload",
                "systemctl start nix-process-a.service",
                "systemctl is-active nix-process-a.service",
                // finish: the kept unit b now points into the new profile.
                "systemctl daemon-reload",
            ]
        );
        let units = p2.join("etc/systemd/system");
        for u in ["nix-process-a.service", "nix-process-b.service"] {
            assert_eq!(env.link(u), Some(units.join(u)));
        }
    }

    #[test]
    fn unchanged_links_need_no_reload() {
        let env = Env::new();
        let m = sd_manifest(vec![sd_inst("a", "1", &[])]);
        let p1 = env.profile("p1", &m);
        let act = env.activator(RecordingRunner::new().respond("is-active", active()), false);
        act.start(&p1, &m.instances[0]).unwrap();
        act.start(&p1, &m.instances[0]).unwrap();
        act.finish(&p1, &m).unwrap();
        assert_eq!(
            act.runner().lines(Path::new("")),
            [
                "systemctl daemon-reload",
                "systemctl start nix-process-a.service",
                "systemctl is-active nix-process-a.service",
                "systemctl start nix-process-a.service",
                "systemctl is-active nix-process-a.service",
            ]
        );
    }

    #[test]
    fn undeploy_stops_in_reverse_order_and_removes_links() {
        let env = Env::new();
        let m = sd_manifest(vec![sd_inst("db", "1", &[]), sd_inst("web", "1", &["db"])]);
        let p1 = env.profile("p1", &m);
        let act = env.activator(RecordingRunner::new().respond("is-active", active()), false);
        switch(&act, None, (&p1, &m)).unwrap();
        let empty = sd_manifest(vec![]);
        let p0 = env.profile("p0", &empty);
        let act = env.activator(RecordingRunner::new(), false);
        switch(&act, Some((&p1, &m)), (&p0, &empty)).unwrap();
        assert_eq!(
            act.runner().lines(Path::new("")),
            [
                "systemctl show --property=Version",
                "systemctl stop nix-process-web.service",
                "systemctl stop nix-process-db.service",
                "systemctl daemon-reload",
            ]
        );
        assert_eq!(fs::read_dir(&env.target).unwrap().count(), 0);
    }

    #[test]
    fn user_mode_passes_user_everywhere() {
        let env = Env::new();
        let m = sd_manifest(vec![sd_inst("a", "1", &[])]);
        let p1 = env.profile("p1", &m);
        let act = env.activator(RecordingRunner::new().respond("is-active", active()), true);
        switch(&act, None, (&p1, &m)).unwrap();
        act.stop(&p1, &m.instances[0]).unwrap();
        act.status(&p1, &m.instances[0]).unwrap();
        assert_eq!(
            act.runner().lines(Path::new("")),
            [
                "systemctl --user show --property=Version",
                "systemctl --user daemon-reload",
                "systemctl --user start nix-process-a.service",
                "systemctl --user is-active nix-process-a.service",
                "systemctl --user stop nix-process-a.service",
                "systemctl --user is-active nix-process-a.service",
            ]
        );
    }

    #[test]
    fn user_mode_refuses_units_that_switch_users() {
        let env = Env::new();
        let mut inst = sd_inst("a", "1", &[]);
        inst.user = Some("web".into());
        let m = sd_manifest(vec![inst]);
        let p1 = env.profile("p1", &m);
        let act = env.activator(RecordingRunner::new(), true);
        let e = act.start(&p1, &m.instances[0]).unwrap_err().to_string();
        assert_eq!(
            e,
            "nix-process-a: the unit sets User=web, but a `systemd --user` instance cannot \
             switch users; build the profile with forceDisableUserChange = true"
        );
        assert!(act.runner().commands().is_empty());
        assert!(!env.target.exists());
    }

    #[test]
    fn target_directory_rules() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            }
        };
        assert_eq!(
            target_dir(env(&[("HOME", "/home/u")]), false).unwrap(),
            Path::new("/etc/systemd/system")
        );
        assert_eq!(
            target_dir(env(&[("SYSTEMD_TARGET_DIR", "/t"), ("HOME", "/h")]), true).unwrap(),
            Path::new("/t")
        );
        assert_eq!(
            target_dir(env(&[("SYSTEMD_TARGET_DIR", "/t")]), false).unwrap(),
            Path::new("/t")
        );
        assert_eq!(
            target_dir(env(&[("XDG_CONFIG_HOME", "/x"), ("HOME", "/h")]), true).unwrap(),
            Path::new("/x/systemd/user")
        );
        assert_eq!(
            target_dir(env(&[("XDG_CONFIG_HOME", "rel"), ("HOME", "/h")]), true).unwrap(),
            Path::new("/h/.config/systemd/user")
        );
        assert_eq!(
            target_dir(env(&[("SYSTEMD_TARGET_DIR", "")]), true).unwrap_err(),
            "cannot find the user unit directory: neither SYSTEMD_TARGET_DIR, XDG_CONFIG_HOME \
             nor HOME is set"
        );
    }

    #[test]
    fn failed_start_reports_status_and_rolls_back() {
        let env = Env::new();
        let old = sd_manifest(vec![sd_inst("a", "1", &[])]);
        let new = sd_manifest(vec![sd_inst("a", "2", &[])]);
        let (p1, p2) = (env.profile("p1", &old), env.profile("p2", &new));
        let act = env.activator(RecordingRunner::new().respond("is-active", active()), false);
        switch(&act, None, (&p1, &old)).unwrap();

        let runner = RecordingRunner::new()
            .respond("is-active", active())
            .respond(
                "status",
                stdout(
                    3,
                    "× nix-process-a.service\n     Active: failed\nboom: port in use\n",
                ),
            );
        // Every start of the unit fails, the rollback's restart of the old
        // version too; the failure records that.
        let runner = runner.fail(
            "start nix-process-a.service",
            "Job for nix-process-a.service failed because the control process exited with error code.",
        );
        let act = env.activator(runner, false);
        let err = switch(&act, Some((&p1, &old)), (&p2, &new)).unwrap_err();
        let DeployError::Activation(f) = &err else {
            panic!("{err}")
        };
        assert!(!f.restored());
        let msg = &f.failed.error;
        assert!(
            msg.starts_with(
                "`systemctl start nix-process-a.service` exited with status 1\nstderr:\n  \
                 Job for nix-process-a.service failed"
            ),
            "{msg}"
        );
        assert!(
            msg.ends_with(
                "`systemctl status --no-pager --full --lines=20 nix-process-a.service`:\n\
                 stdout:\n  × nix-process-a.service\n       Active: failed\n  boom: port in use"
            ),
            "{msg}"
        );
        let lines = act.runner().lines(Path::new(""));
        assert_eq!(
            lines[..6],
            [
                "systemctl show --property=Version",
                "systemctl stop nix-process-a.service",
                "systemctl daemon-reload",
                "systemctl start nix-process-a.service",
                "systemctl status --no-pager --full --lines=20 nix-process-a.service",
                // rollback: clean up the failed new version, restart the old one
                "systemctl stop nix-process-a.service",
            ]
        );
        assert_eq!(
            lines[6..],
            [
                "systemctl daemon-reload",
                "systemctl start nix-process-a.service",
                "systemctl status --no-pager --full --lines=20 nix-process-a.service",
            ]
        );
    }

    #[test]
    fn start_must_end_active() {
        let env = Env::new();
        let m = sd_manifest(vec![sd_inst("a", "1", &[])]);
        let p1 = env.profile("p1", &m);
        let runner = RecordingRunner::new()
            .respond("is-active", stdout(3, "failed\n"))
            .respond(
                "status",
                stdout(3, "Main process exited, code=exited, status=1/FAILURE\n"),
            );
        let act = env.activator(runner, false);
        let e = act.start(&p1, &m.instances[0]).unwrap_err().to_string();
        assert_eq!(
            e,
            "nix-process-a: nix-process-a.service is failed after `systemctl start`\n\
             `systemctl status --no-pager --full --lines=20 nix-process-a.service`:\n\
             stdout:\n  Main process exited, code=exited, status=1/FAILURE"
        );
        // Still activating after the grace period: failed too.
        let runner = RecordingRunner::new().respond("is-active", stdout(3, "activating\n"));
        let act = env.activator(runner, false);
        let e = act.start(&p1, &m.instances[0]).unwrap_err().to_string();
        assert!(
            e.starts_with("nix-process-a: nix-process-a.service is activating after"),
            "{e}"
        );
    }

    #[test]
    fn unreachable_manager_fails_before_anything_is_touched() {
        let env = Env::new();
        let m = sd_manifest(vec![sd_inst("a", "1", &[])]);
        let p1 = env.profile("p1", &m);
        let runner = RecordingRunner::new().fail(
            "show",
            "System has not been booted with systemd as init system (PID 1). Can't operate.",
        );
        let act = env.activator(runner, false);
        let e = switch(&act, None, (&p1, &m)).unwrap_err().to_string();
        assert_eq!(
            e,
            "no systemd instance is reachable: this machine does not run systemd as PID 1 (use \
             another process manager, e.g. sysvinit or supervisord, or --user with a running \
             `systemd --user`)\n`systemctl show --property=Version` exited with status 1\n\
             stderr:\n  System has not been booted with systemd as init system (PID 1). Can't \
             operate."
        );
        assert_eq!(act.runner().commands().len(), 1);
        assert!(!env.target.exists());

        let runner =
            RecordingRunner::new().fail("show", "Failed to connect to bus: No medium found");
        let act = env.activator(runner, true);
        let e = act.prepare(&p1, &m).unwrap_err().to_string();
        assert!(
            e.starts_with(
                "no systemd instance is reachable: with --user, a `systemd --user` instance \
                 must be running for this user and XDG_RUNTIME_DIR"
            ),
            "{e}"
        );
    }

    #[test]
    fn status_from_is_active() {
        let env = Env::new();
        let inst = sd_inst("a", "1", &[]);
        for (answer, expected) in [
            (stdout(0, "active\n"), InstanceStatus::Running),
            (stdout(0, "reloading\n"), InstanceStatus::Running),
            (stdout(3, "inactive\n"), InstanceStatus::Stopped),
            (stdout(3, "failed\n"), InstanceStatus::Stopped),
            (
                stdout(3, "activating\n"),
                InstanceStatus::Unknown { code: Some(3) },
            ),
            (stdout(1, ""), InstanceStatus::Unknown { code: Some(1) }),
        ] {
            let act = env.activator(RecordingRunner::new().respond("is-active", answer), false);
            assert_eq!(act.status(env.tmp.path(), &inst).unwrap(), expected);
        }
    }

    #[test]
    fn foreign_files_are_not_replaced_or_removed() {
        let env = Env::new();
        let m = sd_manifest(vec![sd_inst("a", "1", &["b"])]);
        let p1 = env.profile("p1", &m);
        fs::create_dir_all(&env.target).unwrap();
        let own = env.target.join("nix-process-a.service");
        fs::write(&own, "[Service]\nExecStart=/bin/admin\n").unwrap();
        let act = env.activator(RecordingRunner::new(), false);
        let e = act.start(&p1, &m.instances[0]).unwrap_err().to_string();
        assert!(e.ends_with("nix-process-a.service exists and is not a symbolic link; nixproc only replaces the links it creates (move that file away to deploy this unit)"), "{e}");
        act.stop(&p1, &m.instances[0]).unwrap();
        assert!(own.is_file());
        assert!(act
            .runner()
            .lines(Path::new(""))
            .iter()
            .all(|l| !l.contains("start")));

        // An administrator's own .wants directory stays; the unit deploys.
        fs::remove_file(&own).unwrap();
        let wants = env.target.join("nix-process-a.service.wants");
        fs::create_dir(&wants).unwrap();
        let act = env.activator(RecordingRunner::new().respond("is-active", active()), false);
        act.start(&p1, &m.instances[0]).unwrap();
        assert!(is_real_dir(&wants));
        act.stop(&p1, &m.instances[0]).unwrap();
        assert!(is_real_dir(&wants));
    }

    #[test]
    fn bad_manifest_entries() {
        let env = Env::new();
        let act = env.activator(RecordingRunner::new(), false);
        let mut bad = sd_inst("a", "1", &[]);
        bad.backend = Backend::Systemd {
            unit: "../x.service".into(),
            path: "etc/systemd/system/x.service".into(),
        };
        assert_eq!(
            act.start(env.tmp.path(), &bad).unwrap_err().to_string(),
            "nix-process-a: `../x.service` is not a service unit name"
        );
        bad.backend = Backend::Systemd {
            unit: "x.service".into(),
            path: "../../etc/passwd".into(),
        };
        assert!(act
            .stop(env.tmp.path(), &bad)
            .unwrap_err()
            .to_string()
            .contains("must be relative to the profile"));
        let missing = sd_inst("a", "1", &[]);
        let e = act.start(env.tmp.path(), &missing).unwrap_err().to_string();
        assert!(
            e.contains("unit file") && e.contains("is not accessible"),
            "{e}"
        );
        assert!(act.runner().commands().is_empty());
    }
}
