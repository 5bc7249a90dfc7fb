//! The docker activator (reference §5.7 "docker"): one container
//! `nixproc-<name>` per process, created from the profile's argument files
//! and driven with the `docker` CLI.
//!
//! * prepare = `docker version` must reach a daemon before anything is
//!   touched;
//! * start   = image: `docker image inspect <tag>`, if missing `docker load
//!   --input <tarball>` and, unless the archive carried the tag already,
//!   `docker tag <loaded> <tag>`; container: `docker container inspect`, if
//!   missing `docker create <params…> --label nixproc.revision=<rev>
//!   --label nixproc.name=<name> [--user <uid>:<gid>] --name nixproc-<name>
//!   <tag> <cmd…>`; `docker start`; the container must then be running
//!   (else the error quotes `docker logs --tail 20`);
//! * stop    = `docker stop -t 10`, `docker rm` (a container that is
//!   already gone counts as stopped); the image tag is remembered;
//! * finish  = `docker image rm <tag>` for each remembered tag that no
//!   instance of the new manifest uses (other tags of the image, and other
//!   containers' images, stay);
//! * status  = `docker container inspect -f {{.State.Running}}`.
//!
//! Differences to the original deploy tool, and why:
//! * `--force-disable-user-change` has an effect (defect 11): containers run
//!   as the calling user (`--user <uid>:<gid>`), so what they write into the
//!   bind-mounted state directory belongs to that user; a profile whose
//!   instances switch users is refused in that mode;
//! * `--state-dir` has an effect (defect 11): a profile built for another
//!   state directory (its `<name>-docker-settings` say which) is refused
//!   instead of mounting the wrong directory;
//! * the image is kept while any new instance uses its tag: with one base
//!   image for every container, removing it with each container (as the
//!   original's `docker rmi <name>:latest` did) would remove it for all;
//! * a container carries the package revision as a label: an existing
//!   `nixproc-<name>` of another revision (left by an interrupted switch) is
//!   replaced, one without nixproc's label (someone else's) is refused,
//!   never removed.

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use nixproc_core::docker::{cmd_file_for, parse_lines};
use nixproc_core::manifest::{Backend, InstanceEntry, Manifest};

use super::activator::{Activator, InstanceStatus};
use super::manifest::within_profile;
use super::runner::{Cmd, CmdOutput, CommandFailed, Runner};
use super::select::ActivatorConfig;

/// `docker load` of a large archive may take a while.
pub const LOAD_TIMEOUT: Duration = Duration::from_secs(600);

/// Seconds `docker stop` waits before it kills (`-t`).
pub const STOP_GRACE_SECONDS: u32 = 10;

/// The label holding the package revision a container was created from.
pub const REVISION_LABEL: &str = "nixproc.revision";

pub struct DockerActivator<R> {
    runner: R,
    config: ActivatorConfig,
    /// uid and gid containers run as under `--force-disable-user-change`.
    calling_ids: (u32, u32),
    /// Image tags of the containers this switch removed.
    removed_tags: std::sync::Mutex<BTreeSet<String>>,
}

/// What the manifest says about a container.
struct Container<'a> {
    name: &'a str,
    tag: &'a str,
    image: &'a str,
    create_params: &'a str,
}

impl<R: Runner> DockerActivator<R> {
    pub fn new(runner: R, config: &ActivatorConfig) -> Self {
        DockerActivator {
            runner,
            config: config.clone(),
            calling_ids: (
                rustix::process::getuid().as_raw(),
                rustix::process::getgid().as_raw(),
            ),
            removed_tags: std::sync::Mutex::new(BTreeSet::new()),
        }
    }

    /// Uses these ids instead of the caller's for `--user` under
    /// `--force-disable-user-change`.
    pub fn with_calling_ids(mut self, uid: u32, gid: u32) -> Self {
        self.calling_ids = (uid, gid);
        self
    }

    pub fn runner(&self) -> &R {
        &self.runner
    }

    fn docker(&self) -> Cmd {
        Cmd::new("docker")
    }

    /// Runs an `inspect`-like command: `Ok(None)` when docker says the
    /// object does not exist, `Ok(Some(stdout))` when it does.
    fn inspect(&self, cmd: Cmd) -> Result<Option<String>> {
        let out = self.runner.run(&cmd)?;
        if out.success() {
            Ok(Some(out.stdout.trim().to_string()))
        } else if is_no_such(&out) {
            Ok(None)
        } else {
            Err(CommandFailed { cmd, output: out }.into())
        }
    }

