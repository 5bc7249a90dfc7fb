//! Every value type through `builtins.nixprocEcho` in the real Nix.
mod common;

use common::*;
use serde_json::json;

#[test]
fn every_value_type_round_trips() {
    let out = eval_file_json(&fixture("roundtrip.nix"), &[]);
    let v = json_of(&out, "roundtrip.nix");

    assert_eq!(
        v["types"],
        json!(["int", "float", "bool", "null", "string", "list", "set", "list"])
    );
    assert_eq!(
        v["rootTypes"],
        json!({
            "big": "int", "bin": "string", "drv": "string", "empty": "string",
            "f": "bool", "float": "float", "inList": "list", "int": "int",
            "list": "list", "n": "null", "neg": "int", "nested": "set",
            "path": "string", "s": "string", "t": "bool"
        })
    );
    let r = &v["r"];
    assert_eq!(r["int"], json!(42));
    assert_eq!(r["neg"], json!(-7));
    assert_eq!(r["big"], json!(i64::MAX));
    assert_eq!(r["float"], json!(1.5));
    assert_eq!(r["s"], json!("héllo \"quoted\"\n\ttab ${x} ✓"));
    assert_eq!(r["empty"], json!(""));
    assert_eq!(
        r["nested"],
        json!({ "": 3, "a": { "b": { "c": [ { "d": 1 }, "x" ] } }, "weird key": 1, "with.dot": 2 })
    );
    assert_eq!(v["names"], json!(["", "a", "weird key", "with.dot"]));
    assert_eq!(v["sameAsInput"], json!(true));

    // derivations become their output path, paths are copied to the store
    assert_eq!(v["drvIsOutPath"], json!(true));
    assert_eq!(v["binIsBinOutPath"], json!(true));
    assert_eq!(v["inListOther"], json!(true));
    assert_eq!(v["pathIsStorePath"], json!(true));
    let path = r["path"].as_str().unwrap();
    assert!(
        path.starts_with("/nix/store/") && path.ends_with("-somefile.nix"),
        "{path}"
    );
    assert!(r["drv"].as_str().unwrap().ends_with("-hello"));
    assert!(r["bin"].as_str().unwrap().ends_with("-multi-bin"));

    assert_eq!(v["scalars"], json!([1, "x", null, true, 2.5, [], {}]));
}

#[test]
fn every_core_primop_is_a_builtin_and_not_a_global() {
    for op in nixproc_core::primops::PRIMOPS {
        let has = eval_json(&format!("builtins ? {}", op.name));
        assert_eq!(has, json!(true), "builtins.{} missing", op.name);
        // Registered as `__name`: no global that would shadow `with` scopes.
        let shadow = eval_json(&format!("with {{ {} = \"mine\"; }}; {}", op.name, op.name));
        assert_eq!(shadow, json!("mine"), "{} shadows `with`", op.name);
    }
    // Test-only primops are absent from normal builds.
    if !cfg!(feature = "test-primops") {
        assert_eq!(eval_json("builtins ? nixprocTestPanic"), json!(false));
    }
}

#[test]
fn primops_are_functions_of_one_argument() {
    assert_eq!(
        eval_json("builtins.typeOf builtins.nixprocEcho"),
        json!("lambda")
    );
    assert_eq!(eval_json("map builtins.nixprocEcho [ 1 2 ]"), json!([1, 2]));
}
