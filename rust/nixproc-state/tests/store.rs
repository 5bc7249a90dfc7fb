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

fn unencrypted() -> Keys {
    Keys::load(&KeyConfig {
        no_encryption: true,
        ..Default::default()
    })
    .unwrap()
}

const HOSTILE: &[u8] = b"it's \"quoted\" $(rm -rf /) `id` ; % \\ \n\xc3\xa9\xe2\x82\xac\x00\xff";

#[test]
fn command_round_trip_unencrypted_with_hostile_bytes() {
    let t = tempfile::tempdir().unwrap();
    let data = t.path().join("state file");
    fs::write(&data, HOSTILE).unwrap();
    let q = format!("'{}'", data.display());
    let spec = spec(vec![(
        "blob",
        command_unit(&format!("cat {q}"), &format!("cat > {q}")),
    )]);
    let keys = unencrypted();
    let store = StateStore::open(&t.path().join("store")).unwrap();
    let m = store.snapshot(req("db", &spec, "r1", None), &keys).unwrap();
    assert!(m.recipients.is_empty());
    assert_eq!(m.units["blob"].file, "unit-blob.bin.zst");
    assert!(object_dir(store.root(), &m.id).join("secret.json").exists());
    fs::write(&data, b"newer").unwrap();
    store.restore(&m.id, &spec, &keys, None, None).unwrap();
    assert_eq!(fs::read(&data).unwrap(), HOSTILE);
    assert!(store
        .verify(&m.id, Some(&keys))
        .unwrap()
        .problems
        .is_empty());
}

#[test]
fn command_failures_carry_stderr() {
    let t = tempfile::tempdir().unwrap();
    let spec = spec(vec![(
        "c",
        command_unit("echo boom >&2; exit 3", "cat >/dev/null"),
    )]);
    let store = StateStore::open(&t.path().join("store")).unwrap();
    let e = format!(
        "{:#}",
        store
            .snapshot(req("db", &spec, "r1", None), &unencrypted())
            .unwrap_err()
    );
    assert!(
        e.contains("dump command of unit c") && e.contains("boom"),
        "{e}"
    );
    // Nothing committed, nothing left in tmp/.
    assert!(store.list(None).unwrap().is_empty());
    assert_eq!(fs::read_dir(store.root().join("tmp")).unwrap().count(), 0);

    let spec = spec_restore_fails();
    let m = store
        .snapshot(req("db", &spec, "r1", None), &unencrypted())
        .unwrap();
    let e = format!(
        "{:#}",
        store
            .restore(&m.id, &spec, &unencrypted(), None, None)
            .unwrap_err()
    );
    assert!(
        e.contains("restore command of unit c") && e.contains("nope"),
        "{e}"
    );
}

fn spec_restore_fails() -> nixproc_core::lifecycle::StateSpec {
    spec(vec![(
        "c",
        command_unit("echo data", "cat >/dev/null; echo nope >&2; exit 1"),
    )])
}

#[test]
fn an_absent_directory_restores_as_absent() {
    let t = tempfile::tempdir().unwrap();
    let live = t.path().join("srv/data");
    fs::create_dir_all(t.path().join("srv")).unwrap();
    let spec = spec(vec![("files", dir_unit(&live))]);
    let keys = unencrypted();
    let store = StateStore::open(&t.path().join("store")).unwrap();
    let m = store
        .snapshot(req("web", &spec, "r1", None), &keys)
        .unwrap();
    write(&live.join("written-later"), b"x");
    store.restore(&m.id, &spec, &keys, None, None).unwrap();
    assert!(!live.exists());
    assert!(store
        .verify(&m.id, Some(&keys))
        .unwrap()
        .problems
        .is_empty());
}

