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

/// Serializes `t` straight into a [`Value`]: the same value as
/// `Value::from_json(&serde_json::to_value(t)?)`, without building the JSON
/// tree (no `serde_json::Value` round trip). Like serde_json, map keys must
/// be strings (or scalars, rendered as strings), integers beyond `i64` become
/// floats and non-finite floats become `null`.
pub fn to_value<T: serde::Serialize + ?Sized>(t: &T) -> Result<Value, SerError> {
    t.serialize(ser::ValueSerializer)
}

/// Why a value could not be serialized into a [`Value`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SerError(pub String);

impl std::fmt::Display for SerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for SerError {}

impl serde::ser::Error for SerError {
    fn custom<M: std::fmt::Display>(msg: M) -> Self {
        SerError(msg.to_string())
    }
}

mod ser {
    use std::collections::BTreeMap;

    use serde::ser::{self, Serialize};

    use super::{SerError, Value};

    type R = Result<Value, SerError>;

    pub struct ValueSerializer;

    fn float(f: f64) -> Value {
        if f.is_finite() {
            Value::Float(f)
        } else {
            Value::Null
        }
    }

    fn tagged(variant: &str, v: Value) -> Value {
        Value::Attrs(BTreeMap::from([(variant.to_string(), v)]))
    }

    impl ser::Serializer for ValueSerializer {
        type Ok = Value;
        type Error = SerError;
        type SerializeSeq = Seq;
        type SerializeTuple = Seq;
        type SerializeTupleStruct = Seq;
        type SerializeTupleVariant = Seq;
        type SerializeMap = Map;
        type SerializeStruct = Map;
        type SerializeStructVariant = Map;

        fn serialize_bool(self, v: bool) -> R {
            Ok(Value::Bool(v))
        }
        fn serialize_i8(self, v: i8) -> R {
            Ok(Value::Int(v.into()))
        }
        fn serialize_i16(self, v: i16) -> R {
            Ok(Value::Int(v.into()))
        }
        fn serialize_i32(self, v: i32) -> R {
            Ok(Value::Int(v.into()))
        }
        fn serialize_i64(self, v: i64) -> R {
            Ok(Value::Int(v))
        }
        fn serialize_i128(self, v: i128) -> R {
            match i64::try_from(v) {
                Ok(i) => Ok(Value::Int(i)),
                Err(_) => match u64::try_from(v) {
                    Ok(u) => Ok(Value::Float(u as f64)),
                    Err(_) => Err(SerError("number out of range".into())),
                },
            }
        }
        fn serialize_u8(self, v: u8) -> R {
            Ok(Value::Int(v.into()))
        }
        fn serialize_u16(self, v: u16) -> R {
            Ok(Value::Int(v.into()))
        }
        fn serialize_u32(self, v: u32) -> R {
            Ok(Value::Int(v.into()))
        }
        fn serialize_u64(self, v: u64) -> R {
            Ok(i64::try_from(v).map_or(Value::Float(v as f64), Value::Int))
        }
        fn serialize_u128(self, v: u128) -> R {
            match u64::try_from(v) {
                Ok(u) => self.serialize_u64(u),
                Err(_) => Err(SerError("number out of range".into())),
            }
        }
        fn serialize_f32(self, v: f32) -> R {
            Ok(float(v.into()))
        }
        fn serialize_f64(self, v: f64) -> R {
            Ok(float(v))
        }
        fn serialize_char(self, v: char) -> R {
            Ok(Value::str(v.to_string()))
        }
        fn serialize_str(self, v: &str) -> R {
            Ok(Value::str(v))
        }
        fn serialize_bytes(self, v: &[u8]) -> R {
            Ok(Value::List(
                v.iter().map(|b| Value::Int((*b).into())).collect(),
            ))
        }
        fn serialize_none(self) -> R {
            Ok(Value::Null)
        }
        fn serialize_some<T: Serialize + ?Sized>(self, v: &T) -> R {
            v.serialize(self)
        }
        fn serialize_unit(self) -> R {
            Ok(Value::Null)
        }
        fn serialize_unit_struct(self, _: &'static str) -> R {
            Ok(Value::Null)
        }
        fn serialize_unit_variant(self, _: &'static str, _: u32, variant: &'static str) -> R {
            Ok(Value::str(variant))
        }
        fn serialize_newtype_struct<T: Serialize + ?Sized>(self, _: &'static str, v: &T) -> R {
            v.serialize(self)
        }
        fn serialize_newtype_variant<T: Serialize + ?Sized>(
            self,
            _: &'static str,
            _: u32,
            variant: &'static str,
            v: &T,
        ) -> R {
            Ok(tagged(variant, v.serialize(self)?))
        }
        fn serialize_seq(self, len: Option<usize>) -> Result<Seq, SerError> {
            Ok(Seq {
                items: Vec::with_capacity(len.unwrap_or(0)),
                variant: None,
            })
        }
        fn serialize_tuple(self, len: usize) -> Result<Seq, SerError> {
            self.serialize_seq(Some(len))
        }
        fn serialize_tuple_struct(self, _: &'static str, len: usize) -> Result<Seq, SerError> {
            self.serialize_seq(Some(len))
        }
        fn serialize_tuple_variant(
            self,
            _: &'static str,
            _: u32,
            variant: &'static str,
            len: usize,
        ) -> Result<Seq, SerError> {
            Ok(Seq {
                items: Vec::with_capacity(len),
                variant: Some(variant),
            })
        }
        fn serialize_map(self, _: Option<usize>) -> Result<Map, SerError> {
            Ok(Map::default())
        }
        fn serialize_struct(self, _: &'static str, _: usize) -> Result<Map, SerError> {
            Ok(Map::default())
        }
        fn serialize_struct_variant(
            self,
            _: &'static str,
            _: u32,
            variant: &'static str,
            _: usize,
        ) -> Result<Map, SerError> {
            Ok(Map {
                variant: Some(variant),
                ..Map::default()
            })
        }
    }