    /// Makes sure the image is present under `tag`.
    fn ensure_image(&self, c: &Container) -> Result<()> {
        let inspect = self
            .docker()
            .arg("image")
            .arg("inspect")
            .arg("--format")
            .arg("{{.Id}}")
            .arg(c.tag);
        if self.inspect(inspect)?.is_some() {
            return Ok(());
        }
        let load = self
            .docker()
            .arg("load")
            .arg("--input")
            .arg(c.image)
            .timeout(LOAD_TIMEOUT);
        let out = self.runner.run_checked(&load)?;
        let loaded = loaded_references(&out.stdout);
        if loaded.iter().any(|r| r == c.tag) {
            return Ok(());
        }
        let [source] = loaded.as_slice() else {
            bail!(
                "`{load}` loaded {} images ({}), so it is not clear which one to tag as {}",
                loaded.len(),
                loaded.join(", "),
                c.tag
            );
        };
        self.runner
            .run_checked(&self.docker().arg("tag").arg(source).arg(c.tag))?;
        Ok(())
    }

    /// `docker create …` for `inst` from the files of `profile`.
    fn create_cmd(&self, profile: &Path, inst: &InstanceEntry, c: &Container) -> Result<Cmd> {
        let read = |rel: &str| -> Result<Option<Vec<String>>> {
            let path = profile.join(rel);
            match fs::read_to_string(&path) {
                Ok(text) => Ok(Some(parse_lines(&text))),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
            }
        };
        let params = read(c.create_params)?.ok_or_else(|| {
            anyhow!(
                "{}: the create parameters {} are missing from the profile",
                inst.name,
                profile.join(c.create_params).display()
            )
        })?;
        let cmd_file = cmd_file_for(c.create_params).ok_or_else(|| {
            anyhow!(
                "{}: `{}` is not a <name>-docker-createparams file",
                inst.name,
                c.create_params
            )
        })?;
        let argv = read(&cmd_file)?.unwrap_or_default();

        let mut cmd = self.docker().arg("create");
        if self.config.force_disable_user_change {
            let (uid, gid) = self.calling_ids;
            cmd = cmd.arg("--user").arg(format!("{uid}:{gid}"));
        }
        for p in &params {
            cmd = cmd.arg(p);
        }
        cmd = cmd
            .arg("--label")
            .arg(format!("{REVISION_LABEL}={}", inst.revision))
            .arg("--label")
            .arg(format!("nixproc.name={}", inst.name))
            .arg("--name")
            .arg(c.name)
            .arg(c.tag);
        for a in &argv {
            cmd = cmd.arg(a);
        }
        Ok(cmd)
    }

    /// The refusals of `--force-disable-user-change` and `--state-dir`.
    fn check_profile_fits(
        &self,
        profile: &Path,
        inst: &InstanceEntry,
        c: &Container,
    ) -> Result<()> {
        if self.config.force_disable_user_change {
            if let Some(u) = &inst.user {
                bail!(
                    "{}: the container runs as user {u}, but --force-disable-user-change was \
                     given; build the profile with forceDisableUserChange = true",
                    inst.name
                );
            }
        }
        let settings = settings_file_for(c.create_params).map(|s| profile.join(s));
        if let Some(path) = settings {
            if let Ok(text) = fs::read_to_string(&path) {
                if let Some(built) = settings_value(&text, "stateDir") {
                    let wanted = self.config.state.state.to_string_lossy();
                    if built != wanted {
                        bail!(
                            "{}: the profile was built for the state directory {built}, but \
                             --state-dir is {wanted}; build it again with the same state \
                             directory",
                            inst.name
                        );
                    }
                }
            }
        }
        Ok(())
    }

    fn running(&self, container: &str) -> Result<Option<bool>> {
        let cmd = self
            .docker()
            .arg("container")
            .arg("inspect")
            .arg("--format")
            .arg("{{.State.Running}}")
            .arg(container);
        Ok(self.inspect(cmd)?.map(|s| s == "true"))
    }

    /// `docker logs --tail 20`, for error messages.
    fn logs_tail(&self, container: &str) -> String {
        let cmd = self
            .docker()
            .arg("logs")
            .arg("--tail")
            .arg("20")
            .arg(container);
        match self.runner.run(&cmd) {
            Ok(out) => {
                let tail = out.tail();
                if tail.is_empty() {
                    format!("\n`{cmd}` printed nothing")
                } else {
                    format!("\n`{cmd}`:\n{}", tail.trim_end())
                }
            }
            Err(e) => format!("\n(`{cmd}` could not run: {e:#})"),
        }
    }
}

impl<R: Runner> Activator for DockerActivator<R> {
    fn process_manager(&self) -> &str {
        "docker"
    }

