//! The plugin refuses to register anything in a Nix it was not built for.
//!
//! The build-time version is the C string `NIXPROC_NIX_VERSION` in the .so;
//! patching it in a copy simulates a plugin built for another Nix release.
mod common;

use common::*;

fn running_version() -> String {
    let out = std::process::Command::new("nix-instantiate")
        .arg("--version")
        .output()
        .unwrap();
    String::from_utf8(out.stdout)
        .unwrap()
        .split_whitespace()
        .last()
        .unwrap()
        .to_string()
}

#[test]
fn mismatching_build_version_registers_nothing() {
    let running = running_version();
    let so = std::fs::read(plugin_so()).unwrap();
    let needle: Vec<u8> = format!("{running}\0").into_bytes();
    let hits: Vec<usize> = so
        .windows(needle.len())
        .enumerate()
        .filter(|(_, w)| *w == needle.as_slice())
        .map(|(i, _)| i)
        .collect();
    assert_eq!(
        hits.len(),
        1,
        "expected the build version {running:?} exactly once in the plugin"
    );
    let mut patched = so.clone();
    let last = hits[0] + running.len() - 1;
    patched[last] = if patched[last] == b'9' { b'8' } else { b'9' };
    let fake = String::from_utf8(patched[hits[0]..=last].to_vec()).unwrap();

    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join(SO_NAME);
    std::fs::write(&copy, &patched).unwrap();

    let out = nix_instantiate_with(&copy)
        .args([
            "--eval",
            "--strict",
            "--json",
            "-E",
            "[ (builtins ? nixprocEcho) (1 + 1) ]",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "[false,2]");
    assert!(
        stderr.contains(&format!("built for Nix {fake} but this is Nix {running}")),
        "{stderr}"
    );

    // The unpatched plugin registers normally in the same Nix.
    let out = nix_instantiate()
        .args(["--eval", "--json", "-E", "builtins ? nixprocEcho"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "true");
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
