//! `build` through the binary, as Nix runs it.

use std::os::unix::fs::PermissionsExt;
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_nixproc-builder");

#[test]
fn builds_from_env_like_nix() {
    let tmp = tempfile::tempdir().unwrap();
    let spec = tmp.path().join("spec");
    std::fs::write(
        &spec,
        r##"{"files":[{"path":"etc/rc.d/init.d/web","text":"#!/bin/sh\n","mode":365}],
            "links":[{"path":"etc/rc.d/rc3.d/S01web","target":"../init.d/web"},
                     {"path":"bin/nginx","target":"/usr/sbin/nginx"}],
            "dirs":[],"single":null,"postInstall":null,"shell":null}"##,
    )
    .unwrap();
    let out = tmp.path().join("out");
    let o = Command::new(BIN)
        .arg("build")
        .env("specPath", &spec)
        .env("out", &out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let script = out.join("etc/rc.d/init.d/web");
    assert_eq!(std::fs::read_to_string(&script).unwrap(), "#!/bin/sh\n");
    assert_eq!(
        std::fs::metadata(&script).unwrap().permissions().mode() & 0o7777,
        0o555
    );
    assert_eq!(
        std::fs::read_link(out.join("bin/nginx")).unwrap().to_str(),
        Some("/usr/sbin/nginx")
    );
}

#[test]
fn flags_and_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let spec = tmp.path().join("spec.json");
    std::fs::write(
        &spec,
        r#"{"files":[{"path":"../escape","text":"x","mode":292}]}"#,
    )
    .unwrap();
    let out = tmp.path().join("out");
    let o = Command::new(BIN)
        .arg("build")
        .arg("--spec")
        .arg(&spec)
        .arg("--out")
        .arg(&out)
        .env_remove("specPath")
        .env_remove("out")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.starts_with("nixproc-builder: invalid path \"../escape\""),
        "{err}"
    );
    assert!(!tmp.path().join("escape").exists());

    // Duplicate process names must never overwrite each other.
    std::fs::write(
        &spec,
        r#"{"files":[{"path":"etc/rc.d/init.d/web","text":"1","mode":365},
                     {"path":"etc/rc.d/init.d/web","text":"2","mode":365}]}"#,
    )
    .unwrap();
    let o = Command::new(BIN)
        .args(["build", "--spec"])
        .arg(&spec)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("\"etc/rc.d/init.d/web\" is generated twice with different contents"),
        "{err}"
    );

    // postInstall failure.
    std::fs::write(
        &spec,
        r#"{"postInstall":"echo oops >&2; exit 7","shell":"/bin/sh"}"#,
    )
    .unwrap();
    let o = Command::new(BIN)
        .args(["build", "--spec"])
        .arg(&spec)
        .arg("--out")
        .arg(tmp.path().join("out3"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("oops"), "{err}");
    assert!(
        err.contains("postInstall failed with exit status 7"),
        "{err}"
    );

    // Missing spec.
    let o = Command::new(BIN)
        .arg("build")
        .env_remove("specPath")
        .env_remove("out")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).starts_with("nixproc-builder: "));
}

#[test]
fn post_install_runs_in_nix_build_top_with_out() {
    let tmp = tempfile::tempdir().unwrap();
    let top = tmp.path().join("top");
    std::fs::create_dir(&top).unwrap();
    let spec = tmp.path().join("spec.json");
    std::fs::write(
        &spec,
        r#"{"postInstall":"pwd > \"$out/cwd\"; mkdir \"$out/extra\"", "dirs":["d"]}"#,
    )
    .unwrap();
    let out = tmp.path().join("out");
    let o = Command::new(BIN)
        .args(["build", "--spec"])
        .arg(&spec)
        .arg("--out")
        .arg(&out)
        .env("NIX_BUILD_TOP", &top)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(
        std::fs::read_to_string(out.join("cwd")).unwrap().trim(),
        top.to_str().unwrap()
    );
    assert!(out.join("extra").is_dir());
    assert!(out.join("d").is_dir());
}
