//! The launchd activator (reference §5.7 "launchd"): copies each job's
//! plist into launchd's directory and drives it with `launchctl`.
//!
//! * target dir: `$LAUNCHD_TARGET_DIR`, else `/Library/LaunchDaemons`, or
//!   with `--user` (the user's agents) `~/Library/LaunchAgents`;
//! * start  = copy `<profile>/Library/LaunchDaemons/<label>.plist` to
//!   `<target>/<label>.plist` (a copy, not a link: launchd refuses plists it
//!   cannot trust, and a copy survives garbage collection of the profile),
//!   `launchctl load -w <file>`, `launchctl start <label>`;
//! * stop   = `launchctl stop <label>` (its failure is tolerated: the job
//!   may have exited already, and unloading stops it anyway), `launchctl
//!   unload <file>`, remove the file;
//! * status = `launchctl list <label>`: exit 0 and a `"PID"` entry →
//!   running; exit 0 without one, or not loaded → stopped.
//!
//! launchd has no dependencies between jobs: the engine starts them in the
//! manifest's dependency order and stops them in reverse, one by one (the
//! original loaded them in file-name order). `launchctl load` reports
//! some errors with exit status 0 ("Load failed: …"); such output fails the
//! start too.
//!
//! Not done: creating the users and groups of `dysnomia-support`.

use std::fs;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use nixproc_core::manifest::{Backend, InstanceEntry};

use super::activator::{Activator, InstanceStatus};
use super::manifest::within_profile;
use super::runner::{Cmd, CommandFailed, Runner};
use super::select::ActivatorConfig;

/// Where system daemons' plists go.
pub const SYSTEM_TARGET_DIR: &str = "/Library/LaunchDaemons";

pub struct LaunchdActivator<R> {
    runner: R,
    agents: bool,
    /// Where the plists go, or why that cannot be determined.
    target: Result<PathBuf, String>,
}

impl<R: Runner> LaunchdActivator<R> {
    /// The target directory comes from the environment (see
    /// [`target_dir`]); `config.systemd_user` selects the user's agents.
    pub fn new(runner: R, config: &ActivatorConfig) -> Self {
        let agents = config.systemd_user;
        LaunchdActivator {
            runner,
            agents,
            target: target_dir(|k| std::env::var(k).ok(), agents),
        }
    }

    /// Uses `dir` instead of the environment's target directory.
    pub fn with_target_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.target = Ok(dir.into());
        self
    }

    pub fn runner(&self) -> &R {
        &self.runner
    }

    pub fn target(&self) -> Result<&Path> {
        self.target.as_deref().map_err(|e| anyhow!("{e}"))
    }

    fn installed(&self, label: &str) -> Result<PathBuf> {
        Ok(self.target()?.join(format!("{label}.plist")))
    }

    /// Copies the plist into the target directory (atomically, mode 0644:
    /// launchd ignores group- or world-writable plists).
    fn install(&self, profile: &Path, inst: &InstanceEntry) -> Result<PathBuf> {
        let (label, rel) = job_of(inst)?;
        let source = profile.join(rel);
        let text = fs::read(&source).with_context(|| {
            format!("{}: plist {} is not readable", inst.name, source.display())
        })?;
        let target = self.target()?;
        fs::create_dir_all(target).with_context(|| format!("creating {}", target.display()))?;
        let dest = self.installed(label)?;
        let tmp = target.join(format!(".{label}.plist.nixproc-new"));
        fs::write(&tmp, text).with_context(|| format!("writing {}", tmp.display()))?;
        fs::set_permissions(&tmp, fs::Permissions::from_mode(0o644))?;
        fs::rename(&tmp, &dest).with_context(|| format!("installing {}", dest.display()))?;
        Ok(dest)
    }
}

/// Output of `launchctl load` that means failure despite exit status 0.
fn load_failed(out: &super::runner::CmdOutput) -> bool {
    let text = format!("{}\n{}", out.stdout, out.stderr);
    [
        "Load failed",
        "Invalid property list",
        "No such file",
        "nothing found to load",
    ]
    .iter()
    .any(|m| text.contains(m))
}

