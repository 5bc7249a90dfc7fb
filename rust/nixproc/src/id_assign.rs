//! `nixproc id-assign` (reference §5.9): unique numbers — ports, uids,
//! gids — from resource pools (`idresources.nix`) for the instances of a
//! processes model that ask for them (`requiresUniqueIdsFor`), written as
//! `ids.nix`. A re-implementation of `dydisnix-id-assign` for processes
//! models; no Disnix needed.
//!
//! The assignment itself ([`assign`]) is pure. Around it: reading what
//! `nix/id-assign.nix` evaluates to ([`Inputs::from_json`]) and writing
//! `ids.nix` ([`to_nix`]) or dydisnix's XML form ([`to_xml`]).
//!
//! Normal use keeps one `ids.nix` next to the model and updates it in place:
//!
//! ```text
//! nixproc id-assign --id-resources idresources.nix --ids ids.nix --output-file ids.nix processes.nix
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};
use serde_json::Value as Json;

/// The instance property listing the resources an instance needs ids from.
pub const DEFAULT_SERVICE_PROPERTY: &str = "requiresUniqueIdsFor";

/// One pool of ids: `min`, `min + step`, … up to `max` (inclusive).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdResource {
    pub min: i64,
    pub max: i64,
    pub step: i64,
}

impl IdResource {
    /// A pool; `None` unless `min <= max` and `step >= 1`.
    pub fn new(min: i64, max: i64, step: i64) -> Option<Self> {
        (min <= max && step >= 1).then_some(IdResource { min, max, step })
    }

    /// Whether `id` is one of this pool's ids.
    pub fn contains(&self, id: i64) -> bool {
        id >= self.min && id <= self.max && (id - self.min) % self.step == 0
    }

    /// How many ids the pool has.
    pub fn size(&self) -> u128 {
        ((self.max as i128 - self.min as i128) / self.step as i128 + 1) as u128
    }

    /// The id after `id` (a pool id), wrapping from the last to `min`.
    fn after(&self, id: i64) -> i64 {
        match id.checked_add(self.step) {
            Some(n) if n <= self.max => n,
            _ => self.min,
        }
    }
}

/// What an `ids.nix` holds: `ids.<resource>.<instance>` and the last id
/// handed out per resource (so that freed ids are not reused at once).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Assignments {
    pub ids: BTreeMap<String, BTreeMap<String, i64>>,
    pub last_assignments: BTreeMap<String, i64>,
}

/// Per instance key, the resources it needs a unique id from.
pub type Requirements = BTreeMap<String, BTreeSet<String>>;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AssignError {
    #[error(
        "instance '{instance}' requires a unique id from '{resource}', which the id resources \
         do not define (defined: {known})"
    )]
    UnknownResource {
        instance: String,
        resource: String,
        known: String,
    },
    #[error(
        "id resource '{resource}' is exhausted: {wanted} instances need an id from it, but it \
         has only {size} ids ({min}..{max}); widen its range"
    )]
    Exhausted {
        resource: String,
        wanted: usize,
        size: u128,
        min: i64,
        max: i64,
    },
}

/// Assigns ids (dydisnix semantics, reference §5.9):
///
/// * an earlier assignment is kept if the instance still exists, still
///   requires the resource and the id is still in the pool (and unique);
///   every other earlier assignment is dropped;
/// * instances without an id get, in key order, the next free id after the
///   resource's last assignment (`min` when there is none), wrapping within
///   the pool; a full pool is an error naming the resource;
/// * every resource of `resources` appears in `ids` (possibly empty);
///   resources no longer defined are dropped.
pub fn assign(
    resources: &BTreeMap<String, IdResource>,
    wanted: &Requirements,
    previous: &Assignments,
) -> Result<Assignments, AssignError> {
    for (instance, needs) in wanted {
        if let Some(resource) = needs.iter().find(|r| !resources.contains_key(*r)) {
            return Err(AssignError::UnknownResource {
                instance: instance.clone(),
                resource: resource.clone(),
                known: if resources.is_empty() {
                    "none".into()
                } else {
                    resources.keys().cloned().collect::<Vec<_>>().join(", ")
                },
            });
        }
    }

    let mut out = Assignments::default();
    for (name, pool) in resources {
        let needing: Vec<&String> = wanted
            .iter()
            .filter(|(_, needs)| needs.contains(name))
            .map(|(instance, _)| instance)
            .collect();
        if needing.len() as u128 > pool.size() {
            return Err(AssignError::Exhausted {
                resource: name.clone(),
                wanted: needing.len(),
                size: pool.size(),
                min: pool.min,
                max: pool.max,
            });
        }

        let mut assigned: BTreeMap<String, i64> = BTreeMap::new();
        let mut used: BTreeSet<i64> = BTreeSet::new();
        if let Some(before) = previous.ids.get(name) {
            for (instance, &id) in before {
                let still_wanted = wanted.get(instance).is_some_and(|n| n.contains(name));
                if still_wanted && pool.contains(id) && used.insert(id) {
                    assigned.insert(instance.clone(), id);
                }
            }
        }

        let mut last = previous
            .last_assignments
            .get(name)
            .copied()
            .filter(|&l| pool.contains(l));
        for instance in needing {
            if assigned.contains_key(instance) {
                continue;
            }
            // At most used.len() + 1 candidates: one of them is free, as the
            // pool is larger than the number of instances needing it.
            let mut candidate = last.map_or(pool.min, |l| pool.after(l));
            while used.contains(&candidate) {
                candidate = pool.after(candidate);
            }
            used.insert(candidate);
            assigned.insert(instance.clone(), candidate);
            last = Some(candidate);
        }
        if let Some(l) = last {
            out.last_assignments.insert(name.clone(), l);
        }
        out.ids.insert(name.clone(), assigned);
    }
    Ok(out)
}