#[test]
fn excluded_paths_are_not_captured() {
    let t = tempfile::tempdir().unwrap();
    let live = t.path().join("data");
    write(&live.join("keep.txt"), b"k");
    write(&live.join("cache/x"), b"c");
    write(&live.join("sub/y.tmp"), b"t");
    let mut unit = dir_unit(&live);
    if let nixproc_core::lifecycle::UnitKind::Directory { exclude, .. } = &mut unit.kind {
        *exclude = vec!["cache".into(), "**/*.tmp".into()];
    }
    let spec = spec(vec![("files", unit)]);
    let keys = unencrypted();
    let store = StateStore::open(&t.path().join("store")).unwrap();
    let m = store
        .snapshot(req("web", &spec, "r1", None), &keys)
        .unwrap();
    store.restore(&m.id, &spec, &keys, None, None).unwrap();
    let names: Vec<String> = walk(&live).into_keys().collect();
    assert_eq!(names, vec!["", "keep.txt", "sub"]);
}

#[test]
fn a_wrong_identity_is_refused_naming_recipients_and_files() {
    let t = tempfile::tempdir().unwrap();
    let live = t.path().join("data");
    write(&live.join("f"), b"secret");
    let (keys, _) = host_keys(&t.path().join("a"));
    let other = t.path().join("other.txt");
    let other_pub = Keys::generate(&other).unwrap();
    let spec = spec(vec![("files", dir_unit(&live))]);
    let store = StateStore::open(&t.path().join("store")).unwrap();
    let m = store
        .snapshot(req("web", &spec, "r1", None), &keys)
        .unwrap();
    write(&live.join("f"), b"newer");
    let wrong = Keys::load(&KeyConfig {
        identity_files: vec![other.clone()],
        ..Default::default()
    })
    .unwrap();
    let e = format!(
        "{:#}",
        store.restore(&m.id, &spec, &wrong, None, None).unwrap_err()
    );
    assert!(e.contains("cannot decrypt"), "{e}");
    assert!(e.contains(&keys.recipients()[0]), "{e}");
    assert!(
        e.contains(&other.display().to_string()) && e.contains(&other_pub),
        "{e}"
    );
    assert!(!e.contains("AGE-SECRET-KEY"), "{e}");
    assert_eq!(fs::read(live.join("f")).unwrap(), b"newer");
    // Keyless verify still passes; a deep one reports the key problem.
    assert!(store.verify(&m.id, None).unwrap().problems.is_empty());
    assert!(!store
        .verify(&m.id, Some(&wrong))
        .unwrap()
        .problems
        .is_empty());
    // With the right identity given by file, it works.
    let right = Keys::load(&KeyConfig {
        identity_files: vec![t.path().join("a/host-identity.txt")],
        ..Default::default()
    })
    .unwrap();
    store.restore(&m.id, &spec, &right, None, None).unwrap();
    assert_eq!(fs::read(live.join("f")).unwrap(), b"secret");
}

#[test]
fn keys_without_recipients_tell_how_to_get_one() {
    let t = tempfile::tempdir().unwrap();
    let e = Keys::load(&KeyConfig {
        host_identity: t.path().join("missing.txt"),
        ..Default::default()
    })
    .err()
    .unwrap()
    .to_string();
    assert!(
        e.contains("nixproc state keygen") && e.contains("--recipient"),
        "{e}"
    );
    // Bad recipient strings are named.
    let e = Keys::load(&KeyConfig {
        recipients: vec!["age1nope".into()],
        ..Default::default()
    })
    .err()
    .unwrap()
    .to_string();
    assert!(e.contains("age1nope"), "{e}");
    // An identity-only host can restore but not snapshot.
    let id = t.path().join("id.txt");
    Keys::generate(&id).unwrap();
    let keys = Keys::load(&KeyConfig {
        identity_files: vec![id],
        ..Default::default()
    })
    .unwrap();
    let store = StateStore::open(&t.path().join("store")).unwrap();
    let spec = spec(vec![("c", command_unit("echo", "cat"))]);
    let e = format!(
        "{:#}",
        store
            .snapshot(req("x", &spec, "r", None), &keys)
            .err()
            .unwrap()
    );
    assert!(e.contains("nixproc state keygen"), "{e}");
}