impl<R: Runner> Activator for LaunchdActivator<R> {
    fn process_manager(&self) -> &str {
        "launchd"
    }

    fn start(&self, profile: &Path, inst: &InstanceEntry) -> Result<()> {
        let (label, _) = job_of(inst)?;
        if let (true, Some(u)) = (self.agents, &inst.user) {
            bail!(
                "{}: the job sets UserName={u}, but the user's launchd agents cannot switch \
                 users; build the profile with forceDisableUserChange = true",
                inst.name
            );
        }
        let dest = self.install(profile, inst)?;
        let cmd = Cmd::new("launchctl").arg("load").arg("-w").arg(&dest);
        let out = self.runner.run(&cmd)?;
        if !out.success() || load_failed(&out) {
            // Not loaded: the copy must not stay behind to load at boot.
            let _ = fs::remove_file(&dest);
            bail!("{}: {}", inst.name, CommandFailed { cmd, output: out });
        }
        let cmd = Cmd::new("launchctl").arg("start").arg(label);
        self.runner
            .run_checked(&cmd)
            .with_context(|| format!("{}: starting {label}", inst.name))?;
        Ok(())
    }

    fn stop(&self, _profile: &Path, inst: &InstanceEntry) -> Result<()> {
        let (label, _) = job_of(inst)?;
        let dest = self.installed(label)?;
        // Tolerated: the job may have exited; unload stops it in any case.
        self.runner
            .run(&Cmd::new("launchctl").arg("stop").arg(label))?;
        if dest.exists() {
            let cmd = Cmd::new("launchctl").arg("unload").arg(&dest);
            self.runner
                .run_checked(&cmd)
                .with_context(|| format!("{}: unloading {label}", inst.name))?;
        }
        match fs::remove_file(&dest) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e).with_context(|| format!("removing {}", dest.display())),
        }
    }

    fn status(&self, _profile: &Path, inst: &InstanceEntry) -> Result<InstanceStatus> {
        let (label, _) = job_of(inst)?;
        let out = self
            .runner
            .run(&Cmd::new("launchctl").arg("list").arg(label))?;
        Ok(match out.code() {
            Some(0) if out.stdout.contains("\"PID\"") => InstanceStatus::Running,
            Some(0) => InstanceStatus::Stopped,
            // "Could not find service … in domain": not loaded.
            Some(_)
                if out.stderr.contains("Could not find")
                    || out.stdout.contains("Could not find") =>
            {
                InstanceStatus::Stopped
            }
            code => InstanceStatus::Unknown { code },
        })
    }
}

/// The directory the plists go to: `$LAUNCHD_TARGET_DIR`, else
/// `/Library/LaunchDaemons`, or for agents `$HOME/Library/LaunchAgents`.
pub fn target_dir(env: impl Fn(&str) -> Option<String>, agents: bool) -> Result<PathBuf, String> {
    let set = |k: &str| env(k).filter(|v| !v.is_empty());
    if let Some(dir) = set("LAUNCHD_TARGET_DIR") {
        return Ok(PathBuf::from(dir));
    }
    if !agents {
        return Ok(PathBuf::from(SYSTEM_TARGET_DIR));
    }
    match set("HOME") {
        Some(home) => Ok(Path::new(&home).join("Library/LaunchAgents")),
        None => Err(
            "cannot find the user's agent directory: neither LAUNCHD_TARGET_DIR nor HOME is set"
                .into(),
        ),
    }
}