/// Everything `nix/id-assign.nix` evaluates to, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inputs {
    pub resources: BTreeMap<String, IdResource>,
    pub requirements: Requirements,
    pub previous: Assignments,
}

fn obj<'a>(v: &'a Json, what: &str) -> Result<&'a serde_json::Map<String, Json>> {
    v.as_object()
        .with_context(|| format!("{what} must be an attribute set, but it is {}", kind(v)))
}

fn kind(v: &Json) -> &'static str {
    match v {
        Json::Null => "null",
        Json::Bool(_) => "a Boolean",
        Json::Number(n) if n.is_i64() => "an integer",
        Json::Number(_) => "a float",
        Json::String(_) => "a string",
        Json::Array(_) => "a list",
        Json::Object(_) => "a set",
    }
}

fn int(v: &Json, what: &str) -> Result<i64> {
    v.as_i64()
        .with_context(|| format!("{what} must be an integer, but it is {}", kind(v)))
}

impl Inputs {
    /// `{ resources; requirements; previous = { ids; lastAssignments; }; }`.
    pub fn from_json(v: &Json) -> Result<Self> {
        let top = obj(v, "the evaluation result")?;
        let field = |k: &str| {
            top.get(k)
                .with_context(|| format!("the evaluation result has no '{k}'"))
        };
        Ok(Inputs {
            resources: parse_resources(field("resources")?)?,
            requirements: parse_requirements(field("requirements")?)?,
            previous: parse_assignments(field("previous")?)?,
        })
    }
}

/// The id resources: `{ <name> = { min; max; scope ? "global"; step ? 1; }; }`.
pub fn parse_resources(v: &Json) -> Result<BTreeMap<String, IdResource>> {
    let mut out = BTreeMap::new();
    for (name, spec) in obj(v, "the id resources")? {
        let what = format!("id resource '{name}'");
        let spec = obj(spec, &what)?;
        for key in spec.keys() {
            if !matches!(key.as_str(), "min" | "max" | "scope" | "step") {
                bail!("{what}: unknown attribute '{key}' (known: min, max, scope, step)");
            }
        }
        let get = |k: &str| {
            spec.get(k)
                .with_context(|| format!("{what} has no '{k}' (it needs min and max)"))
        };
        let min = int(get("min")?, &format!("{what}: 'min'"))?;
        let max = int(get("max")?, &format!("{what}: 'max'"))?;
        let step = match spec.get("step") {
            Some(s) => int(s, &format!("{what}: 'step'"))?,
            None => 1,
        };
        match spec.get("scope") {
            None => {}
            Some(Json::String(s)) if s == "global" => {}
            Some(Json::String(s)) => bail!(
                "{what}: scope '{s}' is not supported: processes models have one machine, so \
                 only \"global\" scope exists"
            ),
            Some(other) => bail!(
                "{what}: 'scope' must be a string, but it is {}",
                kind(other)
            ),
        }
        let pool = IdResource::new(min, max, step).with_context(|| {
            if step < 1 {
                format!("{what}: 'step' must be at least 1, but it is {step}")
            } else {
                format!("{what}: 'min' ({min}) is greater than 'max' ({max})")
            }
        })?;
        out.insert(name.clone(), pool);
    }
    Ok(out)
}

/// `{ <instance> = [ <resource> … ]; }`.
pub fn parse_requirements(v: &Json) -> Result<Requirements> {
    let mut out = Requirements::new();
    for (instance, list) in obj(v, "the requirements")? {
        let what = format!("instance '{instance}'");
        let list = list
            .as_array()
            .with_context(|| format!("{what}: the resource list must be a list"))?;
        let mut set = BTreeSet::new();
        for r in list {
            let r = r.as_str().with_context(|| {
                format!(
                    "{what}: resource names must be strings, but one is {}",
                    kind(r)
                )
            })?;
            set.insert(r.to_string());
        }
        out.insert(instance.clone(), set);
    }
    Ok(out)
}