#[test]
fn recipients_files_and_strings_are_used() {
    let t = tempfile::tempdir().unwrap();
    let a = t.path().join("a.txt");
    let b = t.path().join("b.txt");
    let pa = Keys::generate(&a).unwrap();
    let pb = Keys::generate(&b).unwrap();
    let rf = t.path().join("recipients.txt");
    fs::write(&rf, format!("# offline key\n\n{pb}\n")).unwrap();
    let keys = Keys::load(&KeyConfig {
        recipients: vec![pa.clone()],
        recipients_files: vec![rf],
        ..Default::default()
    })
    .unwrap();
    assert_eq!(keys.recipients(), vec![pa, pb]);
    // Either identity alone decrypts.
    let data = t.path().join("d");
    fs::write(&data, b"v1").unwrap();
    let spec = spec(vec![(
        "c",
        command_unit(
            &format!("cat {}", data.display()),
            &format!("cat > {}", data.display()),
        ),
    )]);
    let store = StateStore::open(&t.path().join("store")).unwrap();
    let m = store.snapshot(req("x", &spec, "r", None), &keys).unwrap();
    for id in [a, b] {
        fs::write(&data, b"v2").unwrap();
        let k = Keys::load(&KeyConfig {
            identity_files: vec![id],
            ..Default::default()
        })
        .unwrap();
        store.restore(&m.id, &spec, &k, None, None).unwrap();
        assert_eq!(fs::read(&data).unwrap(), b"v1");
    }
}

#[test]
fn keygen_writes_an_age_keygen_file_and_never_overwrites() {
    use std::os::unix::fs::PermissionsExt;
    let t = tempfile::tempdir().unwrap();
    let p = t.path().join("keys/host.txt");
    let public = Keys::generate(&p).unwrap();
    assert!(public.starts_with("age1"));
    let text = fs::read_to_string(&p).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("# created: "));
    assert_eq!(lines[1], format!("# public key: {public}"));
    assert!(lines[2].starts_with("AGE-SECRET-KEY-1"));
    assert_eq!(
        fs::metadata(&p).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let e = Keys::generate(&p).unwrap_err().to_string();
    assert!(e.contains("exists already"), "{e}");
    assert_eq!(fs::read_to_string(&p).unwrap(), text);
    // No temporaries left.
    assert_eq!(fs::read_dir(t.path().join("keys")).unwrap().count(), 1);
}

/// A directory snapshot and its live tree, for damage tests.
fn damaged_setup() -> (
    tempfile::TempDir,
    StateStore,
    Keys,
    nixproc_core::lifecycle::StateSpec,
    String,
    std::path::PathBuf,
) {
    let t = tempfile::tempdir().unwrap();
    let live = t.path().join("data");
    write(&live.join("f"), &vec![7u8; 100_000]);
    let (keys, _) = host_keys(t.path());
    let spec = spec(vec![("files", dir_unit(&live))]);
    let store = StateStore::open(&t.path().join("store")).unwrap();
    let m = store
        .snapshot(req("web", &spec, "r1", None), &keys)
        .unwrap();
    write(&live.join("f"), b"live now");
    let unit_file = object_dir(store.root(), &m.id).join(&m.units["files"].file);
    let id = m.id;
    (t, store, keys, spec, id, unit_file)
}

