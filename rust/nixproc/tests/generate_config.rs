//! `nixproc generate-config` end to end: agnostic JSON configs (hand-written
//! and written by nix/lib/agnostic-config.nix) turned into process packages
//! and compared with what `createManagedProcess` builds from the same
//! arguments; `--base`; options and errors. Real Nix, the `nixproc` binary
//! of this build with the release plugin and static builder.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

/// `target/release` (scripts/build.sh) or `$NIXPROC_TEST_BIN_DIR`.
fn release_dir() -> PathBuf {
    let dir = std::env::var_os("NIXPROC_TEST_BIN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("target/release"));
    for f in ["libnixproc_plugin.so", "nixproc-builder"] {
        assert!(
            dir.join(f).exists(),
            "{} missing: run scripts/build.sh first",
            dir.join(f).display()
        );
    }
    dir
}

/// `program` (nixproc under some name) with the toolchain's environment.
fn tool(program: &Path) -> Command {
    let rel = release_dir();
    let mut c = Command::new(program);
    c.env("NIXPROC_PLUGIN", rel.join("libnixproc_plugin.so"))
        .env("NIXPROC_BUILDER", rel.join("nixproc-builder"))
        .env("NIXPROC", repo().join("nix"));
    for v in [
        "NIXPROC_STATE_DIR",
        "NIXPROC_LOG_DIR",
        "NIXPROC_FORCE_DISABLE_USER_CHANGE",
    ] {
        c.env_remove(v);
    }
    c
}

fn nixproc(args: &[&str]) -> Output {
    run(tool(Path::new(env!("CARGO_BIN_EXE_nixproc"))).args(args))
}

fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().expect("runs");
    eprintln!(
        "$ {cmd:?}\n--- stdout\n{}--- stderr\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).unwrap()
}

fn failed(out: &Output) -> String {
    assert!(!out.status.success(), "succeeded unexpectedly");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn store_path(stdout: &str) -> PathBuf {
    let p = stdout.trim();
    assert!(p.starts_with("/nix/store/"), "not a store path: {p:?}");
    PathBuf::from(p)
}

/// `nix-build -E <expr>` the way nixproc runs Nix (plugin, <nixproc>).
fn nix_build(expr: &str) -> PathBuf {
    let rel = release_dir();
    let mut c = Command::new("nix-build");
    c.arg("--option")
        .arg("plugin-files")
        .arg(rel.join("libnixproc_plugin.so"))
        .args(["--option", "substituters", "", "--no-out-link", "-I"])
        .arg(format!("nixproc={}", repo().join("nix").display()))
        .env("NIXPROC_BUILDER", rel.join("nixproc-builder"))
        .args(["-E", expr]);
    store_path(&ok(&run(&mut c)))
}

fn nix_eval_error(expr: &str) -> String {
    let mut c = Command::new("nix-instantiate");
    c.args(["--eval", "--strict", "-I"])
        .arg(format!("nixproc={}", repo().join("nix").display()))
        .env("NIXPROC_BUILDER", release_dir().join("nixproc-builder"))
        .args(["-E", expr]);
    failed(&run(&mut c))
}

/// Relative path → file text or link target, of a whole store tree.
fn tree(root: &Path) -> BTreeMap<String, String> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, String>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            let rel = p.strip_prefix(root).unwrap().display().to_string();
            let meta = std::fs::symlink_metadata(&p).unwrap();
            if meta.file_type().is_symlink() {
                out.insert(
                    rel,
                    format!("-> {}", std::fs::read_link(&p).unwrap().display()),
                );
            } else if meta.is_dir() {
                out.insert(rel, "<dir>".into());
                walk(root, &p, out);
            } else {
                out.insert(rel, std::fs::read_to_string(&p).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

/// A Nix string literal for `s` (tests put hostile text through Nix).
fn nix_str(s: &str) -> String {
    format!(
        "\"{}\"",
        s.replace('\\', "\\\\")
            .replace('"', "\\\"")
            .replace("${", "\\${")
            .replace('\n', "\\n")
    )
}

/// Hostile arguments and environment values: they must reach the generated
/// files exactly as createManagedProcess puts them there.
const HOSTILE: &str = "it's \"quoted\" $(id) `id` ${HOME} 100% ; \\ \n next é";

fn hostile_config(dir: &Path) -> PathBuf {
    let config = serde_json::json!({
        "instanceName": "hostile",
        "process": "/bin/sleep",
        "args": ["1000", HOSTILE],
        "environment": { "GREETING": HOSTILE, "PORT": 5123 },
        "overrides": { "sysvinit": { "runlevels": [3, 4, 5] } },
    });
    let file = dir.join("hostile.json");
    std::fs::write(&file, serde_json::to_string_pretty(&config).unwrap()).unwrap();
    file
}

#[test]
fn json_config_gives_what_create_managed_process_gives() {
    let dir = tempfile::tempdir().unwrap();
    let config = hostile_config(dir.path());
    let state = dir.path().join("state");
    for pm in ["sysvinit", "supervisord"] {
        let generated = store_path(&ok(&nixproc(&[
            "generate-config",
            "-P",
            pm,
            "--state-dir",
            state.to_str().unwrap(),
            config.to_str().unwrap(),
        ])));
        let direct = nix_build(&format!(
            "(import <nixproc> {{ stateDir = {}; processManager = {}; }}).createManagedProcess {{
               instanceName = \"hostile\";
               process = \"/bin/sleep\";
               args = [ \"1000\" {h} ];
               environment = {{ GREETING = {h}; PORT = 5123; }};
               overrides.sysvinit.runlevels = [ 3 4 5 ];
             }}",
            nix_str(state.to_str().unwrap()),
            nix_str(pm),
            h = nix_str(HOSTILE),
        ));
        assert_eq!(generated, direct, "{pm}: a different package");
        let files = tree(&generated);
        assert!(
            files.values().any(|t| t.contains("$(id)")),
            "{pm}: the hostile argument is missing: {files:#?}"
        );
    }
}

/// The writer (processManager = null) for a webapp with a store-path
/// executable and a proxy depending on it.
const WRITER_MODEL: &str = r##"
let
  nixproc = import <nixproc> { };
  write = import <nixproc/lib/agnostic-config.nix> { inherit (nixproc) mkDerivation; };
  program = nixproc.writeScript "webapp-program" "#!/bin/sh\nexec sleep 1000\n";
  webappArgs = {
    instanceName = "webapp";
    process = "${program}";
    args = [ "-p" "5000" ];
    environment.PORT = 5000;
    credentials = { groups.webapp = { }; users.webapp = { group = "webapp"; description = "Webapp"; }; };
    user = "webapp";
  };
  proxyArgs = {
    instanceName = "proxy";
    process = "/bin/sleep";
    args = [ "1000" ];
  };
in
"##;

#[test]
fn dependencies_are_read_recursively_and_executables_stay_references() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let state = state.to_str().unwrap();
    let configs = nix_build(&format!(
        "{WRITER_MODEL} write (proxyArgs // {{ dependencies = [ (write webappArgs) ]; }})"
    ));
    let proxy_json = configs.join("proxy.json");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&proxy_json).unwrap()).unwrap();
    let dep = json["dependencies"][0].as_str().unwrap().to_string();
    assert!(dep.ends_with("-webapp"), "{json}");
    assert!(Path::new(&dep).join("webapp.json").exists());

    for pm in ["sysvinit", "supervisord"] {
        let generated = store_path(&ok(&nixproc(&[
            "generate-config",
            "-P",
            pm,
            "--state-dir",
            state,
            "--force-disable-user-change",
            proxy_json.to_str().unwrap(),
        ])));
        let direct = nix_build(&format!(
            "{WRITER_MODEL} let np = import <nixproc> {{ stateDir = {}; processManager = {}; forceDisableUserChange = true; }};
             in np.createManagedProcess (proxyArgs // {{ dependencies = [ (np.createManagedProcess webappArgs) ]; }})",
            nix_str(state),
            nix_str(pm)
        ));
        assert_eq!(tree(&generated), tree(&direct), "{pm}: proxy differs");

        // The dependency itself, built from its own JSON.
        let webapp = store_path(&ok(&nixproc(&[
            "generate-config",
            "-P",
            pm,
            "--state-dir",
            state,
            "--force-disable-user-change",
            &format!("{dep}/webapp.json"),
        ])));
        let direct = nix_build(&format!(
            "{WRITER_MODEL} (import <nixproc> {{ stateDir = {}; processManager = {}; forceDisableUserChange = true; }}).createManagedProcess webappArgs",
            nix_str(state),
            nix_str(pm)
        ));
        assert_eq!(tree(&webapp), tree(&direct), "{pm}: webapp differs");
        // The executable named in the JSON is still a reference of the
        // package built from it (string context re-attached).
        let refs = ok(&run(Command::new("nix-store")
            .args(["--query", "--references"])
            .arg(&webapp)));
        assert!(
            refs.lines().any(|r| r.ends_with("-webapp-program")),
            "{pm}: the program is not a reference of {}: {refs}",
            webapp.display()
        );
    }
}

#[test]
fn state_and_log_dirs_are_honoured() {
    let dir = tempfile::tempdir().unwrap();
    let config = hostile_config(dir.path());
    let state = dir.path().join("st");
    let logs = dir.path().join("logs");
    let out = store_path(&ok(&nixproc(&[
        "generate-config",
        "-P",
        "supervisord",
        "--state-dir",
        state.to_str().unwrap(),
        "--log-dir",
        logs.to_str().unwrap(),
        config.to_str().unwrap(),
    ])));
    let conf = std::fs::read_to_string(out.join("conf.d/hostile.conf")).unwrap();
    assert!(
        conf.contains(&format!(
            "stdout_logfile={}/nixproc-hostile.log",
            logs.display()
        )),
        "{conf}"
    );
    let out = store_path(&ok(&nixproc(&[
        "generate-config",
        "-P",
        "sysvinit",
        "--state-dir",
        state.to_str().unwrap(),
        config.to_str().unwrap(),
    ])));
    let script = std::fs::read_to_string(out.join("etc/rc.d/init.d/hostile")).unwrap();
    assert!(
        script.contains(&format!("{}/run/hostile.pid", state.display())),
        "{script}"
    );
}

#[test]
fn create_managed_process_expr_is_used() {
    let dir = tempfile::tempdir().unwrap();
    let config = hostile_config(dir.path());
    let expr = dir.path().join("cmp.nix");
    std::fs::write(
        &expr,
        "{ stateDir, processManager }:\n\
         let np = import <nixproc> { inherit stateDir processManager; }; in\n\
         args: np.createManagedProcess (args // { description = \"made by cmp.nix in ${stateDir}\"; })\n",
    )
    .unwrap();
    let out = store_path(&ok(&nixproc(&[
        "generate-config",
        "-P",
        "sysvinit",
        "--state-dir",
        "/srv/x",
        "--create-managed-process-expr",
        expr.to_str().unwrap(),
        config.to_str().unwrap(),
    ])));
    let script = std::fs::read_to_string(out.join("etc/rc.d/init.d/hostile")).unwrap();
    assert!(script.contains("made by cmp.nix in /srv/x"), "{script}");

    std::fs::write(&expr, "42").unwrap();
    let err = failed(&nixproc(&[
        "generate-config",
        "-P",
        "sysvinit",
        "--create-managed-process-expr",
        expr.to_str().unwrap(),
        config.to_str().unwrap(),
    ]));
    assert!(err.contains("must give createManagedProcess"), "{err}");
}

#[test]
fn missing_file_and_missing_process_manager_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let config = hostile_config(dir.path());
    let err = failed(&nixproc(&["generate-config", config.to_str().unwrap()]));
    assert!(
        err.contains("no process manager given: pass -P/--process-manager"),
        "{err}"
    );
    let missing = dir.path().join("nope.json");
    let err = failed(&nixproc(&[
        "generate-config",
        "-P",
        "sysvinit",
        missing.to_str().unwrap(),
    ]));
    assert!(
        err.contains(&format!("config file {} not found", missing.display())),
        "{err}"
    );
    let err = failed(&nixproc(&["generate-config", "-P", "sysvinit"]));
    assert!(err.contains("no config file given"), "{err}");
    std::fs::write(dir.path().join("list.json"), "[1]").unwrap();
    let err = failed(&nixproc(&[
        "generate-config",
        "-P",
        "sysvinit",
        dir.path().join("list.json").to_str().unwrap(),
    ]));
    assert!(err.contains("must hold a JSON object"), "{err}");
}

