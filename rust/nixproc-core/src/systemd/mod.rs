//! systemd generator: nix-processmgmt's `createSystemdService` (reference
//! §3.4) as a pure function from one argument attrset to the unit file,
//! `.wants` links and manifest entry of one process package, plus the
//! agnostic → systemd translation ([`translate`], §3.4.4).
//!
//! Every key of the argument that starts with an uppercase letter is a unit
//! section (`Unit`, `Service`, `Install`, …) whose value is an attrset of
//! properties. Property values are *unit-file syntax written as given*
//! (an author writes `ExecStart = "… %i"` on purpose); only what would
//! change the structure of the file is refused: a newline or carriage
//! return, and a trailing backslash (systemd joins such a line with the
//! next one). Values nixproc itself places are escaped for their
//! property's syntax (see [`render`]).
//!
//! Deliberate differences to the original, each fixing a defect of
//! reference §8:
//!
//! * `Environment=` assignments are quoted and escaped, `%` included
//!   (defect 25: values with spaces broke, `%` was expanded);
//! * when `path` is given, PATH ends with systemd's default search path: a
//!   unit inherits no PATH, so the original's `PATH=<p>/bin` alone hid
//!   `/bin`;
//! * booleans render as `true`/`false` (the original wrote `1` and, for
//!   `false`, an empty value, which *resets* a setting instead of
//!   disabling it);
//! * the `.wants` links are relative (`../<dep>.service`): the dependency's
//!   unit lives in the same profile directory, and systemd only reads a
//!   `.wants` entry's name; the original pointed into the dependency's own
//!   package;
//! * section and property names are validated, unknown lowercase keys are
//!   errors (with a "did you mean"), and the unit name must be a valid
//!   systemd unit name.

pub mod render;
#[cfg(test)]
mod tests;
mod translate;

pub use render::{
    environment_assignment, escape_specifiers, exec_command, exec_word, EXEC_PREFIX_CHARS,
};
pub use translate::translate;

use std::collections::BTreeMap;

use crate::args::Args;
use crate::credentials::{self, Ids};
use crate::error::{Error, Result};
use crate::fields::{check_process_name, dependency_sets, parse_environment, parse_path};
use crate::manifest::{Backend, InstanceEntry};
use crate::package::{FileSpec, LinkSpec, PackageSpec};
use crate::value::Value;

/// Composition parameters, fixed once per model by the Nix layer.
pub const COMPOSITION_KEYS: &[&str] = &[
    "runtimeDir",
    "logDir",
    "tmpDir",
    "forceDisableUserChange",
    "prefix",
    "foregroundProxy",
    "shell",
    "ids",
    "callingUser",
    "callingGroup",
];

/// Prepended to every process name to form the unit name.
pub const DEFAULT_PREFIX: &str = "nix-process-";

/// Where unit files live inside a package (and a profile).
pub const UNIT_DIR: &str = "etc/systemd/system";

/// Mode of the generated unit file (data, not a script).
pub const UNIT_FILE_MODE: u32 = 0o444;

/// systemd's own default `PATH` for services (`systemd.exec(5)`); a unit
/// inherits nothing else, so it follows the `path` packages.
pub const SYSTEMD_DEFAULT_PATH: &str =
    "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Properties dropped from every section under `forceDisableUserChange`.
pub const USER_CHANGE_PROPERTIES: [&str; 2] = ["User", "Group"];

/// The composition parameters the generator itself uses.
#[derive(Debug, Clone, PartialEq)]
pub struct Composition {
    pub force_disable_user_change: bool,
    pub prefix: String,
    pub ids: Ids,
}

/// One unit section: property name → rendered value, sorted.
pub type Section = BTreeMap<String, String>;

/// The per-unit parameters (reference §3.4.2), validated.
#[derive(Debug, Clone, PartialEq)]
pub struct Service {
    /// The process name, without the prefix.
    pub name: String,
    /// For the manifest only; default `Unit.Description`, else the name.
    pub description: Option<String>,
    pub path: Vec<String>,
    pub environment: BTreeMap<String, String>,
    /// Unit base names (already prefixed) of the dependencies.
    pub dependencies: Vec<String>,
    /// Sections by name, `forceDisableUserChange` already applied.
    pub sections: BTreeMap<String, Section>,
}

/// `builtins.createSystemdService`: one service unit package.
pub fn create_systemd_service(v: &Value) -> Result<PackageSpec> {
    let a = Args::new(v, "argument")?;
    let comp = parse_composition(&a)?;
    let service = parse_service(&a, v, &comp)?;
    let creds = credentials::credential_files(
        a.attrs("credentials")?,
        &comp.ids,
        comp.force_disable_user_change,
    )?;
    // The Nix layer (or the builder) runs postInstall after writing the
    // files; the other composition keys are for `translate`.
    a.allow(COMPOSITION_KEYS);
    a.allow(&["postInstall"]);
    a.finish()?;
    build(&comp, &service, creds)
}

