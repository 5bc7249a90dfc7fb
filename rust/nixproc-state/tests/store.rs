//! The store end to end in a temporary directory: snapshot, find, restore,
//! verify, gc, export/import.

mod common;

use std::fs;

use common::*;
use nixproc_state::keys::{KeyConfig, Keys};
use nixproc_state::store::{GcOptions, GcRoots, Selector, StateStore};

#[test]
fn directory_round_trip_encrypted() {
    let t = tempfile::tempdir().unwrap();
    let live = t.path().join("srv/data");
    write(&live.join("a.txt"), b"hello");
    write(&live.join("sub/b.bin"), &[0u8, 1, 2, 255]);
    fs::create_dir_all(live.join("empty")).unwrap();
    std::os::unix::fs::symlink("sub/b.bin", live.join("link")).unwrap();
    chmod(&live.join("a.txt"), 0o640);
    chmod(&live, 0o750);
    let before = walk(&live);
    let (keys, _) = host_keys(t.path());
    let store = StateStore::open(&t.path().join("store")).unwrap();
    let spec = spec(vec![("files", dir_unit(&live))]);
    let m = store
        .snapshot(req("web", &spec, "rev1", Some(3)), &keys)
        .unwrap();
    assert_eq!(m.recipients, keys.recipients());
    assert!(
        m.units["files"].file.ends_with(".tar.zst.age"),
        "{:?}",
        m.units
    );
    // Mutate, restore, compare.
    write(&live.join("a.txt"), b"changed");
    write(&live.join("new"), b"x");
    fs::remove_dir(live.join("empty")).unwrap();
    store.restore(&m.id, &spec, &keys, None, None).unwrap();
    assert_eq!(walk(&live), before);
    // No staging leftovers next to the live directory.
    let names: Vec<_> = fs::read_dir(t.path().join("srv"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, vec!["data"]);
    assert!(store
        .verify(&m.id, Some(&keys))
        .unwrap()
        .problems
        .is_empty());
}
