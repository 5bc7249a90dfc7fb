//! Golden files of disnix components (the reference §3.8.4 example in both
//! modes), wrappers actually run by `sh`/`bash`/`dash` with stub helpers so
//! hostile values must reach the process byte for byte, and the output
//! placeholder compared with the one Nix computes.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use nixproc_core::agnostic::create_managed_process;
use nixproc_core::disnix::{create_process_script, OUT_PLACEHOLDER};
use nixproc_core::package::PackageSpec;
use nixproc_core::value::attrs;
use nixproc_core::Value;

const HELLO: &str = "/nix/store/11111111111111111111111111111111-hello-2.12/bin/hello";
const COREUTILS: &str = "/nix/store/33333333333333333333333333333333-coreutils-9.1";
const BUILDER: &str = "/nix/store/44444444444444444444444444444444-nixproc-builder";

fn s(v: &str) -> Value {
    Value::from(v)
}

/// The composition `nix/default.nix` passes for stateDir = /var.
fn composition() -> Vec<(&'static str, Value)> {
    vec![
        ("processManager", s("disnix")),
        ("runtimeDir", s("/var/run")),
        ("logDir", s("/var/log")),
        ("tmpDir", s("/tmp")),
        ("forceDisableUserChange", Value::Bool(false)),
        ("ids", attrs::<_, &str>([])),
        ("shell", s("/bin/sh")),
        ("foregroundProxy", s(&format!("{BUILDER} foreground-proxy"))),
        ("daemonize", s(&format!("{BUILDER} daemonize"))),
    ]
}

/// Reference §3.8.4: hello2, with user hello2 and PORT=7000.
fn hello2(mode: &str) -> Value {
    let mut all = composition();
    all.extend([
        ("instanceName", s("hello2")),
        (mode, s(HELLO)),
        ("daemonExtraArgs", vec!["--fork"].into()),
        ("user", s("hello2")),
        ("path", vec![COREUTILS].into()),
        ("environment", attrs([("PORT", Value::Int(7000))])),
        (
            "dependencies",
            Value::List(vec![attrs([("name", s("webapp1"))])]),
        ),
        (
            "credentials",
            attrs([
                ("groups", attrs([("hello2", attrs::<_, &str>([]))])),
                (
                    "users",
                    attrs([(
                        "hello2",
                        attrs([("group", s("hello2")), ("description", s("Hello 2"))]),
                    )]),
                ),
            ]),
        ),
    ]);
    attrs(all)
}

fn layout(p: &PackageSpec) -> String {
    p.files
        .iter()
        .map(|f| format!("{:o} {}\n", f.mode, f.path))
        .collect()
}

fn file<'a>(p: &'a PackageSpec, path: &str) -> &'a str {
    &p.files.iter().find(|f| f.path == path).unwrap().text
}

fn manifest(p: &PackageSpec) -> String {
    serde_json::to_string_pretty(&p.manifest).unwrap()
}

#[test]
fn snapshot_daemon_example() {
    let p = create_managed_process(&hello2("process")).unwrap();
    insta::assert_snapshot!("daemon_example_layout", layout(&p));
    insta::assert_snapshot!(
        "daemon_example_component",
        file(&p, "etc/dysnomia/process/hello2")
    );
    insta::assert_snapshot!(
        "daemon_example_wrapper",
        file(&p, "bin/hello2-process-wrapper")
    );
    insta::assert_snapshot!("daemon_example_manifest", manifest(&p));
}

#[test]
fn snapshot_foreground_example() {
    let p = create_managed_process(&hello2("foregroundProcess")).unwrap();
    insta::assert_snapshot!(
        "foreground_example_wrapper",
        file(&p, "bin/hello2-process-wrapper")
    );
    insta::assert_snapshot!("foreground_example_manifest", manifest(&p));
}

