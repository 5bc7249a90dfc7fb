//! The cygrunsrv activator (reference §5.7 "cygrunsrv"): installs each
//! process as a Windows service and drives it with `cygrunsrv`.
//!
//! * start  = `cygrunsrv --install <service> <line>…`, each line of the
//!   profile's `<service>-cygrunsrvparams` one argument (really run — the
//!   original only echoed it, defect 8 — and without a shell, so values
//!   arrive verbatim), then `cygrunsrv --start <service>`. A failed start
//!   removes the installation again;
//! * stop   = `cygrunsrv --stop <service>` (its failure is tolerated when
//!   the service is already stopped: the removal is what counts), then
//!   `cygrunsrv --remove <service>`;
//! * status = `cygrunsrv --query <service>`: `Current State: Running` →
//!   running, `Stopped` or not installed → stopped.
//!
//! Services are installed and started one by one in the manifest's
//! dependency order (the engine), and the profile is recorded only after
//! they all started (the original set it before installing). cygrunsrv
//! services run as Windows accounts: there are no users or groups to
//! create.

use std::fs;
use std::path::Path;

use anyhow::{bail, Context, Result};
use nixproc_core::manifest::{Backend, InstanceEntry};

use super::activator::{Activator, InstanceStatus};
use super::manifest::within_profile;
use super::runner::{Cmd, CmdOutput, CommandFailed, Runner};
use super::select::ActivatorConfig;

pub struct CygrunsrvActivator<R> {
    runner: R,
    #[allow(dead_code)]
    config: ActivatorConfig,
}

impl<R: Runner> CygrunsrvActivator<R> {
    pub fn new(runner: R, config: &ActivatorConfig) -> Self {
        CygrunsrvActivator {
            runner,
            config: config.clone(),
        }
    }

    pub fn runner(&self) -> &R {
        &self.runner
    }

    fn cygrunsrv(&self, op: &str, service: &str) -> Cmd {
        Cmd::new("cygrunsrv").arg(op).arg(service)
    }

    fn query(&self, service: &str) -> Result<CmdOutput> {
        self.runner.run(&self.cygrunsrv("--query", service))
    }
}

/// The state `cygrunsrv --query` reports (`Current State    : Running`).
fn current_state(out: &CmdOutput) -> Option<&str> {
    out.stdout.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        (k.trim() == "Current State").then(|| v.trim())
    })
}

impl<R: Runner> Activator for CygrunsrvActivator<R> {
    fn process_manager(&self) -> &str {
        "cygrunsrv"
    }

    fn start(&self, profile: &Path, inst: &InstanceEntry) -> Result<()> {
        let (service, rel) = service_of(inst)?;
        let file = profile.join(rel);
        let text = fs::read_to_string(&file).with_context(|| {
            format!(
                "{}: parameters file {} is not readable",
                inst.name,
                file.display()
            )
        })?;
        let mut install = self.cygrunsrv("--install", service);
        for line in text.lines() {
            install = install.arg(line);
        }
        self.runner
            .run_checked(&install)
            .with_context(|| format!("{}: installing the service", inst.name))?;
        let start = self.cygrunsrv("--start", service);
        let out = self.runner.run(&start)?;
        if !out.success() {
            // Leave nothing installed that would start at boot.
            let removed = self.runner.run(&self.cygrunsrv("--remove", service));
            let note = match removed {
                Ok(r) if r.success() => String::new(),
                Ok(r) => format!(
                    "\n(removing it again failed too: {})",
                    CommandFailed {
                        cmd: self.cygrunsrv("--remove", service),
                        output: r
                    }
                ),
                Err(e) => format!("\n(removing it again failed too: {e:#})"),
            };
            bail!(
                "{}: {}{note}",
                inst.name,
                CommandFailed {
                    cmd: start,
                    output: out
                }
            );
        }
        Ok(())
    }

    fn stop(&self, _profile: &Path, inst: &InstanceEntry) -> Result<()> {
        let (service, _) = service_of(inst)?;
        let stop = self.cygrunsrv("--stop", service);
        let out = self.runner.run(&stop)?;
        if !out.success() {
            // Fine when it is not running (exited, or a failed start).
            let q = self.query(service)?;
            if q.success() && current_state(&q) == Some("Running") {
                bail!(
                    "{}: {}",
                    inst.name,
                    CommandFailed {
                        cmd: stop,
                        output: out
                    }
                );
            }
        }
        self.runner
            .run_checked(&self.cygrunsrv("--remove", service))
            .with_context(|| format!("{}: removing the service", inst.name))?;
        Ok(())
    }