    fn prepare(&self, _new_profile: &Path, _new: &Manifest) -> Result<()> {
        let cmd = self
            .docker()
            .arg("version")
            .arg("--format")
            .arg("{{.Server.Version}}");
        match self.runner.run(&cmd) {
            Ok(out) if out.success() => Ok(()),
            Ok(out) => Err(anyhow!(
                "no docker daemon is reachable (is it running, and may this user use it?)\n{}",
                CommandFailed { cmd, output: out }
            )),
            Err(e) => Err(e.context("no docker client: is docker installed and on PATH?")),
        }
    }

    fn start(&self, profile: &Path, inst: &InstanceEntry) -> Result<()> {
        let c = container_of(inst)?;
        self.check_profile_fits(profile, inst, &c)?;
        let create = self.create_cmd(profile, inst, &c)?;
        self.ensure_image(&c)
            .with_context(|| format!("{}: loading the image {}", inst.name, c.tag))?;

        let label = self
            .docker()
            .arg("container")
            .arg("inspect")
            .arg("--format")
            .arg(format!("{{{{index .Config.Labels \"{REVISION_LABEL}\"}}}}"))
            .arg(c.name);
        let create_needed = match self.inspect(label)? {
            None => true,
            Some(rev) if rev == inst.revision => false,
            Some(rev) if rev.is_empty() || rev == "<no value>" => bail!(
                "{}: a container named {} exists that nixproc did not create; remove or \
                 rename it to deploy this process",
                inst.name,
                c.name
            ),
            Some(_) => {
                // Ours, of another revision (an interrupted switch).
                self.runner
                    .run_checked(&self.docker().arg("rm").arg("--force").arg(c.name))?;
                true
            }
        };
        if create_needed {
            self.runner
                .run_checked(&create)
                .with_context(|| format!("{}: creating the container", inst.name))?;
        }
        let start = self.docker().arg("start").arg(c.name);
        if let Err(e) = self.runner.run_checked(&start) {
            bail!("{}: {e}{}", inst.name, self.logs_tail(c.name));
        }
        match self.running(c.name)? {
            Some(true) => Ok(()),
            _ => bail!(
                "{}: {} is not running after `{start}`{}",
                inst.name,
                c.name,
                self.logs_tail(c.name)
            ),
        }
    }

    fn stop(&self, _profile: &Path, inst: &InstanceEntry) -> Result<()> {
        let c = container_of(inst)?;
        let stop = self
            .docker()
            .arg("stop")
            .arg("-t")
            .arg(STOP_GRACE_SECONDS.to_string())
            .arg(c.name)
            .timeout(Duration::from_secs(u64::from(STOP_GRACE_SECONDS) + 60));
        let out = self.runner.run(&stop)?;
        if !out.success() && !is_no_such(&out) {
            return Err(CommandFailed {
                cmd: stop,
                output: out,
            }
            .into());
        }
        let rm = self.docker().arg("rm").arg(c.name);
        let out = self.runner.run(&rm)?;
        if !out.success() && !is_no_such(&out) {
            return Err(CommandFailed {
                cmd: rm,
                output: out,
            }
            .into());
        }
        self.removed_tags
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(c.tag.to_string());
        Ok(())
    }

    fn finish(&self, _new_profile: &Path, new: &Manifest) -> Result<()> {
        let used: BTreeSet<&str> = new
            .instances
            .iter()
            .filter_map(|i| match &i.backend {
                Backend::Docker { image_tag, .. } => Some(image_tag.as_str()),
                _ => None,
            })
            .collect();
        let tags =
            std::mem::take(&mut *self.removed_tags.lock().unwrap_or_else(|e| e.into_inner()));
        let mut failures = Vec::new();
        for tag in tags.iter().filter(|t| !used.contains(t.as_str())) {
            let rmi = self.docker().arg("image").arg("rm").arg(tag);
            let out = self.runner.run(&rmi)?;
            if !out.success() && !is_no_such(&out) {
                failures.push(
                    CommandFailed {
                        cmd: rmi,
                        output: out,
                    }
                    .to_string(),
                );
            }
        }
        if failures.is_empty() {
            Ok(())
        } else {
            bail!(
                "unused images could not be removed:\n{}",
                failures.join("\n")
            )
        }
    }

    fn status(&self, _profile: &Path, inst: &InstanceEntry) -> Result<InstanceStatus> {
        let c = container_of(inst)?;
        let cmd = self
            .docker()
            .arg("container")
            .arg("inspect")
            .arg("--format")
            .arg("{{.State.Running}}")
            .arg(c.name);
        let out = self.runner.run(&cmd)?;
        Ok(match (out.success(), out.stdout.trim()) {
            (true, "true") => InstanceStatus::Running,
            (true, "false") => InstanceStatus::Stopped,
            (false, _) if is_no_such(&out) => InstanceStatus::Stopped,
            _ => InstanceStatus::Unknown { code: out.code() },
        })
    }
}

