//! The switch plan: set algebra on the instance names of the old and the
//! new manifest. Pure; no I/O.
//!
//! * removed   = in old only            → stop (old profile)
//! * added     = in new only            → start (new profile)
//! * changed   = in both, revision differs → stop old, start new
//! * unchanged = in both, same revision → kept running, never touched —
//!   unless a dependency of it restarts and [`PlanOptions::restart_dependents`]
//!   is set (the default), in which case it restarts too (reason
//!   [`Reason::DependencyRestarted`]); otherwise a restarted dependency would
//!   be stopped under a running dependent (defect 15 of the original).
//!
//! Stops run in reverse dependency order of the old manifest (dependents
//! first), starts in dependency order of the new manifest. Both manifests
//! are expected in dependency order, as [`super::manifest::read_manifest`]
//! returns them.

use std::collections::BTreeMap;
use std::fmt;

use nixproc_core::manifest::{InstanceEntry, Manifest};
use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    Stop,
    Start,
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Action::Stop => "stop",
            Action::Start => "start",
        })
    }
}

/// Why an instance is stopped or started.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum Reason {
    Removed,
    Changed,
    Added,
    /// Unchanged itself, but restarts because this dependency restarts.
    DependencyRestarted {
        dependency: String,
    },
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::Removed => f.write_str("removed"),
            Reason::Changed => f.write_str("changed"),
            Reason::Added => f.write_str("added"),
            Reason::DependencyRestarted { dependency } => {
                write!(f, "dependency {dependency} restarts")
            }
        }
    }
}

/// Which profile an instance's version belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Side {
    Old,
    New,
}

impl fmt::Display for Side {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Side::Old => "old",
            Side::New => "new",
        })
    }
}

/// One stop or start.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlanItem {
    pub action: Action,
    pub name: String,
    pub reason: Reason,
    /// The profile the instance version is taken from: stops use the old
    /// profile, starts the new one.
    pub side: Side,
    pub instance: InstanceEntry,
}

/// A stop or start the plan deliberately leaves out, with the reason in
/// words (e.g. "not started: no start link for runlevel 3").
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Skipped {
    pub action: Action,
    pub name: String,
    pub side: Side,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlanOptions {
    /// Restart unchanged instances whose dependencies restart.
    pub restart_dependents: bool,
}

impl Default for PlanOptions {
    fn default() -> Self {
        PlanOptions {
            restart_dependents: true,
        }
    }
}

/// An unchanged instance the switch leaves alone.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Kept {
    pub name: String,
    pub instance: InstanceEntry,
}

/// What a switch does, in order: all `stops`, then all `starts`.
#[derive(Debug, Clone, PartialEq, Serialize, Default)]
pub struct Plan {
    pub stops: Vec<PlanItem>,
    pub starts: Vec<PlanItem>,
    pub skipped: Vec<Skipped>,
    /// Unchanged instances left alone, sorted by name.
    pub kept: Vec<Kept>,
}

/// [`plan_with`] with the default options.
pub fn plan(old: &Manifest, new: &Manifest) -> Plan {
    plan_with(old, new, &PlanOptions::default())
}

pub fn plan_with(old: &Manifest, new: &Manifest, options: &PlanOptions) -> Plan {
    let old_by: BTreeMap<&str, &InstanceEntry> =
        old.instances.iter().map(|e| (e.name.as_str(), e)).collect();
    let new_by: BTreeMap<&str, &InstanceEntry> =
        new.instances.iter().map(|e| (e.name.as_str(), e)).collect();

    let mut reasons: BTreeMap<&str, Reason> = BTreeMap::new();
    for (name, o) in &old_by {
        match new_by.get(name) {
            None => {
                reasons.insert(name, Reason::Removed);
            }
            Some(n) if n.revision != o.revision => {
                reasons.insert(name, Reason::Changed);
            }
            Some(_) => {}
        }
    }
    for name in new_by.keys() {
        if !old_by.contains_key(name) {
            reasons.insert(name, Reason::Added);
        }
    }

    if options.restart_dependents {
        // Fixpoint: an unchanged instance restarts when one of its old or
        // new dependencies is stopped.
        loop {
            let mut grew = false;
            for o in &old.instances {
                let name = o.name.as_str();
                if reasons.contains_key(name) {
                    continue;
                }
                let Some(n) = new_by.get(name) else { continue };
                let stopped = |d: &&String| {
                    matches!(
                        reasons.get(d.as_str()),
                        Some(
                            Reason::Removed | Reason::Changed | Reason::DependencyRestarted { .. }
                        )
                    )
                };
                let dep = o
                    .dependencies
                    .iter()
                    .find(stopped)
                    .or_else(|| n.dependencies.iter().find(stopped));
                if let Some(d) = dep {
                    let dependency = d.clone();
                    reasons.insert(name, Reason::DependencyRestarted { dependency });
                    grew = true;
                }
            }
            if !grew {
                break;
            }
        }
    }

    let stops = old
        .instances
        .iter()
        .rev()
        .filter_map(|e| match reasons.get(e.name.as_str()) {
            Some(r) if *r != Reason::Added => Some(PlanItem {
                action: Action::Stop,
                name: e.name.clone(),
                reason: r.clone(),
                side: Side::Old,
                instance: e.clone(),
            }),
            _ => None,
        })
        .collect();
    let starts = new
        .instances
        .iter()
        .filter_map(|e| match reasons.get(e.name.as_str()) {
            Some(r) if *r != Reason::Removed => Some(PlanItem {
                action: Action::Start,
                name: e.name.clone(),
                reason: r.clone(),
                side: Side::New,
                instance: e.clone(),
            }),
            _ => None,
        })
        .collect();
    let mut kept: Vec<Kept> = new
        .instances
        .iter()
        .filter(|e| !reasons.contains_key(e.name.as_str()))
        .map(|e| Kept {
            name: e.name.clone(),
            instance: e.clone(),
        })
        .collect();
    kept.sort_by(|a, b| a.name.cmp(&b.name));
    Plan {
        stops,
        starts,
        skipped: Vec::new(),
        kept,
    }
}

