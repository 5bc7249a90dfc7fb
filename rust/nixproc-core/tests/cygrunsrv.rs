//! Golden parameters files, and proof that what the file says is what the
//! service gets: every line is one argument of `cygrunsrv --install`, and
//! the `--args` line reads back (POSIX shell word splitting, the quoting
//! Cygwin's command-line parser understands) to the original arguments.

use std::process::Command;

use nixproc_core::agnostic::create_managed_process;
use nixproc_core::cygrunsrv::create_cygrunsrv_params;
use nixproc_core::package::PackageSpec;
use nixproc_core::quote::c_unescape;
use nixproc_core::value::attrs;
use nixproc_core::Value;

const HELLO: &str = "/nix/store/11111111111111111111111111111111-hello-2.12/bin/hello";
const WEBAPP: &str = "/nix/store/22222222222222222222222222222222-webapp/bin/webapp";
const BUILDER: &str = "/nix/store/44444444444444444444444444444444-nixproc/bin/nixproc-builder";

/// Strings that break naive quoting.
const HOSTILE: &[&str] = &[
    "plain",
    "with space",
    "quote ' \" mix",
    "$(echo pwned) `echo pwned` ${HOME}",
    "semi ; rm -rf / ; &&",
    "100% %i %%",
    "\\backslash\\",
    "ünïcødé ✓",
    "",
    "-dash",
    "*glob?[x]",
];

fn manifest_json(p: &PackageSpec) -> String {
    let mut m = serde_json::to_value(&p.manifest).unwrap();
    m["revision"] = "<revision>".into();
    serde_json::to_string_pretty(&m).unwrap()
}

fn params(p: &PackageSpec) -> Vec<String> {
    p.files[0].text.lines().map(String::from).collect()
}

/// The value after `flag` in a parameters file.
fn value_of<'a>(lines: &'a [String], flag: &str) -> &'a str {
    let i = lines.iter().position(|l| l == flag).expect("flag present");
    &lines[i + 1]
}

/// Splits a command line the way `sh` does (no expansion happens: the
/// words are quoted), returning the words.
fn sh_split(line: &str) -> Vec<String> {
    let out = Command::new("sh")
        .arg("-c")
        .arg("set -f; eval \"set -- $1\"; for a; do printf '%s\\0' \"$a\"; done")
        .arg("sh")
        .arg(line)
        .output()
        .unwrap();
    assert!(out.status.success());
    let s = String::from_utf8(out.stdout).unwrap();
    let mut words: Vec<String> = s.split('\0').map(String::from).collect();
    words.pop();
    words
}

#[test]
fn foreground_example() {
    let p = create_managed_process(&attrs([
        ("processManager", "cygrunsrv".into()),
        (
            "foregroundProxy",
            format!("{BUILDER} foreground-proxy").into(),
        ),
        ("instanceName", "hello2".into()),
        ("process", HELLO.into()),
        ("args", Value::from(vec!["--port-from-env"])),
        ("environment", attrs([("PORT", Value::Int(7000))])),
        (
            "dependencies",
            Value::List(vec![attrs([("name", Value::from("nix-process-dep"))])]),
        ),
    ]))
    .unwrap();
    insta::assert_snapshot!("foreground_example_params", p.files[0].text);
    insta::assert_snapshot!("foreground_example_manifest", manifest_json(&p));
}

#[test]
fn daemon_example() {
    let p = create_managed_process(&attrs([
        ("processManager", "cygrunsrv".into()),
        (
            "foregroundProxy",
            format!("{BUILDER} foreground-proxy").into(),
        ),
        ("runtimeDir", "/var/run".into()),
        ("instanceName", "webapp".into()),
        ("daemon", WEBAPP.into()),
        ("daemonArgs", Value::from(vec!["-D"])),
        ("initialize", "mkdir -p /var/lib/webapp".into()),
        ("umask", "022".into()),
    ]))
    .unwrap();
    insta::assert_snapshot!("daemon_wrapped_params", p.files[0].text);
}

#[test]
fn hostile_arguments_read_back_verbatim() {
    let p = create_cygrunsrv_params(&attrs([
        ("name", "hostile".into()),
        ("path", HELLO.into()),
        ("args", Value::from(HOSTILE.to_vec())),
        (
            "environment",
            attrs(
                HOSTILE
                    .iter()
                    .enumerate()
                    .map(|(i, h)| (format!("V{i:02}"), Value::from(*h))),
            ),
        ),
        ("description", "<desc> $(x) 'q'".into()),
    ]))
    .unwrap();
    let lines = params(&p);
    assert_eq!(sh_split(value_of(&lines, "--args")), HOSTILE);
    // --env lines are NAME=value exactly (each line is one argv element).
    let envs: Vec<&String> = lines
        .iter()
        .zip(lines.iter().skip(1))
        .filter(|(f, _)| *f == "--env")
        .map(|(_, v)| v)
        .collect();
    for (i, h) in HOSTILE.iter().enumerate() {
        assert_eq!(envs[i], &format!("V{i:02}={h}"));
    }
    assert_eq!(value_of(&lines, "--desc"), "<desc> $(x) 'q'");
}

#[test]
fn hostile_agnostic_values_with_line_breaks_go_through_the_proxy() {
    let nasty = ["new\nline", "cr\rlf", "tab\there", "ctl\u{1}"];
    let p = create_managed_process(&attrs([
        ("processManager", "cygrunsrv".into()),
        (
            "foregroundProxy",
            format!("{BUILDER} foreground-proxy").into(),
        ),
        ("name", "h".into()),
        ("process", HELLO.into()),
        ("args", Value::from(nasty.to_vec())),
    ]))
    .unwrap();
    let lines = params(&p);
    assert_eq!(value_of(&lines, "--path"), BUILDER);
    let words = sh_split(value_of(&lines, "--args"));
    assert_eq!(words[..3], ["foreground-proxy", "--escaped", "--"]);
    let decoded: Vec<String> = words[3..].iter().map(|w| c_unescape(w).unwrap()).collect();
    assert_eq!(decoded[0], HELLO);
    assert_eq!(decoded[1..], nasty);
}