#[test]
fn writer_rejects_what_json_cannot_hold() {
    let err = nix_eval_error(&format!(
        "{WRITER_MODEL} (write (webappArgs // {{ overrides.systemd = a: a; }})).drvPath"
    ));
    assert!(
        err.contains("overrides.systemd is a function, which cannot be written to a JSON config"),
        "{err}"
    );
    let err = nix_eval_error(&format!(
        "{WRITER_MODEL} (write (proxyArgs // {{ dependencies = [ \"/bin/sh\" ]; }})).drvPath"
    ));
    assert!(err.contains("every element of 'dependencies'"), "{err}");
    let err = nix_eval_error(&format!(
        "{WRITER_MODEL} (write {{ process = \"/bin/true\"; }}).drvPath"
    ));
    assert!(err.contains("no process name"), "{err}");
}

#[test]
fn base_supervisord_config_contains_the_dirs() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let out = store_path(&ok(&nixproc(&[
        "generate-config",
        "-P",
        "supervisord",
        "--base",
        "--state-dir",
        state.to_str().unwrap(),
    ])));
    let conf = std::fs::read_to_string(out.join("supervisord.conf")).unwrap();
    let s = state.display();
    assert!(
        conf.contains(&format!("logfile={s}/log/supervisord.log")),
        "{conf}"
    );
    assert!(
        conf.contains(&format!("pidfile={s}/run/supervisord.pid")),
        "{conf}"
    );
    assert!(
        conf.contains(&format!("file={s}/run/supervisord.sock")),
        "{conf}"
    );
    assert!(conf.contains("files=conf.d/*.conf"), "{conf}");
    assert!(out.join("conf.d").is_dir());
}