impl Plan {
    /// True when the switch stops and starts nothing.
    pub fn is_empty(&self) -> bool {
        self.stops.is_empty() && self.starts.is_empty()
    }

    /// Moves the items for which `skip_reason` gives a reason (e.g. "no
    /// start link for runlevel 3") to [`Plan::skipped`]. A start is skipped
    /// because the instance would not run; a stop because the old version
    /// was, for the same reason, never started.
    pub fn skip_where(&mut self, skip_reason: impl Fn(&InstanceEntry) -> Option<String>) {
        let mut skipped = Vec::new();
        let mut filter = |items: &mut Vec<PlanItem>| {
            items.retain(|item| match skip_reason(&item.instance) {
                None => true,
                Some(why) => {
                    let reason = match item.action {
                        Action::Start => format!("not started: {why}"),
                        Action::Stop => format!("not stopped: it was not started ({why})"),
                    };
                    skipped.push(Skipped {
                        action: item.action,
                        name: item.name.clone(),
                        side: item.side,
                        reason,
                    });
                    false
                }
            });
        };
        filter(&mut self.stops);
        filter(&mut self.starts);
        // An unchanged instance that is not started is not "kept running".
        self.kept.retain(|k| match skip_reason(&k.instance) {
            None => true,
            Some(why) => {
                skipped.push(Skipped {
                    action: Action::Start,
                    name: k.name.clone(),
                    side: Side::New,
                    reason: format!("not started: {why}"),
                });
                false
            }
        });
        self.skipped.extend(skipped);
    }

    /// Names of the kept instances.
    pub fn kept_names(&self) -> Vec<&str> {
        self.kept.iter().map(|k| k.name.as_str()).collect()
    }
}