/// The docker facts of a manifest entry, checked.
fn container_of(inst: &InstanceEntry) -> Result<Container<'_>> {
    let Backend::Docker {
        container,
        image_tag,
        image,
        create_params,
        ..
    } = &inst.backend
    else {
        bail!("{}: not a docker instance", inst.name);
    };
    let name_ok = container.starts_with("nixproc-")
        && container
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
    if !name_ok {
        bail!(
            "{}: `{container}` is not a nixproc container name",
            inst.name
        );
    }
    if !within_profile(create_params) {
        bail!(
            "{}: create parameters path `{create_params}` must be relative to the profile, \
             without `..`",
            inst.name
        );
    }
    if image_tag.is_empty() || image_tag.starts_with('-') || image.is_empty() {
        bail!("{}: the manifest names no image or tag", inst.name);
    }
    Ok(Container {
        name: container,
        tag: image_tag,
        image,
        create_params,
    })
}

/// `<name>-docker-createparams` → `<name>-docker-settings`.
fn settings_file_for(create_params: &str) -> Option<String> {
    create_params
        .strip_suffix("-docker-createparams")
        .map(|base| format!("{base}-docker-settings"))
}

/// The value of `key=` in a settings file (values are shell-escaped words:
/// bare, or in single quotes with `'\''` for a quote).
fn settings_value(text: &str, key: &str) -> Option<String> {
    let raw = text
        .lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))?;
    let mut out = String::new();
    let mut quoted = false;
    let mut chars = raw.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' => quoted = !quoted,
            '\\' if !quoted => out.extend(chars.next()),
            c => out.push(c),
        }
    }
    Some(out)
}

/// Whether docker said the object does not exist.
fn is_no_such(out: &CmdOutput) -> bool {
    let text = format!("{}{}", out.stderr, out.stdout).to_ascii_lowercase();
    text.contains("no such container")
        || text.contains("no such image")
        || text.contains("no such object")
}

