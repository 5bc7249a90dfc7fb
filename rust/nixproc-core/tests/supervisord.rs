//! Golden files of generated supervisord configs, and the real thing:
//! supervisor 4.2's own parser (Debian's `supervisor`, through
//! `/usr/bin/python3`) reads what we generate, and a real `supervisord`
//! runs a program with hostile arguments and environment — each must come
//! out byte for byte.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use nixproc_core::agnostic::create_managed_process;
use nixproc_core::package::PackageSpec;
use nixproc_core::quote::c_unescape;
use nixproc_core::supervisord::{create_supervisord_program, profile_files, python_isspace};
use nixproc_core::value::attrs;
use nixproc_core::Value;

const HELLO: &str = "/nix/store/11111111111111111111111111111111-hello-2.12/bin/hello";
const WEBAPP: &str = "/nix/store/22222222222222222222222222222222-webapp/bin/webapp";
const COREUTILS: &str = "/nix/store/33333333333333333333333333333333-coreutils-9.1";
const PROXY: &str =
    "/nix/store/44444444444444444444444444444444-nixproc-builder/bin/nixproc-builder";
const PYTHON: &str = "/usr/bin/python3";

const HOSTILE: &[&str] = &[
    "plain",
    "with space",
    "quote ' \" mix",
    "$(touch pwned) `touch pwned` ${HOME}",
    "semi; rm -rf / ; && # not a comment",
    "a\t;b\t#c",
    "100% %(here)s %(ENV_HOME)s %% %s",
    "\\backslash\\ \\n \\\"",
    "ünïcödé\u{a0};\u{2028}#",
    "'leading and trailing'",
    "\"dq\"",
    "=,=,",
    "",
    " ",
];