/// The `--dry-run` listing:
///
/// ```text
/// stop    webapp3   (removed)
/// stop    webapp1   (changed)
/// start   webapp1   (changed)
/// start   webapp4   (added)
/// keep    nginx, webapp2
/// ```
impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let width = self
            .stops
            .iter()
            .chain(&self.starts)
            .map(|i| i.name.len())
            .chain(self.skipped.iter().map(|s| s.name.len()))
            .max()
            .unwrap_or(0)
            + 3;
        if self.is_empty() {
            writeln!(f, "nothing to stop or start")?;
        }
        for item in self.stops.iter().chain(&self.starts) {
            let action = item.action.to_string();
            writeln!(f, "{action:<8}{:<width$}({})", item.name, item.reason)?;
        }
        for s in &self.skipped {
            writeln!(f, "{:<8}{:<width$}({})", "skip", s.name, s.reason)?;
        }
        if !self.kept.is_empty() {
            writeln!(f, "{:<8}{}", "keep", self.kept_names().join(", "))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deploy::testutil::{inst, manifest};

    fn listing(items: &[PlanItem]) -> Vec<String> {
        items
            .iter()
            .map(|i| format!("{} {} ({})", i.action, i.name, i.reason))
            .collect()
    }

    /// db ← webapp1, webapp2, webapp3 ← nginx (nginx depends on all webapps).
    fn old() -> Manifest {
        manifest(vec![
            inst("db", "d1", &[]),
            inst("webapp1", "w1", &["db"]),
            inst("webapp2", "w2", &["db"]),
            inst("webapp3", "w3", &["db"]),
            inst("nginx", "n1", &["webapp1", "webapp2", "webapp3"]),
        ])
    }

    #[test]
    fn set_algebra_and_orders() {
        // webapp3 removed, webapp1 and db changed, webapp4 added, nginx
        // changed (its config lists the webapps), webapp2 unchanged.
        let new = manifest(vec![
            inst("db", "d2", &[]),
            inst("webapp1", "w1'", &["db"]),
            inst("webapp2", "w2", &[]),
            inst("webapp4", "w4", &["db"]),
            inst("nginx", "n2", &["webapp1", "webapp2", "webapp4"]),
        ]);
        let p = plan_with(
            &old(),
            &new,
            &PlanOptions {
                restart_dependents: false,
            },
        );
        assert_eq!(
            listing(&p.stops),
            [
                "stop nginx (changed)",
                "stop webapp3 (removed)",
                "stop webapp1 (changed)",
                "stop db (changed)",
            ]
        );
        assert_eq!(
            listing(&p.starts),
            [
                "start db (changed)",
                "start webapp1 (changed)",
                "start webapp4 (added)",
                "start nginx (changed)",
            ]
        );
        assert_eq!(p.kept_names(), ["webapp2"]);
        assert!(p.stops.iter().all(|i| i.side == Side::Old));
        assert!(p.starts.iter().all(|i| i.side == Side::New));
        assert_eq!(p.starts[1].instance.revision, "w1'");
        assert_eq!(p.stops[2].instance.revision, "w1");
    }

    #[test]
    fn dependents_of_restarted_instances_restart() {
        // webapp1 changes; nginx (unchanged) depends on it and restarts too;
        // webapp2 does not depend on webapp1 and is kept.
        let mut new = old();
        new.instances[1].revision = "w1'".into();
        let p = plan(&old(), &new);
        assert_eq!(
            listing(&p.stops),
            [
                "stop nginx (dependency webapp1 restarts)",
                "stop webapp1 (changed)",
            ]
        );
        assert_eq!(
            listing(&p.starts),
            [
                "start webapp1 (changed)",
                "start nginx (dependency webapp1 restarts)",
            ]
        );
        assert_eq!(p.kept_names(), ["db", "webapp2", "webapp3"]);

        // Transitively: db changes → every instance restarts.
        let mut new = old();
        new.instances[0].revision = "d2".into();
        let p = plan(&old(), &new);
        assert_eq!(p.stops.len(), 5);
        assert_eq!(p.stops[0].name, "nginx");
        assert_eq!(
            p.stops[0].reason,
            Reason::DependencyRestarted {
                dependency: "webapp1".into()
            }
        );
        assert!(p.kept.is_empty());
    }

    #[test]
    fn unchanged_is_never_touched() {
        let p = plan(&old(), &old());
        assert!(p.is_empty());
        assert_eq!(p.kept.len(), 5);
        assert_eq!(
            p.to_string(),
            "nothing to stop or start\nkeep    db, nginx, webapp1, webapp2, webapp3\n"
        );
    }

    #[test]
    fn first_deployment_and_undeploy() {
        let empty = Manifest::empty("sysvinit");
        let p = plan(&empty, &old());
        assert!(p.stops.is_empty());
        assert_eq!(p.starts.len(), 5);
        assert_eq!(p.starts[0].name, "db");
        assert!(p.starts.iter().all(|i| i.reason == Reason::Added));
        let p = plan(&old(), &empty);
        assert!(p.starts.is_empty());
        let names: Vec<_> = p.stops.iter().map(|i| i.name.as_str()).collect();
        assert_eq!(names, ["nginx", "webapp3", "webapp2", "webapp1", "db"]);
    }

    #[test]
    fn display_listing() {
        let old = manifest(vec![
            inst("webapp1", "1", &[]),
            inst("webapp2", "1", &[]),
            inst("webapp3", "1", &[]),
            inst("nginx", "1", &[]),
        ]);
        let new = manifest(vec![
            inst("webapp1", "2", &[]),
            inst("webapp2", "1", &[]),
            inst("webapp4", "1", &[]),
            inst("nginx", "1", &[]),
        ]);
        let mut p = plan(&old, &new);
        assert_eq!(
            p.to_string(),
            "\
stop    webapp3   (removed)
stop    webapp1   (changed)
start   webapp1   (changed)
start   webapp4   (added)
keep    nginx, webapp2
"
        );
        p.skip_where(|e| (e.name == "webapp4").then(|| "no start link for runlevel 3".to_string()));
        assert_eq!(
            p.to_string(),
            "\
stop    webapp3   (removed)
stop    webapp1   (changed)
start   webapp1   (changed)
skip    webapp4   (not started: no start link for runlevel 3)
keep    nginx, webapp2
"
        );
        let json = serde_json::to_value(&p).unwrap();
        assert_eq!(json["stops"][0]["name"], "webapp3");
        assert_eq!(json["stops"][0]["reason"]["kind"], "removed");
        assert_eq!(json["starts"][0]["side"], "new");
        assert_eq!(json["skipped"][0]["action"], "start");
    }
}
