//! Golden files of whole generated init scripts, and scripts actually run by
//! `sh` with stub init functions: hostile values must reach the process
//! byte for byte.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use nixproc_core::sysvinit::create_systemv_init_script;
use nixproc_core::value::attrs;
use nixproc_core::Value;
use proptest::prelude::*;

const INIT: &str = "/nix/store/00000000000000000000000000000000-init-functions";
const HELLO: &str = "/nix/store/11111111111111111111111111111111-hello-2.12/bin/hello";
const WEBAPP: &str = "/nix/store/22222222222222222222222222222222-webapp/bin/webapp";
const COREUTILS: &str = "/nix/store/33333333333333333333333333333333-coreutils-9.1";
const BUILDER: &str = "/nix/store/44444444444444444444444444444444-nixproc-builder";

fn dep(name: &str, seq: i64) -> Value {
    attrs([("name", Value::from(name)), ("sequence", Value::Int(seq))])
}

/// The §3.1.9 example: a self-daemonizing process with a user, an
/// environment, a PATH and a dependency.
fn hello_example() -> Value {
    attrs([
        ("initFunctions", INIT.into()),
        ("instanceName", "hello2".into()),
        ("process", HELLO.into()),
        ("args", vec!["--fork"].into()),
        ("user", "hello2".into()),
        ("environment", attrs([("PORT", Value::Int(7000))])),
        ("path", vec![COREUTILS].into()),
        ("runlevels", vec![3i64, 4, 5].into()),
        ("dependencies", Value::List(vec![dep("webapp1", 0)])),
        (
            "credentials",
            attrs([
                ("groups", attrs([("hello2", attrs::<_, &str>([]))])),
                (
                    "users",
                    attrs([(
                        "hello2",
                        attrs([
                            ("group", "hello2".into()),
                            ("description", "Hello 2".into()),
                        ]),
                    )]),
                ),
            ]),
        ),
    ])
}

#[test]
fn snapshot_daemon_example() {
    let p = create_systemv_init_script(&hello_example()).unwrap();
    insta::assert_snapshot!("daemon_example_script", p.files[0].text);
    let layout: Vec<String> = p
        .files
        .iter()
        .map(|f| format!("{} ({:o})", f.path, f.mode))
        .chain(
            p.links
                .iter()
                .map(|l| format!("{} -> {}", l.path, l.target)),
        )
        .collect();
    insta::assert_snapshot!("daemon_example_layout", layout.join("\n"));
    let mut manifest = serde_json::to_value(&p.manifest).unwrap();
    manifest["revision"] = "<revision>".into();
    insta::assert_snapshot!(
        "daemon_example_manifest",
        serde_json::to_string_pretty(&manifest).unwrap()
    );
}

#[test]
fn snapshot_foreground_with_logging() {
    let args = attrs([
        ("initFunctions", INIT.into()),
        (
            "startProcessAsDaemon",
            format!("{BUILDER} daemonize").into(),
        ),
        ("runtimeDir", "/var/run".into()),
        ("instanceName", "webapp1".into()),
        ("description", "Simple web application 1".into()),
        ("process", WEBAPP.into()),
        ("processIsDaemon", false.into()),
        ("args", vec!["--port", "5000"].into()),
        ("user", "webapp1".into()),
        ("nice", Value::Int(5)),
        ("umask", "022".into()),
        ("directory", "/var/lib/webapp1".into()),
        (
            "initialize",
            "mkdir -p /var/lib/webapp1\nchown webapp1 /var/lib/webapp1".into(),
        ),
        ("environment", attrs([("PORT", Value::Int(5000))])),
        ("runlevels", vec![3i64, 4, 5].into()),
    ]);
    let p = create_systemv_init_script(&args).unwrap();
    insta::assert_snapshot!("foreground_with_logging_script", p.files[0].text);
}

#[test]
fn snapshot_only_custom_activities() {
    let args = attrs([
        ("initFunctions", INIT.into()),
        ("name", "firewall".into()),
        ("description", "Firewall rules".into()),
        (
            "activities",
            attrs([
                ("start", "iptables-restore < /etc/iptables.rules".into()),
                ("stop", "iptables -F".into()),
                ("show", "iptables -L -n".into()),
            ]),
        ),
    ]);
    let p = create_systemv_init_script(&args).unwrap();
    insta::assert_snapshot!("only_custom_activities_script", p.files[0].text);
}

// ---------------------------------------------------------------------------
// Running generated scripts
// ---------------------------------------------------------------------------

/// A scratch directory removed on drop (no tempfile dependency in this crate).
struct Scratch(PathBuf);