/// The images `docker load` reported: `Loaded image: <name:tag>` and
/// `Loaded image ID: <id>` lines.
fn loaded_references(stdout: &str) -> Vec<String> {
    stdout
        .lines()
        .filter_map(|l| {
            l.trim()
                .strip_prefix("Loaded image ID: ")
                .or_else(|| l.trim().strip_prefix("Loaded image: "))
        })
        .map(|r| r.trim().to_string())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deploy::engine::{execute, Context as ExecContext, DeployError};
    use crate::deploy::plan::plan;
    use crate::deploy::progress::RecordingProgress;
    use crate::deploy::runner::{ExitKind, RecordingRunner};
    use crate::state_dirs::{StateDirOverrides, StateDirs};
    use nixproc_core::manifest::MANIFEST_VERSION;

    const IMAGE: &str = "/nix/store/0123456789abcdfghijklmnpqrsvwxyz-nixproc-docker-base.tar";
    const TAG: &str = "nixproc-base:0123456789ab";

    fn dk_inst(name: &str, rev: &str, deps: &[&str], priority: u32) -> InstanceEntry {
        InstanceEntry {
            key: name.to_string(),
            name: name.to_string(),
            description: format!("{name} service"),
            revision: rev.to_string(),
            dependencies: deps.iter().map(|d| d.to_string()).collect(),
            pid_file: None,
            log_file: None,
            user: None,
            backend: Backend::Docker {
                container: format!("nixproc-{name}"),
                image_tag: TAG.into(),
                image: IMAGE.into(),
                create_params: format!("{name}-docker-createparams"),
                priority,
            },
            state: None,
            readiness: None,
        }
    }

    fn dk_manifest(instances: Vec<InstanceEntry>) -> Manifest {
        Manifest {
            version: MANIFEST_VERSION,
            process_manager: "docker".into(),
            instances,
        }
    }

    /// The files the generator writes for each instance.
    fn write_profile(dir: &Path, m: &Manifest, state_dir: &str) {
        fs::create_dir_all(dir).unwrap();
        for e in &m.instances {
            let n = &e.name;
            fs::write(
                dir.join(format!("{n}-docker-settings")),
                format!("dockerImage={IMAGE}\ndockerImageTag={TAG}\nstateDir={state_dir}\n"),
            )
            .unwrap();
            fs::write(
                dir.join(format!("{n}-docker-createparams")),
                format!(
                    "--network\nhost\n--volume\n{state_dir}:{state_dir}\n--env\nV=a b $(x) 'q'\n"
                ),
            )
            .unwrap();
            fs::write(
                dir.join(format!("{n}-docker-cmd")),
                format!("/nix/store/x-{n}/bin/{n}\n--rev\n{}\n", e.revision),
            )
            .unwrap();
        }
    }

    fn config(force_disable_user_change: bool, state: &str) -> ActivatorConfig {
        ActivatorConfig {
            state: StateDirs::from_state_dir(state, &StateDirOverrides::default()),
            force_disable_user_change,
            runlevel: 3,
            systemd_user: false,
            enable_at_boot: false,
        }
    }

    fn out(code: i32, stdout: &str, stderr: &str) -> CmdOutput {
        CmdOutput {
            exit: ExitKind::Exited(code),
            stdout: stdout.into(),
            stderr: stderr.into(),
        }
    }

    /// A docker where the image is present, containers do not exist yet
    /// and start fine.
    fn docker() -> RecordingRunner {
        docker_after(RecordingRunner::new())
    }

    /// [`docker`], with the answers of `first` taking precedence.
    fn docker_after(first: RecordingRunner) -> RecordingRunner {
        first
            .respond("{{.State.Running}}", out(0, "true\n", ""))
            .respond(
                "nixproc.revision\"}}",
                out(1, "", "Error: No such container: nixproc-x\n"),
            )
    }

    struct Env {
        tmp: tempfile::TempDir,
    }

    impl Env {
        fn new() -> Env {
            Env {
                tmp: tempfile::tempdir().unwrap(),
            }
        }

        fn profile(&self, name: &str, m: &Manifest) -> std::path::PathBuf {
            let p = self.tmp.path().join(name);
            write_profile(&p, m, "/var");
            p
        }

        fn activator(&self, runner: RecordingRunner) -> DockerActivator<RecordingRunner> {
            DockerActivator::new(runner, &config(false, "/var")).with_calling_ids(1000, 100)
        }

        fn lines(&self, act: &DockerActivator<RecordingRunner>) -> Vec<String> {
            act.runner().lines(self.tmp.path())
        }
    }

    fn switch(
        act: &DockerActivator<RecordingRunner>,
        old: Option<(&Path, &Manifest)>,
        new: (&Path, &Manifest),
    ) -> Result<(), DeployError> {
        let empty = dk_manifest(vec![]);
        let old_m = old.map(|(_, m)| m).unwrap_or(&empty);
        let progress = RecordingProgress::default();
        act.prepare(new.0, new.1)?;
        let ctx = ExecContext {
            old_profile: old.map(|(p, _)| p),
            new_profile: new.0,
            activator: act,
            progress: &progress,
            hooks: &crate::deploy::engine::NoHooks,
            jobs: 1,
        };
        match execute(&plan(old_m, new.1), &ctx) {
            Ok(_) => {
                act.finish(new.0, new.1)?;
                Ok(())
            }
            Err(e) => {
                act.finish(old.map(|(p, _)| p).unwrap_or(new.0), old_m)?;
                Err(e)
            }
        }
    }

    fn create_line(name: &str, rev: &str) -> String {
        format!(
            "docker create --network host --volume /var:/var --env 'V=a b $(x) '\\''q'\\''' \
             --label nixproc.revision={rev} --label nixproc.name={name} --name nixproc-{name} \
             {TAG} /nix/store/x-{name}/bin/{name} --rev {rev}"
        )
    }

    fn start_lines(name: &str, rev: &str) -> Vec<String> {
        vec![
            format!("docker image inspect --format '{{{{.Id}}}}' {TAG}"),
            format!(
                "docker container inspect --format '{{{{index .Config.Labels \"nixproc.revision\"}}}}' nixproc-{name}"
            ),
            create_line(name, rev),
            format!("docker start nixproc-{name}"),
            format!("docker container inspect --format '{{{{.State.Running}}}}' nixproc-{name}"),
        ]
    }

    fn stop_lines(name: &str) -> Vec<String> {
        vec![
            format!("docker stop -t 10 nixproc-{name}"),
            format!("docker rm nixproc-{name}"),
        ]
    }

    #[test]
    fn first_deploy_creates_and_starts_in_priority_order() {
        let env = Env::new();
        let m = dk_manifest(vec![
            dk_inst("db", "1", &[], 1),
            dk_inst("web", "1", &["db"], 2),
        ]);
        let p1 = env.profile("p1", &m);
        let act = env.activator(docker());
        switch(&act, None, (&p1, &m)).unwrap();
        let mut expected = vec!["docker version --format '{{.Server.Version}}'".to_string()];
        expected.extend(start_lines("db", "1"));
        expected.extend(start_lines("web", "1"));
        assert_eq!(env.lines(&act), expected);
    }

    #[test]
    fn missing_image_is_loaded_and_tagged() {
        let env = Env::new();
        let m = dk_manifest(vec![dk_inst("db", "1", &[], 1)]);
        let p1 = env.profile("p1", &m);
        let runner = docker()
            .respond(
                "image inspect",
                out(1, "", "Error: No such image: nixproc-base:0123456789ab\n"),
            )
            .respond(
                "docker load",
                out(0, "Loaded image ID: sha256:feedbeef\n", ""),
            );
        let act = env.activator(runner);
        act.start(&p1, &m.instances[0]).unwrap();
        let lines = env.lines(&act);
        assert_eq!(
            lines[..3],
            [
                format!("docker image inspect --format '{{{{.Id}}}}' {TAG}"),
                format!("docker load --input {IMAGE}"),
                format!("docker tag sha256:feedbeef {TAG}"),
            ]
        );
        assert_eq!(lines[3..], start_lines("db", "1")[1..]);

        // An archive that carries the tag needs no `docker tag`.
        let runner = docker()
            .respond("image inspect", out(1, "", "Error: No such image: x\n"))
            .respond("docker load", out(0, &format!("Loaded image: {TAG}\n"), ""));
        let act = env.activator(runner);
        act.start(&p1, &m.instances[0]).unwrap();
        assert!(env.lines(&act).iter().all(|l| !l.starts_with("docker tag")));

        // Several images and none with the tag: which one?
        let runner = docker()
            .respond("image inspect", out(1, "", "Error: No such image: x\n"))
            .respond(
                "docker load",
                out(0, "Loaded image: a:1\nLoaded image: b:2\n", ""),
            );
        let act = env.activator(runner);
        let e = format!("{:#}", act.start(&p1, &m.instances[0]).unwrap_err());
        assert!(
            e.starts_with("db: loading the image nixproc-base:0123456789ab: `docker load --input"),
            "{e}"
        );
        assert!(e.ends_with("loaded 2 images (a:1, b:2), so it is not clear which one to tag as nixproc-base:0123456789ab"), "{e}");
    }

    #[test]
    fn switch_replaces_only_the_changed_container_and_keeps_the_image() {
        let env = Env::new();
        let old = dk_manifest(vec![
            dk_inst("db", "1", &[], 1),
            dk_inst("web", "1", &["db"], 2),
        ]);
        let new = dk_manifest(vec![
            dk_inst("db", "1", &[], 1),
            dk_inst("web", "2", &["db"], 2),
        ]);
        let (p1, p2) = (env.profile("p1", &old), env.profile("p2", &new));
        let act = env.activator(docker());
        switch(&act, Some((&p1, &old)), (&p2, &new)).unwrap();
        let mut expected = vec!["docker version --format '{{.Server.Version}}'".to_string()];
        expected.extend(stop_lines("web"));
        expected.extend(start_lines("web", "2"));
        // The base image is still used: no `docker image rm`.
        assert_eq!(env.lines(&act), expected);
    }

    #[test]
    fn undeploy_stops_in_reverse_order_and_removes_the_unused_image() {
        let env = Env::new();
        let old = dk_manifest(vec![
            dk_inst("db", "1", &[], 1),
            dk_inst("web", "1", &["db"], 2),
            dk_inst("proxy", "1", &["web"], 3),
        ]);
        let new = dk_manifest(vec![]);
        let (p1, p2) = (env.profile("p1", &old), env.profile("p2", &new));
        let act = env.activator(docker());
        switch(&act, Some((&p1, &old)), (&p2, &new)).unwrap();
        let mut expected = vec!["docker version --format '{{.Server.Version}}'".to_string()];
        expected.extend(stop_lines("proxy"));
        expected.extend(stop_lines("web"));
        expected.extend(stop_lines("db"));
        expected.push(format!("docker image rm {TAG}"));
        assert_eq!(env.lines(&act), expected);
    }

    #[test]
    fn stopping_a_container_that_is_gone_counts_as_stopped() {
        let env = Env::new();
        let m = dk_manifest(vec![dk_inst("db", "1", &[], 1)]);
        let p1 = env.profile("p1", &m);
        let runner = RecordingRunner::new()
            .respond(
                "docker stop",
                out(
                    1,
                    "",
                    "Error response from daemon: No such container: nixproc-db\n",
                ),
            )
            .respond(
                "docker rm",
                out(1, "", "Error: No such container: nixproc-db\n"),
            );
        let act = env.activator(runner);
        act.stop(&p1, &m.instances[0]).unwrap();

        let runner = RecordingRunner::new().respond(
            "docker stop",
            out(
                1,
                "",
                "Cannot connect to the Docker daemon at unix:///var/run/docker.sock\n",
            ),
        );
        let act = env.activator(runner);
        let e = act.stop(&p1, &m.instances[0]).unwrap_err().to_string();
        assert_eq!(
            e,
            "`docker stop -t 10 nixproc-db` exited with status 1\nstderr:\n  Cannot connect to \
             the Docker daemon at unix:///var/run/docker.sock"
        );
    }

    #[test]
    fn failed_start_reports_the_logs_and_rolls_back() {
        let env = Env::new();
        let old = dk_manifest(vec![dk_inst("db", "1", &[], 1)]);
        let new = dk_manifest(vec![dk_inst("db", "2", &[], 1)]);
        let (p1, p2) = (env.profile("p1", &old), env.profile("p2", &new));
        let runner = RecordingRunner::new()
            .respond("{{.State.Running}}", out(0, "false\n", ""))
            .respond(
                "nixproc.revision\"}}",
                out(1, "", "Error: No such container: nixproc-db\n"),
            )
            .respond("docker logs", out(0, "", "db: cannot bind port 5432\n"));
        let act = env.activator(runner);
        let err = switch(&act, Some((&p1, &old)), (&p2, &new)).unwrap_err();
        let DeployError::Activation(f) = &err else {
            panic!("{err}")
        };
        assert_eq!(
            f.failed.error,
            "db: nixproc-db is not running after `docker start nixproc-db`\n\
             `docker logs --tail 20 nixproc-db`:\nstderr:\n  db: cannot bind port 5432"
        );
        let lines = env.lines(&act);
        let mut expected = vec!["docker version --format '{{.Server.Version}}'".to_string()];
        expected.extend(stop_lines("db"));
        expected.extend(start_lines("db", "2"));
        expected.push("docker logs --tail 20 nixproc-db".into());
        // rollback: clean up the failed new container, start the old one
        expected.extend(stop_lines("db"));
        expected.extend(start_lines("db", "1"));
        expected.push("docker logs --tail 20 nixproc-db".into());
        assert_eq!(lines, expected);
    }

    #[test]
    fn failed_create_names_the_instance() {
        let env = Env::new();
        let m = dk_manifest(vec![dk_inst("db", "1", &[], 1)]);
        let p1 = env.profile("p1", &m);
        let act = env.activator(docker().respond(
            "docker create",
            out(
                125,
                "",
                "docker: Error response from daemon: invalid mount config\n",
            ),
        ));
        let e = format!("{:#}", act.start(&p1, &m.instances[0]).unwrap_err());
        assert!(
            e.starts_with("db: creating the container: `docker create"),
            "{e}"
        );
        assert!(
            e.ends_with("exited with status 125\nstderr:\n  docker: Error response from daemon: invalid mount config"),
            "{e}"
        );
    }

    #[test]
    fn existing_containers_are_reused_replaced_or_refused() {
        let env = Env::new();
        let m = dk_manifest(vec![dk_inst("db", "1", &[], 1)]);
        let p1 = env.profile("p1", &m);
        // Same revision: started as it is.
        let act = env.activator(docker_after(
            RecordingRunner::new().respond("nixproc.revision\"}}", out(0, "1\n", "")),
        ));
        act.start(&p1, &m.instances[0]).unwrap();
        assert!(env
            .lines(&act)
            .iter()
            .all(|l| !l.starts_with("docker create")));
        // Another revision of ours: removed and created again.
        let act = env.activator(docker_after(
            RecordingRunner::new().respond("nixproc.revision\"}}", out(0, "0\n", "")),
        ));
        act.start(&p1, &m.instances[0]).unwrap();
        let lines = env.lines(&act);
        assert_eq!(lines[2], "docker rm --force nixproc-db");
        assert_eq!(lines[3], create_line("db", "1"));
        // Someone else's: refused, untouched.
        let act = env.activator(docker_after(
            RecordingRunner::new().respond("nixproc.revision\"}}", out(0, "<no value>\n", "")),
        ));
        let e = act.start(&p1, &m.instances[0]).unwrap_err().to_string();
        assert_eq!(
            e,
            "db: a container named nixproc-db exists that nixproc did not create; remove or \
             rename it to deploy this process"
        );
        assert_eq!(env.lines(&act).len(), 2);
    }

    #[test]
    fn force_disable_user_change_runs_as_the_caller() {
        let env = Env::new();
        let m = dk_manifest(vec![dk_inst("db", "1", &[], 1)]);
        let p1 = env.profile("p1", &m);
        let act = DockerActivator::new(docker(), &config(true, "/var")).with_calling_ids(1000, 100);
        act.start(&p1, &m.instances[0]).unwrap();
        let lines = env.lines(&act);
        assert!(
            lines[2].starts_with("docker create --user 1000:100 --network host"),
            "{}",
            lines[2]
        );

        // A profile whose containers switch users does not fit.
        let mut inst = dk_inst("db", "1", &[], 1);
        inst.user = Some("postgres".into());
        let act = DockerActivator::new(docker(), &config(true, "/var"));
        let e = act.start(&p1, &inst).unwrap_err().to_string();
        assert_eq!(
            e,
            "db: the container runs as user postgres, but --force-disable-user-change was given; \
             build the profile with forceDisableUserChange = true"
        );
        assert!(act.runner().commands().is_empty());
    }

    #[test]
    fn state_dir_must_match_the_profile() {
        let env = Env::new();
        let m = dk_manifest(vec![dk_inst("db", "1", &[], 1)]);
        let p1 = env.tmp.path().join("p1");
        write_profile(&p1, &m, "/home/u/my state");
        // The settings file quotes the value as the generator does.
        fs::write(
            p1.join("db-docker-settings"),
            format!("dockerImage={IMAGE}\ndockerImageTag={TAG}\nstateDir='/home/u/my state'\n"),
        )
        .unwrap();
        let act = DockerActivator::new(docker(), &config(false, "/var"));
        let e = act.start(&p1, &m.instances[0]).unwrap_err().to_string();
        assert_eq!(
            e,
            "db: the profile was built for the state directory /home/u/my state, but --state-dir \
             is /var; build it again with the same state directory"
        );
        assert!(act.runner().commands().is_empty());
        let act = DockerActivator::new(docker(), &config(false, "/home/u/my state"));
        act.start(&p1, &m.instances[0]).unwrap();
    }

    #[test]
    fn unreachable_daemon_fails_before_anything_is_touched() {
        let env = Env::new();
        let m = dk_manifest(vec![dk_inst("db", "1", &[], 1)]);
        let p1 = env.profile("p1", &m);
        let act = env.activator(RecordingRunner::new().fail(
            "docker version",
            "Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?",
        ));
        let e = switch(&act, None, (&p1, &m)).unwrap_err().to_string();
        assert_eq!(
            e,
            "no docker daemon is reachable (is it running, and may this user use it?)\n\
             `docker version --format '{{.Server.Version}}'` exited with status 1\nstderr:\n  \
             Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker \
             daemon running?"
        );
        assert_eq!(act.runner().commands().len(), 1);
    }

    #[test]
    fn status_from_state_running() {
        let env = Env::new();
        let inst = dk_inst("db", "1", &[], 1);
        for (answer, expected) in [
            (out(0, "true\n", ""), InstanceStatus::Running),
            (out(0, "false\n", ""), InstanceStatus::Stopped),
            (
                out(1, "", "Error: No such container: nixproc-db\n"),
                InstanceStatus::Stopped,
            ),
            (
                out(1, "", "permission denied\n"),
                InstanceStatus::Unknown { code: Some(1) },
            ),
        ] {
            let act = env.activator(RecordingRunner::new().respond("State.Running", answer));
            assert_eq!(act.status(env.tmp.path(), &inst).unwrap(), expected);
            assert_eq!(
                env.lines(&act),
                ["docker container inspect --format '{{.State.Running}}' nixproc-db"]
            );
        }
    }

    #[test]
    fn bad_manifest_entries() {
        let env = Env::new();
        let act = env.activator(RecordingRunner::new());
        let mut bad = dk_inst("a", "1", &[], 1);
        bad.backend = Backend::Docker {
            container: "other; rm".into(),
            image_tag: TAG.into(),
            image: IMAGE.into(),
            create_params: "a-docker-createparams".into(),
            priority: 1,
        };
        assert_eq!(
            act.stop(env.tmp.path(), &bad).unwrap_err().to_string(),
            "a: `other; rm` is not a nixproc container name"
        );
        bad.backend = Backend::Docker {
            container: "nixproc-a".into(),
            image_tag: TAG.into(),
            image: IMAGE.into(),
            create_params: "../../etc/passwd".into(),
            priority: 1,
        };
        assert!(act
            .start(env.tmp.path(), &bad)
            .unwrap_err()
            .to_string()
            .contains("must be relative to the profile"));
        let missing = dk_inst("a", "1", &[], 1);
        let e = act.start(env.tmp.path(), &missing).unwrap_err().to_string();
        assert!(
            e.starts_with("a: the create parameters")
                && e.ends_with("are missing from the profile"),
            "{e}"
        );
        assert!(act.runner().commands().is_empty());
    }

    #[test]
    fn settings_values_are_unquoted() {
        assert_eq!(
            settings_value("a=1\nstateDir='/x y'\\''z'\n", "stateDir").as_deref(),
            Some("/x y'z")
        );
        assert_eq!(
            settings_value("stateDir=/var\n", "stateDir").as_deref(),
            Some("/var")
        );
        assert_eq!(settings_value("state=/var\n", "stateDir"), None);
    }
}
