//! Golden files of generated rc.d scripts, and scripts actually run by `sh`
//! against the rc.subr test harness (`tests/bsdrc/rc.subr`) and the
//! `daemon(8)` shim (`tests/bsdrc/daemon`): hostile values must reach the
//! process byte for byte, start/status/stop must agree on the PID file.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use nixproc_core::bsdrc::create_bsdrc_script;
use nixproc_core::value::attrs;
use nixproc_core::Value;

const RC_SUBR: &str = "/nix/store/00000000000000000000000000000000-rc.subr";
const HELLO: &str = "/nix/store/11111111111111111111111111111111-hello-2.12/bin/hello";
const COREUTILS: &str = "/nix/store/33333333333333333333333333333333-coreutils-9.1";

/// Every kind of value that breaks naive quoting.
const HOSTILE: &[&str] = &[
    "plain",
    "two words",
    "double \"quoted\"",
    "$(touch /tmp/nixproc-bsdrc-pwned)",
    "`id`",
    "line\nbreak",
    "100% ; rm -rf /",
    "back\\slash\\",
    "tab\there",
    "Grüße ☃",
    "$HOME ${PATH} $1 $@",
    "",
    "-n",
];

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn harness(file: &str) -> String {
    repo()
        .join("tests/bsdrc")
        .join(file)
        .canonicalize()
        .unwrap()
        .display()
        .to_string()
}

/// The §3.2.5 example: hello2, a self-daemonizing process with a user, an
/// environment, a PATH and a dependency.
fn hello_example() -> Value {
    attrs([
        ("rcSubr", RC_SUBR.into()),
        ("instanceName", "hello2".into()),
        ("command", HELLO.into()),
        ("commandArgs", vec!["--fork"].into()),
        ("user", "hello2".into()),
        ("environment", attrs([("PORT", Value::Int(7000))])),
        ("path", vec![COREUTILS].into()),
        (
            "dependencies",
            Value::List(vec![attrs([("name", Value::from("webapp1"))])]),
        ),
        (
            "commands",
            attrs([(
                "start",
                attrs([("pre", Value::from("mkdir -p /var/lib/hello2"))]),
            )]),
        ),
    ])
}

#[test]
fn snapshot_daemon_example() {
    let p = create_bsdrc_script(&hello_example()).unwrap();
    insta::assert_snapshot!("daemon_example_script", p.files[0].text);
    insta::assert_snapshot!(
        "daemon_example_manifest",
        serde_json::to_string_pretty(&p.manifest).unwrap()
    );
}

#[test]
fn snapshot_foreground_example() {
    let v = attrs([
        ("rcSubr", RC_SUBR.into()),
        ("bsdDaemon", "/usr/sbin/daemon".into()),
        ("instanceName", "webapp".into()),
        ("command", HELLO.into()),
        ("commandIsDaemon", false.into()),
        ("commandArgs", vec!["--port", "5000", "it's"].into()),
        ("nice", Value::Int(5)),
        ("directory", "/srv/web".into()),
        ("rcvarsDefaults", attrs([("flags", Value::from("-v"))])),
        ("reloadSignal", "USR1".into()),
        ("keywords", vec!["shutdown"].into()),
    ]);
    let p = create_bsdrc_script(&v).unwrap();
    insta::assert_snapshot!("foreground_example_script", p.files[0].text);
}

// ---------------------------------------------------------------------------
// Running scripts against the harness
// ---------------------------------------------------------------------------

/// A test program that records its arguments (NUL-separated), `$MSG` and
/// its working directory into `$OUTDIR`, then sleeps. As a daemon it forks
/// and writes the sleeper's PID to `$PIDFILE`; in the foreground it execs
/// the sleeper (same PID, which daemon(8) recorded).
fn write_program(dir: &Path, daemon: bool) -> PathBuf {
    let tail = if daemon {
        "sleep 1000 </dev/null >/dev/null 2>&1 &\necho $! > \"$PIDFILE\"\n"
    } else {
        "exec sleep 1000\n"
    };
    let text = format!(
        "#!/bin/sh\nfor a in \"$@\"; do printf '%s\\0' \"$a\"; done > \"$OUTDIR/args\"\n\
         printf '%s' \"$MSG\" > \"$OUTDIR/msg\"\npwd > \"$OUTDIR/cwd\"\n{tail}"
    );
    let path = dir.join(if daemon { "prog-daemon" } else { "prog-fg" });
    fs::write(&path, text).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
    path
}

