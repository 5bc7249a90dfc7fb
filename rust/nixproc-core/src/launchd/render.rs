//! XML property lists (Apple's `PropertyList-1.0.dtd`): the value model,
//! the conversion from Nix values and the text.
//!
//! Strings and keys are XML-escaped (`&`, `<`, `>`; a carriage return as
//! `&#13;`, which XML parsers would otherwise turn into a line feed).
//! Characters XML 1.0 cannot carry at all (control characters other than
//! tab, line feed and carriage return; U+FFFE, U+FFFF) are an error naming
//! the attribute, not a plist launchd refuses to load.

use std::collections::BTreeMap;

use crate::error::{Error, Result};
use crate::value::Value;

/// A property list value.
#[derive(Debug, Clone, PartialEq)]
pub enum Plist {
    Bool(bool),
    Integer(i64),
    Real(f64),
    String(String),
    Array(Vec<Plist>),
    /// Keys sorted (a `BTreeMap`), so the output is deterministic.
    Dict(BTreeMap<String, Plist>),
}

/// Why `s` cannot be XML character data, if it cannot.
pub fn xml_problem(s: &str) -> Option<String> {
    s.chars()
        .find(|&c| {
            (c < ' ' && !matches!(c, '\t' | '\n' | '\r')) || c == '\u{FFFE}' || c == '\u{FFFF}'
        })
        .map(|c| {
            format!(
                "contains the character U+{:04X}, which an XML property list cannot hold",
                c as u32
            )
        })
}

/// Escapes `s` for XML character data; `attr` names it in the error.
pub fn xml_escape(attr: &str, s: &str) -> Result<String> {
    if let Some(why) = xml_problem(s) {
        return Err(Error::invalid(attr, why));
    }
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\r' => out.push_str("&#13;"),
            c => out.push(c),
        }
    }
    Ok(out)
}

impl Plist {
    /// Converts a Nix value: bool, int, float, string, list, attrset;
    /// `null` attributes are left out, a `null` list element is an error
    /// (leaving it out would shift the rest). `attr` is the path for errors.
    pub fn from_value(attr: &str, v: &Value) -> Result<Plist> {
        Ok(match v {
            Value::Bool(b) => Plist::Bool(*b),
            Value::Int(i) => Plist::Integer(*i),
            Value::Float(f) if f.is_finite() => Plist::Real(*f),
            Value::Float(f) => {
                return Err(Error::invalid(
                    attr,
                    format!("{f} cannot be a property list <real>"),
                ))
            }
            Value::Str(s) => {
                if let Some(why) = xml_problem(&s.s) {
                    return Err(Error::invalid(attr, why));
                }
                Plist::String(s.s.clone())
            }
            Value::List(items) => Plist::Array(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, item)| {
                        let at = format!("{attr}[{i}]");
                        if matches!(item, Value::Null) {
                            Err(Error::invalid(
                                at,
                                "a list element cannot be null in a property list",
                            ))
                        } else {
                            Plist::from_value(&at, item)
                        }
                    })
                    .collect::<Result<_>>()?,
            ),
            Value::Attrs(m) => Plist::dict_from(attr, m)?,
            Value::Null => {
                return Err(Error::invalid(attr, "null has no property list form"));
            }
        })
    }

    /// An attrset as a dict, `null` values left out.
    pub fn dict_from(attr: &str, m: &BTreeMap<String, Value>) -> Result<Plist> {
        let mut out = BTreeMap::new();
        for (k, v) in m {
            let at = format!("{attr}.{k}");
            if let Some(why) = xml_problem(k) {
                return Err(Error::invalid(at, format!("the key {why}")));
            }
            if !matches!(v, Value::Null) {
                out.insert(k.clone(), Plist::from_value(&at, v)?);
            }
        }
        Ok(Plist::Dict(out))
    }

    fn write(&self, attr: &str, depth: usize, out: &mut String) -> Result<()> {
        let indent = "\t".repeat(depth);
        match self {
            Plist::Bool(true) => out.push_str(&format!("{indent}<true/>\n")),
            Plist::Bool(false) => out.push_str(&format!("{indent}<false/>\n")),
            Plist::Integer(i) => out.push_str(&format!("{indent}<integer>{i}</integer>\n")),
            Plist::Real(f) => out.push_str(&format!("{indent}<real>{f:?}</real>\n")),
            Plist::String(s) => {
                let s = xml_escape(attr, s)?;
                out.push_str(&format!("{indent}<string>{s}</string>\n"));
            }
            Plist::Array(items) if items.is_empty() => {
                out.push_str(&format!("{indent}<array/>\n"));
            }
            Plist::Array(items) => {
                out.push_str(&format!("{indent}<array>\n"));
                for (i, item) in items.iter().enumerate() {
                    item.write(&format!("{attr}[{i}]"), depth + 1, out)?;
                }
                out.push_str(&format!("{indent}</array>\n"));
            }
            Plist::Dict(m) if m.is_empty() => out.push_str(&format!("{indent}<dict/>\n")),
            Plist::Dict(m) => {
                out.push_str(&format!("{indent}<dict>\n"));
                for (k, v) in m {
                    let at = if attr.is_empty() {
                        k.clone()
                    } else {
                        format!("{attr}.{k}")
                    };
                    let key = xml_escape(&at, k)?;
                    out.push_str(&format!("{indent}\t<key>{key}</key>\n"));
                    v.write(&at, depth + 1, out)?;
                }
                out.push_str(&format!("{indent}</dict>\n"));
            }
        }
        Ok(())
    }
}

/// The whole document with `root` (a dict) as its value.
pub fn plist_text(root: &Plist) -> Result<String> {
    let mut out = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <!DOCTYPE plist PUBLIC \"-//Apple//DTD PLIST 1.0//EN\" \
         \"http://www.apple.com/DTDs/PropertyList-1.0.dtd\">\n\
         <plist version=\"1.0\">\n",
    );
    root.write("", 0, &mut out)?;
    out.push_str("</plist>\n");
    Ok(out)
}
