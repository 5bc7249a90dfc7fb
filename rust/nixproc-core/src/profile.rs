//! What a profile holds besides its process packages (reference §1.4):
//! supervisord's base `supervisord.conf`, s6-rc's `default` bundle.

use crate::args::Args;
use crate::error::{Error, Result};
use crate::package::FileSpec;
use crate::value::{attrs, Value};

/// `builtins.nixprocProfileExtras { processManager; composition; services; }`
/// → `{ files = [ { path; text; mode; } ]; }`. `services` are the
/// instances' process names in dependency order; `composition` is the
/// backend's composition attrset (as given to its generator).
pub fn profile_extras(v: &Value) -> Result<Value> {
    let a = Args::new(v, "argument")?;
    let pm = a.opt_str("processManager")?.ok_or_else(|| Error::Missing {
        attr: "processManager".into(),
        why: "the profile's process manager".into(),
    })?;
    let composition = a
        .get("composition")
        .cloned()
        .unwrap_or(Value::Attrs(Default::default()));
    if composition.as_attrs().is_none() {
        return Err(Error::WrongType {
            attr: "composition".into(),
            expected: "a set".into(),
            found: composition.type_name(),
        });
    }
    let services = a.string_list("services")?;
    a.finish()?;
    let files: Vec<FileSpec> = match pm.as_str() {
        "supervisord" => crate::supervisord::profile_files(&composition, &services)?,
        "s6-rc" => crate::s6rc::profile_files(&composition, &services)?,
        _ => Vec::new(),
    };
    let files = files.iter().map(FileSpec::to_value).collect();
    Ok(attrs([("files", Value::List(files))]))
}
