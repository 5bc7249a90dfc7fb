//! The sysvinit activator: runs the profile's LSB init scripts.
//!
//! * start  = `<new profile>/<script> start`
//! * stop   = `<old profile>/<script> stop`
//! * status = `<profile>/<script> status`: 0 running, 3 stopped, else unknown
//!
//! Only instances with a start link in the configured runlevel are started
//! (and, in the old profile, stopped); the others appear in the plan as
//! skipped with the reason ("no start link for runlevel 3"), never silently
//! (defect 17 of the original).

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Result};
use nixproc_core::manifest::{Backend, InstanceEntry};

use super::activator::{Activator, InstanceStatus};
use super::manifest::within_profile;
use super::runner::{Cmd, Runner, DEFAULT_TIMEOUT};

/// The runlevel used when none is given and `runlevel` cannot tell.
pub const DEFAULT_RUNLEVEL: u32 = 3;

pub struct SysvinitActivator<R> {
    runner: R,
    runlevel: u32,
    timeout: Duration,
}

impl<R: Runner> SysvinitActivator<R> {
    /// Runlevel [`DEFAULT_RUNLEVEL`], [`DEFAULT_TIMEOUT`] per command.
    pub fn new(runner: R) -> Self {
        SysvinitActivator {
            runner,
            runlevel: DEFAULT_RUNLEVEL,
            timeout: DEFAULT_TIMEOUT,
        }
    }

    pub fn with_runlevel(mut self, runlevel: u32) -> Self {
        self.runlevel = runlevel;
        self
    }

    /// Time limit for each init script invocation.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    pub fn runlevel(&self) -> u32 {
        self.runlevel
    }

    pub fn runner(&self) -> &R {
        &self.runner
    }

    fn script(profile: &Path, inst: &InstanceEntry) -> Result<PathBuf> {
        let script = match &inst.backend {
            Backend::Sysvinit { script, .. } => script,
            _ => bail!("{} is not a sysvinit instance", inst.name),
        };
        let rel = Path::new(script);
        if !within_profile(script) {
            bail!(
                "{}: init script path `{script}` must be relative to the profile, without `..`",
                inst.name
            );
        }
        let path = profile.join(rel);
        if !path.exists() {
            bail!(
                "{}: init script {} does not exist",
                inst.name,
                path.display()
            );
        }
        Ok(path)
    }

    fn invoke(&self, profile: &Path, inst: &InstanceEntry, activity: &str) -> Result<()> {
        let cmd = Cmd::new(Self::script(profile, inst)?)
            .arg(activity)
            .timeout(self.timeout);
        self.runner.run_checked(&cmd)?;
        Ok(())
    }
}

impl<R: Runner> Activator for SysvinitActivator<R> {
    fn process_manager(&self) -> &str {
        "sysvinit"
    }

    fn skip_reason(&self, inst: &InstanceEntry) -> Option<String> {
        match &inst.backend {
            Backend::Sysvinit {
                start_runlevels, ..
            } if !start_runlevels.contains(&self.runlevel) => {
                Some(format!("no start link for runlevel {}", self.runlevel))
            }
            _ => None,
        }
    }

    fn start(&self, profile: &Path, inst: &InstanceEntry) -> Result<()> {
        self.invoke(profile, inst, "start")
    }

    fn stop(&self, profile: &Path, inst: &InstanceEntry) -> Result<()> {
        self.invoke(profile, inst, "stop")
    }

    fn status(&self, profile: &Path, inst: &InstanceEntry) -> Result<InstanceStatus> {
        let cmd = Cmd::new(Self::script(profile, inst)?)
            .arg("status")
            .timeout(self.timeout);
        let out = self.runner.run(&cmd)?;
        Ok(match out.code() {
            Some(0) => InstanceStatus::Running,
            Some(3) => InstanceStatus::Stopped,
            code => InstanceStatus::Unknown { code },
        })
    }
}