/// A previous `ids.nix`: `{ ids = { <res> = { <inst> = n; }; }; lastAssignments = { <res> = n; }; }`
/// (both optional; other attributes are ignored).
pub fn parse_assignments(v: &Json) -> Result<Assignments> {
    let top = obj(v, "the previous ids")?;
    let mut out = Assignments::default();
    if let Some(ids) = top.get("ids") {
        for (res, per) in obj(ids, "ids")? {
            let mut m = BTreeMap::new();
            for (inst, n) in obj(per, &format!("ids.{res}"))? {
                m.insert(inst.clone(), int(n, &format!("ids.{res}.{inst}"))?);
            }
            out.ids.insert(res.clone(), m);
        }
    }
    if let Some(last) = top.get("lastAssignments") {
        for (res, n) in obj(last, "lastAssignments")? {
            out.last_assignments
                .insert(res.clone(), int(n, &format!("lastAssignments.{res}"))?);
        }
    }
    Ok(out)
}

const NIX_KEYWORDS: &[&str] = &[
    "assert", "else", "if", "in", "inherit", "let", "or", "rec", "then", "with",
];

/// An attribute name as Nix source: bare when it is an identifier, else a
/// quoted string.
pub fn nix_attr_name(name: &str) -> String {
    let mut chars = name.chars();
    let ident = matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '\'' | '-'))
        && !NIX_KEYWORDS.contains(&name);
    if ident {
        name.to_string()
    } else {
        nix_string(name)
    }
}

/// A double-quoted Nix string literal denoting exactly `s`.
pub fn nix_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '$' if chars.peek() == Some(&'{') => out.push_str("\\$"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// `ids.nix`: pretty, sorted, valid Nix.
pub fn to_nix(a: &Assignments) -> String {
    let mut s = String::from("{\n  ids = {\n");
    for (res, per) in &a.ids {
        if per.is_empty() {
            let _ = writeln!(s, "    {} = {{ }};", nix_attr_name(res));
            continue;
        }
        let _ = writeln!(s, "    {} = {{", nix_attr_name(res));
        for (inst, id) in per {
            let _ = writeln!(s, "      {} = {id};", nix_attr_name(inst));
        }
        s.push_str("    };\n");
    }
    s.push_str("  };\n  lastAssignments = {\n");
    for (res, id) in &a.last_assignments {
        let _ = writeln!(s, "    {} = {id};", nix_attr_name(res));
    }
    s.push_str("  };\n}\n");
    s
}

fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\n' => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            '\t' => out.push_str("&#9;"),
            c => out.push(c),
        }
    }
    out
}

/// dydisnix's XML form of the same data (`--output-xml`).
pub fn to_xml(a: &Assignments) -> String {
    let mut s = String::from("<?xml version=\"1.0\"?>\n<ids>\n  <ids>\n");
    for (res, per) in &a.ids {
        let _ = writeln!(s, "    <resource name=\"{}\">", xml_escape(res));
        for (inst, id) in per {
            let _ = writeln!(
                s,
                "      <assignment name=\"{}\">{id}</assignment>",
                xml_escape(inst)
            );
        }
        s.push_str("    </resource>\n");
    }
    s.push_str("  </ids>\n  <lastAssignments>\n");
    for (res, id) in &a.last_assignments {
        let _ = writeln!(
            s,
            "    <assignment name=\"{}\">{id}</assignment>",
            xml_escape(res)
        );
    }
    s.push_str("  </lastAssignments>\n</ids>\n");
    s
}

/// Writes `text` to `path` atomically: a temporary file in the same
/// directory, renamed over the target, so a reader (or a crash) never sees
/// half an `ids.nix`.
pub fn write_atomically(path: &Path, text: &str) -> Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(".nixproc-ids-")
        .tempfile_in(dir)
        .with_context(|| format!("cannot create a temporary file in {}", dir.display()))?;
    tmp.write_all(text.as_bytes())
        .and_then(|_| tmp.as_file().sync_all())
        .with_context(|| format!("cannot write {}", tmp.path().display()))?;
    // tempfile creates 0600; ids.nix is not secret and is read by others'
    // evaluations (the model imports it).
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path)
            .map(|m| m.permissions().mode() & 0o7777)
            .unwrap_or(0o644);
        std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(mode))?;
    }
    tmp.persist(path)
        .with_context(|| format!("cannot replace {}", path.display()))?;
    Ok(())
}

/// How to evaluate a model for id assignment (`nix/id-assign.nix`).
#[derive(Debug, Clone, Default)]
pub struct EvalRequest {
    /// The processes model.
    pub processes: PathBuf,
    /// `idresources.nix`.
    pub id_resources: PathBuf,
    /// A previous `ids.nix`; `None` (or a file that does not exist yet)
    /// starts from nothing.
    pub ids: Option<PathBuf>,
    /// The instance attribute listing resource names.
    pub service_property: String,
    /// `processManager` the model is called with.
    pub process_manager: String,
    /// `(formal, value)` pairs passed with `--argstr` (explicit state dirs,
    /// calling user and group): the same forwarding as `nixproc build`.
    pub string_args: Vec<(String, String)>,
    pub force_disable_user_change: bool,
    /// A Nix expression (an attrset) merged into the model's arguments.
    pub extra_params: Option<String>,
    pub show_trace: bool,
}

