//! Hostile archives (built by hand with tar's raw header API) fed to the
//! directory adapter's stage: refused naming the entry, the staging
//! directory removed, the live directory and everything outside untouched.

mod common;

use std::fs;
use std::path::Path;

use common::*;
use nixproc_state::adapters::{adapter_for, UnitContext};

enum E<'a> {
    File(&'a [u8], &'a [u8]),
    Dir(&'a [u8]),
    Symlink(&'a [u8], &'a [u8]),
    Hard(&'a [u8], &'a [u8]),
    Special(&'a [u8], tar::EntryType),
}

/// Writes names verbatim into the old header fields (the Builder's safe
/// path setters would refuse them).
fn archive(entries: &[E]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut root = tar::Header::new_gnu();
    root.set_entry_type(tar::EntryType::Directory);
    root.set_mode(0o755);
    root.set_uid(0);
    root.set_gid(0);
    root.set_mtime(0);
    root.set_size(0);
    root.as_old_mut().name[..2].copy_from_slice(b"./");
    root.set_cksum();
    b.append(&root, &[][..]).unwrap();
    for e in entries {
        let mut h = tar::Header::new_gnu();
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        h.set_size(0);
        let (name, link, kind, data): (&[u8], &[u8], _, &[u8]) = match e {
            E::File(n, d) => (n, b"", tar::EntryType::Regular, d),
            E::Dir(n) => (n, b"", tar::EntryType::Directory, b""),
            E::Symlink(n, t) => (n, t, tar::EntryType::Symlink, b""),
            E::Hard(n, t) => (n, t, tar::EntryType::Link, b""),
            E::Special(n, k) => (n, b"", *k, b""),
        };
        h.set_entry_type(kind);
        h.set_size(data.len() as u64);
        h.as_old_mut().name[..name.len()].copy_from_slice(name);
        h.as_old_mut().linkname[..link.len()].copy_from_slice(link);
        h.set_cksum();
        b.append(&h, data).unwrap();
    }
    b.into_inner().unwrap()
}

fn refused(entries: &[E], expect: &str) {
    let t = tempfile::tempdir().unwrap();
    let live = t.path().join("srv/data");
    write(&live.join("keep"), b"live");
    write(&t.path().join("outside"), b"outside");
    let scratch = t.path().join("scratch");
    fs::create_dir(&scratch).unwrap();
    let before_live = walk(&live);
    let before_all = walk(t.path());
    let unit = dir_unit(&live);
    let ctx = UnitContext {
        instance: "web",
        unit: "files",
        run_as: None,
        scratch: &scratch,
    };
    let data = archive(entries);
    let r = adapter_for(&unit).stage(&ctx, &mut data.as_slice());
    let e = format!("{:#}", r.err().expect("refused"));
    assert!(e.contains(expect), "expected {expect:?} in: {e}");
    assert!(e.contains("archive entry"), "names the entry: {e}");
    assert_eq!(walk(&live), before_live);
    assert_eq!(
        walk(t.path()),
        before_all,
        "stage removed, nothing written outside"
    );
    assert!(!Path::new("/tmp/nixproc-hostile-evil").exists());
}

#[test]
fn parent_components_are_refused() {
    refused(&[E::File(b"../evil", b"x")], "`..`");
    refused(&[E::File(b"a/../../evil", b"x")], "`..`");
}

#[test]
fn absolute_paths_are_refused() {
    refused(&[E::File(b"/tmp/nixproc-hostile-evil", b"x")], "absolute");
}

#[test]
fn escaping_symlinks_are_refused() {
    refused(&[E::Symlink(b"l", b"/etc")], "leaves the restored tree");
    refused(&[E::Symlink(b"l", b"..")], "leaves the restored tree");
    refused(
        &[E::Dir(b"a/"), E::Symlink(b"a/l", b"../../outside")],
        "leaves the restored tree",
    );
    refused(
        &[
            E::Dir(b"a/"),
            E::Symlink(b"a/up", b".."),
            E::Symlink(b"a/l", b"up/../.."),
        ],
        "leaves the restored tree",
    );
}

#[test]
fn writing_through_a_symlink_is_refused() {
    // Even a link that stays inside: nothing is written below a link.
    refused(
        &[
            E::Dir(b"sub/"),
            E::Symlink(b"l", b"sub"),
            E::File(b"l/x", b"x"),
        ],
        "below a symlink",
    );
}

#[test]
fn hard_links_devices_fifos_are_refused() {
    refused(&[E::File(b"a", b"x"), E::Hard(b"h", b"a")], "hard links");
    refused(&[E::Special(b"dev", tar::EntryType::Char)], "device");
    refused(&[E::Special(b"blk", tar::EntryType::Block)], "device");
    refused(&[E::Special(b"fifo", tar::EntryType::Fifo)], "fifo");
}

#[test]
fn duplicates_are_refused() {
    refused(&[E::File(b"a", b"x"), E::File(b"a", b"y")], "duplicate");
    refused(&[E::Dir(b"d/"), E::Dir(b"d")], "duplicate");
}

#[test]
fn a_clean_hand_built_archive_is_accepted() {
    let t = tempfile::tempdir().unwrap();
    let live = t.path().join("data");
    let unit = dir_unit(&live);
    let ctx = UnitContext {
        instance: "web",
        unit: "files",
        run_as: None,
        scratch: t.path(),
    };
    let data = archive(&[
        E::Dir(b"sub/"),
        E::File(b"sub/x", b"hello"),
        E::Symlink(b"l", b"sub/x"),
    ]);
    let st = adapter_for(&unit)
        .stage(&ctx, &mut data.as_slice())
        .unwrap();
    st.apply(&ctx).unwrap();
    assert_eq!(fs::read(live.join("l")).unwrap(), b"hello");
}
