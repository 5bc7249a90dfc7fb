//! Checking an s6-rc source tree (the profile's `etc/s6/sv`) the way
//! `s6-rc-compile` would, before anything is started: s6-rc itself is not
//! needed to find a broken profile.
//!
//! Pure: the caller reads the directory into a [`Tree`] (service name →
//! file name → contents; directories such as `data/` map to an empty
//! string).

use std::collections::{BTreeMap, BTreeSet};

use super::check_service_name;
use crate::error::{Error, Result};
use crate::manifest::S6Kind;

pub type Tree = BTreeMap<String, BTreeMap<String, String>>;

/// A service of a checked tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceService {
    pub kind: S6Kind,
    pub dependencies: Vec<String>,
    /// Bundle contents.
    pub contents: Vec<String>,
    pub producer_for: Option<String>,
    pub consumer_for: Vec<String>,
    pub pipeline_name: Option<String>,
}

/// The names of a list file: one per line, surrounding whitespace and
/// empty lines ignored, `#` comments skipped (as s6-rc-compile does).
fn names(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_string)
        .collect()
}

fn single(text: &str) -> Option<String> {
    let t = text.trim();
    (!t.is_empty()).then(|| t.to_string())
}

/// Checks `tree`; every problem is reported, each naming the service.
/// Returns the parsed services.
pub fn check_tree(tree: &Tree) -> Result<BTreeMap<String, SourceService>> {
    let mut errors = Vec::new();
    let mut services = BTreeMap::new();
    for (name, files) in tree {
        let mut err = |msg: String| errors.push(format!("service {name}: {msg}"));
        if let Err(e) = check_service_name("name", name) {
            err(e.to_string());
            continue;
        }
        let kind = match files.get("type").map(|t| t.trim()) {
            None => {
                err("has no type file".into());
                continue;
            }
            Some("longrun") => S6Kind::Longrun,
            Some("oneshot") => S6Kind::Oneshot,
            Some("bundle") => S6Kind::Bundle,
            Some(other) => {
                err(format!(
                    "unknown type {other:?} (longrun, oneshot or bundle)"
                ));
                continue;
            }
        };
        let required = match kind {
            S6Kind::Longrun => "run",
            S6Kind::Oneshot => "up",
            S6Kind::Bundle => "contents",
        };
        if !files.contains_key(required) {
            err(format!(
                "is a {} without a {required} file",
                kind_name(kind)
            ));
        }
        let list = |f: &str| files.get(f).map(|t| names(t)).unwrap_or_default();
        let one = |f: &str| files.get(f).and_then(|t| single(t));
        let s = SourceService {
            kind,
            dependencies: list("dependencies"),
            contents: list("contents"),
            producer_for: one("producer-for"),
            consumer_for: list("consumer-for"),
            pipeline_name: one("pipeline-name"),
        };
        if kind != S6Kind::Longrun
            && (s.producer_for.is_some() || !s.consumer_for.is_empty() || s.pipeline_name.is_some())
        {
            err(format!(
                "is a {}, but only longruns can be in a pipeline",
                kind_name(kind)
            ));
        }
        if kind == S6Kind::Bundle && !s.dependencies.is_empty() {
            err("is a bundle with dependencies (bundles only have contents)".into());
        }
        services.insert(name.clone(), s);
    }

    // Pipeline names become bundles: unique, not a service's name.
    let mut pipelines: BTreeMap<String, String> = BTreeMap::new();
    for (name, s) in &services {
        if let Some(p) = &s.pipeline_name {
            if services.contains_key(p) {
                errors.push(format!(
                    "service {name}: pipeline name {p:?} is already a service name"
                ));
            } else if let Some(other) = pipelines.insert(p.clone(), name.clone()) {
                errors.push(format!(
                    "service {name}: pipeline name {p:?} is also used by {other}"
                ));
            }
        }
    }
    let exists = |n: &str| services.contains_key(n) || pipelines.contains_key(n);

    for (name, s) in &services {
        for d in &s.dependencies {
            if d == name {
                errors.push(format!("service {name}: depends on itself"));
            } else if !exists(d) {
                errors.push(format!(
                    "service {name}: dependency {d:?} is not a service of this profile"
                ));
            }
        }
        for c in &s.contents {
            if !exists(c) {
                errors.push(format!(
                    "service {name}: bundle content {c:?} is not a service of this profile"
                ));
            }
        }
        if let Some(p) = &s.producer_for {
            match services.get(p) {
                None => errors.push(format!(
                    "service {name}: producer-for {p:?} is not a service of this profile"
                )),
                Some(c) if !c.consumer_for.contains(name) => errors.push(format!(
                    "service {name}: producer-for {p:?}, but {p}'s consumer-for does not \
                     name {name}"
                )),
                Some(_) => {}
            }
        }
        for c in &s.consumer_for {
            match services.get(c) {
                None => errors.push(format!(
                    "service {name}: consumer-for {c:?} is not a service of this profile"
                )),
                Some(p) if p.producer_for.as_deref() != Some(name.as_str()) => {
                    errors.push(format!(
                        "service {name}: consumer-for {c:?}, but {c}'s producer-for is not \
                         {name}"
                    ))
                }
                Some(_) => {}
            }
        }
    }
    if errors.is_empty() {
        if let Some(cycle) = find_cycle(&services, &pipelines) {
            errors.push(format!("dependency cycle: {}", cycle.join(" -> ")));
        }
    }
    if errors.is_empty() {
        Ok(services)
    } else {
        Err(Error::Model(format!(
            "invalid s6-rc source tree:\n  {}",
            errors.join("\n  ")
        )))
    }
}

