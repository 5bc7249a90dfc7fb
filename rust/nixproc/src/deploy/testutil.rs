//! Helpers for the deploy tests.

use std::fs;
use std::path::Path;

use nixproc_core::manifest::{Backend, InstanceEntry, Manifest, MANIFEST_PATH, MANIFEST_VERSION};

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
        #[allow(irrefutable_let_patterns)] // more backends will follow
        if let Backend::Sysvinit { script, .. } = &e.backend {
            let p = dir.join(script);
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            fs::write(p, "").unwrap();
        }
    }
}