/// Files the profile root gets besides the packages' own: none, the units
/// are all in `etc/systemd/system`.
pub fn profile_files(_composition: &Value, _services: &[String]) -> Result<Vec<FileSpec>> {
    Ok(Vec::new())
}

/// The unit's base name (`<prefix><name>`), which dependents refer to.
pub fn unit_base_name(comp: &Composition, name: &str) -> String {
    format!("{}{name}", comp.prefix)
}

fn build(comp: &Composition, s: &Service, creds: Vec<FileSpec>) -> Result<PackageSpec> {
    let base = unit_base_name(comp, &s.name);
    check_unit_name("name", &base)?;
    let unit = format!("{base}.service");
    let unit_path = format!("{UNIT_DIR}/{unit}");
    let text = render::unit_text(s);

    let mut files = vec![FileSpec {
        path: unit_path.clone(),
        text,
        mode: UNIT_FILE_MODE,
    }];
    files.extend(creds);
    let links = s
        .dependencies
        .iter()
        .map(|d| LinkSpec {
            path: format!("{UNIT_DIR}/{unit}.wants/{d}.service"),
            target: format!("../{d}.service"),
        })
        .collect();

    let service = s.sections.get("Service");
    let description = s
        .description
        .clone()
        .or_else(|| {
            s.sections
                .get("Unit")
                .and_then(|u| u.get("Description"))
                .cloned()
        })
        .unwrap_or_else(|| s.name.clone());
    let manifest = InstanceEntry {
        key: String::new(),
        name: base.clone(),
        description,
        revision: String::new(),
        dependencies: s.dependencies.clone(),
        pid_file: service.and_then(|sv| sv.get("PIDFile")).cloned(),
        log_file: None,
        user: service.and_then(|sv| sv.get("User")).cloned(),
        backend: Backend::Systemd {
            unit: unit.clone(),
            path: unit_path,
        },
        state: None,
        readiness: None,
    };
    let passthru = BTreeMap::from([("unit".to_string(), Value::str(&unit))]);
    Ok(PackageSpec::new(base, files, links, manifest, passthru))
}

// ---------------------------------------------------------------------------
// Parsing and validation
// ---------------------------------------------------------------------------

/// Reads the composition parameters the generator uses.
pub fn parse_composition(a: &Args) -> Result<Composition> {
    let prefix = a.str_or("prefix", DEFAULT_PREFIX)?;
    if !prefix.chars().all(is_unit_name_char) {
        return Err(Error::invalid(
            "prefix",
            format!(
                "{prefix:?} cannot start a systemd unit name (allowed: ASCII letters, digits, \
                 ':', '_', '.', '-')"
            ),
        ));
    }
    Ok(Composition {
        force_disable_user_change: a.bool_or("forceDisableUserChange", false)?,
        prefix,
        ids: Ids::from_attrs(a.attrs("ids")?)?,
    })
}

/// Characters of a unit name nixproc generates (`systemd.unit(5)` allows
/// these plus `@` and `\`, which carry template and escaping meaning).
fn is_unit_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || ":_.-".contains(c)
}

/// A unit base name (without `.service`): non-empty, valid characters,
/// short enough for systemd's 255-character limit.
pub fn check_unit_name(attr: &str, base: &str) -> Result<()> {
    let ok = !base.is_empty()
        && base.len() + ".service".len() <= 255
        && base.chars().all(is_unit_name_char)
        && !base.starts_with('.');
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(
            attr,
            format!(
                "{base:?} is not a valid systemd unit name (non-empty, at most 247 characters of \
                 ASCII letters, digits, ':', '_', '.', '-', not starting with '.')"
            ),
        ))
    }
}

/// Section names are what unit files allow without quoting tricks; custom
/// sections must start with `X-` in systemd, which this does not cover.
fn check_section_name(name: &str) -> Result<()> {
    let mut chars = name.chars();
    let ok = matches!(chars.next(), Some(c) if c.is_ascii_uppercase())
        && chars.all(|c| c.is_ascii_alphanumeric());
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(
            name,
            "a key starting with an uppercase letter is a unit section; section names must \
             match [A-Z][A-Za-z0-9]*",
        ))
    }
}