fn canonical(p: &Path, what: &str) -> Result<PathBuf> {
    p.canonicalize()
        .with_context(|| format!("{what} {} not found", p.display()))
}

impl EvalRequest {
    /// The arguments after `nix-instantiate` (and its common options).
    pub fn nix_args(&self, nix_dir: &Path) -> Result<Vec<OsString>> {
        let mut a: Vec<OsString> = ["--eval", "--strict", "--json"]
            .map(OsString::from)
            .to_vec();
        a.push(nix_dir.join("id-assign.nix").into());
        let mut argstr = |name: &str, value: OsString| {
            a.extend(["--argstr".into(), name.into(), value]);
        };
        argstr(
            "exprFile",
            canonical(&self.processes, "processes model")?.into(),
        );
        argstr(
            "idResourcesFile",
            canonical(&self.id_resources, "id resources file")?.into(),
        );
        if let Some(ids) = &self.ids {
            if ids.exists() {
                argstr("idsFile", canonical(ids, "ids file")?.into());
            }
        }
        argstr("serviceProperty", self.service_property.clone().into());
        argstr("processManager", self.process_manager.clone().into());
        for (name, value) in &self.string_args {
            argstr(name, value.into());
        }
        if self.force_disable_user_change {
            a.extend(["--arg", "forceDisableUserChange", "true"].map(OsString::from));
        }
        if let Some(extra) = &self.extra_params {
            a.extend(["--arg".into(), "extraParams".into(), extra.into()]);
        }
        if self.show_trace {
            a.push("--show-trace".into());
        }
        Ok(a)
    }
}

/// Runs the prepared `nix-instantiate` command (`cmd` has the toolchain's
/// common options; [`EvalRequest::nix_args`] are appended) and reads its
/// answer. Nix's errors go to our stderr.
pub fn evaluate(mut cmd: Command, nix_dir: &Path, req: &EvalRequest) -> Result<Inputs> {
    cmd.args(req.nix_args(nix_dir)?);
    cmd.stdin(Stdio::null()).stderr(Stdio::inherit());
    let out = cmd
        .output()
        .context("cannot run nix-instantiate (is Nix installed?)")?;
    if !out.status.success() {
        bail!(
            "evaluating the processes model {} for id assignment failed (nix-instantiate exited with {})",
            req.processes.display(),
            out.status
        );
    }
    let json: Json = serde_json::from_slice(&out.stdout)
        .context("nix-instantiate printed something that is not JSON")?;
    Inputs::from_json(&json)
}

/// Output format of `nixproc id-assign`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Nix,
    Xml,
}

