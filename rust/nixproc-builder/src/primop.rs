//! `primop NAME`: builder mode (DESIGN.md "Two generation modes"). Where
//! the plugin cannot load, the Nix layer builds a derivation that runs
//! `nixproc-builder primop <NAME>` with the primop's argument as JSON in
//! the file `$inputPath` (`passAsFile = [ "input" ]`), and reads the JSON
//! of the result back from `$out`. The generators are the same functions
//! the plugin calls, so both modes produce the same data.

use std::path::Path;

use anyhow::{Context, Result};
use nixproc_core::primops;
use nixproc_core::value::Value;

/// Runs primop `name` on the JSON argument in `input` and returns the JSON
/// text of the result. The error message starts with `<name>: `.
pub fn evaluate(name: &str, input: &Path) -> Result<String> {
    if primops::find(name).is_none() {
        let known: Vec<&str> = primops::PRIMOPS.iter().map(|p| p.name).collect();
        anyhow::bail!("{name}: unknown primop (known: {})", known.join(", "));
    }
    let text = std::fs::read_to_string(input)
        .with_context(|| format!("{name}: cannot read the argument file {}", input.display()))?;
    let json: serde_json::Value = serde_json::from_str(&text)
        .with_context(|| format!("{name}: the argument file {} is not JSON", input.display()))?;
    let result = primops::call(name, &Value::from_json(&json)).map_err(anyhow::Error::msg)?;
    Ok(serde_json::to_string(&result.to_json())?)
}

/// `primop NAME [--input FILE] [--out FILE]`: writes the result to `out`;
/// an error goes to stderr and is exit status 1.
pub fn run(name: &str, input: &Path, out: &Path) -> i32 {
    let result = evaluate(name, input).and_then(|json| {
        std::fs::write(out, json).with_context(|| format!("{name}: cannot write {}", out.display()))
    });
    match result {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("{e:#}");
            1
        }
    }
}
