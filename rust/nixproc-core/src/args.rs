//! Typed, validated access to a generator's argument attrset.
//!
//! Every read marks the key as known; [`Args::finish`] then rejects whatever
//! the caller passed that no reader asked for, with a "did you mean" hint.
//! This is how a typo such as `runlevel = [3]` becomes an error instead of a
//! silently ignored setting.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};

use crate::error::{Error, Result};
use crate::value::Value;

pub struct Args<'a> {
    map: &'a BTreeMap<String, Value>,
    known: RefCell<BTreeSet<String>>,
}

fn wrong(attr: &str, expected: &str, v: &Value) -> Error {
    Error::WrongType {
        attr: attr.to_string(),
        expected: expected.to_string(),
        found: v.type_name(),
    }
}

/// Renders scalars the way Nix's `toString` does for the types we accept
/// where a string is expected (ints in `environment`, `nice`, args…).
pub fn string_like(attr: &str, v: &Value) -> Result<String> {
    match v {
        Value::Str(s) => Ok(s.s.clone()),
        Value::Int(i) => Ok(i.to_string()),
        Value::Float(f) => Ok(format!("{f:.6}")),
        Value::Bool(true) => Ok("1".into()),
        Value::Bool(false) => Ok(String::new()),
        other => Err(wrong(attr, "a string or a number", other)),
    }
}

impl<'a> Args<'a> {
    /// `what` names the value for the error when it is not an attrset.
    pub fn new(v: &'a Value, what: &str) -> Result<Self> {
        match v {
            Value::Attrs(map) => Ok(Args {
                map,
                known: RefCell::new(BTreeSet::new()),
            }),
            other => Err(wrong(what, "a set", other)),
        }
    }

    /// Marks keys as accepted without reading them (e.g. keys the Nix layer
    /// consumes itself and passes along).
    pub fn allow(&self, keys: &[&str]) {
        let mut k = self.known.borrow_mut();
        for key in keys {
            k.insert((*key).to_string());
        }
    }

    /// The raw value; `null` counts as absent.
    pub fn get(&self, key: &str) -> Option<&'a Value> {
        self.known.borrow_mut().insert(key.to_string());
        match self.map.get(key) {
            None | Some(Value::Null) => None,
            Some(v) => Some(v),
        }
    }

    pub fn has(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    pub fn opt_str(&self, key: &str) -> Result<Option<String>> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Str(s)) => Ok(Some(s.s.clone())),
            Some(v) => Err(wrong(key, "a string", v)),
        }
    }

    pub fn str_or(&self, key: &str, default: &str) -> Result<String> {
        Ok(self.opt_str(key)?.unwrap_or_else(|| default.to_string()))
    }

    /// A string, or a number rendered as Nix's `toString` would.
    pub fn opt_string_like(&self, key: &str) -> Result<Option<String>> {
        self.get(key).map(|v| string_like(key, v)).transpose()
    }

    pub fn opt_int(&self, key: &str) -> Result<Option<i64>> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Int(i)) => Ok(Some(*i)),
            Some(v) => Err(wrong(key, "an integer", v)),
        }
    }

    pub fn int_or(&self, key: &str, default: i64) -> Result<i64> {
        Ok(self.opt_int(key)?.unwrap_or(default))
    }

    pub fn bool_or(&self, key: &str, default: bool) -> Result<bool> {
        match self.get(key) {
            None => Ok(default),
            Some(Value::Bool(b)) => Ok(*b),
            Some(v) => Err(wrong(key, "a boolean", v)),
        }
    }

    pub fn list(&self, key: &str) -> Result<&'a [Value]> {
        match self.get(key) {
            None => Ok(&[]),
            Some(Value::List(l)) => Ok(l),
            Some(v) => Err(wrong(key, "a list", v)),
        }
    }

    /// A list of strings (numbers are accepted and rendered).
    pub fn string_list(&self, key: &str) -> Result<Vec<String>> {
        self.list(key)?
            .iter()
            .enumerate()
            .map(|(i, v)| string_like(&format!("{key}[{i}]"), v))
            .collect()
    }

    pub fn int_list(&self, key: &str) -> Result<Vec<i64>> {
        self.list(key)?
            .iter()
            .enumerate()
            .map(|(i, v)| match v {
                Value::Int(n) => Ok(*n),
                other => Err(wrong(&format!("{key}[{i}]"), "an integer", other)),
            })
            .collect()
    }

    pub fn attrs(&self, key: &str) -> Result<Option<&'a BTreeMap<String, Value>>> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Attrs(a)) => Ok(Some(a)),
            Some(v) => Err(wrong(key, "a set", v)),
        }
    }

    /// An attrset of strings/numbers, e.g. `environment`.
    pub fn string_map(&self, key: &str) -> Result<BTreeMap<String, String>> {
        let Some(map) = self.attrs(key)? else {
            return Ok(BTreeMap::new());
        };
        map.iter()
            .map(|(k, v)| Ok((k.clone(), string_like(&format!("{key}.{k}"), v)?)))
            .collect()
    }

    /// Rejects every key no reader asked for.
    pub fn finish(self) -> Result<()> {
        let known = self.known.into_inner();
        match self.map.keys().find(|k| !known.contains(*k)) {
            None => Ok(()),
            Some(bad) => Err(Error::Unknown {
                attr: bad.clone(),
                hint: suggestion(bad, known.iter().map(String::as_str)),
            }),
        }
    }
}

/// " (did you mean 'x'?)" for the closest known key within a small edit
/// distance, else an empty string.
fn suggestion<'k>(bad: &str, known: impl Iterator<Item = &'k str>) -> String {
    known
        .map(|k| (edit_distance(bad, k), k))
        .filter(|(d, k)| *d <= 2.max(k.len() / 4))
        .min()
        .map(|(_, k)| format!(" (did you mean '{k}'?)"))
        .unwrap_or_default()
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur.push(sub.min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::attrs;

    #[test]
    fn unknown_key_is_rejected_with_hint() {
        let v = attrs([("runlevel", Value::List(vec![])), ("name", "x".into())]);
        let a = Args::new(&v, "arg").unwrap();
        a.opt_str("name").unwrap();
        a.int_list("runlevels").unwrap();
        let e = a.finish().unwrap_err();
        assert_eq!(
            e.to_string(),
            "unknown parameter 'runlevel' (did you mean 'runlevels'?)"
        );
    }

    #[test]
    fn wrong_type_names_attribute() {
        let v = attrs([("environment", attrs([("PORT", Value::List(vec![]))]))]);
        let a = Args::new(&v, "arg").unwrap();
        let e = a.string_map("environment").unwrap_err();
        assert_eq!(
            e.to_string(),
            "attribute 'environment.PORT' must be a string or a number, but it is list"
        );
    }

    #[test]
    fn null_counts_as_absent_and_numbers_render() {
        let v = attrs([("pidFile", Value::Null), ("nice", Value::Int(-5))]);
        let a = Args::new(&v, "arg").unwrap();
        assert_eq!(a.opt_str("pidFile").unwrap(), None);
        assert_eq!(a.opt_string_like("nice").unwrap().as_deref(), Some("-5"));
        a.finish().unwrap();
    }
}