fn alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
        && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .unwrap_or_default()
            .contains(") Z ")
}

#[test]
fn base_s6_scan_dir_runs_s6_svscan() {
    if !Path::new("/usr/bin/s6-svscan").exists() {
        eprintln!("s6-svscan not installed: skipping the run, checking the layout only");
    }
    let dir = tempfile::tempdir().unwrap();
    let runtime = dir.path().join("run");
    let out = store_path(&ok(&nixproc(&[
        "generate-config",
        "-P",
        "s6-rc",
        "--base",
        "--runtime-dir",
        runtime.to_str().unwrap(),
    ])));
    let finish = out.join("service/.s6-svscan/finish");
    assert!(finish.exists(), "no .s6-svscan/finish in {}", out.display());
    let start = out.join("bin/nixproc-s6-svscan");
    let script = std::fs::read_to_string(&start).unwrap();
    assert!(
        script.contains(&format!("scandir='{}/service'", runtime.display())),
        "{script}"
    );
    if !Path::new("/usr/bin/s6-svscan").exists() {
        return;
    }
    let mut child = Command::new(&start).spawn().unwrap();
    let scan = runtime.join("service");
    let deadline = Instant::now() + Duration::from_secs(20);
    while !scan.join(".s6-svscan/control").exists() {
        assert!(Instant::now() < deadline, "s6-svscan did not come up");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        std::fs::read_link(scan.join(".s6-svscan/finish")).unwrap(),
        std::fs::read_link(&finish).unwrap()
    );
    let stop = run(Command::new("s6-svscanctl").arg("-t").arg(&scan));
    if !stop.status.success() {
        let _ = child.kill();
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("s6-svscan did not exit");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(!alive(child.id()));
    // The finish script ran (s6-svscan execs it) and exited 0.
    assert!(status.success(), "{status}");
}

#[test]
fn base_for_other_managers_is_an_error() {
    for pm in ["sysvinit", "systemd", "docker"] {
        let err = failed(&nixproc(&["generate-config", "-P", pm, "--base"]));
        assert!(
            err.contains(&format!("{pm} has no base configuration of its own")),
            "{err}"
        );
    }
}

#[test]
fn original_tool_name_makes_a_result_link() {
    let dir = tempfile::tempdir().unwrap();
    let config = hostile_config(dir.path());
    let link = dir.path().join("nixproc-generate-config");
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_nixproc"), &link).unwrap();
    let out = store_path(&ok(&run(tool(&link)
        .current_dir(dir.path())
        .args(["--process-manager", "sysvinit"])
        .arg(&config))));
    let result = dir.path().join("result");
    assert_eq!(std::fs::read_link(&result).unwrap(), out);
    std::fs::remove_file(&result).unwrap();
    ok(&run(tool(&link)
        .current_dir(dir.path())
        .args(["--no-out-link", "-P", "sysvinit"])
        .arg(&config)));
    assert!(!result.exists());
}

/// `createManagedProcess` of a model evaluated with `processManager = null`
/// writes the agnostic config; generate-config turns it back into the
/// package createManagedProcess makes for a real process manager.
#[test]
fn create_managed_process_without_a_process_manager_writes_the_config() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let call = |pm: &str| {
        format!(
            "(import <nixproc> {{ stateDir = {}; processManager = {pm}; }}).createManagedProcess {{
               instanceName = \"agn\";
               process = \"/bin/sleep\";
               args = [ \"1000\" {h} ];
               environment.GREETING = {h};
               overrides.supervisord.autorestart = false;
             }}",
            nix_str(state.to_str().unwrap()),
            h = nix_str(HOSTILE),
        )
    };
    let written = nix_build(&call("null"));
    let json = written.join("agn.json");
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(config["instanceName"], "agn");
    assert_eq!(config["args"][1], HOSTILE);
    assert_eq!(config["overrides"]["supervisord"]["autorestart"], false);
    let generated = store_path(&ok(&nixproc(&[
        "generate-config",
        "-P",
        "supervisord",
        "--state-dir",
        state.to_str().unwrap(),
        json.to_str().unwrap(),
    ])));
    assert_eq!(generated, nix_build(&call("\"supervisord\"")));
}