fn assert_refused_untouched(
    store: &StateStore,
    keys: &Keys,
    spec: &nixproc_core::lifecycle::StateSpec,
    id: &str,
    t: &tempfile::TempDir,
) {
    let e = format!(
        "{:#}",
        store.restore(id, spec, keys, None, None).unwrap_err()
    );
    assert!(
        e.contains("damaged") && e.contains("nothing was changed"),
        "{e}"
    );
    assert_eq!(fs::read(t.path().join("data/f")).unwrap(), b"live now");
    let names: Vec<_> = fs::read_dir(t.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(
        !names
            .iter()
            .any(|n| n.to_string_lossy().contains("nixproc-restore")),
        "{names:?}"
    );
}

#[test]
fn a_tampered_byte_is_reported_keyless_and_refused_before_live_is_touched() {
    let (t, store, keys, spec, id, unit_file) = damaged_setup();
    let mut bytes = fs::read(&unit_file).unwrap();
    let n = bytes.len() / 2;
    bytes[n] ^= 1;
    fs::write(&unit_file, bytes).unwrap();
    let r = store.verify(&id, None).unwrap();
    assert!(
        r.problems.iter().any(|p| p.contains("SHA-256 differs")),
        "{:?}",
        r.problems
    );
    assert_refused_untouched(&store, &keys, &spec, &id, &t);
}

#[test]
fn a_truncated_unit_file_is_reported_and_refused() {
    let (t, store, keys, spec, id, unit_file) = damaged_setup();
    let bytes = fs::read(&unit_file).unwrap();
    fs::write(&unit_file, &bytes[..bytes.len() - 100]).unwrap();
    let r = store.verify(&id, None).unwrap();
    assert!(
        r.problems.iter().any(|p| p.contains("truncated")),
        "{:?}",
        r.problems
    );
    assert_refused_untouched(&store, &keys, &spec, &id, &t);
}

#[test]
fn an_edited_manifest_is_reported_and_refused() {
    let (t, store, keys, spec, id, unit_file) = damaged_setup();
    // Replace the unit file by another valid encryption of other content
    // and fix the manifest's ciphertext digest to match: only the
    // plaintext digest in secret.json.age catches it.
    let other = tempfile::tempdir().unwrap();
    let live2 = other.path().join("data");
    write(&live2.join("f"), b"forged");
    let spec2 = common::spec(vec![("files", dir_unit(&live2))]);
    let m2 = store
        .snapshot(req("web2", &spec2, "r1", None), &keys)
        .unwrap();
    let forged = object_dir(store.root(), &m2.id).join(&m2.units["files"].file);
    fs::copy(&forged, &unit_file).unwrap();
    let mpath = object_dir(store.root(), &id).join("manifest.json");
    let mut m: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(&mpath).unwrap()).unwrap();
    m["units"]["files"]["sha256"] = m2.units["files"].sha256.clone().into();
    m["units"]["files"]["size"] = m2.units["files"].size.into();
    fs::write(&mpath, serde_json::to_string(&m).unwrap()).unwrap();
    assert!(store.verify(&id, None).unwrap().problems.is_empty());
    let deep = store.verify(&id, Some(&keys)).unwrap();
    assert!(
        deep.problems
            .iter()
            .any(|p| p.contains("does not match its recorded digest")),
        "{:?}",
        deep.problems
    );
    assert_refused_untouched(&store, &keys, &spec, &id, &t);
    // A manifest that is not JSON any more.
    fs::write(&mpath, "{garbage").unwrap();
    let r = store.verify(&id, None).unwrap();
    assert!(r.problems[0].contains("manifest.json"), "{:?}", r.problems);
}

#[test]
fn stray_and_missing_files_are_reported() {
    let (_t, store, _keys, _spec, id, unit_file) = damaged_setup();
    fs::write(object_dir(store.root(), &id).join("extra"), b"").unwrap();
    fs::remove_file(&unit_file).unwrap();
    let r = store.verify(&id, None).unwrap();
    assert!(
        r.problems.iter().any(|p| p == "stray file extra"),
        "{:?}",
        r.problems
    );
    assert!(
        r.problems.iter().any(|p| p.contains("is missing")),
        "{:?}",
        r.problems
    );
}

