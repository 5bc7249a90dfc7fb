//! Helpers for the deploy tests.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use nixproc_core::manifest::{Backend, InstanceEntry, Manifest, MANIFEST_PATH, MANIFEST_VERSION};

use super::activator::Activator;
use super::engine::{execute, Context, DeployError};
use super::plan::plan;
use super::progress::RecordingProgress;

/// One switch of `act` from `old` (none: first deployment) to `new`, the
/// way `Switch::run` drives an activator, without generations: prepare,
/// execute the plan, finish.
pub(crate) fn switch(
    act: &dyn Activator,
    old: Option<(&Path, &Manifest)>,
    new: (&Path, &Manifest),
) -> Result<(), DeployError> {
    let empty = Manifest::empty(act.process_manager());
    let old_m = old.map(|(_, m)| m).unwrap_or(&empty);
    let progress = RecordingProgress::default();
    act.prepare(new.0, new.1)?;
    let ctx = Context {
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

/// A sysvinit instance entry started in runlevels 3, 4 and 5.
pub(crate) fn inst(name: &str, rev: &str, deps: &[&str]) -> InstanceEntry {
    InstanceEntry {
        key: name.to_string(),
        name: name.to_string(),
        description: format!("{name} service"),
        revision: rev.to_string(),
        dependencies: deps.iter().map(|d| d.to_string()).collect(),
        pid_file: None,
        log_file: None,
        user: None,
        backend: Backend::Sysvinit {
            script: format!("etc/rc.d/init.d/{name}"),
            start_runlevels: vec![3, 4, 5],
            sequence: 0,
        },
        state: None,
        readiness: None,
    }
}

pub(crate) fn manifest(instances: Vec<InstanceEntry>) -> Manifest {
    Manifest {
        version: MANIFEST_VERSION,
        process_manager: "sysvinit".into(),
        instances,
    }
}

/// A profile directory with the manifest and an (empty) file per init
/// script, for activators whose runner does not run anything.
pub(crate) fn write_profile(dir: &Path, m: &Manifest) {
    let path = dir.join(MANIFEST_PATH);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(&path, serde_json::to_string_pretty(m).unwrap()).unwrap();
    for e in &m.instances {
        if let Backend::Sysvinit { script, .. } = &e.backend {
            let p = dir.join(script);
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            fs::write(p, "").unwrap();
        }
    }
}

/// A profile with the manifest and real init scripts that append
/// `<name>-<rev> <activity>` to `log`; a script whose revision is "bad"
/// fails on start.
pub(crate) fn write_profile_with_scripts(profile: &Path, log: &Path, m: &Manifest) {
    write_profile(profile, m);
    let dir = profile.join("etc/rc.d/init.d");
    for e in &m.instances {
        let fail = if e.revision == "bad" {
            "echo \"cannot bind port\" >&2; exit 1"
        } else {
            ":"
        };
        let text = format!(
            "#!/bin/sh\ncase \"$1\" in\n  start) echo '{n}-{r} start' >> '{log}'; {fail} ;;\n  stop) echo '{n}-{r} stop' >> '{log}' ;;\n  status) exit 3 ;;\n  *) exit 1 ;;\nesac\n",
            n = e.name,
            r = e.revision,
            log = log.display(),
        );
        let path = dir.join(&e.name);
        fs::write(&path, text).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
    }
}

/// The lines of a script log, then empties it.
pub(crate) fn log_lines(log: &Path) -> Vec<String> {
    let lines = fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect();
    let _ = fs::remove_file(log);
    lines
}

/// The upgrade used across engine and activator tests: old has webapp1-3
/// behind nginx; new changes webapp1, removes webapp3, adds webapp4,
/// changes nginx and keeps webapp2.
pub(crate) fn upgrade_pair() -> (Manifest, Manifest) {
    let old = manifest(vec![
        inst("webapp1", "1", &[]),
        inst("webapp2", "1", &[]),
        inst("webapp3", "1", &[]),
        inst("nginx", "1", &["webapp1", "webapp2", "webapp3"]),
    ]);
    let new = manifest(vec![
        inst("webapp1", "2", &[]),
        inst("webapp2", "1", &[]),
        inst("webapp4", "1", &[]),
        inst("nginx", "2", &["webapp1", "webapp2", "webapp4"]),
    ]);
    (old, new)
}