fn composition(pairs: &mut Vec<(&'static str, Value)>) {
    pairs.push(("processManager", "supervisord".into()));
    pairs.push((
        "foregroundProxy",
        format!("{PROXY} foreground-proxy").into(),
    ));
}

fn managed(mut pairs: Vec<(&'static str, Value)>) -> PackageSpec {
    composition(&mut pairs);
    create_managed_process(&attrs(pairs)).unwrap()
}

fn dep(name: &str, priority: i64) -> Value {
    attrs([
        ("name", Value::from(name)),
        ("priority", Value::Int(priority)),
    ])
}

fn layout(p: &PackageSpec) -> String {
    p.files
        .iter()
        .map(|f| format!("{} ({:o})", f.path, f.mode))
        .collect::<Vec<_>>()
        .join("\n")
}

fn manifest_json(p: &PackageSpec) -> String {
    let mut m = serde_json::to_value(&p.manifest).unwrap();
    m["revision"] = "<revision>".into();
    serde_json::to_string_pretty(&m).unwrap()
}

// --- golden files -----------------------------------------------------------

/// The §3.3.6 example: a foreground process with a user, environment,
/// PATH, a dependency and credentials: supervisord runs it directly.
#[test]
fn snapshot_foreground_direct() {
    let p = managed(vec![
        ("instanceName", "hello2".into()),
        ("process", HELLO.into()),
        ("args", vec!["--port", "7000"].into()),
        ("user", "hello2".into()),
        (
            "environment",
            attrs([("PORT", Value::Int(7000)), ("GREETING", "it's 100%".into())]),
        ),
        ("path", vec![COREUTILS].into()),
        ("dependencies", Value::List(vec![dep("webapp1", 1)])),
        (
            "credentials",
            attrs([(
                "users",
                attrs([("hello2", attrs([("description", Value::from("Hello 2"))]))]),
            )]),
        ),
    ]);
    insta::assert_snapshot!("foreground_direct_conf", p.files[0].text);
    insta::assert_snapshot!("foreground_direct_layout", layout(&p));
    insta::assert_snapshot!("foreground_direct_manifest", manifest_json(&p));
}

/// initialize → the proxy runs it as root, then changes directory, umask,
/// nice and user.
#[test]
fn snapshot_initialize_through_proxy() {
    let p = managed(vec![
        ("instanceName", "webapp".into()),
        ("process", WEBAPP.into()),
        (
            "initialize",
            "mkdir -p /var/lib/webapp\nchown webapp /var/lib/webapp".into(),
        ),
        ("user", "webapp".into()),
        ("directory", "/var/lib/webapp".into()),
        ("umask", "027".into()),
        ("nice", Value::Int(5)),
        ("environment", attrs([("PORT", Value::Int(5000))])),
    ]);
    insta::assert_snapshot!("initialize_proxy_conf", p.files[0].text);
}

/// A process that only knows how to daemonize: the proxy waits on its PID
/// file.
#[test]
fn snapshot_daemon_wrapped() {
    let p = managed(vec![
        ("instanceName", "webapp".into()),
        ("daemon", WEBAPP.into()),
        ("daemonArgs", vec!["-D"].into()),
        ("runtimeDir", "/run".into()),
        ("logDir", "/var/log/nixproc".into()),
        (
            "dependencies",
            Value::List(vec![dep("db", 1), dep("cache", 3)]),
        ),
    ]);
    insta::assert_snapshot!("daemon_wrapped_conf", p.files[0].text);
    insta::assert_snapshot!("daemon_wrapped_manifest", manifest_json(&p));
}

/// A newline in an argument: everything goes through the proxy, escaped.
#[test]
fn snapshot_hostile_escaped() {
    let p = managed(vec![
        ("name", "evil".into()),
        ("process", HELLO.into()),
        (
            "args",
            vec!["two\nlines", "a ;b", "%(here)s", "it's"].into(),
        ),
        (
            "environment",
            attrs([("BOTH", Value::from("'\"")), ("OK", Value::from("x"))]),
        ),
    ]);
    insta::assert_snapshot!("hostile_escaped_conf", p.files[0].text);
}

#[test]
fn snapshot_direct_program() {
    let p = create_supervisord_program(&attrs([
        ("name", Value::from("nginx")),
        (
            "command",
            Value::from(
                "/nix/store/55555555555555555555555555555555-nginx/bin/nginx -g 'daemon off;'",
            ),
        ),
        ("autorestart", true.into()),
        ("stopsignal", "QUIT".into()),
        ("stopwaitsecs", Value::Int(30)),
        ("environment", attrs([("TZ", Value::from("UTC"))])),
    ]))
    .unwrap();
    insta::assert_snapshot!("direct_program_conf", p.files[0].text);
}

#[test]
fn snapshot_base_config() {
    let files = profile_files(&attrs::<_, &str>([]), &[]).unwrap();
    insta::assert_snapshot!("base_config", files[0].text);
}

// --- the real parser ------------------------------------------------------------

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A scratch directory, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(tag: &str) -> Self {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let dir =
            std::env::temp_dir().join(format!("nixproc-sup-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }
    fn path(&self, p: &str) -> PathBuf {
        self.0.join(p)
    }
    fn s(&self) -> String {
        self.0.to_str().unwrap().to_string()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Writes a profile (base config + the packages' files) into `dir`.
fn write_profile(dir: &Path, comp: &Value, packages: &[PackageSpec]) {
    for f in profile_files(comp, &[]).unwrap() {
        std::fs::write(dir.join(&f.path), f.text).unwrap();
    }
    std::fs::create_dir_all(dir.join("conf.d")).unwrap();
    for p in packages {
        for f in &p.files {
            let path = dir.join(&f.path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, &f.text).unwrap();
        }
    }
}

/// A parsed program as supervisord sees it.
#[derive(Debug, serde::Deserialize)]
struct Parsed {
    argv: Vec<String>,
    env: BTreeMap<String, String>,
    directory: Option<String>,
    umask: Option<u32>,
    priority: i64,
    stdout_logfile: Option<String>,
    redirect_stderr: bool,
}

const DUMP: &str = r#"
import json, shlex, sys
from supervisor.options import ServerOptions
o = ServerOptions()
o.configfile = sys.argv[1]
o.process_config(do_usage=False)
out = {}
for g in o.process_group_configs:
    for p in g.process_configs:
        out[p.name] = dict(argv=shlex.split(p.command), env=p.environment or {},
                           directory=p.directory, umask=p.umask, priority=p.priority,
                           stdout_logfile=p.stdout_logfile, redirect_stderr=p.redirect_stderr)
sys.stdout.write(json.dumps(out))
"#;

/// supervisor's own `ServerOptions` reads `<dir>/supervisord.conf`.
fn parse_with_supervisor(dir: &Path) -> BTreeMap<String, Parsed> {
    let out = Command::new(PYTHON)
        .args(["-c", DUMP])
        .arg(dir.join("supervisord.conf"))
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("LANG", "C.UTF-8")
        .output()
        .expect("/usr/bin/python3 with Debian's supervisor runs");
    assert!(
        out.status.success(),
        "supervisor rejected the config: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Splits a proxy argv into its decoded options and the decoded program.
fn unproxy(argv: &[String]) -> (Vec<String>, Vec<String>) {
    assert_eq!(&argv[..2], [PROXY, "foreground-proxy"]);
    let sep = argv.iter().position(|w| w == "--").unwrap();
    let escaped = argv[2] == "--escaped";
    let dec = |w: &String| {
        if escaped {
            c_unescape(w).unwrap()
        } else {
            w.clone()
        }
    };
    let opts = argv[2..sep]
        .iter()
        .map(|o| {
            if o.starts_with("--") {
                o.clone()
            } else {
                dec(o)
            }
        })
        .collect();
    (opts, argv[sep + 1..].iter().map(dec).collect())
}

fn opt(opts: &[String], name: &str) -> Vec<String> {
    opts.windows(2)
        .filter(|w| w[0] == name)
        .map(|w| w[1].clone())
        .collect()
}

#[test]
fn supervisor_reads_back_hostile_values() {
    let s = Scratch::new("parse");
    let comp_pairs = |pairs: &mut Vec<(&'static str, Value)>| {
        composition(pairs);
        pairs.push(("logDir", s.s().into()));
        pairs.push(("tmpDir", s.s().into()));
        pairs.push(("runtimeDir", s.s().into()));
    };
    let mut packages = Vec::new();
    let mut expected = Vec::new();
    let with_newlines: Vec<String> = HOSTILE
        .iter()
        .map(|h| h.to_string())
        .chain(["new\nline\r\nend".to_string(), "\x01\x7f".to_string()])
        .collect();
    for (i, h) in with_newlines.iter().enumerate() {
        // direct when possible, the proxy otherwise; and always the proxy
        for (j, init) in ["", "echo init"].iter().enumerate() {
            let name = format!("p{i}x{j}");
            let mut pairs: Vec<(&'static str, Value)> = vec![
                ("name", name.clone().into()),
                ("description", h.clone().into()),
                ("process", HELLO.into()),
                ("args", vec![h.clone(), "x".to_string()].into()),
                ("environment", attrs([("HOSTILE", Value::from(h.clone()))])),
                ("path", vec![COREUTILS].into()),
                ("directory", format!("/srv/{h}").into()),
                ("umask", "027".into()),
                ("initialize", (*init).into()),
            ];
            comp_pairs(&mut pairs);
            packages.push(create_managed_process(&attrs(pairs)).unwrap());
            expected.push((name, h.clone(), !init.is_empty()));
        }
    }
    let comp = attrs([
        ("logDir", Value::from(s.s())),
        ("runtimeDir", Value::from(s.s())),
    ]);
    write_profile(&s.0, &comp, &packages);

    let parsed = parse_with_supervisor(&s.0);
    assert_eq!(parsed.len(), expected.len());
    let mut direct = 0;
    for (name, h, init) in expected {
        let p = &parsed[&name];
        assert_eq!(p.priority, 1);
        assert!(p.redirect_stderr);
        assert_eq!(
            p.stdout_logfile.as_deref(),
            Some(format!("{}/nixproc-{name}.log", s.s()).as_str())
        );
        assert_eq!(p.env["PATH"], format!("{COREUTILS}/bin:/usr/bin:/bin"));
        if p.argv[0] == HELLO {
            direct += 1;
            assert!(!init);
            assert_eq!(p.argv, [HELLO, &h, "x"], "{name}");
            assert_eq!(p.env["HOSTILE"], h, "{name}");
            assert_eq!(p.directory.as_deref(), Some(format!("/srv/{h}").as_str()));
            assert_eq!(p.umask, Some(0o27));
        } else {
            let (opts, program) = unproxy(&p.argv);
            assert_eq!(program, [HELLO, &h, "x"], "{name}: {:?}", p.argv);
            assert_eq!(opt(&opts, "--directory"), [format!("/srv/{h}")]);
            assert_eq!(opt(&opts, "--umask"), ["027"]);
            assert_eq!(p.directory, None);
            assert_eq!(p.umask, None);
            if init {
                assert_eq!(opt(&opts, "--initialize"), ["echo init"]);
                assert_eq!(opt(&opts, "--shell"), ["/bin/sh"]);
            }
            match p.env.get("HOSTILE") {
                Some(v) => assert_eq!(v, &h, "{name}"),
                None => assert_eq!(opt(&opts, "--setenv"), [format!("HOSTILE={h}")], "{name}"),
            }
        }
    }
    // Both paths are exercised: many hostile strings fit supervisord's
    // format directly.
    assert!(direct >= 5, "only {direct} direct programs");
}

#[test]
fn supervisor_reads_direct_programs_keys() {
    let s = Scratch::new("keys");
    let p = create_supervisord_program(&attrs([
        ("name", Value::from("k")),
        ("command", Value::from(vec!["/bin/echo", "50%", "a ;b"])),
        ("priority", Value::Int(42)),
        ("directory", Value::from("/srv/50% off")),
        (
            "stdout_logfile",
            Value::from(format!("{}/k 100%.log", s.s())),
        ),
        (
            "environment",
            attrs([("Q", Value::from("say \"hi\";#1, a=b"))]),
        ),
    ]))
    .unwrap();
    let comp = attrs([
        ("logDir", Value::from(s.s())),
        ("runtimeDir", Value::from(s.s())),
    ]);
    write_profile(&s.0, &comp, &[p]);
    let parsed = parse_with_supervisor(&s.0);
    let k = &parsed["k"];
    assert_eq!(k.argv, ["/bin/echo", "50%", "a ;b"]);
    assert_eq!(k.priority, 42);
    assert_eq!(k.directory.as_deref(), Some("/srv/50% off"));
    assert_eq!(
        k.stdout_logfile.as_deref(),
        Some(format!("{}/k 100%.log", s.s()).as_str())
    );
    assert_eq!(k.env["Q"], "say \"hi\";#1, a=b");
}

/// Our idea of Python's `str.isspace` (used to find what configparser
/// takes for an inline comment) is Python's.
#[test]
fn python_isspace_matches_python() {
    let out = Command::new(PYTHON)
        .args([
            "-c",
            "import sys; sys.stdout.write(','.join(str(i) for i in range(0x3100) if chr(i).isspace()))",
        ])
        .output()
        .unwrap();
    let python: Vec<u32> = String::from_utf8(out.stdout)
        .unwrap()
        .split(',')
        .map(|n| n.parse().unwrap())
        .collect();
    let ours: Vec<u32> = (0..0x3100u32)
        .filter(|i| char::from_u32(*i).is_some_and(python_isspace))
        .collect();
    assert_eq!(ours, python);
}

// --- the real supervisord -------------------------------------------------------

/// Stops the supervisord we started (by its PID) when the test ends.
struct Supervisord(Child);

impl Drop for Supervisord {
    fn drop(&mut self) {
        let _ = Command::new("kill").arg(self.0.id().to_string()).status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn wait_for(path: &Path) -> bool {
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        if path.exists() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

/// supervisord runs a generated program: its arguments and environment
/// reach the process unchanged, and supervisorctl finds the daemon through
/// the generated unix socket.
#[test]
fn real_supervisord_runs_hostile_program() {
    let s = Scratch::new("run");
    let args_file = s.path("args");
    let env_file = s.path("env");
    let script = format!(
        "for a in \"$@\"; do printf '%s\\0' \"$a\"; done > {a}.tmp; printf '%s' \"$HOSTILE\" > {e}; mv {a}.tmp {a}; sleep 60",
        a = args_file.display(),
        e = env_file.display()
    );
    let hostile_args: Vec<&str> = HOSTILE.to_vec();
    let env_value = "say \"hi\";not#a comment, 100% $(x) `y` \\ ü";
    let mut command = vec!["/bin/sh", "-c", script.as_str(), "sh"];
    command.extend(hostile_args.iter().copied());
    let comp = attrs([
        ("logDir", Value::from(s.s())),
        ("runtimeDir", Value::from(s.s())),
    ]);
    let p = create_supervisord_program(&attrs([
        ("name", Value::from("hostile")),
        ("command", Value::from(command.clone())),
        ("environment", attrs([("HOSTILE", Value::from(env_value))])),
        ("startsecs", Value::Int(0)),
        ("autorestart", false.into()),
        ("stopwaitsecs", Value::Int(1)),
        (
            "stdout_logfile",
            Value::from(format!("{}/hostile.log", s.s())),
        ),
        ("redirect_stderr", true.into()),
    ]))
    .unwrap();
    write_profile(&s.0, &comp, &[p]);

    let conf = s.path("supervisord.conf");
    let child = Command::new("supervisord")
        .arg("-n")
        .arg("-c")
        .arg(&conf)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("supervisord (Debian supervisor) runs");
    let _guard = Supervisord(child);

    assert!(
        wait_for(&args_file),
        "program did not run; supervisord log:\n{}\nprogram log:\n{}",
        std::fs::read_to_string(s.path("supervisord.log")).unwrap_or_default(),
        std::fs::read_to_string(s.path("hostile.log")).unwrap_or_default()
    );
    let got = std::fs::read(&args_file).unwrap();
    let got: Vec<String> = got
        .split(|b| *b == 0)
        .map(|w| String::from_utf8(w.to_vec()).unwrap())
        .collect();
    let mut want: Vec<String> = hostile_args.iter().map(|h| h.to_string()).collect();
    want.push(String::new()); // after the last NUL
    assert_eq!(got, want);
    assert_eq!(std::fs::read_to_string(&env_file).unwrap(), env_value);

    let status = Command::new("supervisorctl")
        .arg("-c")
        .arg(&conf)
        .arg("status")
        .arg("hostile")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&status.stdout);
    assert!(
        text.contains("hostile") && text.contains("RUNNING"),
        "{text}"
    );
}