#[test]
fn refs_find_revision_generation_latest() {
    let t = tempfile::tempdir().unwrap();
    let live = t.path().join("data");
    let keys = unencrypted();
    let spec = spec(vec![("files", dir_unit(&live))]);
    let store = StateStore::open(&t.path().join("store")).unwrap();
    write(&live.join("v"), b"1");
    let m1 = store
        .snapshot(req("web", &spec, "rev1", Some(1)), &keys)
        .unwrap();
    write(&live.join("v"), b"2");
    let m2 = store
        .snapshot(req("web", &spec, "rev2", Some(2)), &keys)
        .unwrap();
    write(&live.join("v"), b"3");
    let find = |s: Selector| store.find("web", &s).unwrap().map(|m| m.id);
    assert_eq!(find(Selector::Revision("rev1".into())), Some(m1.id.clone()));
    assert_eq!(find(Selector::Revision("rev2".into())), Some(m2.id.clone()));
    assert_eq!(find(Selector::Generation(1)), Some(m1.id.clone()));
    assert_eq!(find(Selector::Latest), Some(m2.id.clone()));
    assert_eq!(find(Selector::Id(m1.id.clone())), Some(m1.id.clone()));
    assert_eq!(find(Selector::Revision("rev9".into())), None);
    assert_eq!(store.find("other", &Selector::Latest).unwrap(), None);
    assert!(store.find("other", &Selector::Id(m1.id.clone())).is_err());
    // Restore takes the target revision, not the latest.
    let target = store
        .find("web", &Selector::Revision("rev1".into()))
        .unwrap()
        .unwrap();
    store.restore(&target.id, &spec, &keys, None, None).unwrap();
    assert_eq!(fs::read(live.join("v")).unwrap(), b"1");
    // Leaving rev1 again replaces its ref: the newest snapshot wins.
    let m3 = store
        .snapshot(req("web", &spec, "rev1", Some(3)), &keys)
        .unwrap();
    assert_eq!(find(Selector::Revision("rev1".into())), Some(m3.id.clone()));
    let ids: Vec<String> = store
        .list(Some("web"))
        .unwrap()
        .into_iter()
        .map(|m| m.id)
        .collect();
    assert_eq!(ids, vec![m1.id, m2.id, m3.id.clone()]);
    let link = fs::read_link(store.root().join("instances/web/generations/3")).unwrap();
    assert_eq!(
        link,
        std::path::PathBuf::from(format!("../../../objects/{}", m3.id))
    );
}

#[test]
fn unit_selection_and_declaration_changes() {
    let t = tempfile::tempdir().unwrap();
    let a = t.path().join("a");
    let b = t.path().join("b");
    write(&a.join("f"), b"a1");
    write(&b.join("f"), b"b1");
    let keys = unencrypted();
    let store = StateStore::open(&t.path().join("store")).unwrap();
    let both = spec(vec![("a", dir_unit(&a)), ("b", dir_unit(&b))]);
    let m = store
        .snapshot(req("web", &both, "r1", None), &keys)
        .unwrap();
    write(&a.join("f"), b"a2");
    write(&b.join("f"), b"b2");
    let r = store
        .restore_report(&m.id, &both, &keys, None, Some(&["a".to_string()]))
        .unwrap();
    assert_eq!(r.restored, vec!["a"]);
    assert_eq!(fs::read(a.join("f")).unwrap(), b"a1");
    assert_eq!(fs::read(b.join("f")).unwrap(), b"b2");
    let e = store
        .restore(&m.id, &both, &keys, None, Some(&["zz".to_string()]))
        .unwrap_err()
        .to_string();
    assert!(e.contains("no state unit zz"), "{e}");
    // A unit declared later is not in the snapshot.
    let c = t.path().join("c");
    let three = spec(vec![
        ("a", dir_unit(&a)),
        ("b", dir_unit(&b)),
        ("c", dir_unit(&c)),
    ]);
    let e = store
        .restore(&m.id, &three, &keys, None, None)
        .unwrap_err()
        .to_string();
    assert!(e.contains("has no unit c"), "{e}");
    // A unit no longer declared is ignored with a note.
    let only_b = spec(vec![("b", dir_unit(&b))]);
    let r = store
        .restore_report(&m.id, &only_b, &keys, None, None)
        .unwrap();
    assert_eq!(r.ignored, vec!["a"]);
    assert_eq!(fs::read(b.join("f")).unwrap(), b"b1");
    // A unit whose type changed is refused.
    let changed = spec(vec![("b", command_unit("true", "true"))]);
    let e = store
        .restore(&m.id, &changed, &keys, None, None)
        .unwrap_err()
        .to_string();
    assert!(e.contains("is a command now but a directory"), "{e}");
}

