//! Typed, validated access to a generator's argument attrset.
//!
//! Every read marks the key as known; [`Args::finish`] then rejects whatever
//! the caller passed that no reader asked for, with a "did you mean" hint.
//! This is how a typo such as `runlevel = [3]` becomes an error instead of a
//! silently ignored setting.

use std::cell::RefCell;
use std::collections::BTreeMap;

use crate::error::{Error, Result};
use crate::value::Value;

pub struct Args<'a> {
    /// The map's entries in key order, so a read finds its entry's index by
    /// binary search and marks it without allocating.
    entries: Vec<(&'a str, &'a Value)>,
    known: RefCell<Known>,
}

/// The keys readers asked for: a flag per entry of the map, plus the names
/// asked for that the map does not have (only needed for the "did you mean"
/// hint), packed into one string.
struct Known {
    present: Vec<bool>,
    absent: String,
    absent_ends: Vec<usize>,
}

impl Known {
    fn absent(&self) -> impl Iterator<Item = &str> {
        let mut start = 0;
        self.absent_ends.iter().map(move |&end| {
            let k = &self.absent[start..end];
            start = end;
            k
        })
    }
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
                entries: map.iter().map(|(k, v)| (k.as_str(), v)).collect(),
                known: RefCell::new(Known {
                    present: vec![false; map.len()],
                    // Most optional keys are absent: room for a typical
                    // generator's reads without growing.
                    absent: String::with_capacity(512),
                    absent_ends: Vec::with_capacity(48),
                }),
            }),
            other => Err(wrong(what, "a set", other)),
        }
    }

    /// Marks keys as accepted without reading them (e.g. keys the Nix layer
    /// consumes itself and passes along).
    pub fn allow(&self, keys: &[&str]) {
        for key in keys {
            self.mark(key);
        }
    }

    /// Marks `key` as known; the map's value for it, if any.
    fn mark(&self, key: &str) -> Option<&'a Value> {
        let mut known = self.known.borrow_mut();
        // `String`'s order is `str`'s, so the entries are sorted by `str`.
        match self.entries.binary_search_by(|(k, _)| (*k).cmp(key)) {
            Ok(i) => {
                known.present[i] = true;
                Some(self.entries[i].1)
            }
            Err(_) => {
                known.absent.push_str(key);
                let end = known.absent.len();
                known.absent_ends.push(end);
                None
            }
        }
    }

    /// The raw value; `null` counts as absent.
    pub fn get(&self, key: &str) -> Option<&'a Value> {
        match self.mark(key) {
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
        match known.present.iter().position(|p| !p) {
            None => Ok(()),
            Some(i) => {
                let bad = self.entries[i].0;
                let read = self
                    .entries
                    .iter()
                    .zip(&known.present)
                    .filter(|(_, p)| **p)
                    .map(|((k, _), _)| *k);
                Err(Error::Unknown {
                    attr: bad.to_string(),
                    hint: suggestion(bad, read.chain(known.absent())),
                })
            }
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
    fn hint_comes_from_read_keys_present_or_absent() {
        // `nmae` is unknown; `name` was read and is present, `names` was
        // read and is absent; repeated and allowed reads change nothing.
        let v = attrs([("name", "x".into()), ("nmae", "y".into())]);
        let a = Args::new(&v, "arg").unwrap();
        a.opt_str("name").unwrap();
        a.opt_str("name").unwrap();
        a.opt_str("names").unwrap();
        a.allow(&["zzzz"]);
        let e = a.finish().unwrap_err();
        assert_eq!(
            e.to_string(),
            "unknown parameter 'nmae' (did you mean 'name'?)"
        );
    }

    #[test]
    fn first_unread_key_in_order_is_reported_and_allow_marks() {
        let v = attrs([("b", 1.into()), ("a", 1.into()), ("c", 1.into())]);
        let a = Args::new(&v, "arg").unwrap();
        a.allow(&["a"]);
        a.opt_int("c").unwrap();
        // Both read keys are one edit away: the smaller name wins the tie.
        assert_eq!(
            a.finish().unwrap_err().to_string(),
            "unknown parameter 'b' (did you mean 'a'?)"
        );
        let a = Args::new(&v, "arg").unwrap();
        a.allow(&["a", "b", "c"]);
        a.finish().unwrap();
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
