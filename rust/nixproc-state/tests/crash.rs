//! Crash safety: the test re-executes its own binary as a child that runs
//! a snapshot, restore or gc with `NIXPROC_FAULT=<point>` and is SIGKILLed
//! there. Afterwards every live directory is entirely old or entirely new,
//! a fresh `StateStore::open` + `verify` (deep) of every object passes,
//! and `gc` removes the orphans (nothing left in tmp/ or trash/, every
//! object referenced or kept).

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use nixproc_core::lifecycle::StateSpec;
use nixproc_state::faults;
use nixproc_state::keys::{KeyConfig, Keys};
use nixproc_state::store::{GcOptions, GcRoots, Selector, StateStore};

const CHILD: &str = "NIXPROC_CRASH_TEST_CHILD";

struct Setup {
    base: PathBuf,
}

impl Setup {
    fn store(&self) -> StateStore {
        StateStore::open(&self.base.join("store")).unwrap()
    }
    fn keys(&self) -> Keys {
        Keys::load(&KeyConfig {
            host_identity: self.base.join("id.txt"),
            create_host_identity: true,
            ..Default::default()
        })
        .unwrap()
    }
    fn spec(&self) -> StateSpec {
        spec(vec![
            ("a", dir_unit(&self.base.join("live/a"))),
            ("b", dir_unit(&self.base.join("live/b"))),
        ])
    }
    fn fill(&self, version: &str) {
        for u in ["a", "b"] {
            let d = self.base.join("live").join(u);
            let _ = nixproc_state::archive::remove_tree(&d);
            for i in 0..20 {
                write(
                    &d.join(format!("dir{}/f{i}", i % 3)),
                    format!("{version}-{u}-{i}").as_bytes(),
                );
            }
            write(&d.join("version"), version.as_bytes());
        }
    }
}

/// What the child does, by `CHILD` = "snapshot" | "restore" | "gc".
fn child(mode: &str, base: &Path) {
    let s = Setup {
        base: base.to_path_buf(),
    };
    let store = s.store();
    let keys = s.keys();
    let spec = s.spec();
    match mode {
        "snapshot" => {
            store
                .snapshot(req("web", &spec, "rev2", Some(2)), &keys)
                .unwrap();
        }
        "restore" => {
            let m = store
                .find("web", &Selector::Revision("rev1".into()))
                .unwrap()
                .unwrap();
            store.restore(&m.id, &spec, &keys, None, None).unwrap();
        }
        "gc" => {
            store
                .gc(
                    &GcOptions {
                        keep: 0,
                        ..Default::default()
                    },
                    &GcRoots::default(),
                )
                .unwrap();
        }
        other => panic!("unknown child mode {other}"),
    }
}

fn run_child(mode: &str, base: &Path, point: &str) -> std::process::ExitStatus {
    let exe = std::env::current_exe().unwrap();
    Command::new(exe)
        .args([
            "--exact",
            "crash_at_every_point",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD, mode)
        .env("NIXPROC_CRASH_BASE", base)
        .env(faults::ENV, point)
        .output()
        .unwrap()
        .status
}

fn trees(base: &Path) -> BTreeMap<String, Tree> {
    ["a", "b"]
        .iter()
        .map(|u| (u.to_string(), walk(&base.join("live").join(u))))
        .collect()
}

/// The checks after a crash: the store opens, every object verifies
/// deeply, gc leaves only referenced objects and empty tmp/ and trash/.
fn check_store(s: &Setup, point: &str) {
    let store = s.store();
    let keys = s.keys();
    store.recover(&s.spec()).unwrap();
    for id in store.object_ids().unwrap() {
        let r = store.verify(&id, Some(&keys)).unwrap();
        assert!(r.problems.is_empty(), "{point}: {id}: {:?}", r.problems);
    }
    let roots = GcRoots {
        generations: [1, 2].into(),
        revisions: Default::default(),
    };
    store
        .gc(
            &GcOptions {
                keep: 0,
                ..Default::default()
            },
            &roots,
        )
        .unwrap();
    assert_eq!(
        fs::read_dir(store.root().join("tmp")).unwrap().count(),
        0,
        "{point}: tmp/"
    );
    assert_eq!(
        fs::read_dir(store.root().join("trash")).unwrap().count(),
        0,
        "{point}: trash/"
    );
    for id in store.object_ids().unwrap() {
        let m = store.manifest(&id).unwrap().unwrap();
        let g = m.generation.unwrap();
        assert_eq!(
            store
                .find("web", &Selector::Generation(g))
                .unwrap()
                .map(|m| m.id),
            Some(id.clone()),
            "{point}: {id} is referenced"
        );
    }
    // No leftovers next to the live directories.
    for e in fs::read_dir(s.base.join("live")).unwrap() {
        let n = e.unwrap().file_name().to_string_lossy().into_owned();
        assert!(n == "a" || n == "b", "{point}: leftover {n}");
    }
}

#[test]
fn crash_at_every_point() {
    if let Ok(mode) = std::env::var(CHILD) {
        child(
            &mode,
            Path::new(&std::env::var("NIXPROC_CRASH_BASE").unwrap()),
        );
        return;
    }
    let mut reached = Vec::new();
    for point in faults::POINTS {
        for mode in ["snapshot", "restore", "gc"] {
            let t = tempfile::tempdir().unwrap();
            let s = Setup {
                base: t.path().to_path_buf(),
            };
            // Generation 1 / rev1 holds the old state; live is the new one.
            s.fill("old");
            let old = trees(&s.base);
            s.store()
                .snapshot(req("web", &s.spec(), "rev1", Some(1)), &s.keys())
                .unwrap();
            s.fill("new");
            let new = trees(&s.base);
            let status = run_child(mode, &s.base, point);
            let killed = status.signal() == Some(9);
            assert!(
                killed || status.success(),
                "{mode} at {point}: child failed: {status:?}"
            );
            if killed {
                reached.push(format!("{mode}:{point}"));
            }
            s.store().recover(&s.spec()).unwrap();
            let now = trees(&s.base);
            for u in ["a", "b"] {
                assert!(
                    now[u] == old[u] || now[u] == new[u],
                    "{mode} at {point}: unit {u} is neither old nor new"
                );
            }
            if mode != "restore" || !killed {
                // Only a restore changes live state.
                let expect = if mode == "restore" { &old } else { &new };
                assert_eq!(&now, expect, "{mode} at {point}");
            }
            check_store(&s, point);
        }
    }
    let expect = [
        "snapshot:snapshot.unit-written",
        "snapshot:snapshot.before-rename",
        "snapshot:snapshot.after-rename",
        "snapshot:snapshot.before-refs",
        "restore:restore.staged",
        "restore:restore.between-units",
        "restore:directory.between-renames",
        "gc:gc.moved-to-trash",
    ];
    for e in expect {
        assert!(
            reached.iter().any(|r| r == e),
            "fault point {e} never reached: {reached:?}"
        );
    }
}