fn kind_name(k: S6Kind) -> &'static str {
    match k {
        S6Kind::Longrun => "longrun",
        S6Kind::Oneshot => "oneshot",
        S6Kind::Bundle => "bundle",
    }
}

/// A cycle through dependencies and bundle contents (a bundle "depends" on
/// what it contains, a pipeline bundle on its members), as a path whose
/// first and last names are equal.
fn find_cycle(
    services: &BTreeMap<String, SourceService>,
    pipelines: &BTreeMap<String, String>,
) -> Option<Vec<String>> {
    let mut edges: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (name, s) in services {
        let e = edges.entry(name.as_str()).or_default();
        e.extend(s.dependencies.iter().map(String::as_str));
        e.extend(s.contents.iter().map(String::as_str));
    }
    // A pipeline bundle contains every member of its pipeline: walk from
    // the consumer that names it back along producers.
    for (p, last) in pipelines {
        let mut members = Vec::new();
        let mut seen = BTreeSet::new();
        let mut todo = vec![last.as_str()];
        while let Some(m) = todo.pop() {
            if !seen.insert(m) {
                continue;
            }
            members.push(m);
            if let Some(s) = services.get(m) {
                todo.extend(s.consumer_for.iter().map(String::as_str));
            }
        }
        edges.entry(p.as_str()).or_default().extend(members);
    }

    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        Active,
        Done,
    }
    fn visit<'a>(
        n: &'a str,
        edges: &BTreeMap<&'a str, Vec<&'a str>>,
        marks: &mut BTreeMap<&'a str, Mark>,
        stack: &mut Vec<&'a str>,
    ) -> Option<Vec<String>> {
        match marks.get(n) {
            Some(Mark::Done) => return None,
            Some(Mark::Active) => {
                let start = stack.iter().position(|s| *s == n).unwrap_or(0);
                let mut cycle: Vec<String> = stack[start..].iter().map(|s| s.to_string()).collect();
                cycle.push(n.to_string());
                return Some(cycle);
            }
            None => {}
        }
        marks.insert(n, Mark::Active);
        stack.push(n);
        for m in edges.get(n).into_iter().flatten() {
            if let Some(c) = visit(m, edges, marks, stack) {
                return Some(c);
            }
        }
        stack.pop();
        marks.insert(n, Mark::Done);
        None
    }
    let mut marks = BTreeMap::new();
    for n in edges.keys() {
        let mut stack = Vec::new();
        if let Some(c) = visit(n, &edges, &mut marks, &mut stack) {
            return Some(c);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn svc(files: &[(&str, &str)]) -> BTreeMap<String, String> {
        files
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn good() -> Tree {
        let mut t = Tree::new();
        t.insert(
            "web-srv".into(),
            svc(&[
                ("type", "longrun\n"),
                ("run", "#!/bin/sh\n"),
                ("producer-for", "web-log\n"),
                ("dependencies", "db\n"),
            ]),
        );
        t.insert(
            "web-log".into(),
            svc(&[
                ("type", "longrun\n"),
                ("run", "#!/bin/sh\n"),
                ("consumer-for", "web-srv\n"),
                ("pipeline-name", "web\n"),
                ("notification-fd", "3\n"),
            ]),
        );
        t.insert("db".into(), svc(&[("type", "oneshot\n"), ("up", "true\n")]));
        t.insert(
            "default".into(),
            svc(&[("type", "bundle\n"), ("contents", "web-srv\ndb\n# c\n\n")]),
        );
        t.insert(
            "all".into(),
            svc(&[("type", "bundle\n"), ("contents", "web\ndefault\n")]),
        );
        t
    }

    fn err(t: &Tree) -> String {
        check_tree(t).unwrap_err().to_string()
    }

    #[test]
    fn a_good_tree_passes() {
        let s = check_tree(&good()).unwrap();
        assert_eq!(s["default"].contents, ["web-srv", "db"]);
        assert_eq!(s["web-srv"].producer_for.as_deref(), Some("web-log"));
        assert_eq!(s["db"].kind, S6Kind::Oneshot);
    }

    #[test]
    fn type_and_required_files() {
        let mut t = good();
        t.get_mut("db").unwrap().remove("type");
        t.get_mut("web-srv").unwrap().remove("run");
        t.insert("x".into(), svc(&[("type", "daemon")]));
        t.insert("b".into(), svc(&[("type", "bundle")]));
        assert_eq!(
            err(&t),
            "invalid s6-rc source tree:\n  \
             service b: is a bundle without a contents file\n  \
             service db: has no type file\n  \
             service web-srv: is a longrun without a run file\n  \
             service x: unknown type \"daemon\" (longrun, oneshot or bundle)\n  \
             service default: bundle content \"db\" is not a service of this profile\n  \
             service web-srv: dependency \"db\" is not a service of this profile"
        );
    }

    #[test]
    fn names_must_exist() {
        let mut t = good();
        t.get_mut("web-srv")
            .unwrap()
            .insert("dependencies".into(), "dbb\n".into());
        t.get_mut("default")
            .unwrap()
            .insert("contents".into(), "web-srv\nnope\n".into());
        let e = err(&t);
        assert!(
            e.contains("service web-srv: dependency \"dbb\" is not a service of this profile"),
            "{e}"
        );
        assert!(e.contains("service default: bundle content \"nope\" is not a service"));
    }

    #[test]
    fn pipeline_pairs_must_agree() {
        let mut t = good();
        t.get_mut("web-log")
            .unwrap()
            .insert("consumer-for".into(), "other\n".into());
        let e = err(&t);
        assert!(
            e.contains(
                "service web-srv: producer-for \"web-log\", but web-log's consumer-for does \
                 not name web-srv"
            ),
            "{e}"
        );
        assert!(e.contains("service web-log: consumer-for \"other\" is not a service"));

        let mut t = good();
        t.get_mut("db")
            .unwrap()
            .insert("producer-for".into(), "web-log\n".into());
        assert!(
            err(&t).contains("service db: is a oneshot, but only longruns can be in a pipeline")
        );
    }

    #[test]
    fn pipeline_names_are_unique() {
        let mut t = good();
        t.insert(
            "x-log".into(),
            svc(&[
                ("type", "longrun"),
                ("run", "#!/bin/sh"),
                ("pipeline-name", "web"),
            ]),
        );
        assert!(err(&t).contains("service x-log: pipeline name \"web\" is also used by web-log"));
        let mut t = good();
        t.get_mut("web-log")
            .unwrap()
            .insert("pipeline-name".into(), "db".into());
        assert!(err(&t).contains("pipeline name \"db\" is already a service name"));
    }

    #[test]
    fn cycles_are_found() {
        let mut t = good();
        t.get_mut("db")
            .unwrap()
            .insert("dependencies".into(), "web-srv\n".into());
        assert_eq!(
            err(&t),
            "invalid s6-rc source tree:\n  dependency cycle: web-srv -> db -> web-srv"
        );
        let mut t = good();
        t.get_mut("db")
            .unwrap()
            .insert("dependencies".into(), "db".into());
        assert!(err(&t).contains("service db: depends on itself"));
        // Through a bundle.
        let mut t = good();
        t.get_mut("db")
            .unwrap()
            .insert("dependencies".into(), "all\n".into());
        assert!(err(&t).starts_with("invalid s6-rc source tree:\n  dependency cycle: "));
        // Through a pipeline bundle.
        let mut t = good();
        t.get_mut("db")
            .unwrap()
            .insert("dependencies".into(), "web\n".into());
        assert!(err(&t).contains("dependency cycle: "), "{}", err(&t));
    }

    #[test]
    fn bad_service_names() {
        let mut t = good();
        t.insert(
            "s6rc-x".into(),
            svc(&[("type", "bundle"), ("contents", "")]),
        );
        assert!(err(&t).contains("service s6rc-x: attribute 'name'"));
    }
}