#[test]
fn snapshot_plain_component() {
    let p = create_process_script(&attrs([
        ("name", s("hello")),
        ("process", s(HELLO)),
        ("pidFile", s("/var/run/hello.pid")),
    ]))
    .unwrap();
    insta::assert_snapshot!("plain_component", file(&p, "etc/dysnomia/process/hello"));
    insta::assert_snapshot!("plain_manifest", manifest(&p));
}

#[test]
fn placeholder_matches_nix() {
    let out = Command::new("nix-instantiate")
        .args(["--eval", "-E", "builtins.placeholder \"out\""])
        .output()
        .expect("nix-instantiate runs");
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        String::from_utf8(out.stdout).unwrap().trim(),
        format!("\"{OUT_PLACEHOLDER}\"")
    );
}

// --- wrappers run by real shells ------------------------------------------

/// A scratch directory removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(tag: &str) -> Scratch {
        let dir =
            std::env::temp_dir().join(format!("nixproc-core-disnix-{}-{tag}", std::process::id()));
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

/// A stub helper (proxy or daemonize) that records its arguments
/// NUL-separated in `calls`, then runs what follows `--`.
fn write_helper(s: &Scratch, name: &str) -> PathBuf {
    let path = s.path(name);
    write_exec(
        &path,
        &format!(
            "#!/bin/sh\nfor a in \"$@\"; do printf '%s\\0' \"$a\"; done > {calls}\n\
             while [ \"$1\" != -- ]; do shift; done\nshift\nexec \"$@\"\n",
            calls = q(&s.path("calls"))
        ),
    );
    path
}

