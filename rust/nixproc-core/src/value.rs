//! The Nix value model shared by the plugin (which converts real Nix values
//! into it) and the builder (which reads the same data as JSON).
//!
//! Strings carry their Nix string context as *encoded* elements
//! (`/nix/store/h-n`, `=/nix/store/h-n.drv`, `!out!/nix/store/h-n.drv`), the
//! one form that is the same in every Nix version.

use std::collections::{BTreeMap, BTreeSet};

/// A fully forced Nix value. Functions never get here: the plugin rejects them.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(NixString),
    List(Vec<Value>),
    Attrs(BTreeMap<String, Value>),
}

/// A string and the context elements it carried on the way in. Generators
/// never set context: the plugin recomputes it per output string (see
/// [`crate::context`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NixString {
    pub s: String,
    pub context: BTreeSet<String>,
}

impl Value {
    /// The Nix type name, as `builtins.typeOf` spells it.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Float(_) => "float",
            Value::Str(_) => "string",
            Value::List(_) => "list",
            Value::Attrs(_) => "set",
        }
    }

    pub fn str(s: impl Into<String>) -> Value {
        Value::Str(NixString {
            s: s.into(),
            context: BTreeSet::new(),
        })
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(n) => Some(&n.s),
            _ => None,
        }
    }

    pub fn as_attrs(&self) -> Option<&BTreeMap<String, Value>> {
        match self {
            Value::Attrs(a) => Some(a),
            _ => None,
        }
    }

    /// Converts to JSON the way `builtins.toJSON` does (context is dropped:
    /// JSON has no place for it). Used by builder mode and tests.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as J;
        match self {
            Value::Null => J::Null,
            Value::Bool(b) => J::Bool(*b),
            Value::Int(i) => J::from(*i),
            Value::Float(f) => serde_json::Number::from_f64(*f).map_or(J::Null, J::Number),
            Value::Str(s) => J::String(s.s.clone()),
            Value::List(l) => J::Array(l.iter().map(Value::to_json).collect()),
            Value::Attrs(a) => J::Object(a.iter().map(|(k, v)| (k.clone(), v.to_json())).collect()),
        }
    }

    /// The inverse of [`Value::to_json`]; numbers that fit `i64` become ints.
    pub fn from_json(j: &serde_json::Value) -> Value {
        use serde_json::Value as J;
        match j {
            J::Null => Value::Null,
            J::Bool(b) => Value::Bool(*b),
            J::Number(n) => n
                .as_i64()
                .map(Value::Int)
                .unwrap_or_else(|| Value::Float(n.as_f64().unwrap_or(f64::NAN))),
            J::String(s) => Value::str(s.clone()),
            J::Array(a) => Value::List(a.iter().map(Value::from_json).collect()),
            J::Object(o) => Value::Attrs(
                o.iter()
                    .map(|(k, v)| (k.clone(), Value::from_json(v)))
                    .collect(),
            ),
        }
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::str(s)
    }
}
impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::str(s)
    }
}
impl From<i64> for Value {
    fn from(i: i64) -> Self {
        Value::Int(i)
    }
}
impl From<bool> for Value {
    fn from(b: bool) -> Self {
        Value::Bool(b)
    }
}
impl<T: Into<Value>> From<Vec<T>> for Value {
    fn from(v: Vec<T>) -> Self {
        Value::List(v.into_iter().map(Into::into).collect())
    }
}

/// Builds an attrset value from `(key, value)` pairs.
pub fn attrs<I, K>(pairs: I) -> Value
where
    I: IntoIterator<Item = (K, Value)>,
    K: Into<String>,
{
    Value::Attrs(pairs.into_iter().map(|(k, v)| (k.into(), v)).collect())
}