#[test]
fn gc_keeps_roots_manual_and_newest() {
    let t = tempfile::tempdir().unwrap();
    let live = t.path().join("data");
    write(&live.join("v"), b"1");
    let keys = unencrypted();
    let spec = spec(vec![("files", dir_unit(&live))]);
    let store = StateStore::open(&t.path().join("store")).unwrap();
    let g1 = store
        .snapshot(req("web", &spec, "rev1", Some(1)), &keys)
        .unwrap();
    let g2 = store
        .snapshot(req("web", &spec, "rev2", Some(2)), &keys)
        .unwrap();
    let mut manual = req("web", &spec, "rev2", None);
    manual.reason = nixproc_state::Reason::Manual;
    manual.tag = Some("before-import");
    let man = store.snapshot(manual, &keys).unwrap();
    let by_rev = store
        .snapshot(req("web", &spec, "rev3", Some(3)), &keys)
        .unwrap();
    let newest = store
        .snapshot(req("web", &spec, "rev4", Some(4)), &keys)
        .unwrap();
    let other = store
        .snapshot(req("api", &spec, "revA", Some(1)), &keys)
        .unwrap();
    // Leftovers of an interrupted snapshot.
    fs::create_dir_all(store.root().join("tmp/20200101T000000Z-web-deadbeef")).unwrap();
    fs::write(
        store
            .root()
            .join("tmp/20200101T000000Z-web-deadbeef/unit-x.tar.zst"),
        b"junk",
    )
    .unwrap();
    let roots = GcRoots {
        generations: [2].into(),
        revisions: ["rev3".to_string()].into(),
    };
    let dry = store
        .gc(
            &GcOptions {
                dry_run: true,
                ..Default::default()
            },
            &roots,
        )
        .unwrap();
    assert_eq!(store.object_ids().unwrap().len(), 6);
    let report = store.gc(&GcOptions::default(), &roots).unwrap();
    assert_eq!(dry.removed, report.removed);
    assert_eq!(
        report.removed,
        vec![
            g1.id.clone(),
            "tmp/20200101T000000Z-web-deadbeef".to_string()
        ]
    );
    let mut kept = vec![g2.id, man.id, by_rev.id, newest.id, other.id];
    kept.sort();
    assert_eq!(store.object_ids().unwrap(), kept);
    assert!(report.freed_bytes > 0);
    assert!(
        report
            .dangling_refs
            .contains(&"web/generations/1".to_string()),
        "{:?}",
        report.dangling_refs
    );
    assert!(!store.root().join("instances/web/generations/1").exists());
    assert!(!store.root().join("instances/web/revisions/rev1").exists());
    assert!(store
        .root()
        .join("instances/web/manual/before-import")
        .exists());
    assert_eq!(fs::read_dir(store.root().join("tmp")).unwrap().count(), 0);
    assert_eq!(fs::read_dir(store.root().join("trash")).unwrap().count(), 0);
    // keep_within keeps young objects whatever else.
    let r = store
        .gc(
            &GcOptions {
                keep: 0,
                keep_within: Some(std::time::Duration::from_secs(3600)),
                dry_run: false,
            },
            &GcRoots::default(),
        )
        .unwrap();
    assert!(r.removed.is_empty(), "{:?}", r.removed);
    // keep 0 and no roots: only manual refs survive.
    store
        .gc(
            &GcOptions {
                keep: 0,
                ..Default::default()
            },
            &GcRoots::default(),
        )
        .unwrap();
    assert_eq!(store.list(None).unwrap().len(), 1);
}

