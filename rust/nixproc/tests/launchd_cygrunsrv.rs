//! launchd and cygrunsrv through the Nix layer: `createManagedProcess`
//! with `processManager = "launchd"`/`"cygrunsrv"` and the backends' own
//! create functions evaluated by the real `nix-instantiate` with the
//! plugin, and a package built with `nix-build`. The plists must parse
//! (Python's `plistlib`) with the expected keys; the cygrunsrv parameters
//! file must be one argument per line. (Neither process manager runs here:
//! the activators' command plans are unit-tested in `deploy::launchd` and
//! `deploy::cygrunsrv`.)
//!
//! The binaries: the plugin and the static builder from
//! `$NIXPROC_TEST_BIN_DIR` or `target/release` (scripts/build.sh) — they
//! must include the launchd and cygrunsrv generators.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

fn bin_dir() -> PathBuf {
    let dir = std::env::var_os("NIXPROC_TEST_BIN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("target/release"));
    for f in ["libnixproc_plugin.so", "nixproc-builder"] {
        assert!(
            dir.join(f).exists(),
            "{} missing: run scripts/build.sh (or set NIXPROC_TEST_BIN_DIR)",
            dir.join(f).display()
        );
    }
    dir
}

/// `nix-instantiate`/`nix-build` with the plugin and `<nixproc>`.
fn nix(program: &str) -> Command {
    let bin = bin_dir();
    let mut cmd = Command::new(program);
    cmd.env("NIXPROC_BUILDER", bin.join("nixproc-builder"))
        .arg("--option")
        .arg("plugin-files")
        .arg(bin.join("libnixproc_plugin.so"))
        .args(["--option", "substituters", "", "-I"])
        .arg(format!("nixproc={}", repo_root().join("nix").display()));
    cmd
}

fn ok(out: &Output, what: &str) -> String {
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Evaluates `expr` (with `nixproc` bound to the library) to JSON.
fn eval_json(lib_args: &str, expr: &str) -> serde_json::Value {
    let full = format!("let nixproc = import <nixproc> {lib_args}; in {expr}");
    let out = nix("nix-instantiate")
        .args(["--eval", "--strict", "--json", "--read-write-mode", "-E"])
        .arg(&full)
        .output()
        .unwrap();
    serde_json::from_str(&ok(&out, &full)).unwrap()
}

/// Python's plistlib reading of a document, as JSON.
fn plistlib(text: &str) -> serde_json::Value {
    let mut child = Command::new("python3")
        .arg("-c")
        .arg(
            "import json, plistlib, sys\n\
             print(json.dumps(plistlib.loads(sys.stdin.buffer.read(), fmt=plistlib.FMT_XML)))",
        )
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    serde_json::from_slice(&ok(&out, "plistlib").into_bytes()).unwrap()
}

/// The text of the file at `path` in a package's generated files.
fn file_text(files: &serde_json::Value, path: &str) -> String {
    files
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["path"] == path)
        .unwrap_or_else(|| panic!("no {path} in {files}"))["text"]
        .as_str()
        .unwrap()
        .to_string()
}

const HELLO: &str = "/bin/sh";

const MANAGED: &str = r#"nixproc.createManagedProcess {
    instanceName = "hello2";
    process = "/bin/sh";
    args = [ "-c" "echo \"$PORT\" <&> 'q'" ];
    environment.PORT = 7000;
    umask = "022";
    dependencies = [ dep ];
  }"#;

fn managed_expr(pm_extra: &str) -> String {
    format!(
        r#"let dep = nixproc.createManagedProcess {{ name = "dep"; process = "/bin/true"; {pm_extra} }};
           pkg = {MANAGED};
        in {{ inherit (pkg.nixproc.spec) files manifest; name = pkg.name; }}"#
    )
}