/// Assigns and renders: the whole command once the inputs are evaluated.
pub fn assign_and_render(inputs: &Inputs, format: Format) -> Result<String> {
    let a = assign(&inputs.resources, &inputs.requirements, &inputs.previous)?;
    Ok(match format {
        Format::Nix => to_nix(&a),
        Format::Xml => to_xml(&a),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pools(v: &[(&str, i64, i64, i64)]) -> BTreeMap<String, IdResource> {
        v.iter()
            .map(|&(n, min, max, step)| (n.to_string(), IdResource::new(min, max, step).unwrap()))
            .collect()
    }

    fn wants(v: &[(&str, &[&str])]) -> Requirements {
        v.iter()
            .map(|(i, rs)| (i.to_string(), rs.iter().map(|r| r.to_string()).collect()))
            .collect()
    }

    fn ids_of(a: &Assignments, res: &str) -> Vec<(String, i64)> {
        a.ids[res].iter().map(|(k, v)| (k.clone(), *v)).collect()
    }

    fn pairs(v: &[(&str, i64)]) -> Vec<(String, i64)> {
        v.iter().map(|(k, n)| (k.to_string(), *n)).collect()
    }

    #[test]
    fn first_assignment_takes_ids_in_key_order_from_min() {
        let r = pools(&[("ports", 5000, 6000, 1), ("uids", 2000, 3000, 1)]);
        let w = wants(&[
            ("webapp2", &["ports", "uids"]),
            ("webapp1", &["ports"]),
            ("nginx", &["uids"]),
        ]);
        let a = assign(&r, &w, &Assignments::default()).unwrap();
        assert_eq!(
            ids_of(&a, "ports"),
            pairs(&[("webapp1", 5000), ("webapp2", 5001)])
        );
        assert_eq!(
            ids_of(&a, "uids"),
            pairs(&[("nginx", 2000), ("webapp2", 2001)])
        );
        assert_eq!(a.last_assignments["ports"], 5001);
        assert_eq!(a.last_assignments["uids"], 2001);
    }

    #[test]
    fn resources_nobody_needs_appear_empty_without_last_assignment() {
        let r = pools(&[("ports", 1, 9, 1), ("gids", 10, 20, 1)]);
        let a = assign(&r, &wants(&[("a", &["ports"])]), &Assignments::default()).unwrap();
        assert!(a.ids["gids"].is_empty());
        assert!(!a.last_assignments.contains_key("gids"));
    }

    #[test]
    fn kept_ids_stay_and_new_ones_continue_after_last_assignment() {
        let r = pools(&[("ports", 5000, 6000, 1)]);
        let prev = Assignments {
            ids: [("ports".into(), [("b".into(), 5007)].into())].into(),
            last_assignments: [("ports".into(), 5010)].into(),
        };
        let a = assign(&r, &wants(&[("a", &["ports"]), ("b", &["ports"])]), &prev).unwrap();
        assert_eq!(ids_of(&a, "ports"), pairs(&[("a", 5011), ("b", 5007)]));
        assert_eq!(a.last_assignments["ports"], 5011);
    }

    #[test]
    fn freed_ids_are_not_reused_at_once() {
        let r = pools(&[("ports", 1, 100, 1)]);
        let first = assign(
            &r,
            &wants(&[("a", &["ports"]), ("b", &["ports"])]),
            &Assignments::default(),
        )
        .unwrap();
        // b goes away, c comes: c does not get b's freed 2.
        let second = assign(&r, &wants(&[("a", &["ports"]), ("c", &["ports"])]), &first).unwrap();
        assert_eq!(ids_of(&second, "ports"), pairs(&[("a", 1), ("c", 3)]));
    }

    #[test]
    fn assignments_are_dropped_when_unwanted_removed_or_out_of_range() {
        let r = pools(&[("ports", 10, 20, 1), ("uids", 1, 5, 1)]);
        let prev = Assignments {
            ids: [
                (
                    "ports".into(),
                    [
                        ("gone".into(), 11),
                        ("stays".into(), 12),
                        ("moved".into(), 30),
                    ]
                    .into(),
                ),
                ("uids".into(), [("stays".into(), 3)].into()),
                ("oldres".into(), [("stays".into(), 1)].into()),
            ]
            .into(),
            last_assignments: [("ports".into(), 12), ("oldres".into(), 1)].into(),
        };
        let w = wants(&[("stays", &["ports"]), ("moved", &["ports"])]);
        let a = assign(&r, &w, &prev).unwrap();
        assert_eq!(ids_of(&a, "ports"), pairs(&[("moved", 13), ("stays", 12)]));
        // stays no longer lists uids: its uid is dropped.
        assert!(a.ids["uids"].is_empty());
        assert_eq!(a.last_assignments.get("uids"), None);
        // A resource no longer defined disappears entirely.
        assert!(!a.ids.contains_key("oldres"));
        assert!(!a.last_assignments.contains_key("oldres"));
    }

    #[test]
    fn next_id_wraps_around_to_min_and_skips_used_ones() {
        let r = pools(&[("p", 1, 4, 1)]);
        let prev = Assignments {
            ids: [("p".into(), [("a".into(), 1), ("b".into(), 4)].into())].into(),
            last_assignments: [("p".into(), 4)].into(),
        };
        let w = wants(&[("a", &["p"]), ("b", &["p"]), ("c", &["p"])]);
        let a = assign(&r, &w, &prev).unwrap();
        assert_eq!(a.ids["p"]["c"], 2);
        assert_eq!(a.last_assignments["p"], 2);
    }

    #[test]
    fn duplicate_previous_ids_keep_the_first_instance() {
        let r = pools(&[("p", 1, 10, 1)]);
        let prev = Assignments {
            ids: [("p".into(), [("a".into(), 5), ("b".into(), 5)].into())].into(),
            last_assignments: [("p".into(), 5)].into(),
        };
        let a = assign(&r, &wants(&[("a", &["p"]), ("b", &["p"])]), &prev).unwrap();
        assert_eq!(ids_of(&a, "p"), pairs(&[("a", 5), ("b", 6)]));
    }

    #[test]
    fn step_spaces_ids_and_misaligned_ones_are_reassigned() {
        let r = pools(&[("p", 8000, 8100, 10)]);
        let prev = Assignments {
            ids: [("p".into(), [("a".into(), 8005)].into())].into(),
            last_assignments: BTreeMap::new(),
        };
        let a = assign(&r, &wants(&[("a", &["p"]), ("b", &["p"])]), &prev).unwrap();
        assert_eq!(ids_of(&a, "p"), pairs(&[("a", 8000), ("b", 8010)]));
        assert_eq!(r["p"].size(), 11);
    }

    #[test]
    fn last_assignment_out_of_the_pool_restarts_at_min() {
        let r = pools(&[("p", 1, 10, 1)]);
        let prev = Assignments {
            ids: BTreeMap::new(),
            last_assignments: [("p".into(), 500)].into(),
        };
        let a = assign(&r, &wants(&[("a", &["p"])]), &prev).unwrap();
        assert_eq!(a.ids["p"]["a"], 1);
    }

    #[test]
    fn exhaustion_names_the_resource() {
        let r = pools(&[("tiny", 1, 2, 1)]);
        let w = wants(&[("a", &["tiny"]), ("b", &["tiny"]), ("c", &["tiny"])]);
        let e = assign(&r, &w, &Assignments::default()).unwrap_err();
        assert_eq!(
            e,
            AssignError::Exhausted {
                resource: "tiny".into(),
                wanted: 3,
                size: 2,
                min: 1,
                max: 2
            }
        );
        assert!(
            e.to_string().contains("id resource 'tiny' is exhausted"),
            "{e}"
        );
    }

    #[test]
    fn unknown_resource_names_instance_and_known_resources() {
        let r = pools(&[("uids", 1, 9, 1), ("gids", 1, 9, 1)]);
        let e = assign(&r, &wants(&[("web", &["portz"])]), &Assignments::default()).unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("instance 'web'"), "{msg}");
        assert!(msg.contains("'portz'"), "{msg}");
        assert!(msg.contains("gids, uids"), "{msg}");
    }

    #[test]
    fn pool_edges_near_integer_limits() {
        let p = IdResource::new(i64::MAX - 2, i64::MAX, 1).unwrap();
        assert_eq!(p.size(), 3);
        assert_eq!(p.after(i64::MAX), i64::MAX - 2);
        let whole = IdResource::new(i64::MIN, i64::MAX, 1).unwrap();
        assert_eq!(whole.size(), 1u128 << 64);
        assert!(IdResource::new(5, 4, 1).is_none());
        assert!(IdResource::new(1, 4, 0).is_none());
    }

    // --- parsing -------------------------------------------------------

    #[test]
    fn resources_parse_with_defaults_and_reject_bad_ones() {
        let v = serde_json::json!({
            "uids": { "min": 2000, "max": 3000 },
            "ports": { "min": 8000, "max": 9000, "scope": "global", "step": 2 }
        });
        let r = parse_resources(&v).unwrap();
        assert_eq!(r["uids"], IdResource::new(2000, 3000, 1).unwrap());
        assert_eq!(r["ports"].step, 2);

        let err = |v: serde_json::Value| parse_resources(&v).unwrap_err().to_string();
        let e = err(serde_json::json!({ "p": { "min": 1, "max": 2, "scope": "target" } }));
        assert!(
            e.contains("id resource 'p'") && e.contains("scope 'target'"),
            "{e}"
        );
        let e = err(serde_json::json!({ "p": { "min": 3, "max": 2 } }));
        assert!(e.contains("'min' (3) is greater than 'max' (2)"), "{e}");
        let e = err(serde_json::json!({ "p": { "min": 1 } }));
        assert!(e.contains("id resource 'p' has no 'max'"), "{e}");
        let e = err(serde_json::json!({ "p": { "min": "1", "max": 2 } }));
        assert!(
            e.contains("'min' must be an integer, but it is a string"),
            "{e}"
        );
        let e = err(serde_json::json!({ "p": { "min": 1, "max": 2, "mx": 3 } }));
        assert!(e.contains("unknown attribute 'mx'"), "{e}");
        let e = err(serde_json::json!({ "p": { "min": 1, "max": 2, "step": 0 } }));
        assert!(e.contains("'step' must be at least 1"), "{e}");
        let e = err(serde_json::json!({ "p": 3 }));
        assert!(
            e.contains("id resource 'p' must be an attribute set"),
            "{e}"
        );
    }

    #[test]
    fn previous_ids_parse_and_tolerate_missing_parts() {
        let v = serde_json::json!({
            "ids": { "uids": { "a": 1 } },
            "lastAssignments": { "uids": 1 },
            "lastAssignmentsPerTarget": {}
        });
        let a = parse_assignments(&v).unwrap();
        assert_eq!(a.ids["uids"]["a"], 1);
        assert_eq!(a.last_assignments["uids"], 1);
        assert_eq!(
            parse_assignments(&serde_json::json!({})).unwrap(),
            Assignments::default()
        );
        let e = parse_assignments(&serde_json::json!({ "ids": { "uids": { "a": "x" } } }))
            .unwrap_err()
            .to_string();
        assert!(e.contains("ids.uids.a must be an integer"), "{e}");
    }

    #[test]
    fn requirements_parse_and_reject_non_strings() {
        let r = parse_requirements(&serde_json::json!({ "a": ["x", "y"], "b": [] })).unwrap();
        assert_eq!(r["a"].len(), 2);
        assert!(r["b"].is_empty());
        let e = parse_requirements(&serde_json::json!({ "a": [1] }))
            .unwrap_err()
            .to_string();
        assert!(e.contains("instance 'a'"), "{e}");
    }

    // --- output --------------------------------------------------------

    #[test]
    fn nix_names_are_bare_only_when_identifiers() {
        assert_eq!(nix_attr_name("webapp1"), "webapp1");
        assert_eq!(nix_attr_name("s6-rc_x'"), "s6-rc_x'");
        assert_eq!(nix_attr_name("1st"), "\"1st\"");
        assert_eq!(nix_attr_name("in"), "\"in\"");
        assert_eq!(nix_attr_name("a.b"), "\"a.b\"");
        assert_eq!(nix_attr_name(""), "\"\"");
        assert_eq!(nix_attr_name("é"), "\"é\"");
        assert_eq!(
            nix_string("a\"b\\c${x}$y\nz`$(q)`;%"),
            "\"a\\\"b\\\\c\\${x}$y\\nz`$(q)`;%\""
        );
    }

    #[test]
    fn ids_nix_layout() {
        let a = Assignments {
            ids: [
                (
                    "uids".into(),
                    [("web app".into(), 2000), ("nginx".into(), 2001)].into(),
                ),
                ("gids".into(), BTreeMap::new()),
            ]
            .into(),
            last_assignments: [("uids".into(), 2001)].into(),
        };
        assert_eq!(
            to_nix(&a),
            "{\n  ids = {\n    gids = { };\n    uids = {\n      nginx = 2001;\n      \
             \"web app\" = 2000;\n    };\n  };\n  lastAssignments = {\n    uids = 2001;\n  };\n}\n"
        );
        assert_eq!(
            to_xml(&a),
            "<?xml version=\"1.0\"?>\n<ids>\n  <ids>\n    <resource name=\"gids\">\n    \
             </resource>\n    <resource name=\"uids\">\n      <assignment name=\"nginx\">2001\
             </assignment>\n      <assignment name=\"web app\">2000</assignment>\n    \
             </resource>\n  </ids>\n  <lastAssignments>\n    <assignment name=\"uids\">2001\
             </assignment>\n  </lastAssignments>\n</ids>\n"
        );
        assert_eq!(xml_escape("<a&'\">"), "&lt;a&amp;&apos;&quot;&gt;");
    }

    #[test]
    fn atomic_write_replaces_the_file_and_keeps_its_mode() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("ids.nix");
        write_atomically(&p, "{ }\n").unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "{ }\n");
        assert_eq!(
            std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o644
        );
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o640)).unwrap();
        write_atomically(&p, "{ ids = { }; }\n").unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "{ ids = { }; }\n");
        assert_eq!(
            std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o640
        );
        let leftovers = std::fs::read_dir(dir.path()).unwrap().count();
        assert_eq!(leftovers, 1, "no temporary file left behind");
    }

    #[test]
    fn eval_request_forwards_everything_as_nix_arguments() {
        let dir = tempfile::tempdir().unwrap();
        let model = dir.path().join("processes.nix");
        let res = dir.path().join("idresources.nix");
        std::fs::write(&model, "{}").unwrap();
        std::fs::write(&res, "{}").unwrap();
        let req = EvalRequest {
            processes: model.clone(),
            id_resources: res.clone(),
            ids: Some(dir.path().join("ids.nix")),
            service_property: "needs".into(),
            process_manager: "supervisord".into(),
            string_args: vec![
                ("stateDir".into(), "/s".into()),
                ("cacheDir".into(), "/c".into()),
            ],
            force_disable_user_change: true,
            extra_params: Some("{ x = 1; }".into()),
            show_trace: true,
        };
        let args: Vec<String> = req
            .nix_args(Path::new("/nix-lib"))
            .unwrap()
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        let joined = args.join(" ");
        assert!(
            joined.starts_with("--eval --strict --json /nix-lib/id-assign.nix"),
            "{joined}"
        );
        let model = model.canonicalize().unwrap();
        assert!(
            joined.contains(&format!("--argstr exprFile {}", model.display())),
            "{joined}"
        );
        assert!(
            joined.contains("--argstr serviceProperty needs"),
            "{joined}"
        );
        assert!(
            joined.contains("--argstr processManager supervisord"),
            "{joined}"
        );
        // Defect 7: dirs reach the evaluation, each under its own name.
        assert!(joined.contains("--argstr stateDir /s"), "{joined}");
        assert!(joined.contains("--argstr cacheDir /c"), "{joined}");
        assert!(
            joined.contains("--arg forceDisableUserChange true"),
            "{joined}"
        );
        assert!(joined.contains("--arg extraParams { x = 1; }"), "{joined}");
        // An ids file that does not exist yet is a first run.
        assert!(!joined.contains("idsFile"), "{joined}");
        std::fs::write(dir.path().join("ids.nix"), "{}").unwrap();
        let args = req.nix_args(Path::new("/nix-lib")).unwrap();
        assert!(args.iter().any(|a| a == "idsFile"));

        let missing = EvalRequest {
            id_resources: dir.path().join("nope.nix"),
            ..req
        };
        let e = missing.nix_args(Path::new("/n")).unwrap_err().to_string();
        assert!(
            e.contains("id resources file") && e.contains("not found"),
            "{e}"
        );
    }

    // --- properties over random models (proptest) -----------------------

    use proptest::prelude::*;

    const RES: [&str; 3] = ["ports", "uids", "gids"];

    /// A pool of 9 to 18 ids, spaced by 1 to 3, starting anywhere in -10..40.
    fn pool() -> impl Strategy<Value = IdResource> {
        (-10i64..40, 1i64..4, 8i64..18)
            .prop_map(|(min, step, n)| IdResource::new(min, min + step * n, step).unwrap())
    }

    /// Three pools and up to 8 instances, each wanting a random subset.
    fn case() -> impl Strategy<Value = (BTreeMap<String, IdResource>, Requirements)> {
        (
            prop::array::uniform3(pool()),
            prop::collection::vec(prop::array::uniform3(any::<bool>()), 0..9),
        )
            .prop_map(|(pools, instances)| {
                let resources = RES.iter().map(|r| r.to_string()).zip(pools).collect();
                let wanted = instances
                    .iter()
                    .enumerate()
                    .map(|(i, wants)| {
                        let needs = RES
                            .iter()
                            .zip(wants)
                            .filter(|(_, w)| **w)
                            .map(|(r, _)| r.to_string())
                            .collect();
                        (format!("inst{i}"), needs)
                    })
                    .collect();
                (resources, wanted)
            })
    }

    fn check_valid(resources: &BTreeMap<String, IdResource>, w: &Requirements, a: &Assignments) {
        for (res, per) in &a.ids {
            let pool = resources[res];
            let mut seen = BTreeSet::new();
            for (inst, id) in per {
                assert!(pool.contains(*id), "{res}.{inst} = {id} outside {pool:?}");
                assert!(seen.insert(*id), "{res}: id {id} given twice");
                assert!(w[inst].contains(res), "{inst} got an unwanted {res}");
            }
        }
        for (inst, needs) in w {
            for r in needs {
                assert!(a.ids[r].contains_key(inst), "{inst} lacks an id from {r}");
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(400))]

        /// Valid, idempotent, and stable when one instance goes and
        /// another comes: everyone else keeps their ids.
        #[test]
        fn property_valid_idempotent_and_stable(
            (resources, wanted) in case(),
            removed in any::<prop::sample::Index>(),
        ) {
            let first = assign(&resources, &wanted, &Assignments::default()).unwrap();
            check_valid(&resources, &wanted, &first);
            prop_assert_eq!(&assign(&resources, &wanted, &first).unwrap(), &first);

            let mut changed = wanted.clone();
            if !wanted.is_empty() {
                let k = wanted.keys().nth(removed.index(wanted.len())).unwrap();
                changed.remove(k);
            }
            changed.insert("newcomer".into(), RES.iter().map(|r| r.to_string()).collect());
            let next = match assign(&resources, &changed, &first) {
                Ok(n) => n,
                Err(AssignError::Exhausted { .. }) => return Ok(()),
                Err(e) => panic!("{e}"),
            };
            check_valid(&resources, &changed, &next);
            for (res, per) in &first.ids {
                for (inst, id) in per {
                    if changed.get(inst).is_some_and(|n| n.contains(res)) {
                        prop_assert_eq!(next.ids[res][inst], *id, "{} moved", inst);
                    }
                }
            }
            prop_assert_eq!(assign(&resources, &changed, &next).unwrap(), next);
        }

        /// Starting from arbitrary (partly invalid) earlier assignments, a
        /// pool exactly as large as the demand is used completely, and one
        /// more instance exhausts it.
        #[test]
        fn property_full_pools_are_used_completely(
            size in 1i64..13,
            earlier in prop::collection::vec(-2i64..15, 0..16),
            last in 0i64..14,
        ) {
            let pool = IdResource::new(0, size - 1, 1).unwrap();
            let resources: BTreeMap<_, _> = [("p".to_string(), pool)].into();
            let wanted: Requirements = (0..size)
                .map(|i| (format!("i{i:02}"), ["p".to_string()].into()))
                .collect();
            let prev = Assignments {
                ids: [(
                    "p".to_string(),
                    earlier
                        .iter()
                        .enumerate()
                        .map(|(i, id)| (format!("i{i:02}"), *id))
                        .collect(),
                )]
                .into(),
                last_assignments: [("p".to_string(), last)].into(),
            };
            let a = assign(&resources, &wanted, &prev).unwrap();
            check_valid(&resources, &wanted, &a);
            prop_assert_eq!(a.ids["p"].len() as i64, size);
            let mut more = wanted.clone();
            more.insert("extra".into(), ["p".to_string()].into());
            let exhausted = matches!(
                assign(&resources, &more, &a),
                Err(AssignError::Exhausted { .. })
            );
            prop_assert!(exhausted, "one more instance must exhaust the pool");
        }
    }
}
