//! The bsdrc activator (reference §5.7 "bsdrc"): runs the profile's rc.d
//! scripts.
//!
//! * start  = `<new profile>/etc/rc.d/<name> onestart`
//! * stop   = `<old profile>/etc/rc.d/<name> onestop`
//! * status = `<profile>/etc/rc.d/<name> onestatus`: 0 running, 1 stopped,
//!   anything else unknown
//!
//! With `--enable-at-boot` (defect 9: the original parsed the flag and
//! never used it, and its code for it wrote to `/usr/local/etc`):
//!
//! * start links the script into `$BSDRC_TARGET_DIR` (default
//!   `/usr/local/etc/rc.d`, where FreeBSD's `rc` finds local scripts),
//!   sets `<rcvar>="YES"` in `$BSDRC_RC_CONF` (default `/etc/rc.conf`;
//!   idempotent, an existing assignment of the variable is replaced) and
//!   runs `<link> start`;
//! * stop runs `<link> stop`, removes the assignment and the link.
//!
//! The enable variable is the script's `rcvar=` line (the generator writes
//! it literally, e.g. `rcvar=webapp_enabled`); a script without one needs
//! no rc.conf line. Links point at the resolved store file, and a file in
//! the target directory that is not a symbolic link is never touched.
//!
//! Order comes from the engine (manifest dependency order, reversed for
//! stops); `rcorder` is not needed. A start is only successful when the
//! script reports the process running (`onestatus` 0, polled for a few
//! seconds) if the manifest knows a PID file: rc.subr's `start` of a script
//! that is not enabled prints a notice and exits 0. A stop that fails
//! while `onestatus` says "not running" (1) counts as done: the process is
//! gone either way.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use nixproc_core::manifest::{Backend, InstanceEntry};

use super::activator::{Activator, InstanceStatus};
use super::manifest::within_profile;
use super::runner::{Cmd, CmdOutput, CommandFailed, Runner, DEFAULT_TIMEOUT};
use super::select::ActivatorConfig;

/// Where FreeBSD's `rc` looks for local scripts.
pub const DEFAULT_TARGET_DIR: &str = "/usr/local/etc/rc.d";

/// The rc.conf that enables scripts at boot.
pub const DEFAULT_RC_CONF: &str = "/etc/rc.conf";

/// How long a started process may take to be reported running.
pub const STATUS_WAIT: Duration = Duration::from_secs(10);

const STATUS_POLL: Duration = Duration::from_millis(200);

pub struct BsdrcActivator<R> {
    runner: R,
    enable_at_boot: bool,
    target_dir: PathBuf,
    rc_conf: PathBuf,
    timeout: Duration,
    status_wait: Duration,
    /// rc.conf is edited read-modify-write: one edit at a time when
    /// instances start or stop in parallel.
    rc_conf_lock: std::sync::Mutex<()>,
}

