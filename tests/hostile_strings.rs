//! Hostile strings in arguments, environment values and descriptions reach
//! the process byte for byte through the generated init scripts, for a
//! foreground process (daemonized by nixproc) and a daemon.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::*;

const HOSTILE: &[&str] = &[
    "plain",
    "with space",
    "single ' quote",
    "double \" quote",
    "$(touch /tmp/nixproc-pwned-subst)",
    "`touch /tmp/nixproc-pwned-backtick`",
    "semi; touch /tmp/nixproc-pwned-semi",
    "new\nline",
    "percent %s %n %% %i",
    "back\\slash \\n",
    "${HOME} $HOME",
    "",
    "-D",
    "--",
    "tab\there & | > < * ? [a] ~ # !",
];

fn dumped_args(path: &std::path::Path) -> Vec<String> {
    let raw = std::fs::read(path).expect("args dump");
    let mut v: Vec<String> = raw
        .split(|b| *b == 0)
        .map(|s| String::from_utf8(s.to_vec()).unwrap())
        .collect();
    v.pop(); // after the last NUL
    v
}

fn dumped_env(path: &std::path::Path) -> BTreeMap<String, String> {
    let raw = std::fs::read(path).expect("env dump");
    raw.split(|b| *b == 0)
        .filter_map(|e| {
            let e = String::from_utf8(e.to_vec()).ok()?;
            let (k, v) = e.split_once('=')?;
            Some((k.to_string(), v.to_string()))
        })
        .collect()
}

#[test]
fn hostile_strings_reach_the_process_verbatim() {
    let tmp = tempfile::tempdir().unwrap();
    let env: BTreeMap<String, String> = HOSTILE
        .iter()
        .enumerate()
        .map(|(i, s)| (format!("H_{i}"), s.to_string()))
        .collect();
    let spec = serde_json::json!({
        "args": HOSTILE,
        "env": env,
        "description": "desc ' \" $(touch /tmp/nixproc-pwned-desc) `x` ; \n %",
    });
    let file = tmp.path().join("hostile.json");
    std::fs::write(&file, spec.to_string()).unwrap();

    let model = repo_root().join("tests/models/hostile.nix");
    let d = Deployment::new(
        &model,
        &format!("{{ hostileFile = \"{}\"; }}", file.display()),
    );
    d.switch_ok(&[]);

    for name in ["hostile-fg", "hostile-daemon"] {
        let dir = d.state_dir().join(format!("dump-{name}"));
        eventually(Duration::from_secs(10), "dump written", || {
            dir.join("env").exists()
        });
        assert_eq!(dumped_args(&dir.join("args")), HOSTILE, "{name}: args");
        let got = dumped_env(&dir.join("env"));
        for (k, v) in &env {
            assert_eq!(got.get(k), Some(v), "{name}: environment {k}");
        }
    }
    for marker in ["subst", "backtick", "semi", "desc"] {
        let p = format!("/tmp/nixproc-pwned-{marker}");
        assert!(
            !std::path::Path::new(&p).exists(),
            "{p}: a hostile string was executed"
        );
    }
    assert_success(&d.undeploy(), "undeploy");
}
