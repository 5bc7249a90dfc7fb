//! launchd generator: nix-processmgmt's `createLaunchdDaemon` (reference
//! §3.5) as a pure function from one argument attrset to the property list
//! and manifest entry of one job, and the agnostic → launchd translation
//! (§3.5.4, in [`translate()`]).
//!
//! Parameters: `name` (or `instanceName`), `path` (packages whose `bin/`
//! go on PATH), `credentials`, `postInstall`, `dependencies` (passed by the
//! Nix layer; recorded in the manifest so the activator starts jobs in
//! dependency order — launchd itself has no notion of dependencies),
//! `description` (manifest only; a nixproc extension), and the composition.
//! **Every key that starts with an upper-case letter is a plist property**
//! (launchd.plist(5); `inetdCompatibility` too), put into the plist as
//! given. Any other key is an unknown-parameter error with a "did you mean"
//! hint, so a typo such as `credential` is not silently a plist key.
//!
//! Differences to the original, each deliberate:
//!
//! * strings and keys are XML-escaped (defect 25); characters XML cannot
//!   hold are errors naming the attribute;
//! * `Nice` and `Umask` are `<integer>`s even when given as strings: `Umask
//!   = "022"` is the octal umask (`<integer>18</integer>`, defect 26);
//!   launchd ignores a `<string>` there;
//! * the well-known keys are type-checked (`Label`, `Program`,
//!   `ProgramArguments`, `UserName`, …), and a job needs `Program` or
//!   `ProgramArguments`, as launchd does;
//! * `EnvironmentVariables.PATH` built from `path` keeps a system PATH after
//!   the packages (`/usr/bin:/bin:/usr/sbin:/sbin`, launchd's own default),
//!   so the job still finds the system's tools; an explicit
//!   `EnvironmentVariables.PATH` wins;
//! * `UserName` *and* `GroupName` are dropped under
//!   `forceDisableUserChange` (the original kept `GroupName`, which an
//!   unprivileged launchd cannot honour either).
//!
//! Package: `Library/LaunchDaemons/<Label>.plist` (mode 0444) and
//! `dysnomia-support/` for the credentials. The activator copies the plist
//! to `/Library/LaunchDaemons` or, for the user's agents, to
//! `~/Library/LaunchAgents`.

pub mod render;
#[cfg(test)]
mod tests;
mod translate;

pub use render::{plist_text, xml_escape, Plist};
pub use translate::translate;

use std::collections::BTreeMap;

use crate::args::Args;
use crate::credentials::{self, Ids};
use crate::error::{Error, Result};
use crate::fields::{check_process_name, dependency_sets, parse_path};
use crate::manifest::{Backend, InstanceEntry};
use crate::package::{FileSpec, PackageSpec};
use crate::value::Value;

/// Composition parameters, fixed once per model by the Nix layer
/// (`nix/default.nix`, `compositions.launchd`): the generator must accept all
/// of them.
pub const COMPOSITION_KEYS: &[&str] = &[
    "runtimeDir",
    "logDir",
    "tmpDir",
    "forceDisableUserChange",
    "ids",
    "shell",
    "foregroundProxy",
    "callingUser",
    "callingGroup",
    "prefix",
];

/// The default `Label` prefix.
pub const DEFAULT_PREFIX: &str = "org.nixos.";

/// Where the plist goes inside the package.
pub const PLIST_DIR: &str = "Library/LaunchDaemons";

/// Mode of the generated plist.
pub const PLIST_MODE: u32 = 0o444;

/// Appended to the PATH built from `path`: launchd's default PATH.
pub const SYSTEM_PATH: &str = "/usr/bin:/bin:/usr/sbin:/sbin";

/// The parameters of `createLaunchdDaemon` that are not plist properties.
const OWN_KEYS: &[&str] = &[
    "name",
    "instanceName",
    "description",
    "path",
    "credentials",
    "postInstall",
    "dependencies",
];

/// Lower-case launchd.plist(5) keys (every other one starts upper-case).
const LOWERCASE_PLIST_KEYS: &[&str] = &["inetdCompatibility"];

/// One job, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct Daemon {
    pub name: String,
    pub label: String,
    pub description: String,
    /// The top-level dict, with `Label`, PATH and the user rules applied.
    pub plist: BTreeMap<String, Plist>,
    pub dependencies: Vec<String>,
}

/// `builtins.createLaunchdDaemon`: one launchd job package.
pub fn create_launchd_daemon(v: &Value) -> Result<PackageSpec> {
    let a = Args::new(v, "argument")?;
    let force_disable_user_change = a.bool_or("forceDisableUserChange", false)?;
    let ids = Ids::from_attrs(a.attrs("ids")?)?;
    let prefix = a.str_or("prefix", DEFAULT_PREFIX)?;
    let daemon = parse_daemon(&a, v, &prefix, force_disable_user_change)?;
    let creds =
        credentials::credential_files(a.attrs("credentials")?, &ids, force_disable_user_change)?;
    // postInstall: run by the Nix layer / builder after the files are written.
    a.allow(COMPOSITION_KEYS);
    a.allow(&["postInstall"]);
    a.finish()?;
    build(&daemon, creds)
}