impl<R: Runner> BsdrcActivator<R> {
    /// Target dir and rc.conf from `$BSDRC_TARGET_DIR` / `$BSDRC_RC_CONF`.
    pub fn new(runner: R, config: &ActivatorConfig) -> Self {
        let env = |k: &str, default: &str| {
            std::env::var_os(k)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from(default))
        };
        BsdrcActivator {
            runner,
            enable_at_boot: config.enable_at_boot,
            target_dir: env("BSDRC_TARGET_DIR", DEFAULT_TARGET_DIR),
            rc_conf: env("BSDRC_RC_CONF", DEFAULT_RC_CONF),
            timeout: DEFAULT_TIMEOUT,
            status_wait: STATUS_WAIT,
            rc_conf_lock: std::sync::Mutex::new(()),
        }
    }

    pub fn runner(&self) -> &R {
        &self.runner
    }

    pub fn with_target_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.target_dir = dir.into();
        self
    }

    pub fn with_rc_conf(mut self, file: impl Into<PathBuf>) -> Self {
        self.rc_conf = file.into();
        self
    }

    pub fn with_enable_at_boot(mut self, on: bool) -> Self {
        self.enable_at_boot = on;
        self
    }

    /// How long a start waits for `onestatus` to report the process.
    pub fn with_status_wait(mut self, wait: Duration) -> Self {
        self.status_wait = wait;
        self
    }

    fn script(profile: &Path, inst: &InstanceEntry) -> Result<PathBuf> {
        let Backend::Bsdrc { script } = &inst.backend else {
            bail!("{} is not a bsdrc instance", inst.name)
        };
        let rel = Path::new(script);
        if !within_profile(script) {
            bail!(
                "{}: rc script path `{script}` must be relative to the profile, without `..`",
                inst.name
            );
        }
        let path = profile.join(rel);
        if !path.exists() {
            bail!("{}: rc script {} does not exist", inst.name, path.display());
        }
        Ok(path)
    }

    /// `<target dir>/<script file name>`.
    fn installed(&self, script: &Path) -> PathBuf {
        self.target_dir
            .join(script.file_name().unwrap_or(script.as_os_str()))
    }

    fn cmd(&self, script: &Path, arg: &str) -> Cmd {
        Cmd::new(script).arg(arg).timeout(self.timeout)
    }

    fn onestatus(&self, script: &Path) -> Result<CmdOutput> {
        self.runner.run(&self.cmd(script, "onestatus"))
    }

    /// After a start: the process must be reported running (when the
    /// manifest knows its PID file), within the status wait.
    fn check_running(&self, inst: &InstanceEntry, script: &Path, how: &str) -> Result<()> {
        if inst.pid_file.is_none() {
            return Ok(());
        }
        let mut waited = Duration::ZERO;
        loop {
            let out = self.onestatus(script)?;
            if out.success() {
                return Ok(());
            }
            if waited >= self.status_wait {
                let mut msg = format!(
                    "{}: not running after `{how}` (`{} onestatus` {})",
                    inst.name,
                    script.display(),
                    out.exit
                );
                let tail = out.tail();
                if !tail.is_empty() {
                    msg.push('\n');
                    msg.push_str(tail.trim_end());
                }
                if let Some(log) = &inst.log_file {
                    msg.push_str(&format!("\n(its output goes to {log})"));
                }
                bail!(msg)
            }
            std::thread::sleep(STATUS_POLL);
            waited += STATUS_POLL;
        }
    }

    fn enable(&self, inst: &InstanceEntry, script: &Path) -> Result<PathBuf> {
        let resolved = fs::canonicalize(script)
            .with_context(|| format!("{}: resolving {}", inst.name, script.display()))?;
        fs::create_dir_all(&self.target_dir)
            .with_context(|| format!("creating {}", self.target_dir.display()))?;
        let link = self.installed(script);
        replace_link(&link, &resolved)?;
        if let Some(var) = rcvar_of(&resolved)? {
            let _edit = self.rc_conf_lock.lock().unwrap_or_else(|e| e.into_inner());
            edit_rc_conf(&self.rc_conf, &var, true)?;
        }
        Ok(link)
    }

    fn disable(&self, inst: &InstanceEntry, script: &Path) -> Result<()> {
        let link = self.installed(script);
        let source = if is_symlink(&link) {
            link.clone()
        } else {
            script.to_path_buf()
        };
        if let Some(var) = rcvar_of(&source)
            .with_context(|| format!("{}: reading {}", inst.name, source.display()))?
        {
            let _edit = self.rc_conf_lock.lock().unwrap_or_else(|e| e.into_inner());
            edit_rc_conf(&self.rc_conf, &var, false)?;
        }
        remove_link(&link)
    }

    fn stop_with(&self, inst: &InstanceEntry, script: &Path, arg: &str) -> Result<()> {
        let cmd = self.cmd(script, arg);
        let out = self.runner.run(&cmd)?;
        if out.success() {
            return Ok(());
        }
        // rc.subr's stop fails when the process is not running: then it is
        // stopped as far as the switch is concerned.
        let status = self.onestatus(script)?;
        if status.code() == Some(1) {
            return Ok(());
        }
        Err(CommandFailed { cmd, output: out })
            .with_context(|| format!("{}: stopping failed", inst.name))
    }
}

impl<R: Runner> Activator for BsdrcActivator<R> {
    fn process_manager(&self) -> &str {
        "bsdrc"
    }

    fn start(&self, profile: &Path, inst: &InstanceEntry) -> Result<()> {
        let script = Self::script(profile, inst)?;
        let (run, arg) = if self.enable_at_boot {
            (self.enable(inst, &script)?, "start")
        } else {
            (script.clone(), "onestart")
        };
        self.runner.run_checked(&self.cmd(&run, arg))?;
        self.check_running(inst, &script, &format!("{} {arg}", run.display()))
    }

    fn stop(&self, profile: &Path, inst: &InstanceEntry) -> Result<()> {
        let script = Self::script(profile, inst)?;
        if self.enable_at_boot {
            let link = self.installed(&script);
            if is_symlink(&link) {
                self.stop_with(inst, &link, "stop")?;
            } else {
                self.stop_with(inst, &script, "onestop")?;
            }
            self.disable(inst, &script)
        } else {
            self.stop_with(inst, &script, "onestop")
        }
    }