#[test]
fn launchd_through_create_managed_process() {
    let j = eval_json(
        r#"{ processManager = "launchd"; stateDir = "/tmp/nixproc-launchd"; }"#,
        &managed_expr(""),
    );
    assert_eq!(j["name"], "hello2");
    let text = file_text(&j["files"], "Library/LaunchDaemons/org.nixos.hello2.plist");
    let d = plistlib(&text);
    let keys: Vec<&String> = d.as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        [
            "EnvironmentVariables",
            "KeepAlive",
            "Label",
            "Program",
            "ProgramArguments",
            "RunAtLoad",
            "StandardErrorPath",
            "StandardOutPath",
            "Umask",
        ]
    );
    assert_eq!(d["Label"], "org.nixos.hello2");
    assert_eq!(d["Umask"], 18);
    assert_eq!(d["EnvironmentVariables"]["PORT"], "7000");
    assert_eq!(
        d["ProgramArguments"],
        serde_json::json!([HELLO, "-c", "echo \"$PORT\" <&> 'q'"])
    );
    assert_eq!(
        d["StandardOutPath"],
        "/tmp/nixproc-launchd/log/nixproc-hello2.log"
    );
    assert_eq!(j["manifest"]["dependencies"], serde_json::json!(["dep"]));
    assert_eq!(j["manifest"]["backend"]["type"], "launchd");
}

#[test]
fn launchd_own_create_function_and_build() {
    let dir = tempfile::tempdir().unwrap();
    let expr = r#"let nixproc = import <nixproc> { processManager = "launchd"; }; in
      nixproc.createLaunchdDaemon {
        name = "web";
        Program = "/bin/sh";
        KeepAlive = true;
        UserName = "web";
        credentials.users.web = { group = "web"; description = "Web"; };
      }"#;
    let out = nix("nix-build")
        .args(["--no-out-link", "-E", expr])
        .current_dir(dir.path())
        .output()
        .unwrap();
    let out_path = ok(&out, "nix-build").trim().to_string();
    let plist = Path::new(&out_path).join("Library/LaunchDaemons/org.nixos.web.plist");
    let d = plistlib(&fs::read_to_string(&plist).unwrap());
    assert_eq!(d["KeepAlive"], true);
    assert_eq!(d["UserName"], "web");
    assert!(Path::new(&out_path)
        .join("dysnomia-support/users/web")
        .is_file());
}

#[test]
fn cygrunsrv_through_create_managed_process() {
    let j = eval_json(
        r#"{ processManager = "cygrunsrv"; stateDir = "/tmp/nixproc-cyg"; forceDisableUserChange = true; }"#,
        &managed_expr(""),
    );
    assert_eq!(j["name"], "nix-process-hello2");
    let text = file_text(&j["files"], "nix-process-hello2-cygrunsrvparams");
    let lines: Vec<&str> = text.lines().collect();
    // umask needs the proxy (cygrunsrv has no setting for it).
    assert_eq!(lines[0], "--path");
    assert!(lines[1].ends_with("-nixproc-builder"), "{text}");
    let i = lines.iter().position(|l| *l == "--env").unwrap();
    assert_eq!(lines[i + 1], "PORT=7000");
    assert_eq!(lines[lines.len() - 2..], ["--dep", "nix-process-dep"]);
    assert_eq!(j["manifest"]["name"], "nix-process-hello2");
    assert_eq!(
        j["manifest"]["dependencies"],
        serde_json::json!(["nix-process-dep"])
    );
}

#[test]
fn cygrunsrv_refuses_users_with_a_clear_error() {
    let expr = r#"let nixproc = import <nixproc> { processManager = "cygrunsrv"; }; in
      (nixproc.createManagedProcess { name = "x"; process = "/bin/sh"; user = "web"; }).nixproc.spec.files"#;
    let out = nix("nix-instantiate")
        .args([
            "--eval",
            "--strict",
            "--json",
            "--read-write-mode",
            "-E",
            expr,
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cygrunsrv services run as Windows accounts"),
        "{err}"
    );
}