fn build(d: &Daemon, creds: Vec<FileSpec>) -> Result<PackageSpec> {
    let plist_path = format!("{PLIST_DIR}/{}.plist", d.label);
    let text = plist_text(&Plist::Dict(d.plist.clone()))?;
    let mut files = vec![FileSpec {
        path: plist_path.clone(),
        text,
        mode: PLIST_MODE,
    }];
    files.extend(creds);
    let string_of = |key: &str| match d.plist.get(key) {
        Some(Plist::String(s)) => Some(s.clone()),
        _ => None,
    };
    let manifest = InstanceEntry {
        key: String::new(),
        name: d.name.clone(),
        description: d.description.clone(),
        revision: String::new(),
        dependencies: d.dependencies.clone(),
        pid_file: None,
        log_file: string_of("StandardOutPath"),
        user: string_of("UserName"),
        backend: Backend::Launchd {
            label: d.label.clone(),
            plist: plist_path,
        },
        state: None,
        readiness: None,
    };
    let passthru = BTreeMap::from([("label".to_string(), Value::str(&d.label))]);
    Ok(PackageSpec::new(
        d.name.clone(),
        files,
        Vec::new(),
        manifest,
        passthru,
    ))
}

// ---------------------------------------------------------------------------
// Parsing and validation
// ---------------------------------------------------------------------------

/// A label becomes a file name (`<Label>.plist`) and a `launchctl`
/// argument: a process name that does not start with `-` or `.`.
pub fn check_label(attr: &str, label: &str) -> Result<()> {
    check_process_name(attr, label).map_err(|_| {
        Error::invalid(
            attr,
            format!(
                "{label:?} is not a valid launchd label (it names the file <Label>.plist: \
                 non-empty, without '/', whitespace or control characters)"
            ),
        )
    })?;
    if label.starts_with(['-', '.']) {
        return Err(Error::invalid(
            attr,
            format!("{label:?} is not a valid launchd label (it must not start with '-' or '.')"),
        ));
    }
    Ok(())
}

fn is_plist_key(key: &str) -> bool {
    key.starts_with(|c: char| c.is_ascii_uppercase()) || LOWERCASE_PLIST_KEYS.contains(&key)
}

fn expect_string(key: &str, p: &Plist) -> Result<()> {
    match p {
        Plist::String(s) if !s.is_empty() => Ok(()),
        Plist::String(_) => Err(Error::invalid(key, "must not be empty")),
        _ => Err(Error::invalid(key, "must be a string")),
    }
}

/// `Nice`: an integer between -20 and 19 (a numeric string is accepted).
fn nice_value(v: &Value) -> Result<Plist> {
    let n = match v {
        Value::Int(i) => Some(*i),
        Value::Str(s) => s.s.trim().parse::<i64>().ok(),
        _ => None,
    };
    match n {
        Some(n) if (-20..=19).contains(&n) => Ok(Plist::Integer(n)),
        _ => Err(Error::invalid(
            "Nice",
            "must be an integer between -20 and 19 (or a string of one)",
        )),
    }
}

/// `Umask`: an integer (launchd reads it as a number: 18 is `022`) or a
/// string of 1 to 4 octal digits, converted to that integer.
fn umask_value(v: &Value) -> Result<Plist> {
    match v {
        Value::Int(i) if (0..=0o7777).contains(i) => Ok(Plist::Integer(*i)),
        Value::Str(s)
            if (1..=4).contains(&s.s.len()) && s.s.chars().all(|c| ('0'..='7').contains(&c)) =>
        {
            Ok(Plist::Integer(
                i64::from_str_radix(&s.s, 8).expect("octal digits"),
            ))
        }
        _ => Err(Error::invalid(
            "Umask",
            "must be an integer (e.g. 18) or a string of 1 to 4 octal digits (e.g. \"022\")",
        )),
    }
}

/// `EnvironmentVariables`: values stringified like Nix's `toString`.
fn environment_value(v: &Value) -> Result<BTreeMap<String, Plist>> {
    let Value::Attrs(m) = v else {
        return Err(Error::WrongType {
            attr: "EnvironmentVariables".into(),
            expected: "a set of strings".into(),
            found: v.type_name(),
        });
    };
    let mut out = BTreeMap::new();
    for (k, v) in m {
        let attr = format!("EnvironmentVariables.{k}");
        if k.is_empty() || k.contains('=') {
            return Err(Error::invalid(
                attr,
                "a variable name must be non-empty and without '='",
            ));
        }
        if matches!(v, Value::Null) {
            continue;
        }
        let s = crate::args::string_like(&attr, v)?;
        out.insert(k.clone(), Plist::from_value(&attr, &Value::str(s))?);
    }
    Ok(out)
}