#[test]
fn export_import_round_trip_idempotent_and_conflicting() {
    let t = tempfile::tempdir().unwrap();
    let live = t.path().join("data");
    write(&live.join("v"), b"exported");
    let (keys, _) = host_keys(t.path());
    let spec = spec(vec![("files", dir_unit(&live))]);
    let a = StateStore::open(&t.path().join("a")).unwrap();
    let m = a
        .snapshot(req("web", &spec, "rev1", Some(7)), &keys)
        .unwrap();
    let mut tarball = Vec::new();
    a.export(&m.id, &mut tarball).unwrap();
    let b = StateStore::open(&t.path().join("b")).unwrap();
    let got = b.import(&mut tarball.as_slice()).unwrap();
    assert_eq!(got, m);
    assert!(b.verify(&m.id, Some(&keys)).unwrap().problems.is_empty());
    assert_eq!(
        b.find("web", &Selector::Revision("rev1".into()))
            .unwrap()
            .unwrap()
            .id,
        m.id
    );
    assert!(b
        .root()
        .join(format!("instances/web/manual/imported-{}", m.id))
        .exists());
    // Again: fine.
    b.import(&mut tarball.as_slice()).unwrap();
    assert_eq!(b.object_ids().unwrap(), vec![m.id.clone()]);
    write(&live.join("v"), b"other");
    b.restore(&m.id, &spec, &keys, None, None).unwrap();
    assert_eq!(fs::read(live.join("v")).unwrap(), b"exported");
    // The same id with other bytes: refused.
    let unit = object_dir(b.root(), &m.id).join(&m.units["files"].file);
    let mut bytes = fs::read(&unit).unwrap();
    bytes[60] ^= 0xff;
    fs::write(&unit, &bytes).unwrap();
    let e = b.import(&mut tarball.as_slice()).unwrap_err().to_string();
    assert!(e.contains("different snapshot"), "{e}");
    // A damaged export is refused and leaves nothing.
    let c = StateStore::open(&t.path().join("c")).unwrap();
    let mut bad = tarball.clone();
    let pos = bad.len() / 2;
    bad[pos] ^= 0x55;
    assert!(c.import(&mut bad.as_slice()).is_err());
    assert!(c.object_ids().unwrap().is_empty());
    assert_eq!(fs::read_dir(c.root().join("tmp")).unwrap().count(), 0);
}

#[test]
fn a_hostile_import_is_refused() {
    let t = tempfile::tempdir().unwrap();
    let store = StateStore::open(&t.path().join("s")).unwrap();
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Regular);
    h.set_size(4);
    h.set_mode(0o644);
    let name = b"../../escaped";
    h.as_old_mut().name[..name.len()].copy_from_slice(name);
    h.set_cksum();
    b.append(&h, &b"evil"[..]).unwrap();
    let data = b.into_inner().unwrap();
    let e = format!("{:#}", store.import(&mut data.as_slice()).unwrap_err());
    assert!(e.contains(".."), "{e}");
    assert!(!t.path().join("escaped").exists());
    assert_eq!(fs::read_dir(store.root().join("tmp")).unwrap().count(), 0);
}