/// The label and the plist's path in the profile, checked.
fn job_of(inst: &InstanceEntry) -> Result<(&str, &str)> {
    let (label, path) = match &inst.backend {
        Backend::Launchd { label, plist } => (label.as_str(), plist.as_str()),
        _ => bail!("{} is not a launchd instance", inst.name),
    };
    if nixproc_core::launchd::check_label("label", label).is_err() {
        bail!("{}: `{label}` is not a launchd label", inst.name);
    }
    if !within_profile(path) {
        bail!(
            "{}: plist path `{path}` must be relative to the profile, without `..`",
            inst.name
        );
    }
    Ok((label, path))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deploy::runner::{CmdOutput, ExitKind, RecordingRunner};
    use crate::deploy::testutil::switch;
    use crate::state_dirs::StateDirs;
    use nixproc_core::manifest::{Manifest, MANIFEST_VERSION};

    fn job(name: &str, rev: &str, deps: &[&str]) -> InstanceEntry {
        let label = format!("org.nixos.{name}");
        InstanceEntry {
            key: name.to_string(),
            name: name.to_string(),
            description: format!("{name} service"),
            revision: rev.to_string(),
            dependencies: deps.iter().map(|d| d.to_string()).collect(),
            pid_file: None,
            log_file: None,
            user: None,
            backend: Backend::Launchd {
                plist: format!("Library/LaunchDaemons/{label}.plist"),
                label,
            },
            state: None,
            readiness: None,
        }
    }

    fn manifest(instances: Vec<InstanceEntry>) -> Manifest {
        Manifest {
            version: MANIFEST_VERSION,
            process_manager: "launchd".into(),
            instances,
        }
    }

    fn config(agents: bool) -> ActivatorConfig {
        ActivatorConfig {
            state: StateDirs::default(),
            force_disable_user_change: false,
            runlevel: 3,
            systemd_user: agents,
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

    struct Env {
        tmp: tempfile::TempDir,
        target: PathBuf,
    }

    impl Env {
        fn new() -> Env {
            let tmp = tempfile::tempdir().unwrap();
            let target = tmp.path().join("LaunchDaemons");
            Env { tmp, target }
        }

        /// A profile whose plists name their revision.
        fn profile(&self, name: &str, m: &Manifest) -> PathBuf {
            let p = self.tmp.path().join(name);
            for e in &m.instances {
                let Backend::Launchd { plist, .. } = &e.backend else {
                    unreachable!()
                };
                let f = p.join(plist);
                fs::create_dir_all(f.parent().unwrap()).unwrap();
                fs::write(f, format!("<plist>{} {}</plist>\n", e.name, e.revision)).unwrap();
            }
            fs::create_dir_all(&p).unwrap();
            p
        }

        fn activator(
            &self,
            runner: RecordingRunner,
            agents: bool,
        ) -> LaunchdActivator<RecordingRunner> {
            LaunchdActivator::new(runner, &config(agents)).with_target_dir(&self.target)
        }

        fn installed(&self) -> Vec<String> {
            let mut v: Vec<String> = fs::read_dir(&self.target)
                .map(|d| {
                    d.map(|e| {
                        let e = e.unwrap();
                        format!(
                            "{} = {}",
                            e.file_name().to_string_lossy(),
                            fs::read_to_string(e.path()).unwrap().trim()
                        )
                    })
                    .collect()
                })
                .unwrap_or_default();
            v.sort();
            v
        }
    }

    #[test]
    fn first_deploy_copies_loads_and_starts_in_dependency_order() {
        let env = Env::new();
        let m = manifest(vec![job("db", "1", &[]), job("web", "1", &["db"])]);
        let p1 = env.profile("p1", &m);
        let act = env.activator(RecordingRunner::new(), false);
        switch(&act, None, (&p1, &m)).unwrap();
        let t = env.target.display().to_string();
        assert_eq!(
            act.runner().lines(Path::new("")),
            [
                format!("launchctl load -w {t}/org.nixos.db.plist"),
                "launchctl start org.nixos.db".into(),
                format!("launchctl load -w {t}/org.nixos.web.plist"),
                "launchctl start org.nixos.web".into(),
            ]
        );
        assert_eq!(
            env.installed(),
            [
                "org.nixos.db.plist = <plist>db 1</plist>",
                "org.nixos.web.plist = <plist>web 1</plist>"
            ]
        );
        // A copy, not a link, and not writable by others.
        let f = env.target.join("org.nixos.db.plist");
        let meta = fs::symlink_metadata(&f).unwrap();
        assert!(meta.file_type().is_file());
        assert_eq!(meta.permissions().mode() & 0o777, 0o644);
    }

    #[test]
    fn switch_with_one_changed_job() {
        let env = Env::new();
        let old = manifest(vec![job("a", "1", &[]), job("b", "1", &[])]);
        let new = manifest(vec![job("a", "2", &[]), job("b", "1", &[])]);
        let (p1, p2) = (env.profile("p1", &old), env.profile("p2", &new));
        switch(
            &env.activator(RecordingRunner::new(), false),
            None,
            (&p1, &old),
        )
        .unwrap();
        let act = env.activator(RecordingRunner::new(), false);
        switch(&act, Some((&p1, &old)), (&p2, &new)).unwrap();
        let t = env.target.display().to_string();
        assert_eq!(
            act.runner().lines(Path::new("")),
            [
                "launchctl stop org.nixos.a".to_string(),
                format!("launchctl unload {t}/org.nixos.a.plist"),
                format!("launchctl load -w {t}/org.nixos.a.plist"),
                "launchctl start org.nixos.a".into(),
            ]
        );
        assert_eq!(
            env.installed(),
            [
                "org.nixos.a.plist = <plist>a 2</plist>",
                "org.nixos.b.plist = <plist>b 1</plist>"
            ]
        );
    }

    #[test]
    fn undeploy_stops_in_reverse_order_and_removes_plists() {
        let env = Env::new();
        let m = manifest(vec![job("db", "1", &[]), job("web", "1", &["db"])]);
        let p1 = env.profile("p1", &m);
        switch(
            &env.activator(RecordingRunner::new(), false),
            None,
            (&p1, &m),
        )
        .unwrap();
        let empty = manifest(vec![]);
        let p0 = env.profile("p0", &empty);
        // A stop of a job that already exited fails; unload goes on.
        let act = env.activator(
            RecordingRunner::new().fail("stop org.nixos.web", "Could not find service"),
            false,
        );
        switch(&act, Some((&p1, &m)), (&p0, &empty)).unwrap();
        let t = env.target.display().to_string();
        assert_eq!(
            act.runner().lines(Path::new("")),
            [
                "launchctl stop org.nixos.web".to_string(),
                format!("launchctl unload {t}/org.nixos.web.plist"),
                "launchctl stop org.nixos.db".into(),
                format!("launchctl unload {t}/org.nixos.db.plist"),
            ]
        );
        assert!(env.installed().is_empty());
    }

    #[test]
    fn failing_load_is_an_error_with_output_and_leaves_no_copy() {
        let env = Env::new();
        let m = manifest(vec![job("a", "1", &[])]);
        let p1 = env.profile("p1", &m);
        // launchctl load says it failed, with exit status 0.
        let act = env.activator(
            RecordingRunner::new()
                .respond("load -w", stdout(0, "Load failed: 5: Input/output error\n")),
            false,
        );
        let e = act.start(&p1, &m.instances[0]).unwrap_err().to_string();
        let t = env.target.display().to_string();
        assert_eq!(
            e,
            format!(
                "a: `launchctl load -w {t}/org.nixos.a.plist` exited with status 0\nstdout:\n  \
                 Load failed: 5: Input/output error"
            )
        );
        assert!(env.installed().is_empty());
        assert_eq!(act.runner().commands().len(), 1);

        let act = env.activator(
            RecordingRunner::new().fail("start org.nixos.a", "launchctl start error: 3"),
            false,
        );
        let e = format!("{:#}", act.start(&p1, &m.instances[0]).unwrap_err());
        assert_eq!(
            e,
            "a: starting org.nixos.a: `launchctl start org.nixos.a` exited with status 1\n\
             stderr:\n  launchctl start error: 3"
        );
    }

    #[test]
    fn failed_unload_keeps_the_plist() {
        let env = Env::new();
        let m = manifest(vec![job("a", "1", &[])]);
        let p1 = env.profile("p1", &m);
        env.activator(RecordingRunner::new(), false)
            .start(&p1, &m.instances[0])
            .unwrap();
        let act = env.activator(
            RecordingRunner::new().fail("unload", "Operation not permitted"),
            false,
        );
        let e = format!("{:#}", act.stop(&p1, &m.instances[0]).unwrap_err());
        assert!(
            e.starts_with("a: unloading org.nixos.a: `launchctl unload"),
            "{e}"
        );
        assert!(e.ends_with("stderr:\n  Operation not permitted"), "{e}");
        assert_eq!(env.installed().len(), 1);
    }

    #[test]
    fn status_from_launchctl_list() {
        let env = Env::new();
        let inst = job("a", "1", &[]);
        let running = "{\n\t\"LimitLoadToSessionType\" = \"System\";\n\t\"Label\" = \"org.nixos.a\";\n\t\"PID\" = 4242;\n};\n";
        let loaded = "{\n\t\"Label\" = \"org.nixos.a\";\n\t\"LastExitStatus\" = 0;\n};\n";
        for (answer, expected) in [
            (stdout(0, running), InstanceStatus::Running),
            (stdout(0, loaded), InstanceStatus::Stopped),
            (
                CmdOutput::exited(
                    113,
                    "Could not find service \"org.nixos.a\" in domain for system",
                ),
                InstanceStatus::Stopped,
            ),
            (
                CmdOutput::exited(1, "boom"),
                InstanceStatus::Unknown { code: Some(1) },
            ),
        ] {
            let act = env.activator(RecordingRunner::new().respond("list", answer), false);
            assert_eq!(act.status(env.tmp.path(), &inst).unwrap(), expected);
            assert_eq!(
                act.runner().lines(Path::new("")),
                ["launchctl list org.nixos.a"]
            );
        }
    }

    #[test]
    fn agents_refuse_jobs_that_switch_users() {
        let env = Env::new();
        let mut inst = job("a", "1", &[]);
        inst.user = Some("web".into());
        let m = manifest(vec![inst]);
        let p1 = env.profile("p1", &m);
        let act = env.activator(RecordingRunner::new(), true);
        let e = act.start(&p1, &m.instances[0]).unwrap_err().to_string();
        assert_eq!(
            e,
            "a: the job sets UserName=web, but the user's launchd agents cannot switch users; \
             build the profile with forceDisableUserChange = true"
        );
        assert!(act.runner().commands().is_empty());
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
            target_dir(env(&[("HOME", "/Users/u")]), false).unwrap(),
            Path::new("/Library/LaunchDaemons")
        );
        assert_eq!(
            target_dir(env(&[("HOME", "/Users/u")]), true).unwrap(),
            Path::new("/Users/u/Library/LaunchAgents")
        );
        assert_eq!(
            target_dir(env(&[("LAUNCHD_TARGET_DIR", "/t"), ("HOME", "/h")]), true).unwrap(),
            Path::new("/t")
        );
        assert_eq!(
            target_dir(env(&[]), true).unwrap_err(),
            "cannot find the user's agent directory: neither LAUNCHD_TARGET_DIR nor HOME is set"
        );
    }

    #[test]
    fn bad_manifest_entries() {
        let env = Env::new();
        let act = env.activator(RecordingRunner::new(), false);
        let mut bad = job("a", "1", &[]);
        bad.backend = Backend::Launchd {
            label: "../x".into(),
            plist: "Library/LaunchDaemons/x.plist".into(),
        };
        assert_eq!(
            act.start(env.tmp.path(), &bad).unwrap_err().to_string(),
            "a: `../x` is not a launchd label"
        );
        bad.backend = Backend::Launchd {
            label: "x".into(),
            plist: "/etc/passwd".into(),
        };
        assert!(act
            .stop(env.tmp.path(), &bad)
            .unwrap_err()
            .to_string()
            .contains("must be relative to the profile"));
        let e = act
            .start(env.tmp.path(), &job("a", "1", &[]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("is not readable"), "{e}");
        assert!(act.runner().commands().is_empty());
    }
}
