//! Helpers shared by the store tests.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use nixproc_core::lifecycle::{
    Consistency, RollbackPolicy, Schema, StateSpec, StateUnit, UnitKind,
};
use nixproc_state::format::Reason;
use nixproc_state::keys::{KeyConfig, Keys};
use nixproc_state::store::SnapshotRequest;

pub fn dir_unit(path: &Path) -> StateUnit {
    StateUnit {
        kind: UnitKind::Directory {
            path: path.to_string_lossy().into_owned(),
            exclude: vec![],
        },
        consistency: Consistency::Stop,
    }
}

pub fn command_unit(dump: &str, restore: &str) -> StateUnit {
    StateUnit {
        kind: UnitKind::Command {
            dump: dump.into(),
            restore: restore.into(),
        },
        consistency: Consistency::Online,
    }
}

pub fn spec(units: Vec<(&str, StateUnit)>) -> StateSpec {
    StateSpec {
        units: units
            .into_iter()
            .map(|(n, u)| (n.to_string(), u))
            .collect::<BTreeMap<_, _>>(),
        schema: Some(Schema {
            version: "v1".into(),
            migrate: None,
        }),
        rollback: RollbackPolicy::Ask,
    }
}

pub fn req<'a>(
    instance: &'a str,
    spec: &'a StateSpec,
    revision: &'a str,
    generation: Option<u64>,
) -> SnapshotRequest<'a> {
    SnapshotRequest {
        instance,
        spec,
        revision,
        profile: None,
        generation,
        next_revision: None,
        reason: Reason::PreSwitch,
        tag: None,
        run_as: None,
    }
}

/// Keys with a fresh host identity in `dir`.
pub fn host_keys(dir: &Path) -> (Keys, KeyConfig) {
    let cfg = KeyConfig {
        host_identity: dir.join("host-identity.txt"),
        create_host_identity: true,
        ..Default::default()
    };
    (Keys::load(&cfg).unwrap(), cfg)
}

/// A comparable description of a tree: path → (kind, mode, content or target).
pub type Tree = BTreeMap<String, (String, u32, Vec<u8>)>;

pub fn walk(root: &Path) -> Tree {
    let mut out = BTreeMap::new();
    fn go(root: &Path, rel: &Path, out: &mut Tree) {
        let p = root.join(rel);
        let m = fs::symlink_metadata(&p).unwrap();
        let key = rel.to_string_lossy().into_owned();
        let mode = m.mode() & 0o7777;
        if m.file_type().is_symlink() {
            let t = fs::read_link(&p).unwrap();
            out.insert(
                key,
                ("link".into(), 0, t.to_string_lossy().as_bytes().to_vec()),
            );
        } else if m.is_dir() {
            out.insert(key, ("dir".into(), mode, vec![]));
            let mut names: Vec<_> = fs::read_dir(&p)
                .unwrap()
                .map(|e| e.unwrap().file_name())
                .collect();
            names.sort();
            for n in names {
                go(root, &rel.join(n), out);
            }
        } else {
            out.insert(key, ("file".into(), mode, fs::read(&p).unwrap()));
        }
    }
    go(root, Path::new(""), &mut out);
    out
}

pub fn write(p: &Path, data: &[u8]) {
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(p, data).unwrap();
}

pub fn chmod(p: &Path, mode: u32) {
    fs::set_permissions(p, fs::Permissions::from_mode(mode)).unwrap();
}

/// Files of an object directory.
pub fn object_dir(root: &Path, id: &str) -> PathBuf {
    root.join("objects").join(id)
}
