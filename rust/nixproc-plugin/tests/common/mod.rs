//! Helpers shared by the plugin's integration tests: locate the built
//! plugin and run the real `nix-instantiate` with it loaded.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub const SO_NAME: &str = "libnixproc_plugin.so";

/// The repository root (`rust/nixproc-plugin/../..`).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("repository root")
}

/// `tests/plugin/<name>` in the repository.
pub fn fixture(name: &str) -> PathBuf {
    repo_root().join("tests/plugin").join(name)
}

/// The profile directory (`<target>/debug`, `<target>/release`) this test
/// executable was built into: it lives in `<profile>/deps/`.
pub fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    let deps = exe.parent().expect("deps dir");
    deps.parent().expect("profile dir").to_path_buf()
}

/// The plugin to test. `NIXPROC_PLUGIN_SO` overrides; otherwise the `.so`
/// cargo built next to this test executable: `<profile>/deps/` first (cargo
/// rebuilds it for every test run, because the library is a dependency of
/// the tests), then `<profile>/` (`cargo build`'s copy).
pub fn plugin_so() -> PathBuf {
    if let Some(p) = std::env::var_os("NIXPROC_PLUGIN_SO") {
        return PathBuf::from(p);
    }
    let profile = profile_dir();
    for cand in [profile.join("deps").join(SO_NAME), profile.join(SO_NAME)] {
        if cand.is_file() {
            return cand;
        }
    }
    panic!(
        "{SO_NAME} not found in {}/deps or {}; build it with cargo build -p nixproc-plugin \
         or set NIXPROC_PLUGIN_SO",
        profile.display(),
        profile.display()
    );
}

/// A `nix-instantiate` command with `so` loaded and no substituters.
pub fn nix_instantiate_with(so: &Path) -> Command {
    let mut c = Command::new("nix-instantiate");
    c.arg("--option")
        .arg("plugin-files")
        .arg(so)
        .arg("--option")
        .arg("substituters")
        .arg("");
    c
}

pub fn nix_instantiate() -> Command {
    nix_instantiate_with(&plugin_so())
}

/// `--eval --strict --json` of a file, in `tests/plugin/`.
pub fn eval_file_json(file: &Path, args: &[&str]) -> Output {
    let mut c = nix_instantiate();
    c.args(["--eval", "--strict", "--json"])
        .args(args)
        .arg(file);
    c.output().expect("run nix-instantiate")
}

/// `--eval --strict --json -E expr`, evaluated in `tests/plugin/`.
pub fn eval_json_output(expr: &str) -> Output {
    nix_instantiate()
        .current_dir(fixture(""))
        .args(["--eval", "--strict", "--json", "-E", expr])
        .output()
        .expect("run nix-instantiate")
}

/// Evaluates `expr` and parses the JSON result; panics with stderr on failure.
pub fn eval_json(expr: &str) -> serde_json::Value {
    let out = eval_json_output(expr);
    json_of(&out, expr)
}

pub fn json_of(out: &Output, what: &str) -> serde_json::Value {
    assert!(
        out.status.success(),
        "nix-instantiate failed for {what}:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "bad JSON from nix-instantiate ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

/// Evaluates `expr`, which must fail; returns stderr.
pub fn eval_err(expr: &str) -> String {
    let out = eval_json_output(expr);
    assert!(
        !out.status.success(),
        "expected failure for {expr}, got {}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Cargo, to build plugin variants in tests.
pub fn cargo() -> Command {
    let cargo = std::env::var_os("CARGO")
        .or_else(|| option_env!("CARGO").map(Into::into))
        .unwrap_or_else(|| "cargo".into());
    Command::new(cargo)
}