/// A "process" that writes its arguments, `$HOSTILE`, `$PATH`, its umask
/// and working directory to files.
fn write_process(s: &Scratch) -> PathBuf {
    let path = s.path("proc");
    write_exec(
        &path,
        &format!(
            "#!/bin/sh\nfor a in \"$@\"; do printf '%s\\0' \"$a\"; done > {}\n\
             printf '%s' \"$HOSTILE\" > {}\nprintf '%s' \"$PATH\" > {}\numask > {}\npwd > {}\n",
            q(&s.path("args")),
            q(&s.path("env")),
            q(&s.path("path")),
            q(&s.path("umask")),
            q(&s.path("cwd")),
        ),
    );
    path
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

fn hostile_list() -> Value {
    Value::List(HOSTILE.iter().map(|h| Value::from(*h)).collect())
}

struct Case {
    scratch: Scratch,
    wrapper: PathBuf,
    process: PathBuf,
    dir: PathBuf,
    env_value: String,
    bin: PathBuf,
}

/// Generates and writes the wrapper of a process with hostile values
/// everywhere; `mode` is "daemon" or "foregroundProcess".
fn case(tag: &str, mode: &str, more: Vec<(&'static str, Value)>) -> (Case, PackageSpec) {
    let scratch = Scratch::new(tag);
    let process = write_process(&scratch);
    let proxy = write_helper(&scratch, "proxy");
    let daemonize = write_helper(&scratch, "daemonize-stub");
    let dir = scratch.path("d i r'$(x)`y`");
    std::fs::create_dir(&dir).unwrap();
    let bin = scratch.path("p'a t$(h)");
    std::fs::create_dir_all(bin.join("bin")).unwrap();
    let env_value = HOSTILE.join("|");
    let mut all = vec![
        ("processManager", s("disnix")),
        ("runtimeDir", s(scratch.path("run").to_str().unwrap())),
        ("logDir", s(scratch.path("log").to_str().unwrap())),
        ("tmpDir", s(scratch.path("tmp").to_str().unwrap())),
        (
            "foregroundProxy",
            s(&format!("{} foreground-proxy", proxy.to_str().unwrap())),
        ),
        (
            "daemonize",
            s(&format!("{} daemonize", daemonize.to_str().unwrap())),
        ),
        ("name", s("svc")),
        ("description", s("my \"$(touch pwned)\" 'svc' `x`; %s\n\\n")),
        (mode, s(process.to_str().unwrap())),
        ("args", hostile_list()),
        ("environment", attrs([("HOSTILE", s(&env_value))])),
        ("path", vec![bin.to_str().unwrap()].into()),
        ("directory", s(dir.to_str().unwrap())),
        ("umask", s("027")),
        (
            "pidFile",
            s(scratch.path("p i'd$(x).pid").to_str().unwrap()),
        ),
    ];
    all.extend(more);
    let p = create_managed_process(&attrs(all)).unwrap();
    let wrapper = scratch.path("wrapper");
    write_exec(&wrapper, file(&p, "bin/svc-process-wrapper"));
    (
        Case {
            scratch,
            wrapper,
            process,
            dir,
            env_value,
            bin,
        },
        p,
    )
}

impl Case {
    /// Runs the wrapper with each shell and checks what the process saw.
    fn run_and_check(&self, expected_calls: Option<Vec<u8>>) {
        let s = &self.scratch;
        for shell in shells() {
            s.clear(&["calls", "args", "env", "path", "umask", "cwd"]);
            let out = Command::new(shell)
                .arg(&self.wrapper)
                .current_dir(&s.0)
                .env("PATH", "/usr/bin:/bin")
                .output()
                .unwrap();
            assert!(out.status.success(), "{shell}: {out:?}");
            assert_eq!(s.read("args"), nul_joined(HOSTILE), "{shell}: args");
            assert_eq!(s.read("env"), self.env_value.as_bytes(), "{shell}: env");
            assert_eq!(
                String::from_utf8(s.read("path")).unwrap(),
                format!("{}/bin:/usr/bin:/bin", self.bin.to_str().unwrap()),
                "{shell}: PATH"
            );
            assert_eq!(s.read("umask"), b"0027\n", "{shell}: umask");
            assert_eq!(
                String::from_utf8(s.read("cwd")).unwrap(),
                format!("{}\n", self.dir.to_str().unwrap()),
                "{shell}: cwd"
            );
            if let Some(calls) = &expected_calls {
                assert_eq!(&s.read("calls"), calls, "{shell}: helper arguments");
            }
            assert!(!s.path("pwned").exists(), "{shell}: something ran");
            assert!(!self.dir.join("pwned").exists(), "{shell}: something ran");
        }
    }
}

#[test]
fn hostile_values_reach_a_daemon_verbatim() {
    let (c, _) = case("daemon", "daemon", vec![]);
    c.run_and_check(None);
    assert!(
        c.scratch.read("calls").is_empty(),
        "no helper without a user"
    );
}

#[test]
fn hostile_user_reaches_the_proxy_verbatim() {
    let user = "us'er$(x)`y`;\"";
    let (c, _) = case("daemon-user", "daemon", vec![("user", s(user))]);
    let process = c.process.to_str().unwrap().to_string();
    let mut calls = vec!["foreground-proxy", "--user", user, "--", &process];
    calls.extend(HOSTILE);
    c.run_and_check(Some(nul_joined(&calls)));
}

#[test]
fn hostile_values_reach_a_daemonized_foreground_process_verbatim() {
    let user = "us'er$(x)`y`;\"";
    let (c, p) = case(
        "foreground",
        "foregroundProcess",
        vec![("user", s(user)), ("nice", s("-3"))],
    );
    let process = c.process.to_str().unwrap().to_string();
    let log = p.manifest.log_file.clone().unwrap();
    let pid = p.manifest.pid_file.clone().unwrap();
    assert_eq!(
        log,
        c.scratch.path("tmp/nixproc-svc.log").to_str().unwrap(),
        "a user switch puts the log into tmpDir"
    );
    let mut calls = vec![
        "daemonize",
        "--output",
        &log,
        "--pidfile",
        &pid,
        "--user",
        user,
        "--nice",
        "-3",
        "--",
        &process,
    ];
    calls.extend(HOSTILE);
    c.run_and_check(Some(nul_joined(&calls)));
}
