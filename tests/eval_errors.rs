//! Bad processes models give clear Nix evaluation errors that name what is
//! wrong, and nothing is deployed.

mod common;

use common::*;

fn build_error(model: &str) -> String {
    let path = repo_root().join("tests/models/errors").join(model);
    let d = Deployment::new(&path, "{}");
    let out = d.nixproc(&["build", path.to_str().unwrap()]);
    assert!(!out.status.success(), "{model} must not build");
    assert!(stdout(&out).trim().is_empty(), "no store path printed");
    stderr(&out)
}

#[test]
fn missing_process_name() {
    let e = build_error("missing-process-name.nix");
    assert!(e.contains("no process name"), "{e}");
}

#[test]
fn wrong_type_names_the_attribute_and_primop() {
    let e = build_error("wrong-type.nix");
    assert!(e.contains("createSystemVInitScript"), "{e}");
    assert!(
        e.contains("'runlevels' must be a list, but it is int"),
        "{e}"
    );
}

#[test]
fn unknown_parameter_suggests_the_right_one() {
    let e = build_error("unknown-parameter.nix");
    assert!(
        e.contains("unknown parameter 'runlevel' (did you mean 'runlevels'?)"),
        "{e}"
    );
}

#[test]
fn dependency_cycle_is_reported_as_such() {
    let e = build_error("cycle.nix");
    assert!(e.contains("dependency cycle: "), "{e}");
    assert!(!e.contains("infinite recursion"), "{e}");
}

#[test]
fn duplicate_instance_names() {
    let e = build_error("duplicate-names.nix");
    assert!(e.contains("duplicate process name 'webapp'"), "{e}");
    assert!(e.contains("'first' and 'second'"), "{e}");
}

#[test]
fn instance_without_pkg() {
    let e = build_error("missing-pkg.nix");
    assert!(
        e.contains("instance 'broken'") && e.contains("no 'pkg' attribute"),
        "{e}"
    );
}

#[test]
fn errors_are_catchable_with_try_eval() {
    let tc = release_dir();
    let nix_dir = repo_root().join("nix");
    let expr = format!(
        "let n = import {}/default.nix {{ stateDir = \"/tmp/x\"; }}; in \
         (builtins.tryEval (n.createSystemVInitScript {{ instanceName = \"x\"; runlevels = 3; }}).nixproc.spec).success",
        nix_dir.display()
    );
    let out = run(std::process::Command::new("nix-instantiate")
        .args(["--eval", "--option", "plugin-files"])
        .arg(tc.join("libnixproc_plugin.so"))
        .args(["--option", "substituters", "", "-E", &expr])
        .env("NIXPROC_BUILDER", tc.join("nixproc-builder")));
    assert_success(&out, "tryEval");
    assert_eq!(stdout(&out).trim(), "false");
}