    fn status(&self, profile: &Path, inst: &InstanceEntry) -> Result<InstanceStatus> {
        let script = Self::script(profile, inst)?;
        let out = self.onestatus(&script)?;
        Ok(match out.code() {
            Some(0) => InstanceStatus::Running,
            Some(1) => InstanceStatus::Stopped,
            code => InstanceStatus::Unknown { code },
        })
    }
}

/// The enable variable of an rc.d script: its first `rcvar=<identifier>`
/// line (`None` when it has none).
pub fn rcvar_of(script: &Path) -> Result<Option<String>> {
    let text =
        fs::read_to_string(script).with_context(|| format!("reading {}", script.display()))?;
    for line in text.lines() {
        if let Some(v) = line.strip_prefix("rcvar=") {
            let v = v.trim().trim_matches('"');
            if v.is_empty() {
                return Ok(None);
            }
            if !v.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                bail!(
                    "{}: cannot enable it at boot: `rcvar={v}` is not a plain variable name",
                    script.display()
                );
            }
            return Ok(Some(v.to_string()));
        }
    }
    Ok(None)
}

/// Sets (`enable`) or removes the assignment `<var>="YES"` in an rc.conf;
/// other lines stay as they are. Writes only when something changes.
pub fn edit_rc_conf(rc_conf: &Path, var: &str, enable: bool) -> Result<()> {
    let old = match fs::read_to_string(rc_conf) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(e).with_context(|| format!("reading {}", rc_conf.display())),
    };
    let assigns = |l: &str| {
        l.trim_start()
            .strip_prefix(var)
            .is_some_and(|rest| rest.starts_with('='))
    };
    let wanted = format!("{var}=\"YES\"");
    let mut lines: Vec<&str> = Vec::new();
    let mut done = false;
    for l in old.lines() {
        if assigns(l) {
            if enable && !done {
                lines.push(&wanted);
                done = true;
            }
            continue;
        }
        lines.push(l);
    }
    if enable && !done {
        lines.push(&wanted);
    }
    let mut new = lines.join("\n");
    if !new.is_empty() {
        new.push('\n');
    }
    if new == old {
        return Ok(());
    }
    if let Some(dir) = rc_conf.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let tmp = rc_conf.with_extension("nixproc-new");
    fs::write(&tmp, new).with_context(|| format!("writing {}", tmp.display()))?;
    if let Ok(m) = fs::metadata(rc_conf) {
        let _ = fs::set_permissions(&tmp, m.permissions());
    }
    fs::rename(&tmp, rc_conf).with_context(|| format!("replacing {}", rc_conf.display()))
}

fn is_symlink(p: &Path) -> bool {
    fs::symlink_metadata(p).is_ok_and(|m| m.file_type().is_symlink())
}

/// Makes `link` a symbolic link to `to`. Anything at `link` that is not a
/// symbolic link is left alone (error).
fn replace_link(link: &Path, to: &Path) -> Result<()> {
    match fs::symlink_metadata(link) {
        Ok(m) if m.file_type().is_symlink() => {
            if fs::read_link(link)? == to {
                return Ok(());
            }
            fs::remove_file(link).with_context(|| format!("replacing {}", link.display()))?;
        }
        Ok(_) => bail!(
            "{} exists and is not a symbolic link; nixproc only replaces the links it creates",
            link.display()
        ),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("inspecting {}", link.display())),
    }
    std::os::unix::fs::symlink(to, link).with_context(|| format!("creating {}", link.display()))
}

