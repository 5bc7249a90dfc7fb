//! What a backend generator returns: the files of one process package plus
//! its manifest entry. The Nix layer turns this plain data into derivations;
//! the static builder writes it out.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::manifest::InstanceEntry;
use crate::value::{attrs, Value};

/// A regular file inside the package output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileSpec {
    /// Relative to `$out`, no `..`, no leading `/`.
    pub path: String,
    pub text: String,
    /// Unix permission bits (e.g. `0o555`).
    pub mode: u32,
}

impl FileSpec {
    /// `{ path; text; mode; }`, as primops return files.
    pub fn to_value(&self) -> Value {
        attrs([
            ("path", Value::str(&self.path)),
            ("text", Value::str(&self.text)),
            ("mode", Value::Int(i64::from(self.mode))),
        ])
    }
}

/// A symbolic link inside the package output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkSpec {
    pub path: String,
    pub target: String,
}

/// One generated process package.
#[derive(Debug, Clone, PartialEq)]
pub struct PackageSpec {
    /// The derivation name (the process name).
    pub name: String,
    pub files: Vec<FileSpec>,
    pub links: Vec<LinkSpec>,
    /// The entry for the profile manifest; its `revision` is filled by
    /// [`PackageSpec::new`] from the package contents.
    pub manifest: InstanceEntry,
    /// Extra attributes exposed on the Nix package (e.g. `sequence`).
    pub passthru: BTreeMap<String, Value>,
}

impl PackageSpec {
    /// Builds a spec and stamps the manifest entry with the content revision.
    pub fn new(
        name: String,
        files: Vec<FileSpec>,
        links: Vec<LinkSpec>,
        mut manifest: InstanceEntry,
        passthru: BTreeMap<String, Value>,
    ) -> Self {
        manifest.revision = revision(&files, &links);
        PackageSpec {
            name,
            files,
            links,
            manifest,
            passthru,
        }
    }

    /// The plain Nix value the primop returns.
    pub fn to_value(&self) -> Value {
        let files = self.files.iter().map(FileSpec::to_value).collect();
        let links = self
            .links
            .iter()
            .map(|l| {
                attrs([
                    ("path", Value::str(&l.path)),
                    ("target", Value::str(&l.target)),
                ])
            })
            .collect();
        let manifest = serde_json::to_value(&self.manifest).expect("manifest serializes");
        attrs([
            ("name", Value::str(&self.name)),
            ("files", Value::List(files)),
            ("links", Value::List(links)),
            ("manifest", Value::from_json(&manifest)),
            ("passthru", Value::Attrs(self.passthru.clone())),
        ])
    }
}

/// A stable digest of everything a package contains. Two builds with the
/// same revision behave identically, so a switch leaves such an instance
/// alone; any change in a script, a referenced store path or a link
/// restarts it.
pub fn revision(files: &[FileSpec], links: &[LinkSpec]) -> String {
    let mut h = Sha256::new();
    let mut field = |tag: &[u8], s: &[u8]| {
        h.update(tag);
        h.update((s.len() as u64).to_le_bytes());
        h.update(s);
    };
    for f in files {
        field(b"F", f.path.as_bytes());
        field(b"M", &f.mode.to_le_bytes());
        field(b"T", f.text.as_bytes());
    }
    for l in links {
        field(b"L", l.path.as_bytes());
        field(b"G", l.target.as_bytes());
    }
    hex::encode(&h.finalize()[..16])
}