    fn status(&self, _profile: &Path, inst: &InstanceEntry) -> Result<InstanceStatus> {
        let (service, _) = service_of(inst)?;
        let out = self.query(service)?;
        if !out.success() {
            // "The specified service does not exist as an installed service."
            let text = format!("{}{}", out.stdout, out.stderr);
            return Ok(if text.contains("does not exist") {
                InstanceStatus::Stopped
            } else {
                InstanceStatus::Unknown { code: out.code() }
            });
        }
        Ok(match current_state(&out) {
            Some("Running") => InstanceStatus::Running,
            Some("Stopped") => InstanceStatus::Stopped,
            _ => InstanceStatus::Unknown { code: out.code() },
        })
    }
}

/// The service name and the parameters file's path in the profile, checked.
fn service_of(inst: &InstanceEntry) -> Result<(&str, &str)> {
    let (service, path) = match &inst.backend {
        Backend::Cygrunsrv { service, params } => (service.as_str(), params.as_str()),
        _ => bail!("{} is not a cygrunsrv instance", inst.name),
    };
    if nixproc_core::cygrunsrv::check_service_name("service", service).is_err()
        || service.starts_with('-')
    {
        bail!("{}: `{service}` is not a service name", inst.name);
    }
    if !within_profile(path) {
        bail!(
            "{}: parameters path `{path}` must be relative to the profile, without `..`",
            inst.name
        );
    }
    Ok((service, path))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deploy::engine::DeployError;
    use crate::deploy::runner::{ExitKind, RecordingRunner};
    use crate::deploy::testutil::switch;
    use crate::state_dirs::StateDirs;
    use nixproc_core::manifest::{Manifest, MANIFEST_VERSION};
    use std::path::PathBuf;

    fn svc(name: &str, rev: &str, deps: &[&str]) -> InstanceEntry {
        let service = format!("nix-process-{name}");
        InstanceEntry {
            key: name.to_string(),
            name: service.clone(),
            description: format!("{name} service"),
            revision: rev.to_string(),
            dependencies: deps.iter().map(|d| format!("nix-process-{d}")).collect(),
            pid_file: None,
            log_file: None,
            user: None,
            backend: Backend::Cygrunsrv {
                params: format!("{service}-cygrunsrvparams"),
                service,
            },
            state: None,
            readiness: None,
        }
    }

    fn manifest(instances: Vec<InstanceEntry>) -> Manifest {
        Manifest {
            version: MANIFEST_VERSION,
            process_manager: "cygrunsrv".into(),
            instances,
        }
    }

    fn config() -> ActivatorConfig {
        ActivatorConfig {
            state: StateDirs::default(),
            force_disable_user_change: true,
            runlevel: 3,
            systemd_user: false,
            enable_at_boot: false,
        }
    }

    fn stdout(code: i32, text: &str) -> CmdOutput {
        CmdOutput {
            exit: ExitKind::Exited(code),
            stdout: text.into(),
            stderr: String::new(),
        }
    }

    /// A profile whose parameter files hold a hostile environment line and
    /// the revision.
    fn profile(dir: &Path, name: &str, m: &Manifest) -> PathBuf {
        let p = dir.join(name);
        fs::create_dir_all(&p).unwrap();
        for e in &m.instances {
            let Backend::Cygrunsrv { params, service } = &e.backend else {
                unreachable!()
            };
            let mut text = format!(
                "--path\n/bin/{service}\n--disp\n{service}\n--env\nREV={}\n--env\nQ=it's a \"$(x)\"\n",
                e.revision
            );
            for d in &e.dependencies {
                text.push_str(&format!("--dep\n{d}\n"));
            }
            fs::write(p.join(params), text).unwrap();
        }
        p
    }

    fn activator(runner: RecordingRunner) -> CygrunsrvActivator<RecordingRunner> {
        CygrunsrvActivator::new(runner, &config())
    }

    #[test]
    fn first_deploy_installs_and_starts_in_dependency_order() {
        let tmp = tempfile::tempdir().unwrap();
        let m = manifest(vec![svc("db", "1", &[]), svc("web", "1", &["db"])]);
        let p1 = profile(tmp.path(), "p1", &m);
        let act = activator(RecordingRunner::new());
        switch(&act, None, (&p1, &m)).unwrap();
        assert_eq!(
            act.runner().lines(Path::new("")),
            [
                "cygrunsrv --install nix-process-db --path /bin/nix-process-db --disp \
                 nix-process-db --env REV=1 --env 'Q=it'\\''s a \"$(x)\"'",
                "cygrunsrv --start nix-process-db",
                "cygrunsrv --install nix-process-web --path /bin/nix-process-web --disp \
                 nix-process-web --env REV=1 --env 'Q=it'\\''s a \"$(x)\"' --dep nix-process-db",
                "cygrunsrv --start nix-process-web",
            ]
        );
        // Each line is one argument, verbatim: no quotes added or kept.
        let install = &act.runner().commands()[0];
        assert_eq!(
            install.args[2..4],
            ["--path".into(), "/bin/nix-process-db".into()] as [std::ffi::OsString; 2]
        );
        assert_eq!(install.args.last().unwrap(), "Q=it's a \"$(x)\"");
    }

    #[test]
    fn switch_with_one_changed_service() {
        let tmp = tempfile::tempdir().unwrap();
        let old = manifest(vec![svc("a", "1", &[]), svc("b", "1", &[])]);
        let new = manifest(vec![svc("a", "2", &[]), svc("b", "1", &[])]);
        let (p1, p2) = (
            profile(tmp.path(), "p1", &old),
            profile(tmp.path(), "p2", &new),
        );
        let act = activator(RecordingRunner::new());
        switch(&act, Some((&p1, &old)), (&p2, &new)).unwrap();
        assert_eq!(
            act.runner().lines(Path::new("")),
            [
                "cygrunsrv --stop nix-process-a",
                "cygrunsrv --remove nix-process-a",
                "cygrunsrv --install nix-process-a --path /bin/nix-process-a --disp \
                 nix-process-a --env REV=2 --env 'Q=it'\\''s a \"$(x)\"'",
                "cygrunsrv --start nix-process-a",
            ]
        );
    }

    #[test]
    fn undeploy_stops_and_removes_in_reverse_order() {
        let tmp = tempfile::tempdir().unwrap();
        let m = manifest(vec![svc("db", "1", &[]), svc("web", "1", &["db"])]);
        let empty = manifest(vec![]);
        let (p1, p0) = (
            profile(tmp.path(), "p1", &m),
            profile(tmp.path(), "p0", &empty),
        );
        // web already exited: its --stop fails, the query says Stopped.
        let act = activator(
            RecordingRunner::new()
                .fail(
                    "--stop nix-process-web",
                    "The service has not been started.",
                )
                .respond(
                    "--query nix-process-web",
                    stdout(
                        0,
                        "Service             : nix-process-web\nCurrent State       : Stopped\n",
                    ),
                ),
        );
        switch(&act, Some((&p1, &m)), (&p0, &empty)).unwrap();
        assert_eq!(
            act.runner().lines(Path::new("")),
            [
                "cygrunsrv --stop nix-process-web",
                "cygrunsrv --query nix-process-web",
                "cygrunsrv --remove nix-process-web",
                "cygrunsrv --stop nix-process-db",
                "cygrunsrv --remove nix-process-db",
            ]
        );
    }

    #[test]
    fn failing_start_is_an_error_with_output_and_is_uninstalled() {
        let tmp = tempfile::tempdir().unwrap();
        let m = manifest(vec![svc("a", "1", &[])]);
        let p1 = profile(tmp.path(), "p1", &m);
        let act = activator(RecordingRunner::new().fail(
            "--start",
            "cygrunsrv: Error starting a service: QueryServiceStatus:  Win32 error 1062:",
        ));
        let e = act.start(&p1, &m.instances[0]).unwrap_err().to_string();
        assert_eq!(
            e,
            "nix-process-a: `cygrunsrv --start nix-process-a` exited with status 1\nstderr:\n  \
             cygrunsrv: Error starting a service: QueryServiceStatus:  Win32 error 1062:"
        );
        let lines = act.runner().lines(Path::new(""));
        assert_eq!(
            lines[1..],
            [
                "cygrunsrv --start nix-process-a",
                "cygrunsrv --remove nix-process-a"
            ]
        );

        let act = activator(RecordingRunner::new().fail("--install", "cygrunsrv: Error installing a service: OpenSCManager:  Win32 error 5:\nAccess is denied."));
        let e = format!("{:#}", act.start(&p1, &m.instances[0]).unwrap_err());
        assert!(
            e.starts_with(
                "nix-process-a: installing the service: `cygrunsrv --install nix-process-a --path"
            ),
            "{e}"
        );
        assert!(e.ends_with("Access is denied."), "{e}");
        assert_eq!(act.runner().commands().len(), 1);
    }

    #[test]
    fn failed_switch_rolls_back_to_the_old_service() {
        let tmp = tempfile::tempdir().unwrap();
        let old = manifest(vec![svc("a", "1", &[])]);
        let new = manifest(vec![svc("a", "2", &[])]);
        let (p1, p2) = (
            profile(tmp.path(), "p1", &old),
            profile(tmp.path(), "p2", &new),
        );
        let act = activator(RecordingRunner::new().fail(
            "--install nix-process-a --path /bin/nix-process-a --disp nix-process-a --env REV=2",
            "boom",
        ));
        let err = switch(&act, Some((&p1, &old)), (&p2, &new)).unwrap_err();
        let DeployError::Activation(f) = &err else {
            panic!("{err}")
        };
        assert!(f.failed.error.contains("boom"), "{}", f.failed.error);
        let lines = act.runner().lines(Path::new(""));
        // The old version is installed and started again.
        assert_eq!(lines[0], "cygrunsrv --stop nix-process-a");
        assert!(lines.iter().any(|l| l.contains("--env REV=1")), "{lines:?}");
        assert_eq!(lines.last().unwrap(), "cygrunsrv --start nix-process-a");
    }

    #[test]
    fn stop_of_a_running_service_that_fails_is_an_error() {
        let act = activator(
            RecordingRunner::new()
                .fail("--stop", "Win32 error 1053")
                .respond("--query", stdout(0, "Current State       : Running\n")),
        );
        let e = act
            .stop(Path::new("/"), &svc("a", "1", &[]))
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "nix-process-a: `cygrunsrv --stop nix-process-a` exited with status 1\nstderr:\n  \
             Win32 error 1053"
        );
        assert!(!act
            .runner()
            .lines(Path::new(""))
            .iter()
            .any(|l| l.contains("--remove")));
    }

    #[test]
    fn status_from_query() {
        let inst = svc("a", "1", &[]);
        for (answer, expected) in [
            (stdout(0, "Service             : nix-process-a\nCurrent State       : Running\nCommand             : /bin/a\n"), InstanceStatus::Running),
            (stdout(0, "Current State       : Stopped\n"), InstanceStatus::Stopped),
            (
                CmdOutput::exited(1, "cygrunsrv: Error querying a service: OpenService:  Win32 error 1060:\nThe specified service does not exist as an installed service."),
                InstanceStatus::Stopped,
            ),
            (stdout(0, "Current State       : Start Pending\n"), InstanceStatus::Unknown { code: Some(0) }),
            (CmdOutput::exited(1, "Access is denied."), InstanceStatus::Unknown { code: Some(1) }),
        ] {
            let act = activator(RecordingRunner::new().respond("--query", answer));
            assert_eq!(act.status(Path::new("/"), &inst).unwrap(), expected);
            assert_eq!(act.runner().lines(Path::new("")), ["cygrunsrv --query nix-process-a"]);
        }
    }

    #[test]
    fn bad_manifest_entries() {
        let act = activator(RecordingRunner::new());
        let mut bad = svc("a", "1", &[]);
        bad.backend = Backend::Cygrunsrv {
            service: "--remove".into(),
            params: "x-cygrunsrvparams".into(),
        };
        assert_eq!(
            act.start(Path::new("/"), &bad).unwrap_err().to_string(),
            "nix-process-a: `--remove` is not a service name"
        );
        bad.backend = Backend::Cygrunsrv {
            service: "x".into(),
            params: "../x".into(),
        };
        assert!(act
            .stop(Path::new("/"), &bad)
            .unwrap_err()
            .to_string()
            .contains("must be relative to the profile"));
        let tmp = tempfile::tempdir().unwrap();
        let e = act
            .start(tmp.path(), &svc("a", "1", &[]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("is not readable"), "{e}");
        assert!(act.runner().commands().is_empty());
    }
}