fn check_property_name(attr: &str, name: &str) -> Result<()> {
    let mut chars = name.chars();
    let ok = matches!(chars.next(), Some(c) if c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric());
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(
            attr,
            "property names must match [A-Za-z][A-Za-z0-9]*",
        ))
    }
}

/// Renders one scalar of a property value.
fn scalar(attr: &str, v: &Value) -> Result<String> {
    match v {
        Value::Str(s) => Ok(s.s.clone()),
        Value::Int(i) => Ok(i.to_string()),
        Value::Bool(b) => Ok(if *b { "true" } else { "false" }.into()),
        other => Err(Error::WrongType {
            attr: attr.to_string(),
            expected: "a string, an integer or a boolean".into(),
            found: other.type_name(),
        }),
    }
}

/// A property value: a scalar, or a list of scalars joined by spaces (as
/// the original's `toString`); `None` for `null` (the property is left
/// out, so an override can delete one).
fn property_value(attr: &str, v: &Value) -> Result<Option<String>> {
    let text = match v {
        Value::Null => return Ok(None),
        Value::List(items) => items
            .iter()
            .enumerate()
            .map(|(i, item)| scalar(&format!("{attr}[{i}]"), item))
            .collect::<Result<Vec<_>>>()?
            .join(" "),
        other => scalar(attr, other)?,
    };
    if text.contains(['\n', '\r', '\0']) {
        return Err(Error::invalid(
            attr,
            "a unit file value cannot contain a newline, carriage return or NUL (write \\n \
             inside a quoted ExecStart word, or use an Environment= escape)",
        ));
    }
    if text.ends_with('\\') {
        return Err(Error::invalid(
            attr,
            "a unit file value cannot end with a backslash (systemd would join the next line \
             to it)",
        ));
    }
    Ok(Some(text))
}

/// Reads the unit sections: every key starting with an uppercase letter.
fn parse_sections(
    a: &Args,
    all: &BTreeMap<String, Value>,
    force_disable_user_change: bool,
) -> Result<BTreeMap<String, Section>> {
    let mut sections = BTreeMap::new();
    for key in all
        .keys()
        .filter(|k| k.starts_with(|c: char| c.is_ascii_uppercase()))
    {
        check_section_name(key)?;
        let props = match a.get(key) {
            None => continue,
            Some(Value::Attrs(p)) => p,
            Some(other) => {
                return Err(Error::WrongType {
                    attr: key.clone(),
                    expected: "a set of unit properties (a unit section)".into(),
                    found: other.type_name(),
                })
            }
        };
        let mut section = Section::new();
        for (prop, v) in props {
            let attr = format!("{key}.{prop}");
            check_property_name(&attr, prop)?;
            if force_disable_user_change && USER_CHANGE_PROPERTIES.contains(&prop.as_str()) {
                continue;
            }
            if let Some(text) = property_value(&attr, v)? {
                section.insert(prop.clone(), text);
            }
        }
        sections.insert(key.clone(), section);
    }
    Ok(sections)
}

fn parse_dependencies(a: &Args) -> Result<Vec<String>> {
    let mut out: Vec<String> = Vec::new();
    for d in dependency_sets(a, "a systemd process package")? {
        let (name_attr, name) = (d.name_attr(), d.name);
        if name.ends_with(".service") {
            return Err(Error::invalid(
                name_attr,
                format!("{name:?}: give the unit's base name, without \".service\""),
            ));
        }
        check_unit_name(&name_attr, &name)?;
        if !out.contains(&name) {
            out.push(name);
        }
    }
    Ok(out)
}

/// Reads the per-unit parameters (reference §3.4.2).
pub fn parse_service(a: &Args, v: &Value, comp: &Composition) -> Result<Service> {
    let all = v.as_attrs().expect("Args::new checked the type");
    let name = a.opt_str("name")?.ok_or_else(|| Error::Missing {
        attr: "name".into(),
        why: "the unit is called <prefix><name>.service".into(),
    })?;
    check_process_name("name", &name)?;
    check_unit_name("name", &unit_base_name(comp, &name))?;
    if let Some(i) = a.opt_str("instanceName")? {
        check_process_name("instanceName", &i)?;
    }
    let description = a.opt_str("description")?;
    let environment = parse_environment(a)?;
    let path = parse_path(a)?;
    for (k, v) in render::full_environment(&path, &environment) {
        let attr = if k == "PATH" && !environment.contains_key("PATH") {
            "path".to_string()
        } else {
            format!("environment.{k}")
        };
        render::check_environment_value(&attr, &v)?;
    }
    Ok(Service {
        description,
        path,
        environment,
        dependencies: parse_dependencies(a)?,
        sections: parse_sections(a, all, comp.force_disable_user_change)?,
        name,
    })
}
