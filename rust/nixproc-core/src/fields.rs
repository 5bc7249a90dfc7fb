//! Validators of the process fields every backend shares (name, user,
//! umask, nice, PATH entries, environment), so one rule holds everywhere.

use std::collections::BTreeMap;

use crate::args::Args;
use crate::credentials;
use crate::error::{Error, Result};

pub fn non_empty(attr: &str, s: String) -> Result<String> {
    if s.is_empty() {
        Err(Error::invalid(attr, "must not be empty"))
    } else {
        Ok(s)
    }
}

/// An optional string attribute that, when given, must not be empty
/// (`pidFile`, `directory`, `process`, …).
pub fn opt_non_empty(a: &Args, key: &str) -> Result<Option<String>> {
    a.opt_str(key)?.map(|v| non_empty(key, v)).transpose()
}

/// A process name becomes a file name (`init.d/<name>`, `S01<name>`) and an
/// LSB facility name, so: non-empty, not `.`/`..`, no `/`, whitespace or
/// control characters.
pub fn check_process_name(attr: &str, name: &str) -> Result<()> {
    if !crate::credentials::is_plain_name(name) {
        return Err(Error::invalid(
            attr,
            format!(
                "{name:?} is not a valid process name (it must be a file name: non-empty, \
                 not '.' or '..', without '/', whitespace or control characters)"
            ),
        ));
    }
    Ok(())
}

pub fn parse_nice(a: &Args) -> Result<Option<i64>> {
    let Some(raw) = a.opt_string_like("nice")? else {
        return Ok(None);
    };
    match raw.trim().parse::<i64>() {
        Ok(n) if (-20..=19).contains(&n) => Ok(Some(n)),
        _ => Err(Error::invalid(
            "nice",
            format!("must be an integer between -20 and 19, but it is {raw:?}"),
        )),
    }
}

pub fn parse_umask(a: &Args) -> Result<Option<String>> {
    let Some(raw) = a.opt_string_like("umask")? else {
        return Ok(None);
    };
    if (1..=4).contains(&raw.len()) && raw.chars().all(|c| ('0'..='7').contains(&c)) {
        Ok(Some(raw))
    } else {
        Err(Error::invalid(
            "umask",
            format!("must be 1 to 4 octal digits such as \"022\", but it is {raw:?}"),
        ))
    }
}

pub fn parse_user(a: &Args) -> Result<Option<String>> {
    let Some(user) = a.opt_str("user")? else {
        return Ok(None);
    };
    let bad = user.is_empty()
        || user.starts_with('-')
        || user
            .chars()
            .any(|c| c == ':' || c.is_whitespace() || c.is_control());
    if bad {
        return Err(Error::invalid(
            "user",
            format!(
                "{user:?} is not a valid user name (non-empty, not starting with '-', \
                 no ':', whitespace or control characters)"
            ),
        ));
    }
    Ok(Some(user))
}

pub fn parse_path(a: &Args) -> Result<Vec<String>> {
    let path = a.string_list("path")?;
    for (i, p) in path.iter().enumerate() {
        if p.is_empty() || p.contains(':') {
            return Err(Error::invalid(
                format!("path[{i}]"),
                format!("{p:?} cannot be a PATH entry (empty or contains ':')"),
            ));
        }
    }
    Ok(path)
}

pub fn parse_environment(a: &Args) -> Result<BTreeMap<String, String>> {
    let env = a.string_map("environment")?;
    for name in env.keys() {
        if !credentials::is_identifier(name) {
            return Err(Error::invalid(
                format!("environment.{name}"),
                "variable names must match [A-Za-z_][A-Za-z0-9_]*",
            ));
        }
    }
    Ok(env)
}

/// One element of a generator's `dependencies`, as the Nix layer passes it
/// for a dependency package: a set with the dependency's `name` plus the
/// facts its backend needs (a start sequence, a priority). `what` names
/// the expected package ("a sysvinit process package") in the errors.
pub struct DependencySet<'v> {
    /// `dependencies[<i>]`, for errors.
    pub attr: String,
    pub name: String,
    fields: &'v BTreeMap<String, crate::value::Value>,
    what: &'static str,
}

/// Reads `dependencies` as a list of [`DependencySet`]s.
pub fn dependency_sets<'v>(a: &Args<'v>, what: &'static str) -> Result<Vec<DependencySet<'v>>> {
    use crate::value::Value;
    a.list("dependencies")?
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let attr = format!("dependencies[{i}]");
            let Value::Attrs(fields) = v else {
                return Err(Error::invalid(
                    &attr,
                    format!("is not {what} (it is a {})", v.type_name()),
                ));
            };
            let Some(Value::Str(name)) = fields.get("name") else {
                return Err(Error::invalid(
                    &attr,
                    format!("is not {what} (it has no name)"),
                ));
            };
            Ok(DependencySet {
                name: name.s.clone(),
                attr,
                fields,
                what,
            })
        })
        .collect()
}

impl DependencySet<'_> {
    /// `<attr>.name`, for checks of the name.
    pub fn name_attr(&self) -> String {
        format!("{}.name", self.attr)
    }

    /// A required non-negative integer such as `sequence`; `missing` says
    /// what is absent ("sequence number").
    pub fn number(&self, key: &str, missing: &str) -> Result<u32> {
        use crate::value::Value;
        match self.fields.get(key) {
            None | Some(Value::Null) => Err(Error::invalid(
                &self.attr,
                format!("is not {} (it has no {missing})", self.what),
            )),
            Some(Value::Int(n)) => u32::try_from(*n).map_err(|_| {
                Error::invalid(format!("{}.{key}", self.attr), format!("{n} is negative"))
            }),
            Some(other) => Err(Error::WrongType {
                attr: format!("{}.{key}", self.attr),
                expected: "an integer".into(),
                found: other.type_name(),
            }),
        }
    }
}