/// The current runlevel: the second field of `runlevel`'s output;
/// [`DEFAULT_RUNLEVEL`] when the command is missing, fails or prints
/// `unknown` (as in containers).
pub fn detect_runlevel(runner: &dyn Runner) -> u32 {
    let out = match runner.run(&Cmd::new("runlevel").timeout(Duration::from_secs(10))) {
        Ok(out) if out.success() => out,
        _ => return DEFAULT_RUNLEVEL,
    };
    out.stdout
        .split_whitespace()
        .nth(1)
        .and_then(|f| f.parse().ok())
        .unwrap_or(DEFAULT_RUNLEVEL)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deploy::engine::{execute, Context, DeployError};
    use crate::deploy::plan::plan;
    use crate::deploy::progress::RecordingProgress;
    use crate::deploy::runner::{CmdOutput, RecordingRunner, SystemRunner};
    use crate::deploy::testutil::{
        inst, log_lines, manifest, upgrade_pair, write_profile_with_scripts as write_profile,
    };
    use nixproc_core::manifest::Manifest;

    #[test]
    fn real_scripts_switch_in_dependency_order() {
        let tmp = tempfile::tempdir().unwrap();
        let log = tmp.path().join("log");
        let (p1, p2) = (tmp.path().join("p1"), tmp.path().join("p2"));
        let (old, new) = upgrade_pair();
        write_profile(&p1, &log, &old);
        write_profile(&p2, &log, &new);
        let act = SysvinitActivator::new(SystemRunner);
        let progress = RecordingProgress::default();

        // First deployment.
        let p = plan(&Manifest::empty("sysvinit"), &old);
        let ctx = Context {
            old_profile: None,
            new_profile: &p1,
            activator: &act,
            progress: &progress,
            hooks: &crate::deploy::engine::NoHooks,
            jobs: 1,
        };
        execute(&p, &ctx).unwrap();
        assert_eq!(
            log_lines(&log),
            [
                "webapp1-1 start",
                "webapp2-1 start",
                "webapp3-1 start",
                "nginx-1 start"
            ]
        );

        // Upgrade.
        let p = plan(&old, &new);
        let ctx = Context {
            old_profile: Some(&p1),
            new_profile: &p2,
            activator: &act,
            progress: &progress,
            hooks: &crate::deploy::engine::NoHooks,
            jobs: 1,
        };
        let report = execute(&p, &ctx).unwrap();
        assert_eq!(
            log_lines(&log),
            [
                "nginx-1 stop",
                "webapp3-1 stop",
                "webapp1-1 stop",
                "webapp1-2 start",
                "webapp4-1 start",
                "nginx-2 start",
            ]
        );
        assert_eq!(report.kept, ["webapp2"]);
        let running: Vec<_> = report
            .running
            .iter()
            .map(|a| format!("{}-{}", a.name, a.revision))
            .collect();
        assert_eq!(running, ["nginx-2", "webapp1-2", "webapp2-1", "webapp4-1"]);
        assert!(progress
            .lines()
            .contains(&"stopping webapp3 (removed)".to_string()));
        let st = act.status(&p2, &new.instances[0]).unwrap();
        assert_eq!(st, InstanceStatus::Stopped);
    }

    #[test]
    fn real_script_failure_restores_old_processes() {
        let tmp = tempfile::tempdir().unwrap();
        let log = tmp.path().join("log");
        let (p1, p2) = (tmp.path().join("p1"), tmp.path().join("p2"));
        let old = manifest(vec![
            inst("webapp1", "1", &[]),
            inst("nginx", "1", &["webapp1"]),
        ]);
        let new = manifest(vec![
            inst("webapp1", "bad", &[]),
            inst("nginx", "1", &["webapp1"]),
        ]);
        write_profile(&p1, &log, &old);
        write_profile(&p2, &log, &new);
        let act = SysvinitActivator::new(SystemRunner);
        let progress = RecordingProgress::default();
        let ctx = Context {
            old_profile: Some(&p1),
            new_profile: &p2,
            activator: &act,
            progress: &progress,
            hooks: &crate::deploy::engine::NoHooks,
            jobs: 1,
        };
        let err = execute(&plan(&old, &new), &ctx).unwrap_err();
        assert_eq!(
            log_lines(&log),
            [
                "nginx-1 stop",
                "webapp1-1 stop",
                "webapp1-bad start",
                "webapp1-bad stop",
                "webapp1-1 start",
                "nginx-1 start",
            ]
        );
        let DeployError::Activation(f) = &err else {
            panic!("{err}")
        };
        assert!(f.restored());
        let msg = err.to_string();
        assert!(
            msg.contains("starting webapp1 (changed) failed: `"),
            "{msg}"
        );
        assert!(
            msg.contains("webapp1 start` exited with status 1\nstderr:\n  cannot bind port\n"),
            "{msg}"
        );
        assert!(
            msg.ends_with("the previous generation's processes are running again"),
            "{msg}"
        );
    }

    #[test]
    fn runlevel_skip_is_explicit() {
        let tmp = tempfile::tempdir().unwrap();
        let log = tmp.path().join("log");
        let p1 = tmp.path().join("p1");
        let mut only_2 = inst("webappX", "1", &[]);
        #[allow(irrefutable_let_patterns)] // more backends will follow
        if let Backend::Sysvinit {
            start_runlevels, ..
        } = &mut only_2.backend
        {
            *start_runlevels = vec![2];
        }
        let m = manifest(vec![inst("webapp1", "1", &[]), only_2]);
        write_profile(&p1, &log, &m);
        let act = SysvinitActivator::new(SystemRunner);
        let mut p = plan(&Manifest::empty("sysvinit"), &m);
        p.skip_where(|e| act.skip_reason(e));
        assert_eq!(
            p.to_string(),
            "start   webapp1   (added)\nskip    webappX   (not started: no start link for runlevel 3)\n"
        );
        let progress = RecordingProgress::default();
        let ctx = Context {
            old_profile: None,
            new_profile: &p1,
            activator: &act,
            progress: &progress,
            hooks: &crate::deploy::engine::NoHooks,
            jobs: 1,
        };
        let report = execute(&p, &ctx).unwrap();
        assert_eq!(log_lines(&log), ["webapp1-1 start"]);
        assert_eq!(
            progress.lines(),
            [
                "webappX: not started: no start link for runlevel 3",
                "starting webapp1 (added)",
            ]
        );
        assert_eq!(
            report.skipped[0].reason,
            "not started: no start link for runlevel 3"
        );

        // In runlevel 2 it is the other way round.
        let act2 = SysvinitActivator::new(SystemRunner).with_runlevel(2);
        let mut p = plan(&Manifest::empty("sysvinit"), &m);
        p.skip_where(|e| act2.skip_reason(e));
        assert_eq!(p.starts.len(), 1);
        assert_eq!(p.starts[0].name, "webappX");
    }

    #[test]
    fn script_paths_are_checked() {
        let tmp = tempfile::tempdir().unwrap();
        let act = SysvinitActivator::new(RecordingRunner::new());
        let mut bad = inst("x", "1", &[]);
        #[allow(irrefutable_let_patterns)]
        if let Backend::Sysvinit { script, .. } = &mut bad.backend {
            *script = "../../bin/sh".into();
        }
        let err = act.start(tmp.path(), &bad).unwrap_err();
        assert!(
            err.to_string().contains("must be relative to the profile"),
            "{err}"
        );
        let err = act.start(tmp.path(), &inst("x", "1", &[])).unwrap_err();
        assert!(err.to_string().contains("does not exist"), "{err}");
        assert!(act.runner().commands().is_empty());
    }

    #[test]
    fn status_codes() {
        let tmp = tempfile::tempdir().unwrap();
        let m = manifest(vec![
            inst("a", "1", &[]),
            inst("b", "1", &[]),
            inst("c", "1", &[]),
        ]);
        write_profile(tmp.path(), &tmp.path().join("log"), &m);
        let runner = RecordingRunner::new()
            .respond("a status", CmdOutput::exited(0, ""))
            .respond("b status", CmdOutput::exited(3, ""))
            .respond("c status", CmdOutput::exited(4, ""));
        let act = SysvinitActivator::new(runner);
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
                InstanceStatus::Unknown { code: Some(4) }
            ]
        );
    }

    #[test]
    fn runlevel_detection() {
        let r = RecordingRunner::new().respond(
            "runlevel",
            CmdOutput {
                exit: crate::deploy::runner::ExitKind::Exited(0),
                stdout: "N 5\n".into(),
                stderr: String::new(),
            },
        );
        assert_eq!(detect_runlevel(&r), 5);
        let r = RecordingRunner::new().respond("runlevel", CmdOutput::exited(1, "unknown"));
        assert_eq!(detect_runlevel(&r), 3);
    }
}
