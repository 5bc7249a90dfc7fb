//! `primop NAME` (builder mode): the same result as calling the core
//! function the plugin calls, written to `$out` as JSON.

use std::path::Path;
use std::process::{Command, Output};

use nixproc_core::primops;
use nixproc_core::value::Value;
use serde_json::json;

const BIN: &str = env!("CARGO_BIN_EXE_nixproc-builder");

/// Runs `nixproc-builder primop NAME` the way the derivation does: the
/// argument file in `$inputPath`, the result in `$out`.
fn primop(dir: &Path, name: &str, input: &str) -> (Output, Option<String>) {
    let input_path = dir.join("input");
    let out = dir.join("out");
    let _ = std::fs::remove_file(&out);
    std::fs::write(&input_path, input).unwrap();
    let output = Command::new(BIN)
        .args(["primop", name])
        .env("inputPath", &input_path)
        .env("out", &out)
        .output()
        .unwrap();
    (output, std::fs::read_to_string(&out).ok())
}

fn direct(name: &str, arg: &serde_json::Value) -> serde_json::Value {
    primops::call(name, &Value::from_json(arg))
        .unwrap()
        .to_json()
}

/// A sysvinit script with hostile strings in the description, an argument
/// and the environment.
fn sysvinit_arg() -> serde_json::Value {
    json!({
        "name": "hello",
        "description": "it's \"quoted\" $(x) `y` ; % ünï\nline",
        "initFunctions": "/nix/store/00000000000000000000000000000000-init-functions",
        "process": "/nix/store/11111111111111111111111111111111-hello/bin/hello",
        "args": ["--greeting", "a b\nc '$HOME'"],
        "environment": { "PORT": 7000, "MSG": "x\"y\\z" },
        "runlevels": [3, 4, 5],
    })
}

#[test]
fn result_equals_the_core_function() {
    let tmp = tempfile::tempdir().unwrap();
    for (name, arg) in [
        ("createSystemVInitScript", sysvinit_arg()),
        (
            "nixprocCheckModel",
            json!({ "instances": [
                { "key": "b", "name": "b", "dependencies": ["a"] },
                { "key": "a", "name": "a", "dependencies": [] },
            ] }),
        ),
        (
            "nixprocEcho",
            json!({ "s": "x\ny", "l": [1, 2.5, null, true] }),
        ),
    ] {
        let (out, written) = primop(tmp.path(), name, &arg.to_string());
        assert!(
            out.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let written = written.expect("$out written");
        let got: serde_json::Value = serde_json::from_str(&written).unwrap();
        assert_eq!(got, direct(name, &arg), "{name}");
    }
}

#[test]
fn generator_errors_name_the_primop_and_exit_1() {
    let tmp = tempfile::tempdir().unwrap();
    let mut arg = sysvinit_arg();
    arg["bogusKey"] = json!(1);
    let (out, written) = primop(tmp.path(), "createSystemVInitScript", &arg.to_string());
    assert_eq!(out.status.code(), Some(1));
    assert!(written.is_none(), "no $out on failure");
    let err = String::from_utf8_lossy(&out.stderr);
    let expected = primops::call("createSystemVInitScript", &Value::from_json(&arg)).unwrap_err();
    assert_eq!(err.trim_end(), expected);
    assert!(err.starts_with("createSystemVInitScript: "), "{err}");
}

#[test]
fn unknown_primop_and_bad_input_are_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let (out, written) = primop(tmp.path(), "createNothing", "{}");
    assert_eq!(out.status.code(), Some(1));
    assert!(written.is_none());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with("createNothing: unknown primop (known: "),
        "{err}"
    );
    assert!(err.contains("createSystemVInitScript"), "{err}");

    let (out, _) = primop(tmp.path(), "nixprocEcho", "{not json");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.starts_with("nixprocEcho: the argument file "), "{err}");
    assert!(err.contains("is not JSON"), "{err}");

    let out = Command::new(BIN)
        .args(["primop", "nixprocEcho"])
        .env("inputPath", tmp.path().join("missing"))
        .env("out", tmp.path().join("o"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot read the argument file"), "{err}");
}

#[test]
fn input_and_out_can_be_given_as_options() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("arg.json");
    let out = tmp.path().join("result.json");
    std::fs::write(&input, r#"{"x":"y"}"#).unwrap();
    let o = Command::new(BIN)
        .args(["primop", "nixprocEcho", "--input"])
        .arg(&input)
        .arg("--out")
        .arg(&out)
        .env_remove("inputPath")
        .env_remove("out")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(std::fs::read_to_string(&out).unwrap(), r#"{"x":"y"}"#);
}