/// `ProgramArguments`: a non-empty list of strings (numbers are rendered).
fn arguments_value(v: &Value) -> Result<Plist> {
    let Value::List(items) = v else {
        return Err(Error::WrongType {
            attr: "ProgramArguments".into(),
            expected: "a list of strings".into(),
            found: v.type_name(),
        });
    };
    if items.is_empty() {
        return Err(Error::invalid(
            "ProgramArguments",
            "must not be empty (its first element is the program's argv[0])",
        ));
    }
    let words = items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let attr = format!("ProgramArguments[{i}]");
            let s = match item {
                Value::Str(_) | Value::Int(_) => crate::args::string_like(&attr, item)?,
                other => {
                    return Err(Error::WrongType {
                        attr,
                        expected: "a string".into(),
                        found: other.type_name(),
                    })
                }
            };
            Plist::from_value(&attr, &Value::str(s))
        })
        .collect::<Result<_>>()?;
    Ok(Plist::Array(words))
}

/// The plist property `key` = `v`, with the well-known keys checked.
fn property(key: &str, v: &Value) -> Result<Plist> {
    let p = match key {
        "Nice" => return nice_value(v),
        "Umask" => return umask_value(v),
        "EnvironmentVariables" => return environment_value(v).map(Plist::Dict),
        "ProgramArguments" => return arguments_value(v),
        _ => Plist::from_value(key, v)?,
    };
    match key {
        "Label" | "Program" | "UserName" | "GroupName" | "WorkingDirectory" | "RootDirectory"
        | "StandardInPath" | "StandardOutPath" | "StandardErrorPath" => expect_string(key, &p)?,
        "RunAtLoad"
        | "Disabled"
        | "InitGroups"
        | "AbandonProcessGroup"
        | "LaunchOnlyOnce"
        | "SessionCreate"
        | "EnableGlobbing"
        | "EnableTransactions"
        | "Debug"
            if !matches!(p, Plist::Bool(_)) =>
        {
            return Err(Error::invalid(key, "must be a boolean"));
        }
        "KeepAlive" if !matches!(p, Plist::Bool(_) | Plist::Dict(_)) => {
            return Err(Error::invalid(
                key,
                "must be a boolean or a set of conditions (e.g. { SuccessfulExit = false; })",
            ));
        }
        _ => {}
    }
    Ok(p)
}

/// Reads one job: the own parameters and every plist property.
pub fn parse_daemon(
    a: &Args,
    all: &Value,
    prefix: &str,
    force_disable_user_change: bool,
) -> Result<Daemon> {
    let instance_name = a.opt_str("instanceName")?;
    if let Some(i) = &instance_name {
        check_process_name("instanceName", i)?;
    }
    let name = match a.opt_str("name")? {
        Some(n) => n,
        None => instance_name.ok_or_else(|| Error::Missing {
            attr: "name".into(),
            why: "the job is called <prefix><name> (set name or instanceName)".into(),
        })?,
    };
    check_process_name("name", &name)?;
    if prefix
        .chars()
        .any(|c| c == '/' || c.is_whitespace() || c.is_control())
    {
        return Err(Error::invalid(
            "prefix",
            format!("{prefix:?} cannot start a label (no '/', whitespace or control characters)"),
        ));
    }
    let description = a.opt_str("description")?.unwrap_or_else(|| name.clone());
    let path = parse_path(a)?;
    let dependencies = dependency_sets(a, "a launchd process package")?
        .into_iter()
        .map(|d| {
            check_process_name(&d.name_attr(), &d.name)?;
            Ok(d.name)
        })
        .collect::<Result<Vec<_>>>()?;

    let map = all.as_attrs().expect("Args::new checked the type");
    let mut plist = BTreeMap::new();
    for (key, v) in map {
        if OWN_KEYS.contains(&key.as_str())
            || COMPOSITION_KEYS.contains(&key.as_str())
            || !is_plist_key(key)
        {
            continue;
        }
        a.allow(&[key.as_str()]);
        if matches!(v, Value::Null) {
            continue;
        }
        plist.insert(key.clone(), property(key, v)?);
    }

    let label = match plist.get("Label") {
        Some(Plist::String(l)) => l.clone(),
        _ => format!("{prefix}{name}"),
    };
    check_label("Label", &label)?;
    plist.insert("Label".into(), Plist::String(label.clone()));

    if !plist.contains_key("Program") && !plist.contains_key("ProgramArguments") {
        return Err(Error::Missing {
            attr: "Program".into(),
            why: "launchd needs Program or ProgramArguments to know what to run".into(),
        });
    }

    if !path.is_empty() {
        let mut env = match plist.remove("EnvironmentVariables") {
            Some(Plist::Dict(m)) => m,
            _ => BTreeMap::new(),
        };
        if !env.contains_key("PATH") {
            let bins: Vec<String> = path
                .iter()
                .map(|p| format!("{}/bin", p.trim_end_matches('/')))
                .collect();
            let value = format!("{}:{SYSTEM_PATH}", bins.join(":"));
            env.insert(
                "PATH".into(),
                Plist::from_value("path", &Value::str(value))?,
            );
        }
        plist.insert("EnvironmentVariables".into(), Plist::Dict(env));
    }
    if force_disable_user_change {
        plist.remove("UserName");
        plist.remove("GroupName");
    }

    Ok(Daemon {
        name,
        label,
        description,
        plist,
        dependencies,
    })
}
