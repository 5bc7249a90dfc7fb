//! Whole-model checks: unique process names, dependencies that exist, no
//! cycles, and a deterministic dependency order (dependencies first).
//!
//! The Nix layer runs this before it forces any process package, so a cycle
//! is reported as a cycle rather than as Nix's "infinite recursion".

use std::collections::{BTreeMap, BTreeSet};

use crate::args::Args;
use crate::error::{Error, Result};
use crate::value::Value;

/// One instance of a processes model, as the checker sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// Attribute name in the processes model.
    pub key: String,
    /// Process name (what dependents refer to).
    pub name: String,
    /// Process names this instance depends on.
    pub dependencies: Vec<String>,
}

/// Checks the model and returns the instance keys in dependency order;
/// ties are broken by key, so the order is stable across evaluations.
pub fn dependency_order(nodes: &[Node]) -> Result<Vec<String>> {
    let mut by_name: BTreeMap<&str, &Node> = BTreeMap::new();
    for n in nodes {
        if let Some(first) = by_name.insert(&n.name, n) {
            return Err(Error::Model(format!(
                "duplicate process name '{}': instances '{}' and '{}' both use it \
                 (give one of them another instanceName or name)",
                n.name, first.key, n.key
            )));
        }
    }
    for n in nodes {
        for d in &n.dependencies {
            if !by_name.contains_key(d.as_str()) {
                return Err(Error::Model(format!(
                    "instance '{}' depends on process '{d}', which is not part of the processes model",
                    n.key
                )));
            }
        }
    }

    // Kahn's algorithm over names; a BTreeSet keeps the ready set ordered.
    let mut missing: BTreeMap<&str, usize> = nodes
        .iter()
        .map(|n| (n.name.as_str(), dedup(&n.dependencies).len()))
        .collect();
    let mut dependents: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for n in nodes {
        for d in dedup(&n.dependencies) {
            dependents.entry(d).or_default().push(&n.name);
        }
    }
    let mut ready: BTreeSet<(&str, &str)> = nodes
        .iter()
        .filter(|n| missing[n.name.as_str()] == 0)
        .map(|n| (n.key.as_str(), n.name.as_str()))
        .collect();
    let mut order = Vec::with_capacity(nodes.len());
    while let Some(next) = ready.pop_first() {
        order.push(next.0.to_string());
        for dep in dependents.get(next.1).into_iter().flatten() {
            let m = missing.get_mut(dep).expect("known name");
            *m -= 1;
            if *m == 0 {
                ready.insert((&by_name[dep].key, dep));
            }
        }
    }
    if order.len() < nodes.len() {
        return Err(Error::Model(describe_cycle(nodes, &by_name, &missing)));
    }
    Ok(order)
}

fn dedup(v: &[String]) -> BTreeSet<&str> {
    v.iter().map(String::as_str).collect()
}

/// Walks from an instance stuck in the cycle until a name repeats.
fn describe_cycle(
    nodes: &[Node],
    by_name: &BTreeMap<&str, &Node>,
    missing: &BTreeMap<&str, usize>,
) -> String {
    let stuck = |name: &str| missing[name] > 0;
    let start = nodes.iter().find(|n| stuck(&n.name)).expect("a stuck node");
    let mut path: Vec<&str> = vec![&start.name];
    loop {
        let cur = by_name[path[path.len() - 1]];
        let next = cur
            .dependencies
            .iter()
            .map(String::as_str)
            .find(|d| stuck(d))
            .expect("a stuck node has a stuck dependency");
        if let Some(pos) = path.iter().position(|p| *p == next) {
            let cycle: Vec<String> = path[pos..]
                .iter()
                .chain(std::iter::once(&next))
                .map(|n| format!("{} ('{}')", n, by_name[n].key))
                .collect();
            return format!("dependency cycle: {}", cycle.join(" -> "));
        }
        path.push(next);
    }
}

/// Primop entry: `{ instances = [ { key; name; dependencies; } … ]; }` →
/// `{ order = [ key … ]; }`.
pub fn check_model(arg: &Value) -> Result<Value> {
    let args = Args::new(arg, "argument")?;
    let nodes = args
        .list("instances")?
        .iter()
        .enumerate()
        .map(|(i, v)| parse_node(v).map_err(|e| e.within(&format!("instances[{i}]"))))
        .collect::<Result<Vec<_>>>()?;
    args.finish()?;
    let order = dependency_order(&nodes)?;
    Ok(crate::value::attrs([("order", Value::from(order))]))
}

fn parse_node(v: &Value) -> Result<Node> {
    let a = Args::new(v, "")?;
    let key = a.opt_str("key")?.ok_or_else(|| Error::Missing {
        attr: "key".into(),
        why: "the instance's attribute name".into(),
    })?;
    let name = a.opt_str("name")?.ok_or_else(|| Error::Missing {
        attr: "name".into(),
        why: "the process name".into(),
    })?;
    let dependencies = a.string_list("dependencies")?;
    a.finish()?;
    Ok(Node {
        key,
        name,
        dependencies,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(key: &str, name: &str, deps: &[&str]) -> Node {
        Node {
            key: key.into(),
            name: name.into(),
            dependencies: deps.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn orders_dependencies_first_with_stable_ties() {
        let nodes = vec![
            node("nginx", "nginx", &["webapp2", "webapp1"]),
            node("webapp2", "webapp2", &["webapp1"]),
            node("webapp1", "webapp1", &[]),
            node("other", "other", &[]),
        ];
        assert_eq!(
            dependency_order(&nodes).unwrap(),
            ["other", "webapp1", "webapp2", "nginx"]
        );
    }

    #[test]
    fn reports_cycle_with_keys() {
        let nodes = vec![
            node("a", "pa", &["pb"]),
            node("b", "pb", &["pc"]),
            node("c", "pc", &["pa"]),
            node("d", "pd", &[]),
        ];
        let e = dependency_order(&nodes).unwrap_err().to_string();
        assert_eq!(
            e,
            "dependency cycle: pa ('a') -> pb ('b') -> pc ('c') -> pa ('a')"
        );
    }

    #[test]
    fn self_dependency_is_a_cycle() {
        let e = dependency_order(&[node("a", "a", &["a"])])
            .unwrap_err()
            .to_string();
        assert_eq!(e, "dependency cycle: a ('a') -> a ('a')");
    }

    #[test]
    fn duplicate_names_name_both_keys() {
        let e = dependency_order(&[node("w1", "webapp", &[]), node("w2", "webapp", &[])])
            .unwrap_err()
            .to_string();
        assert!(e.contains("duplicate process name 'webapp'"), "{e}");
        assert!(e.contains("'w1' and 'w2'"), "{e}");
    }

    #[test]
    fn unknown_dependency_is_reported() {
        let e = dependency_order(&[node("a", "a", &["ghost"])])
            .unwrap_err()
            .to_string();
        assert!(e.contains("depends on process 'ghost'"), "{e}");
    }
}
