//! Errors: Nix evaluation errors with the caller's position, catchable by
//! `builtins.tryEval`, never an abort.
mod common;

use common::*;
use serde_json::json;

fn run(attr: &str) -> std::process::Output {
    eval_file_json(&fixture("errors.nix"), &["-A", attr])
}

fn fails(attr: &str) -> String {
    let out = run(attr);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{attr}: expected an evaluation error (exit 1), got {:?}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn at_line(stderr: &str, line: u32) {
    let want = format!("errors.nix:{line}:");
    assert!(stderr.contains(&want), "no position {want} in:\n{stderr}");
}

#[test]
fn primop_error_names_primop_and_has_position() {
    let e = fails("primop");
    assert!(
        e.contains("error: nixproc: createSystemVInitScript: "),
        "{e}"
    );
    at_line(&e, 6);
}

#[test]
fn errors_are_catchable_by_try_eval() {
    for attr in ["tryPrimop", "tryFunction", "tryCyclic", "tryThrowInside"] {
        let v = json_of(&run(attr), attr);
        assert_eq!(v["success"], json!(false), "{attr}");
    }
    // and evaluation goes on normally afterwards
    let v = json_of(&run("afterErrors"), "afterErrors");
    assert_eq!(v[0], json!(false));
    assert!(v[1]["ok"].as_str().unwrap().ends_with("-hello"));
}

#[test]
fn function_in_argument() {
    let e = fails("function");
    assert!(
        e.contains("nixproc: cannot pass a function to nixprocEcho"),
        "{e}"
    );
    assert!(e.contains("a.b[1]"), "{e}");
    at_line(&e, 8);
    let e = fails("rootFunction");
    assert!(
        e.contains("nixproc: cannot pass a function to nixprocEcho"),
        "{e}"
    );
    at_line(&e, 10);
}

#[test]
fn cyclic_and_too_deep_values() {
    let e = fails("cyclic");
    assert!(e.contains("nixproc: value nested too deeply"), "{e}");
    at_line(&e, 11);
    let e = fails("tooDeep");
    assert!(e.contains("nixproc: value nested too deeply"), "{e}");
    // 60 levels are fine
    let v = json_of(&run("deepButFine"), "deepButFine");
    let mut depth = 0;
    let mut cur = &v;
    while let Some(next) = cur.get("x") {
        cur = next;
        depth += 1;
    }
    assert_eq!(depth, 60);
    assert_eq!(cur, &json!(0));
}

#[test]
fn nix_errors_inside_the_argument_pass_through() {
    let e = fails("throwInside");
    assert!(e.contains("boom from nix"), "{e}");
    // with --show-trace, the plugin says what it was doing
    let out = nix_instantiate()
        .args(["--eval", "--strict", "--show-trace"])
        .arg(fixture("errors.nix"))
        .args(["-A", "throwInside"])
        .output()
        .unwrap();
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(
        e.contains("while evaluating the argument passed to builtins.nixprocEcho"),
        "{e}"
    );
}

#[test]
fn wrong_argument_type() {
    let e = eval_err("builtins.nixprocCheckModel 3");
    assert!(e.contains("error: nixproc: nixprocCheckModel: "), "{e}");
    assert!(e.contains("«string»:1:1"), "{e}");
}

#[test]
fn non_utf8_strings_are_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("binary");
    std::fs::write(&file, b"ok \xff\xfe bytes").unwrap();
    let read = format!("builtins.readFile {}", file.display());
    let e = eval_err(&format!("builtins.nixprocEcho {{ data = [ ({read}) ]; }}"));
    assert!(
        e.contains(
            "error: nixproc: nixprocEcho: a string in attribute 'data[0]' is not valid UTF-8"
        ),
        "{e}"
    );
    let v = eval_json(&format!(
        "(builtins.tryEval (builtins.nixprocEcho ({read}))).success"
    ));
    assert_eq!(v, json!(false));
}