#[test]
fn locks_do_not_deadlock_under_the_switch_guard_and_exclude_others() {
    let t = tempfile::tempdir().unwrap();
    let live = t.path().join("data");
    write(&live.join("v"), b"1");
    let keys = unencrypted();
    let spec = spec(vec![("files", dir_unit(&live))]);
    let store = StateStore::open(&t.path().join("s")).unwrap();
    let other = StateStore::open(&t.path().join("s")).unwrap();
    {
        let _guard = store.lock_exclusive().unwrap();
        let m = store.snapshot(req("web", &spec, "r", None), &keys).unwrap();
        store.restore(&m.id, &spec, &keys, None, None).unwrap();
        store
            .gc(&GcOptions::default(), &GcRoots::default())
            .unwrap();
        // Another store (another process, as far as flock goes) must wait.
        assert!(other.try_lock_exclusive().unwrap().is_none());
        // The own guard cannot be taken twice.
        assert!(store.lock_exclusive().is_err());
        // The lock file names the holder.
        let text = fs::read_to_string(t.path().join("s/lock")).unwrap();
        assert!(
            text.contains(&format!("pid {}", std::process::id())),
            "{text}"
        );
    }
    assert!(other.try_lock_exclusive().unwrap().is_some());
    // A pending snapshot holds the instance lock: a second one on the same
    // instance from the same store is an error, not a hang.
    let p = store.begin(req("web", &spec, "r", None), &keys).unwrap();
    assert!(store.begin(req("web", &spec, "r", None), &keys).is_err());
    drop(p);
    assert_eq!(fs::read_dir(store.root().join("tmp")).unwrap().count(), 0);
}

#[test]
fn bad_names_are_refused() {
    let t = tempfile::tempdir().unwrap();
    let keys = unencrypted();
    let spec = spec(vec![("c", command_unit("true", "true"))]);
    let store = StateStore::open(&t.path().join("s")).unwrap();
    for bad in ["../x", ".hidden", "a/b", "", "sp ace"] {
        assert!(
            store.snapshot(req(bad, &spec, "r", None), &keys).is_err(),
            "{bad:?}"
        );
        assert!(
            store.snapshot(req("ok", &spec, bad, None), &keys).is_err(),
            "{bad:?}"
        );
    }
    assert!(store.verify("../../etc", None).is_err());
}

#[test]
fn staged_capture_commits_only_complete_snapshots() {
    let t = tempfile::tempdir().unwrap();
    let a = t.path().join("a");
    write(&a.join("f"), b"1");
    let keys = unencrypted();
    let mut online = command_unit("echo online", "cat >/dev/null");
    online.consistency = nixproc_core::lifecycle::Consistency::Online;
    let spec = spec(vec![("a", dir_unit(&a)), ("o", online)]);
    let store = StateStore::open(&t.path().join("s")).unwrap();
    let mut p = store.begin(req("web", &spec, "r", None), &keys).unwrap();
    let id = p.id().to_string();
    p.capture(&|u| u.consistency == nixproc_core::lifecycle::Consistency::Online)
        .unwrap();
    assert!(
        store.list(None).unwrap().is_empty(),
        "nothing visible before commit"
    );
    p.capture(&|_| true).unwrap();
    p.capture(&|_| true).unwrap(); // each unit once
    let m = p.commit().unwrap();
    assert_eq!(m.id, id);
    assert_eq!(m.units.len(), 2);
    let mut p = store.begin(req("web", &spec, "r", None), &keys).unwrap();
    p.capture(&|u| u.consistency == nixproc_core::lifecycle::Consistency::Stop)
        .unwrap();
    let e = p.commit().unwrap_err().to_string();
    assert!(e.contains("not captured: o"), "{e}");
    assert_eq!(store.list(None).unwrap().len(), 1);
}

#[test]
fn a_symlink_leaving_the_tree_fails_the_snapshot_naming_it() {
    let t = tempfile::tempdir().unwrap();
    let live = t.path().join("data");
    write(&live.join("f"), b"x");
    std::os::unix::fs::symlink("/etc/passwd", live.join("abs")).unwrap();
    let spec = spec(vec![("files", dir_unit(&live))]);
    let store = StateStore::open(&t.path().join("store")).unwrap();
    let e = format!(
        "{:#}",
        store
            .snapshot(req("web", &spec, "r", None), &unencrypted())
            .unwrap_err()
    );
    assert!(
        e.contains("abs is a symlink to /etc/passwd") && e.contains("exclude"),
        "{e}"
    );
    assert!(store.list(None).unwrap().is_empty());
}
