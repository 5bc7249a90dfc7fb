//! String context of generated files: each file carries exactly the store
//! paths it mentions, so Nix builds (and keeps) what a script refers to and
//! nothing else.

mod common;

use common::*;

fn eval_json(expr: &str) -> serde_json::Value {
    let bin = release_dir();
    let out = run(std::process::Command::new("nix-instantiate")
        .args(["--eval", "--strict", "--json", "--option", "plugin-files"])
        .arg(bin.join("libnixproc_plugin.so"))
        .args(["--option", "substituters", "", "-I"])
        .arg(format!("nixproc={}", repo_root().join("nix").display()))
        .args(["-E", expr])
        .env("NIXPROC_BUILDER", bin.join("nixproc-builder")));
    assert_success(&out, "nix-instantiate");
    serde_json::from_slice(&out.stdout).unwrap()
}

const PRELUDE: &str = r##"
  let
    n = import <nixproc> { stateDir = "/tmp/nixproc-ctx"; };
    mk = name: n.mkDerivation { inherit name; files = [ { path = "bin/${name}"; text = "#!/bin/sh\n"; mode = 365; } ]; };
    hello = mk "hello";
    unrelated = mk "unrelated";
    pkg = n.createSystemVInitScript {
      instanceName = "ctx";
      process = "${hello}/bin/hello";
      credentials.users.ctx.description = "see ${unrelated}";
    };
    files = builtins.listToAttrs (map (f: { name = f.path; value = f; }) pkg.nixproc.spec.files);
    ctx = s: builtins.attrNames (builtins.getContext s);
    names = s: map (p: builtins.substring 44 (-1) p) (ctx s);
  in
"##;

#[test]
fn each_generated_file_carries_exactly_its_own_context() {
    let v = eval_json(&format!(
        r#"{PRELUDE} {{
          script = names files."etc/rc.d/init.d/ctx".text;
          user = names files."dysnomia-support/users/ctx".text;
          name = ctx pkg.nixproc.spec.name;
        }}"#
    ));
    let script: Vec<&str> = v["script"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    assert!(script.contains(&"hello.drv"), "{script:?}");
    assert!(!script.contains(&"unrelated.drv"), "{script:?}");
    // A daemon's script reaches the run-time helper through init-functions
    // (whose store file refers to it), so that is its only other reference.
    assert_eq!(script.len(), 2, "{script:?}");
    assert!(
        script.iter().any(|s| s.ends_with("init-functions")),
        "{script:?}"
    );
    assert_eq!(v["user"], serde_json::json!(["unrelated.drv"]));
    assert_eq!(v["name"], serde_json::json!([]));
}

#[test]
fn built_package_refers_to_the_process_it_runs() {
    let bin = release_dir();
    let expr = format!("{PRELUDE} pkg");
    let out = run(std::process::Command::new("nix-build")
        .args(["--no-out-link", "--option", "plugin-files"])
        .arg(bin.join("libnixproc_plugin.so"))
        .args(["--option", "substituters", "", "-I"])
        .arg(format!("nixproc={}", repo_root().join("nix").display()))
        .args(["-E", &expr])
        .env("NIXPROC_BUILDER", bin.join("nixproc-builder")));
    assert_success(&out, "nix-build of one process package");
    let path = stdout(&out).trim().to_string();
    let script = std::fs::read_to_string(format!("{path}/etc/rc.d/init.d/ctx")).unwrap();
    assert!(script.contains("-hello/bin/hello"), "{script}");
    let refs = run(std::process::Command::new("nix-store").args(["-q", "--references", &path]));
    let refs = stdout(&refs);
    assert!(refs.lines().any(|l| l.ends_with("-hello")), "{refs}");
    // The user file in dysnomia-support mentions it, so the package keeps it.
    assert!(refs.lines().any(|l| l.ends_with("-unrelated")), "{refs}");
    assert!(std::path::Path::new(&path).join("etc/rc.d/rc3.d").exists());
}
