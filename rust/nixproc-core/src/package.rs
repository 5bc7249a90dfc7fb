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

    /// [`FileSpec::to_value`] without copying the text.
    pub fn into_value(self) -> Value {
        attrs([
            ("path", Value::str(self.path)),
            ("text", Value::str(self.text)),
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
        Self::assemble(
            Value::str(&self.name),
            files,
            links,
            &self.manifest,
            self.passthru.clone(),
        )
    }

    /// [`PackageSpec::to_value`] without copying the files' text: for a
    /// spec that is no longer needed (a primop's result).
    pub fn into_value(self) -> Value {
        let files = self.files.into_iter().map(FileSpec::into_value).collect();
        let links = self
            .links
            .into_iter()
            .map(|l| {
                attrs([
                    ("path", Value::str(l.path)),
                    ("target", Value::str(l.target)),
                ])
            })
            .collect();
        Self::assemble(
            Value::str(self.name),
            files,
            links,
            &self.manifest,
            self.passthru,
        )
    }

    fn assemble(
        name: Value,
        files: Vec<Value>,
        links: Vec<Value>,
        manifest: &InstanceEntry,
        passthru: BTreeMap<String, Value>,
    ) -> Value {
        // Straight into a Value: the same as a serde_json round trip.
        let manifest = crate::value::to_value(manifest).expect("manifest serializes");
        attrs([
            ("name", name),
            ("files", Value::List(files)),
            ("links", Value::List(links)),
            ("manifest", manifest),
            ("passthru", Value::Attrs(passthru)),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agnostic::{create_managed_process, BACKENDS};

    /// Composition parameters some backend requires.
    const COMPOSITION: &[(&str, &str)] = &[
        ("initFunctions", "/nix/store/ccc-init-functions"),
        (
            "foregroundProxy",
            "/nix/store/ddd-nixproc-builder foreground-proxy",
        ),
        ("daemonize", "/nix/store/ddd-nixproc-builder daemonize"),
        ("dockerBaseImage", "/nix/store/eee-base.tar"),
        ("shell", "/bin/sh"),
    ];

    fn webapp(backend: &str, foreground: bool) -> Value {
        let keys = crate::agnostic::backend(backend).unwrap().composition_keys;
        let mut all: Vec<(&str, Value)> = COMPOSITION
            .iter()
            .filter(|(k, _)| keys.contains(k))
            .map(|(k, v)| (*k, Value::str(*v)))
            .collect();
        let hostile = "it's \"$(id)\" `id`\n%; \\ ünï";
        all.extend([
            ("name", Value::str("webapp")),
            ("instanceName", Value::str("webapp")),
            ("processManager", Value::str(backend)),
            ("description", Value::str(hostile)),
            ("process", Value::str("/nix/store/aaa-webapp/bin/webapp")),
            (
                "environment",
                attrs([("PORT", Value::Int(5000)), ("X", Value::str(hostile))]),
            ),
            (
                "state",
                attrs([
                    (
                        "uploads",
                        attrs([
                            ("type", Value::str("directory")),
                            ("path", Value::str("/var/lib/webapp/uploads")),
                        ]),
                    ),
                    (
                        "db",
                        attrs([
                            ("type", Value::str("postgresql-database")),
                            ("database", Value::str("webapp")),
                            ("host", Value::str("/run/postgresql")),
                            ("port", Value::Int(5432)),
                        ]),
                    ),
                ]),
            ),
            (
                "readiness",
                attrs([
                    (
                        "checks",
                        Value::List(vec![attrs([
                            ("type", Value::str("http")),
                            ("url", Value::str("http://127.0.0.1:5000/")),
                        ])]),
                    ),
                    ("timeout", Value::Int(5)),
                ]),
            ),
        ]);
        // cygrunsrv cannot switch users (Windows accounts).
        if backend != "cygrunsrv" {
            all.push(("user", Value::str("webapp")));
        }
        if foreground {
            all.push((
                "foregroundProcess",
                Value::str("/nix/store/aaa-webapp/bin/webapp"),
            ));
        } else {
            all.push(("daemonExtraArgs", Value::List(vec![Value::str("-D")])));
        }
        attrs(all)
    }

    /// The manifest goes straight into a `Value` now; it must be exactly
    /// what the former serde_json round trip produced, for every backend.
    #[test]
    fn manifest_value_equals_the_serde_json_round_trip() {
        for def in BACKENDS {
            for foreground in [false, true] {
                let spec = create_managed_process(&webapp(def.name, foreground))
                    .unwrap_or_else(|e| panic!("{}: {e}", def.name));
                assert!(spec.manifest.state.is_some() && spec.manifest.readiness.is_some());
                let json = serde_json::to_value(&spec.manifest).unwrap();
                let v = spec.to_value();
                assert_eq!(spec.clone().into_value(), v);
                assert_eq!(
                    v.as_attrs().unwrap()["manifest"],
                    Value::from_json(&json),
                    "{} (foreground: {foreground})",
                    def.name
                );
            }
        }
    }
}
