//! A Rust panic inside a primop becomes a catchable Nix error, not an abort.
//!
//! Production builds have no primop that panics, so this test builds the
//! `test-primops` variant of the plugin (adds `builtins.nixprocTestPanic`)
//! into its own target directory, `<target>/nixproc-plugin-test-primops`.
mod common;

use common::*;
use std::path::PathBuf;

fn test_primops_plugin() -> PathBuf {
    let profile = profile_dir();
    let target = profile
        .parent()
        .expect("target dir")
        .join("nixproc-plugin-test-primops");
    let out = cargo()
        .current_dir(repo_root())
        .env("CARGO_TARGET_DIR", &target)
        .args([
            "build",
            "-p",
            "nixproc-plugin",
            "--features",
            "test-primops",
        ])
        .output()
        .expect("run cargo");
    assert!(
        out.status.success(),
        "building the test-primops plugin failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let so = target.join("debug").join(SO_NAME);
    assert!(so.is_file(), "{} missing", so.display());
    so
}

#[test]
fn panic_is_a_catchable_error() {
    let so = test_primops_plugin();
    let eval = |expr: &str| {
        nix_instantiate_with(&so)
            .args(["--eval", "--strict", "--json", "-E", expr])
            .output()
            .unwrap()
    };

    let out = eval("builtins.nixprocTestPanic \"requested panic\"");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(1),
        "not an ordinary error: {stderr}"
    );
    assert!(
        stderr.contains(
            "error: nixproc: internal error (Rust panic): nixprocTestPanic: requested panic"
        ),
        "{stderr}"
    );
    assert!(stderr.contains("«string»:1:1"), "{stderr}");

    let out = eval(
        "let t = builtins.tryEval (builtins.nixprocTestPanic \"x\"); \
         in [ t.success (builtins.nixprocEcho { a = 1; }) ]",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        r#"[false,{"a":1}]"#
    );
}
