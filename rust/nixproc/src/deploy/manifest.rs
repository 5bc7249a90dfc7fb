//! Reading a profile's manifest and putting its instances in dependency
//! order.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Component, Path};

use anyhow::{bail, Context, Result};
use nixproc_core::manifest::{InstanceEntry, Manifest, MANIFEST_PATH, MANIFEST_VERSION};

/// The instances' dependency graph has a cycle.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("dependency cycle between instances: {}", .members.join(", "))]
pub struct CycleError {
    /// The instances on the cycle(s), sorted by name.
    pub members: Vec<String>,
}

/// Indices of `instances` in dependency order (dependencies first); among
/// instances whose dependencies are all placed, the smallest name comes
/// first, so the order is deterministic whatever the input order.
/// Dependencies on names that are not in the list are ignored.
pub fn dependency_order(instances: &[InstanceEntry]) -> Result<Vec<usize>, CycleError> {
    let index: BTreeMap<&str, usize> = instances
        .iter()
        .enumerate()
        .map(|(i, e)| (e.name.as_str(), i))
        .collect();
    let mut missing: Vec<usize> = instances
        .iter()
        .map(|e| {
            e.dependencies
                .iter()
                .filter(|d| index.contains_key(d.as_str()) && *d != &e.name)
                .collect::<BTreeSet<_>>()
                .len()
        })
        .collect();
    let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); instances.len()];
    for (i, e) in instances.iter().enumerate() {
        let deps: BTreeSet<&String> = e.dependencies.iter().collect();
        for d in deps {
            if let Some(&j) = index.get(d.as_str()) {
                if j != i {
                    dependents[j].push(i);
                }
            }
        }
    }
    // Self-dependencies are cycles too.
    let self_cycles: Vec<String> = instances
        .iter()
        .filter(|e| e.dependencies.contains(&e.name))
        .map(|e| e.name.clone())
        .collect();
    if !self_cycles.is_empty() {
        return Err(CycleError {
            members: self_cycles,
        });
    }
    let mut ready: BTreeSet<(&str, usize)> = instances
        .iter()
        .enumerate()
        .filter(|(i, _)| missing[*i] == 0)
        .map(|(i, e)| (e.name.as_str(), i))
        .collect();
    let mut order = Vec::with_capacity(instances.len());
    while let Some(first) = ready.pop_first() {
        let i = first.1;
        order.push(i);
        for &k in &dependents[i] {
            missing[k] -= 1;
            if missing[k] == 0 {
                ready.insert((instances[k].name.as_str(), k));
            }
        }
    }
    if order.len() < instances.len() {
        // Unplaced instances are on a cycle or merely blocked by one; prune
        // the merely blocked ones (no unplaced dependents) to name the cycle.
        let mut left: BTreeSet<usize> = (0..instances.len()).filter(|i| missing[*i] > 0).collect();
        loop {
            let prune: Vec<usize> = left
                .iter()
                .copied()
                .filter(|i| !dependents[*i].iter().any(|k| left.contains(k)))
                .collect();
            if prune.is_empty() {
                break;
            }
            for i in prune {
                left.remove(&i);
            }
        }
        let mut members: Vec<String> = left
            .into_iter()
            .map(|i| instances[i].name.clone())
            .collect();
        members.sort();
        return Err(CycleError { members });
    }
    Ok(order)
}

/// Checks a manifest (unique names, no cycles) and reorders its instances
/// into [`dependency_order`].
pub fn normalize(mut manifest: Manifest) -> Result<Manifest> {
    let mut seen = BTreeSet::new();
    for e in &manifest.instances {
        if !seen.insert(e.name.as_str()) {
            bail!("instance name `{}` occurs more than once", e.name);
        }
    }
    let order = dependency_order(&manifest.instances)?;
    let mut slots: Vec<Option<InstanceEntry>> = manifest.instances.drain(..).map(Some).collect();
    manifest.instances = order.into_iter().filter_map(|i| slots[i].take()).collect();
    Ok(manifest)
}

/// Reads `<profile>/nix-support/nixproc/manifest.json` and normalizes it.
/// Whether a path from a manifest names something inside the profile:
/// non-empty and relative, with no `..`, `.` or root component. Every
/// activator checks the paths it joins onto a profile with this.
pub fn within_profile(path: &str) -> bool {
    !path.is_empty()
        && Path::new(path)
            .components()
            .all(|c| matches!(c, Component::Normal(_)))
}

pub fn read_manifest(profile: &Path) -> Result<Manifest> {
    let path = profile.join(MANIFEST_PATH);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => bail!(
            "{} is not a nixproc profile: it has no {MANIFEST_PATH}",
            profile.display()
        ),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    let manifest: Manifest =
        serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
    if manifest.version != MANIFEST_VERSION {
        bail!(
            "{}: manifest version {} is not supported (this nixproc reads version {MANIFEST_VERSION})",
            path.display(),
            manifest.version
        );
    }
    normalize(manifest).with_context(|| format!("in {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deploy::testutil::{inst, manifest};

    fn names(m: &Manifest) -> Vec<&str> {
        m.instances.iter().map(|e| e.name.as_str()).collect()
    }

    #[test]
    fn orders_dependencies_first_ties_by_name() {
        let m = manifest(vec![
            inst("nginx", "1", &["webapp2", "webapp1"]),
            inst("webapp2", "1", &["db"]),
            inst("webapp1", "1", &["db"]),
            inst("db", "1", &[]),
            inst("aaa", "1", &[]),
        ]);
        assert_eq!(
            names(&normalize(m).unwrap()),
            ["aaa", "db", "webapp1", "webapp2", "nginx"]
        );
    }

    #[test]
    fn unknown_dependencies_are_ignored() {
        let m = manifest(vec![inst("b", "1", &["gone"]), inst("a", "1", &["b"])]);
        assert_eq!(names(&normalize(m).unwrap()), ["b", "a"]);
    }

    #[test]
    fn cycles_are_errors() {
        let m = manifest(vec![
            inst("a", "1", &["c"]),
            inst("b", "1", &["a"]),
            inst("c", "1", &["b"]),
            inst("d", "1", &[]),
            inst("e", "1", &["a"]),
        ]);
        let err = normalize(m).unwrap_err();
        // `e` is only blocked by the cycle; it is not named.
        assert_eq!(
            err.to_string(),
            "dependency cycle between instances: a, b, c"
        );
        let m = manifest(vec![inst("a", "1", &["a"])]);
        assert!(normalize(m).is_err());
    }

    #[test]
    fn duplicate_names_are_errors() {
        let m = manifest(vec![inst("a", "1", &[]), inst("a", "2", &[])]);
        assert_eq!(
            normalize(m).unwrap_err().to_string(),
            "instance name `a` occurs more than once"
        );
    }

    #[test]
    fn reads_manifest_from_profile() {
        let dir = tempfile::tempdir().unwrap();
        let err = read_manifest(dir.path()).unwrap_err();
        assert!(err.to_string().contains("is not a nixproc profile"));
        let path = dir.path().join(MANIFEST_PATH);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let m = manifest(vec![inst("b", "1", &["a"]), inst("a", "1", &[])]);
        std::fs::write(&path, serde_json::to_string(&m).unwrap()).unwrap();
        assert_eq!(names(&read_manifest(dir.path()).unwrap()), ["a", "b"]);
    }
}
