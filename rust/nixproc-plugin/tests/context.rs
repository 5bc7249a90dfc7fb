//! String context through the plugin: each returned string carries exactly
//! the context elements whose store path it mentions.
mod common;

use common::*;
use serde_json::json;

#[test]
fn each_output_string_has_exactly_its_own_context() {
    let out = eval_file_json(&fixture("context.nix"), &[]);
    let v = json_of(&out, "context.nix");
    let got = &v["got"];
    let want = &v["want"];
    for key in ["a", "b", "c", "d", "e", "drvPath", "deep", "conf"] {
        assert_eq!(got[key], want[key], "context of '{key}'");
    }
    assert_eq!(got["b"], json!({}));
    // d: the multi-output derivation's `bin` output only
    let d = got["d"].as_object().unwrap();
    assert_eq!(d.len(), 1);
    let (drv, spec) = d.iter().next().unwrap();
    assert!(drv.ends_with("-multi.drv"), "{drv}");
    assert_eq!(spec, &json!({ "outputs": ["bin"] }));
    // c: a plain source path
    let c = got["c"].as_object().unwrap();
    assert!(c.keys().all(|k| k.ends_with("-somefile.nix")));
    // every comparison also done in Nix
    assert!(v["equal"]
        .as_object()
        .unwrap()
        .values()
        .all(|b| b == &json!(true)));
}

#[test]
fn derivation_using_the_result_depends_on_exactly_the_mentioned_inputs() {
    let expr = r#"
      let
        f = import ./lib.nix;
        r = builtins.nixprocEcho { exec = "${f.hello}/bin/hello"; unrelated = "${f.other}"; };
      in derivation {
        name = "uses-echo"; system = builtins.currentSystem; builder = "/bin/sh";
        args = [ "-c" "echo ${r.exec} > $out" ];
      }
    "#;
    let out = nix_instantiate()
        .current_dir(fixture(""))
        .args(["-E", expr])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let drv = String::from_utf8(out.stdout).unwrap();
    let refs = std::process::Command::new("nix-store")
        .args(["-q", "--references", drv.trim()])
        .output()
        .unwrap();
    let refs = String::from_utf8(refs.stdout).unwrap();
    assert!(refs.contains("-hello.drv"), "{refs}");
    assert!(!refs.contains("-other.drv"), "{refs}");
}