impl Scratch {
    fn new(tag: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!(
            "nixproc-core-sysvinit-{}-{tag}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }
    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
    fn read(&self, name: &str) -> Vec<u8> {
        std::fs::read(self.path(name)).unwrap_or_default()
    }
    fn clear(&self, names: &[&str]) {
        for n in names {
            let _ = std::fs::remove_file(self.path(n));
        }
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn write_exec(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

fn q(p: &Path) -> String {
    nixproc_core::quote::shell_escape(p.to_str().unwrap())
}

/// Stub init functions: each records its arguments NUL-separated, the start
/// helpers then run the process in the foreground.
fn prelude(s: &Scratch) -> String {
    let rec = q(&s.path("calls"));
    format!(
        r#"record() {{ printf '%s\0' "$@" >> {rec}; }}
log_info_msg() {{ record log_info_msg "$@"; }}
evaluate_retval() {{ record evaluate_retval "$?"; }}
start_daemon() {{
  record start_daemon "$@"
  while [ $# -gt 0 ]; do
    case "$1" in
      -f) shift ;;
      -p|-n|-u) shift 2 ;;
      *) break ;;
    esac
  done
  "$@"
}}
stub_daemonize() {{
  record stub_daemonize "$@"
  while [ "$1" != -- ]; do shift; done
  shift
  "$@"
}}
killproc() {{ record killproc "$@"; }}
statusproc() {{ record statusproc "$@"; }}"#
    )
}

/// A "process" that writes its arguments, `$HOSTILE` and its working
/// directory to files.
fn write_process(s: &Scratch) -> PathBuf {
    let proc_path = s.path("proc");
    write_exec(
        &proc_path,
        &format!(
            "#!/bin/sh\nfor a in \"$@\"; do printf '%s\\0' \"$a\"; done > {}\nprintf '%s' \"$HOSTILE\" > {}\npwd > {}\n",
            q(&s.path("args")),
            q(&s.path("env")),
            q(&s.path("cwd"))
        ),
    );
    proc_path
}

fn nul_joined(words: &[&str]) -> Vec<u8> {
    let mut out = Vec::new();
    for w in words {
        out.extend_from_slice(w.as_bytes());
        out.push(0);
    }
    out
}

fn shells() -> Vec<&'static str> {
    ["sh", "bash", "dash"]
        .into_iter()
        .filter(|sh| {
            Command::new(sh)
                .arg("-c")
                .arg("true")
                .status()
                .is_ok_and(|s| s.success())
        })
        .collect()
}

fn run(shell: &str, script: &Path, activity: &str) -> std::process::Output {
    Command::new(shell)
        .arg(script)
        .arg(activity)
        .output()
        .expect("shell runs")
}

const HOSTILE: &[&str] = &[
    "plain",
    "with space",
    "quote ' \" mix",
    "$(touch pwned) `touch pwned` ${HOME}",
    "semi; rm -rf / ; && || |",
    "new\nline\ttab\r",
    "100% %s %n * ? [a] ~ # !",
    "\\backslash\\ \\n",
    "",
    "-x",
    "--",
    "ünïcödé ✓",
];

fn hostile_args() -> Value {
    Value::List(HOSTILE.iter().map(|h| Value::from(*h)).collect())
}

#[test]
fn hostile_values_reach_a_daemon_verbatim() {
    let s = Scratch::new("daemon");
    let proc_path = write_process(&s);
    let dir = s.path("d i r'$(x)`y`");
    std::fs::create_dir(&dir).unwrap();
    let desc = "my \"$(touch pwned)\" 'svc' `x`; %s\n\\n";
    let pid = s.path("p i'd$(x).pid");
    let env_value = HOSTILE.join("|");
    let user = "us'er$(x)`y`;\"";
    let args = attrs([
        ("initialInstructions", prelude(&s).into()),
        ("name", "svc".into()),
        ("description", desc.into()),
        ("process", proc_path.to_str().unwrap().into()),
        ("args", hostile_args()),
        (
            "environment",
            attrs([("HOSTILE", env_value.as_str().into())]),
        ),
        ("directory", dir.to_str().unwrap().into()),
        ("pidFile", pid.to_str().unwrap().into()),
        ("user", user.into()),
        ("nice", "-3".into()),
        ("reloadSignal", "-USR1; touch pwned".into()),
    ]);
    let p = create_systemv_init_script(&args).unwrap();
    let script = s.path("svc");
    write_exec(&script, &p.files[0].text);
    let proc_str = proc_path.to_str().unwrap();
    let pid_str = pid.to_str().unwrap();

    for shell in shells() {
        s.clear(&["calls", "args", "env", "cwd"]);
        let out = run(shell, &script, "start");
        assert!(out.status.success(), "{shell}: {out:?}");
        assert_eq!(s.read("args"), nul_joined(HOSTILE), "{shell}: args");
        assert_eq!(s.read("env"), env_value.as_bytes(), "{shell}: env");
        assert_eq!(
            String::from_utf8(s.read("cwd")).unwrap(),
            format!("{}\n", dir.to_str().unwrap()),
            "{shell}: cwd"
        );
        let mut expected = nul_joined(&["log_info_msg", &format!("Starting {desc}...")]);
        let mut start = vec![
            "start_daemon",
            "-f",
            "-p",
            pid_str,
            "-n",
            "-3",
            "-u",
            user,
            proc_str,
        ];
        start.extend(HOSTILE);
        expected.extend(nul_joined(&start));
        expected.extend(nul_joined(&["evaluate_retval", "0"]));
        assert_eq!(s.read("calls"), expected, "{shell}: calls");

        s.clear(&["calls"]);
        assert!(run(shell, &script, "reload").status.success());
        let mut expected = nul_joined(&["log_info_msg", &format!("Reloading {desc}...")]);
        expected.extend(nul_joined(&[
            "killproc",
            "-p",
            pid_str,
            proc_str,
            "-USR1; touch pwned",
        ]));
        expected.extend(nul_joined(&["evaluate_retval", "0"]));
        assert_eq!(s.read("calls"), expected, "{shell}: reload");

        s.clear(&["calls"]);
        assert!(run(shell, &script, "status").status.success());
        assert_eq!(
            s.read("calls"),
            nul_joined(&["statusproc", "-p", pid_str, proc_str]),
            "{shell}: status"
        );

        s.clear(&["calls"]);
        assert!(run(shell, &script, "restart").status.success());
        let calls = s.read("calls");
        let text = String::from_utf8_lossy(&calls);
        assert!(text.contains("Stopping ") && text.contains("start_daemon"));

        let out = run(shell, &script, "bogus");
        assert_eq!(out.status.code(), Some(1));
        assert_eq!(
            String::from_utf8(out.stdout).unwrap(),
            format!(
                "Usage: {} {{start|stop|reload|restart|status}}\n",
                script.display()
            )
        );
        assert!(!s.path("pwned").exists() && !Path::new("pwned").exists());
    }
}

#[test]
fn hostile_values_reach_a_foreground_process_verbatim() {
    let s = Scratch::new("foreground");
    let proc_path = write_process(&s);
    let env_value = "a'b\"c$(d)`e`\n;f";
    let args = attrs([
        ("initialInstructions", prelude(&s).into()),
        ("startProcessAsDaemon", "stub_daemonize".into()),
        ("instanceName", "fg".into()),
        ("logDir", s.path("lo g$(x)").to_str().unwrap().into()),
        ("process", proc_path.to_str().unwrap().into()),
        ("processIsDaemon", false.into()),
        ("args", hostile_args()),
        ("environment", attrs([("HOSTILE", env_value.into())])),
        ("nice", Value::Int(4)),
    ]);
    let p = create_systemv_init_script(&args).unwrap();
    let script = s.path("fg");
    write_exec(&script, &p.files[0].text);
    for shell in shells() {
        s.clear(&["calls", "args", "env"]);
        let out = run(shell, &script, "start");
        assert!(out.status.success(), "{shell}: {out:?}");
        assert_eq!(s.read("args"), nul_joined(HOSTILE), "{shell}: args");
        assert_eq!(s.read("env"), env_value.as_bytes(), "{shell}: env");
        let log = format!("{}/nixproc-fg.log", s.path("lo g$(x)").to_str().unwrap());
        let mut start = vec![
            "stub_daemonize",
            "--output",
            &log,
            "--pidfile",
            "/var/run/fg.pid",
            "--nice",
            "4",
            "--",
            proc_path.to_str().unwrap(),
        ];
        start.extend(HOSTILE);
        let calls = s.read("calls");
        let want = nul_joined(&start);
        assert!(
            calls.windows(want.len()).any(|w| w == want.as_slice()),
            "{shell}: {}",
            String::from_utf8_lossy(&calls)
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 64,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// Arbitrary (NUL-free) strings in `args` and an environment value reach
    /// the process byte for byte.
    #[test]
    fn arbitrary_args_and_env_pass_verbatim(
        args in proptest::collection::vec("[^\u{0}]{0,24}", 0..5),
        env_value in "[^\u{0}]{0,40}",
        description in "[^\u{0}]{0,24}",
    ) {
        let s = Scratch::new("proptest");
        let proc_path = write_process(&s);
        let spec = attrs([
            ("initialInstructions", prelude(&s).into()),
            ("name", "prop".into()),
            ("description", description.as_str().into()),
            ("process", proc_path.to_str().unwrap().into()),
            ("args", Value::List(args.iter().map(|a| Value::from(a.as_str())).collect())),
            ("environment", attrs([("HOSTILE", env_value.as_str().into())])),
        ]);
        let p = create_systemv_init_script(&spec).unwrap();
        let script = s.path("prop");
        write_exec(&script, &p.files[0].text);
        let out = run("sh", &script, "start");
        prop_assert!(out.status.success(), "{:?}", out);
        let words: Vec<&str> = args.iter().map(String::as_str).collect();
        prop_assert_eq!(s.read("args"), nul_joined(&words));
        prop_assert_eq!(s.read("env"), env_value.as_bytes().to_vec());
        let calls = s.read("calls");
        let want = nul_joined(&["log_info_msg", &format!("Starting {description}...")]);
        prop_assert!(calls.starts_with(&want));
    }
}