fn remove_link(link: &Path) -> Result<()> {
    if is_symlink(link) {
        fs::remove_file(link).with_context(|| format!("removing {}", link.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deploy::engine::{execute, Context as DeployContext};
    use crate::deploy::plan::plan;
    use crate::deploy::progress::RecordingProgress;
    use crate::deploy::runner::{ExitKind, RecordingRunner};
    use nixproc_core::manifest::{Manifest, MANIFEST_PATH, MANIFEST_VERSION};
    use std::os::unix::fs::PermissionsExt;

    fn rc_inst(name: &str, rev: &str, deps: &[&str]) -> InstanceEntry {
        InstanceEntry {
            key: name.to_string(),
            name: name.to_string(),
            description: name.to_string(),
            revision: rev.to_string(),
            dependencies: deps.iter().map(|d| d.to_string()).collect(),
            pid_file: None,
            log_file: None,
            user: None,
            backend: Backend::Bsdrc {
                script: format!("etc/rc.d/{name}"),
            },
            state: None,
            readiness: None,
        }
    }

    fn rc_manifest(instances: Vec<InstanceEntry>) -> Manifest {
        Manifest {
            version: MANIFEST_VERSION,
            process_manager: "bsdrc".into(),
            instances,
        }
    }

    /// A profile with the manifest and a script per instance (with an
    /// `rcvar=<name>_enabled` line; the revision goes into a comment so
    /// versions differ).
    fn write_profile(dir: &Path, m: &Manifest) {
        let path = dir.join(MANIFEST_PATH);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, serde_json::to_string_pretty(m).unwrap()).unwrap();
        fs::create_dir_all(dir.join("etc/rc.d")).unwrap();
        for e in &m.instances {
            let p = dir.join("etc/rc.d").join(&e.name);
            fs::write(
                &p,
                format!(
                    "#!/bin/sh\n# {}\nname={n}\nrcvar={n}_enabled\nrun_rc_command \"$1\"\n",
                    e.revision,
                    n = e.name
                ),
            )
            .unwrap();
            fs::set_permissions(&p, fs::Permissions::from_mode(0o555)).unwrap();
        }
    }

    fn activator(runner: RecordingRunner) -> BsdrcActivator<RecordingRunner> {
        let config = ActivatorConfig {
            state: crate::state_dirs::StateDirs::default(),
            force_disable_user_change: true,
            runlevel: 3,
            systemd_user: false,
            enable_at_boot: false,
        };
        BsdrcActivator::new(runner, &config).with_status_wait(Duration::from_millis(400))
    }

    fn deploy(
        act: &BsdrcActivator<RecordingRunner>,
        old: Option<(&Path, &Manifest)>,
        new: (&Path, &Manifest),
    ) -> Result<(), crate::deploy::engine::DeployError> {
        let empty = rc_manifest(vec![]);
        let p = plan(old.map_or(&empty, |o| o.1), new.1);
        let progress = RecordingProgress::default();
        let ctx = DeployContext {
            old_profile: old.map(|o| o.0),
            new_profile: new.0,
            activator: act,
            progress: &progress,
            hooks: &crate::deploy::engine::NoHooks,
            jobs: 1,
        };
        execute(&p, &ctx).map(|_| ())
    }

    fn three(rev_b: &str) -> Manifest {
        rc_manifest(vec![
            rc_inst("db", "1", &[]),
            rc_inst("web", rev_b, &["db"]),
            rc_inst("proxy", "1", &["web"]),
        ])
    }

    #[test]
    fn first_deploy_switch_and_undeploy() {
        let tmp = tempfile::tempdir().unwrap();
        let (p1, p2, p3) = (
            tmp.path().join("p1"),
            tmp.path().join("p2"),
            tmp.path().join("p3"),
        );
        let (m1, m2, m3) = (three("1"), three("2"), rc_manifest(vec![]));
        write_profile(&p1, &m1);
        write_profile(&p2, &m2);
        write_profile(&p3, &m3);
        let act = activator(RecordingRunner::new());

        deploy(&act, None, (&p1, &m1)).unwrap();
        let strip = tmp.path();
        assert_eq!(
            act.runner().lines(strip),
            [
                "/p1/etc/rc.d/db onestart",
                "/p1/etc/rc.d/web onestart",
                "/p1/etc/rc.d/proxy onestart",
            ]
        );

        // web changed: its dependent proxy is restarted around it.
        let act = activator(RecordingRunner::new());
        deploy(&act, Some((&p1, &m1)), (&p2, &m2)).unwrap();
        let lines = act.runner().lines(strip);
        assert!(
            lines.contains(&"/p1/etc/rc.d/web onestop".to_string()),
            "{lines:?}"
        );
        assert!(
            lines.contains(&"/p2/etc/rc.d/web onestart".to_string()),
            "{lines:?}"
        );
        assert!(!lines.iter().any(|l| l.contains("db")), "{lines:?}");
        let stop = lines
            .iter()
            .position(|l| l.ends_with("web onestop"))
            .unwrap();
        let start = lines
            .iter()
            .position(|l| l.ends_with("web onestart"))
            .unwrap();
        assert!(stop < start);

        // Undeploy: everything stops, dependents first.
        let act = activator(RecordingRunner::new());
        deploy(&act, Some((&p2, &m2)), (&p3, &m3)).unwrap();
        assert_eq!(
            act.runner().lines(strip),
            [
                "/p2/etc/rc.d/proxy onestop",
                "/p2/etc/rc.d/web onestop",
                "/p2/etc/rc.d/db onestop",
            ]
        );
    }

    #[test]
    fn failing_start_reports_the_output_tail() {
        let tmp = tempfile::tempdir().unwrap();
        let m = rc_manifest(vec![rc_inst("web", "1", &[])]);
        write_profile(tmp.path(), &m);
        let act = activator(
            RecordingRunner::new().fail("web onestart", "Starting web.\nweb: cannot bind port"),
        );
        let err = act.start(tmp.path(), &m.instances[0]).unwrap_err();
        let msg = format!("{err:#}");
        assert!(msg.contains("web onestart` exited with status 1"), "{msg}");
        assert!(msg.contains("cannot bind port"), "{msg}");
    }

    #[test]
    fn start_waits_for_the_process_when_a_pid_file_is_known() {
        let tmp = tempfile::tempdir().unwrap();
        let mut inst = rc_inst("web", "1", &[]);
        inst.pid_file = Some("/run/web.pid".into());
        inst.log_file = Some("/log/nixproc-web.log".into());
        let m = rc_manifest(vec![inst]);
        write_profile(tmp.path(), &m);
        // Running: one status call.
        let act = activator(RecordingRunner::new());
        act.start(tmp.path(), &m.instances[0]).unwrap();
        assert_eq!(
            act.runner().lines(tmp.path()),
            ["/etc/rc.d/web onestart", "/etc/rc.d/web onestatus"]
        );
        // Never running (e.g. the daemon died at once): an error naming the
        // status and the log.
        let act = activator(RecordingRunner::new().respond(
            "onestatus",
            CmdOutput {
                exit: ExitKind::Exited(1),
                stdout: "web is not running.\n".into(),
                stderr: String::new(),
            },
        ));
        let err = act.start(tmp.path(), &m.instances[0]).unwrap_err();
        let msg = format!("{err:#}");
        assert!(msg.contains("web: not running after"), "{msg}");
        assert!(msg.contains("web is not running."), "{msg}");
        assert!(msg.contains("/log/nixproc-web.log"), "{msg}");
    }

    #[test]
    fn stop_of_a_process_that_is_gone_succeeds() {
        let tmp = tempfile::tempdir().unwrap();
        let m = rc_manifest(vec![rc_inst("web", "1", &[])]);
        write_profile(tmp.path(), &m);
        let act = activator(
            RecordingRunner::new()
                .fail("web onestop", "web not running? (check /run/web.pid).")
                .respond("web onestatus", CmdOutput::exited(1, "")),
        );
        act.stop(tmp.path(), &m.instances[0]).unwrap();
        // A stop failing for another reason is an error.
        let act = activator(
            RecordingRunner::new()
                .fail("web onestop", "Waiting for PIDS: 42: gave up.")
                .respond("web onestatus", CmdOutput::exited(0, "")),
        );
        let err = act.stop(tmp.path(), &m.instances[0]).unwrap_err();
        assert!(format!("{err:#}").contains("gave up"), "{err:#}");
    }

    #[test]
    fn status_codes() {
        let tmp = tempfile::tempdir().unwrap();
        let m = rc_manifest(vec![
            rc_inst("a", "1", &[]),
            rc_inst("b", "1", &[]),
            rc_inst("c", "1", &[]),
        ]);
        write_profile(tmp.path(), &m);
        let act = activator(
            RecordingRunner::new()
                .respond("a onestatus", CmdOutput::exited(0, ""))
                .respond("b onestatus", CmdOutput::exited(1, ""))
                .respond("c onestatus", CmdOutput::exited(3, "")),
        );
        let st: Vec<_> = m
            .instances
            .iter()
            .map(|e| act.status(tmp.path(), e).unwrap())
            .collect();
        assert_eq!(
            st,
            [
                InstanceStatus::Running,
                InstanceStatus::Stopped,
                InstanceStatus::Unknown { code: Some(3) }
            ]
        );
    }

    #[test]
    fn enable_at_boot_installs_enables_and_removes() {
        let tmp = tempfile::tempdir().unwrap();
        let profile = tmp.path().join("p");
        let target = tmp.path().join("rc.d");
        let rc_conf = tmp.path().join("rc.conf");
        fs::write(
            &rc_conf,
            "hostname=\"box\"\nweb_enabled=\"NO\"\nsshd_enable=\"YES\"\n",
        )
        .unwrap();
        let m = rc_manifest(vec![rc_inst("web", "1", &[])]);
        write_profile(&profile, &m);
        let act = activator(RecordingRunner::new())
            .with_enable_at_boot(true)
            .with_target_dir(&target)
            .with_rc_conf(&rc_conf);

        act.start(&profile, &m.instances[0]).unwrap();
        let link = target.join("web");
        assert_eq!(
            fs::read_link(&link).unwrap(),
            fs::canonicalize(profile.join("etc/rc.d/web")).unwrap()
        );
        assert_eq!(
            fs::read_to_string(&rc_conf).unwrap(),
            "hostname=\"box\"\nweb_enabled=\"YES\"\nsshd_enable=\"YES\"\n"
        );
        // Idempotent.
        act.start(&profile, &m.instances[0]).unwrap();
        assert_eq!(
            fs::read_to_string(&rc_conf).unwrap(),
            "hostname=\"box\"\nweb_enabled=\"YES\"\nsshd_enable=\"YES\"\n"
        );
        assert_eq!(
            act.runner().lines(tmp.path()),
            ["/rc.d/web start", "/rc.d/web start"]
        );

        act.stop(&profile, &m.instances[0]).unwrap();
        assert!(!is_symlink(&link));
        assert_eq!(
            fs::read_to_string(&rc_conf).unwrap(),
            "hostname=\"box\"\nsshd_enable=\"YES\"\n"
        );
        assert_eq!(act.runner().lines(tmp.path())[2], "/rc.d/web stop");
    }

    #[test]
    fn enable_at_boot_leaves_foreign_files_alone() {
        let tmp = tempfile::tempdir().unwrap();
        let profile = tmp.path().join("p");
        let target = tmp.path().join("rc.d");
        fs::create_dir_all(&target).unwrap();
        fs::write(target.join("web"), "#!/bin/sh\n# the admin's own\n").unwrap();
        let m = rc_manifest(vec![rc_inst("web", "1", &[])]);
        write_profile(&profile, &m);
        let act = activator(RecordingRunner::new())
            .with_enable_at_boot(true)
            .with_target_dir(&target)
            .with_rc_conf(tmp.path().join("rc.conf"));
        let err = act.start(&profile, &m.instances[0]).unwrap_err();
        assert!(err.to_string().contains("is not a symbolic link"), "{err}");
        assert!(act.runner().commands().is_empty());
        assert!(!tmp.path().join("rc.conf").exists());
    }

    #[test]
    fn rc_conf_editing() {
        let tmp = tempfile::tempdir().unwrap();
        let f = tmp.path().join("etc/rc.conf");
        edit_rc_conf(&f, "a_enabled", true).unwrap();
        assert_eq!(fs::read_to_string(&f).unwrap(), "a_enabled=\"YES\"\n");
        edit_rc_conf(&f, "ab_enabled", true).unwrap();
        edit_rc_conf(&f, "a_enabled", false).unwrap();
        assert_eq!(fs::read_to_string(&f).unwrap(), "ab_enabled=\"YES\"\n");
        edit_rc_conf(&f, "a_enabled", false).unwrap();
        assert_eq!(fs::read_to_string(&f).unwrap(), "ab_enabled=\"YES\"\n");
    }

    #[test]
    fn rcvar_lines() {
        let tmp = tempfile::tempdir().unwrap();
        let f = tmp.path().join("s");
        fs::write(&f, "name=x\nrcvar=x_enable\n").unwrap();
        assert_eq!(rcvar_of(&f).unwrap().as_deref(), Some("x_enable"));
        fs::write(&f, "name=x\n").unwrap();
        assert_eq!(rcvar_of(&f).unwrap(), None);
        fs::write(&f, "rcvar=${name}_enable\n").unwrap();
        assert!(rcvar_of(&f).is_err());
    }

    #[test]
    fn script_paths_are_checked() {
        let tmp = tempfile::tempdir().unwrap();
        let act = activator(RecordingRunner::new());
        let mut bad = rc_inst("x", "1", &[]);
        bad.backend = Backend::Bsdrc {
            script: "../../bin/sh".into(),
        };
        let err = act.start(tmp.path(), &bad).unwrap_err();
        assert!(err.to_string().contains("must be relative"), "{err}");
        let err = act.start(tmp.path(), &rc_inst("x", "1", &[])).unwrap_err();
        assert!(err.to_string().contains("does not exist"), "{err}");
        assert!(act.runner().commands().is_empty());
    }
}