    pub struct Seq {
        items: Vec<Value>,
        variant: Option<&'static str>,
    }

    impl Seq {
        fn done(self) -> R {
            let list = Value::List(self.items);
            Ok(match self.variant {
                Some(v) => tagged(v, list),
                None => list,
            })
        }
        fn push<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), SerError> {
            self.items.push(v.serialize(ValueSerializer)?);
            Ok(())
        }
    }

    impl ser::SerializeSeq for Seq {
        type Ok = Value;
        type Error = SerError;
        fn serialize_element<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), SerError> {
            self.push(v)
        }
        fn end(self) -> R {
            self.done()
        }
    }
    impl ser::SerializeTuple for Seq {
        type Ok = Value;
        type Error = SerError;
        fn serialize_element<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), SerError> {
            self.push(v)
        }
        fn end(self) -> R {
            self.done()
        }
    }
    impl ser::SerializeTupleStruct for Seq {
        type Ok = Value;
        type Error = SerError;
        fn serialize_field<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), SerError> {
            self.push(v)
        }
        fn end(self) -> R {
            self.done()
        }
    }
    impl ser::SerializeTupleVariant for Seq {
        type Ok = Value;
        type Error = SerError;
        fn serialize_field<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), SerError> {
            self.push(v)
        }
        fn end(self) -> R {
            self.done()
        }
    }

    #[derive(Default)]
    pub struct Map {
        map: BTreeMap<String, Value>,
        next_key: Option<String>,
        variant: Option<&'static str>,
    }

    impl Map {
        fn done(self) -> R {
            let attrs = Value::Attrs(self.map);
            Ok(match self.variant {
                Some(v) => tagged(v, attrs),
                None => attrs,
            })
        }
    }

    impl ser::SerializeMap for Map {
        type Ok = Value;
        type Error = SerError;
        fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), SerError> {
            self.next_key = Some(match key.serialize(ValueSerializer)? {
                Value::Str(s) => s.s,
                Value::Int(i) => i.to_string(),
                Value::Bool(b) => b.to_string(),
                Value::Float(f) => f.to_string(),
                _ => return Err(SerError("key must be a string".into())),
            });
            Ok(())
        }
        fn serialize_value<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), SerError> {
            let key = self
                .next_key
                .take()
                .ok_or_else(|| SerError("value without a key".into()))?;
            self.map.insert(key, v.serialize(ValueSerializer)?);
            Ok(())
        }
        fn end(self) -> R {
            self.done()
        }
    }
    impl ser::SerializeStruct for Map {
        type Ok = Value;
        type Error = SerError;
        fn serialize_field<T: Serialize + ?Sized>(
            &mut self,
            key: &'static str,
            v: &T,
        ) -> Result<(), SerError> {
            self.map
                .insert(key.to_string(), v.serialize(ValueSerializer)?);
            Ok(())
        }
        fn end(self) -> R {
            self.done()
        }
    }
    impl ser::SerializeStructVariant for Map {
        type Ok = Value;
        type Error = SerError;
        fn serialize_field<T: Serialize + ?Sized>(
            &mut self,
            key: &'static str,
            v: &T,
        ) -> Result<(), SerError> {
            self.map
                .insert(key.to_string(), v.serialize(ValueSerializer)?);
            Ok(())
        }
        fn end(self) -> R {
            self.done()
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde::Serialize;

    use super::*;

    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Inner {
        some_field: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        skipped: Option<u32>,
        #[serde(skip_serializing_if = "Vec::is_empty")]
        empty: Vec<u8>,
    }

    #[derive(Serialize)]
    #[serde(tag = "type", rename_all = "kebab-case")]
    enum Tagged {
        #[serde(rename_all = "camelCase")]
        OneKind {
            start_levels: Vec<u32>,
            seq: u32,
        },
        Other,
    }

    #[derive(Serialize)]
    enum External {
        Unit,
        New(i64),
        Tuple(i8, String),
        Struct { a: bool },
    }

    #[derive(Serialize)]
    struct Newtype(u16);

    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Everything {
        text: String,
        hostile: String,
        ch: char,
        big: u64,
        neg: i128,
        nan: f64,
        inf: f32,
        half: f64,
        unit: (),
        pair: (u8, bool),
        tagged: Vec<Tagged>,
        external: Vec<External>,
        newtype: Newtype,
        int_keys: BTreeMap<u32, String>,
        #[serde(flatten)]
        flat: Inner,
        inner: Inner,
        none: Option<Inner>,
    }

    fn sample() -> Everything {
        let inner = || Inner {
            some_field: Some("x".into()),
            skipped: None,
            empty: vec![],
        };
        Everything {
            text: "plain".into(),
            hostile: "'\"$(id)`id`\n%;\\ ünï".into(),
            ch: 'é',
            big: u64::MAX,
            neg: -7,
            nan: f64::NAN,
            inf: f32::INFINITY,
            half: 0.5,
            unit: (),
            pair: (3, true),
            tagged: vec![
                Tagged::OneKind {
                    start_levels: vec![2, 3],
                    seq: 1,
                },
                Tagged::Other,
            ],
            external: vec![
                External::Unit,
                External::New(-1),
                External::Tuple(1, "t".into()),
                External::Struct { a: false },
            ],
            newtype: Newtype(9),
            int_keys: BTreeMap::from([(1, "one".into()), (20, "twenty".into())]),
            flat: Inner {
                some_field: None,
                skipped: Some(4),
                empty: vec![1, 2],
            },
            inner: inner(),
            none: None,
        }
    }

    #[test]
    fn to_value_equals_the_serde_json_round_trip() {
        let s = sample();
        let direct = to_value(&s).unwrap();
        let via_json = Value::from_json(&serde_json::to_value(&s).unwrap());
        // Non-finite floats are `null` on both sides, so whole values compare.
        assert_eq!(direct, via_json);
        let a = direct.as_attrs().unwrap();
        assert_eq!(a["nan"], Value::Null);
        assert_eq!(a["inf"], Value::Null);
        assert_eq!(a["big"], Value::Float(u64::MAX as f64));
        // Flattened fields land at the top; skipped ones are absent.
        assert_eq!(a["skipped"], Value::Int(4));
        assert_eq!(a["someField"], Value::Null);
        assert_eq!(a["empty"], Value::List(vec![Value::Int(1), Value::Int(2)]));
        assert_eq!(a["none"], Value::Null);
        assert_eq!(a["hostile"].as_str(), Some("'\"$(id)`id`\n%;\\ ünï"));
        let inner = a["inner"].as_attrs().unwrap();
        assert_eq!(
            inner.keys().map(String::as_str).collect::<Vec<_>>(),
            ["someField"]
        );
    }

    #[test]
    fn non_string_keys_are_rejected() {
        let m = BTreeMap::from([(vec![1u8], 1u8)]);
        assert!(to_value(&m).is_err());
        assert!(serde_json::to_value(&m).is_err());
    }
}