/// A scratch directory (no tempfile dependency in this crate); on drop,
/// processes named by PID files in its `run/` are killed and it is removed.
struct Scratch(PathBuf);

impl Scratch {
    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        for f in fs::read_dir(self.0.join("run"))
            .into_iter()
            .flatten()
            .flatten()
        {
            if let Ok(pid) = fs::read_to_string(f.path()) {
                let _ = Command::new("kill")
                    .arg("-9")
                    .arg(pid.trim())
                    .stderr(std::process::Stdio::null())
                    .status();
            }
        }
        let _ = fs::remove_dir_all(&self.0);
    }
}

struct Env {
    tmp: Scratch,
}

impl Env {
    fn new() -> Self {
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let dir =
            std::env::temp_dir().join(format!("nixproc-core-bsdrc-{}-{n}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let tmp = Scratch(dir);
        for d in ["run", "log", "tmp", "out", "work dir", "bin"] {
            fs::create_dir_all(tmp.path().join(d)).unwrap();
        }
        // su stand-in: runs `-c CMD` with sh, as real su runs the user's
        // shell (the quoting rc.subr's <name>_user needs is the same).
        let su = tmp.path().join("bin/su");
        fs::write(
            &su,
            "#!/bin/sh\n[ \"$1\" = -m ] && [ \"$3\" = -c ] || exit 99\necho \"$2\" > \"$OUTDIR/su-user\"\nexec sh -c \"$4\"\n",
        )
        .unwrap();
        fs::set_permissions(&su, fs::Permissions::from_mode(0o755)).unwrap();
        Env { tmp }
    }

    fn p(&self, rel: &str) -> String {
        self.tmp.path().join(rel).display().to_string()
    }

    /// Generates the script from `pairs` (plus the harness and test dirs)
    /// and writes it; checks `sh -n`.
    fn script(&self, pairs: Vec<(&str, Value)>) -> PathBuf {
        let mut all: Vec<(&str, Value)> = vec![
            ("rcSubr", harness("rc.subr").into()),
            ("bsdDaemon", harness("daemon").into()),
            ("runtimeDir", self.p("run").into()),
            ("logDir", self.p("log").into()),
            ("tmpDir", self.p("tmp").into()),
        ];
        all.extend(pairs);
        let spec = create_bsdrc_script(&attrs(all)).unwrap();
        let path = self.tmp.path().join("script");
        fs::write(&path, &spec.files[0].text).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
        let out = Command::new("sh").arg("-n").arg(&path).output().unwrap();
        assert!(out.status.success(), "sh -n: {out:?}");
        path
    }

    fn run(&self, script: &Path, arg: &str, rc_conf: Option<&str>) -> Output {
        let mut cmd = Command::new(script);
        cmd.arg(arg)
            .env(
                "PATH",
                format!("{}:{}", self.p("bin"), std::env::var("PATH").unwrap()),
            )
            .env("OUTDIR", self.p("out"))
            .env("RC_STOP_TIMEOUT", "10")
            .env_remove("RC_CONF");
        if let Some(conf) = rc_conf {
            let f = self.tmp.path().join("rc.conf");
            fs::write(&f, conf).unwrap();
            cmd.env("RC_CONF", f);
        }
        cmd.output().unwrap()
    }

    fn code(&self, script: &Path, arg: &str) -> i32 {
        self.run(script, arg, None).status.code().unwrap()
    }

    fn out(&self, file: &str) -> String {
        fs::read_to_string(self.tmp.path().join("out").join(file)).unwrap_or_default()
    }

    fn wait_for(&self, file: &str) -> String {
        let started = Instant::now();
        loop {
            let text = fs::read_to_string(file).unwrap_or_default();
            if !text.trim().is_empty() {
                return text;
            }
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "{file} never appeared"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn alive(pid: &str) -> bool {
    Command::new("kill")
        .arg("-0")
        .arg(pid.trim())
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap()
        .success()
}

fn args_of(raw: &str) -> Vec<String> {
    let mut v: Vec<String> = raw.split('\0').map(str::to_string).collect();
    assert_eq!(v.pop().as_deref(), Some(""), "NUL-terminated: {raw:?}");
    v
}

fn hostile() -> Value {
    Value::List(HOSTILE.iter().map(|s| Value::from(*s)).collect())
}

/// onestart → running with the hostile argv and environment, onestatus 0,
/// onestop → gone, onestatus 1.
fn lifecycle(env: &Env, script: &Path, pid_file: &str) -> String {
    let out = env.run(script, "onestart", None);
    assert!(out.status.success(), "onestart: {out:?}");
    let pid = env.wait_for(pid_file);
    assert!(alive(&pid), "process {pid} is not running");
    // The recorded files are written before the sleeper starts.
    env.wait_for(&env.p("out/cwd"));
    assert_eq!(args_of(&env.out("args")), HOSTILE);
    assert_eq!(env.out("msg"), "it's $(x) `y` \"z\"\n100%");
    assert!(!Path::new("/tmp/nixproc-bsdrc-pwned").exists());

    assert_eq!(env.code(script, "onestatus"), 0);
    let again = env.run(script, "onestart", None);
    assert_eq!(again.status.code(), Some(1), "second onestart: {again:?}");
    assert!(String::from_utf8_lossy(&again.stderr).contains("already running"));

    let out = env.run(script, "onestop", None);
    assert!(out.status.success(), "onestop: {out:?}");
    assert!(!alive(&pid), "process {pid} survived onestop");
    assert_eq!(env.code(script, "onestatus"), 1);
    assert_eq!(env.code(script, "onestop"), 1);
    pid
}

fn env_pairs(env: &Env, daemon: bool) -> Vec<(&'static str, Value)> {
    vec![
        ("instanceName", "hostile-rc".into()),
        (
            "command",
            write_program(env.tmp.path(), daemon)
                .display()
                .to_string()
                .into(),
        ),
        ("commandIsDaemon", daemon.into()),
        ("commandArgs", hostile()),
        (
            "environment",
            attrs([
                ("MSG", Value::from("it's $(x) `y` \"z\"\n100%")),
                ("OUTDIR", Value::from(env.p("out"))),
                ("PIDFILE", Value::from(env.p("run/hostile-rc.pid"))),
            ]),
        ),
    ]
}

#[test]
fn daemon_runs_with_hostile_arguments() {
    let env = Env::new();
    let script = env.script(env_pairs(&env, true));
    lifecycle(&env, &script, &env.p("run/hostile-rc.pid"));
}

#[test]
fn daemon_with_nice_and_directory() {
    let env = Env::new();
    let mut pairs = env_pairs(&env, true);
    pairs.push(("nice", Value::Int(3)));
    pairs.push(("directory", env.p("work dir").into()));
    let script = env.script(pairs);
    lifecycle(&env, &script, &env.p("run/hostile-rc.pid"));
    assert_eq!(env.out("cwd").trim_end(), env.p("work dir"));
}

#[test]
fn daemon_as_another_user_through_su() {
    // Quoting for `su -m <user> -c 'sh -c "…"'` (a stand-in su runs the
    // command; only the single quote cannot pass, see the unit tests).
    let env = Env::new();
    let mut pairs = env_pairs(&env, true);
    let no_quote: Vec<Value> = HOSTILE.iter().map(|s| Value::from(*s)).collect();
    pairs.retain(|(k, _)| *k != "commandArgs");
    pairs.push(("commandArgs", Value::List(no_quote)));
    pairs.push(("user", "nobody".into()));
    pairs.push(("nice", Value::Int(2)));
    pairs.push(("directory", env.p("work dir").into()));
    // The declared user moves the PID file to tmpDir; the program writes
    // where $PIDFILE says.
    pairs.push(("pidFile", env.p("run/hostile-rc.pid").into()));
    let script = env.script(pairs);
    lifecycle(&env, &script, &env.p("run/hostile-rc.pid"));
    assert_eq!(env.out("su-user").trim_end(), "nobody");
    assert_eq!(env.out("cwd").trim_end(), env.p("work dir"));
}

fn builder_available() -> bool {
    repo().join("target/release/nixproc-builder").exists()
}

#[test]
fn foreground_runs_under_daemon8_with_the_same_pid_file() {
    assert!(
        builder_available(),
        "the daemon(8) shim needs target/release/nixproc-builder"
    );
    let env = Env::new();
    let mut pairs = env_pairs(&env, false);
    pairs.push(("nice", Value::Int(1)));
    let script = env.script(pairs);
    let pid = lifecycle(&env, &script, &env.p("run/hostile-rc.pid"));
    assert!(!pid.is_empty());
    // daemon -o: the log file exists (the program printed nothing).
    assert!(Path::new(&env.p("log/nixproc-hostile-rc.log")).exists());
}

#[test]
fn enable_variable_gates_start_unless_one() {
    let env = Env::new();
    let mut pairs = env_pairs(&env, true);
    pairs.push((
        "rcvarsDefaults",
        attrs([("greeting", Value::from("hi 'there' $(x)"))]),
    ));
    pairs.push((
        "commands",
        attrs([(
            "greet",
            attrs([(
                "implementation",
                Value::from("printf '%s' \"$hostile_rc_greeting\" > \"$OUTDIR/greeting\""),
            )]),
        )]),
    ));
    let script = env.script(pairs);
    let pid_file = env.p("run/hostile-rc.pid");

    // Not enabled: start says so and does nothing (rc.subr returns 0).
    let out = env.run(&script, "start", None);
    assert!(out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(
            "Cannot 'start' hostile_rc. Set hostile_rc_enabled to YES in /etc/rc.conf or use 'onestart'"
        ),
        "{out:?}"
    );
    assert!(!Path::new(&pid_file).exists());

    // Enabled in rc.conf: start and status work without "one".
    let conf = "hostile_rc_enabled=\"YES\"\n";
    assert!(env.run(&script, "start", Some(conf)).status.success());
    let pid = env.wait_for(&pid_file);
    assert!(alive(&pid));
    assert_eq!(
        env.run(&script, "status", Some(conf)).status.code(),
        Some(0)
    );
    let rcvar = env.run(&script, "rcvar", Some(conf));
    assert!(String::from_utf8_lossy(&rcvar.stdout).contains("hostile_rc_enabled=\"YES\""));

    // rcvarsDefaults: the default, escaped; rc.conf wins over it.
    assert!(env.run(&script, "onegreet", None).status.success());
    assert_eq!(env.out("greeting"), "hi 'there' $(x)");
    let conf2 = format!("{conf}hostile_rc_greeting=\"from rc.conf\"\n");
    assert!(env.run(&script, "greet", Some(&conf2)).status.success());
    assert_eq!(env.out("greeting"), "from rc.conf");

    // restart gives a new process; stop ends it.
    assert!(env.run(&script, "restart", Some(conf)).status.success());
    std::thread::sleep(Duration::from_millis(200));
    let pid2 = env.wait_for(&pid_file);
    assert_ne!(pid.trim(), pid2.trim());
    assert!(!alive(&pid));
    assert!(env.run(&script, "stop", Some(conf)).status.success());
    assert!(!alive(&pid2));
}

#[test]
fn precmd_failure_fails_start() {
    let env = Env::new();
    let mut pairs = env_pairs(&env, true);
    pairs.push((
        "commands",
        attrs([(
            "start",
            attrs([("pre", Value::from("echo 'cannot prepare' >&2\nfalse"))]),
        )]),
    ));
    let script = env.script(pairs);
    let out = env.run(&script, "onestart", None);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cannot prepare") && err.contains("failed precmd routine"),
        "{err}"
    );
    assert!(!Path::new(&env.p("out/args")).exists());
}

#[test]
fn reload_sends_the_reload_signal() {
    let env = Env::new();
    // A daemon that records the signals it gets.
    let prog = env.tmp.path().join("trapper");
    fs::write(
        &prog,
        "#!/bin/sh\n(trap 'echo usr1 >> \"$OUTDIR/signals\"' USR1; trap 'exit 0' TERM; \
         echo $(sh -c 'echo $PPID') > \"$PIDFILE\"; while :; do sleep 0.1; done) </dev/null >/dev/null 2>&1 &\n",
    )
    .unwrap();
    fs::set_permissions(&prog, fs::Permissions::from_mode(0o755)).unwrap();
    let script = env.script(vec![
        ("instanceName", "trapper".into()),
        ("command", prog.display().to_string().into()),
        ("reloadSignal", "USR1".into()),
        (
            "environment",
            attrs([
                ("OUTDIR", Value::from(env.p("out"))),
                ("PIDFILE", Value::from(env.p("run/trapper.pid"))),
            ]),
        ),
    ]);
    assert!(env.run(&script, "onestart", None).status.success());
    env.wait_for(&env.p("run/trapper.pid"));
    let out = env.run(&script, "onereload", None);
    assert!(out.status.success(), "{out:?}");
    env.wait_for(&env.p("out/signals"));
    assert_eq!(env.out("signals"), "usr1\n");
    assert!(env.run(&script, "onestop", None).status.success());
}
