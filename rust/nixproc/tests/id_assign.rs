//! `nixproc id-assign` end to end: the test model tests/models/ids (copied
//! into a temporary directory, where its ids.nix is written), real Nix, the
//! `nixproc` binary of this build with the release plugin and builder.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

/// The plugin and static builder of `target/release` (scripts/build.sh),
/// or `$NIXPROC_TEST_BIN_DIR`.
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

fn nixproc() -> Command {
    tool(Path::new(env!("CARGO_BIN_EXE_nixproc")))
}

/// `program` (nixproc under some name) with the toolchain's environment and
/// none of the user's NIXPROC_* defaults.
fn tool(program: &Path) -> Command {
    let rel = release_dir();
    let mut c = Command::new(program);
    c.env("NIXPROC_PLUGIN", rel.join("libnixproc_plugin.so"))
        .env("NIXPROC_BUILDER", rel.join("nixproc-builder"))
        .env("NIXPROC", repo().join("nix"));
    for v in [
        "NIXPROC_PROCESSES",
        "NIXPROC_STATE_DIR",
        "NIXPROC_FORCE_DISABLE_USER_CHANGE",
        "NIXPROC_PROCESS_MANAGER",
    ] {
        c.env_remove(v);
    }
    c
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

/// A private copy of the model directory.
struct Model {
    dir: tempfile::TempDir,
}

impl Model {
    fn new() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("nixproc-ids-")
            .tempdir()
            .unwrap();
        for f in std::fs::read_dir(repo().join("tests/models/ids")).unwrap() {
            let f = f.unwrap();
            std::fs::copy(f.path(), dir.path().join(f.file_name())).unwrap();
        }
        Model { dir }
    }

    fn path(&self, f: &str) -> PathBuf {
        self.dir.path().join(f)
    }

    /// `nixproc id-assign --id-resources <res> <extra…> processes.nix`
    fn assign(&self, resources: &str, extra: &[&str]) -> Output {
        run(nixproc()
            .arg("id-assign")
            .arg("--id-resources")
            .arg(self.path(resources))
            .args(extra)
            .arg(self.path("processes.nix")))
    }

    /// The normal use: update ids.nix in place.
    fn update(&self, extra: &[&str]) -> String {
        let ids = self.path("ids.nix");
        let ids = ids.to_str().unwrap();
        let mut args = vec!["--ids", ids, "--output-file", ids];
        args.extend_from_slice(extra);
        ok(&self.assign("idresources.nix", &args));
        std::fs::read_to_string(self.path("ids.nix")).unwrap()
    }

    /// ids.nix evaluated by Nix (proves it is valid Nix).
    fn ids(&self) -> serde_json::Value {
        eval_json(&self.path("ids.nix"), None)
    }
}

fn eval_json(file: &Path, attr: Option<&str>) -> serde_json::Value {
    let mut c = Command::new("nix-instantiate");
    c.args(["--eval", "--strict", "--json"])
        .arg("-I")
        .arg(format!("nixproc={}", repo().join("nix").display()))
        .arg(file);
    if let Some(a) = attr {
        c.args(["--arg", "processManager", "\"sysvinit\"", "-A", a]);
    }
    serde_json::from_str(&ok(&run(&mut c))).unwrap()
}

#[test]
fn first_run_assigns_from_each_pool_and_writes_valid_nix() {
    let m = Model::new();
    m.update(&[]);
    let ids = m.ids();
    assert_eq!(
        ids["ids"]["webappPorts"],
        serde_json::json!({ "webapp1": 5000, "webapp2": 5001 })
    );
    // step 10; a name that needs quoting in Nix.
    assert_eq!(
        ids["ids"]["proxyPorts"],
        serde_json::json!({ "nginx proxy": 8080 })
    );
    assert_eq!(
        ids["ids"]["uids"],
        serde_json::json!({ "webapp1": 2000, "webapp2": 2001 })
    );
    assert_eq!(ids["ids"]["gids"], ids["ids"]["uids"]);
    assert_eq!(
        ids["lastAssignments"],
        serde_json::json!({ "gids": 2001, "proxyPorts": 8080, "uids": 2001, "webappPorts": 5001 })
    );
    // The instance without requiresUniqueIdsFor got nothing.
    assert!(!m.update(&[]).contains("plain"));
}

#[test]
fn running_twice_changes_nothing() {
    let m = Model::new();
    let first = m.update(&[]);
    let second = m.update(&[]);
    assert_eq!(first, second);
}

#[test]
fn the_model_reads_its_assigned_ports_back() {
    let m = Model::new();
    m.update(&[]);
    let port = eval_json(&m.path("processes.nix"), Some("webapp2.port"));
    assert_eq!(port, serde_json::json!(5001));
    let port = eval_json(&m.path("processes.nix"), Some("\"nginx proxy\".port"));
    assert_eq!(port, serde_json::json!(8080));
}

#[test]
fn adding_and_removing_instances_keeps_the_others_ids() {
    let m = Model::new();
    m.update(&[]);
    // webapp1 goes, webapp0 and webapp3 come.
    m.update(&[
        "--extra-params",
        r#"{ webapps = [ "webapp0" "webapp2" "webapp3" ]; }"#,
    ]);
    let ids = m.ids();
    assert_eq!(
        ids["ids"]["webappPorts"],
        serde_json::json!({ "webapp0": 5002, "webapp2": 5001, "webapp3": 5003 })
    );
    assert_eq!(ids["ids"]["uids"]["webapp2"], 2001);
    assert_eq!(ids["ids"]["proxyPorts"]["nginx proxy"], 8080);
    // webapp1 comes back: it does not get its old (freed) 5000 back at
    // once, nor anyone else's.
    m.update(&[
        "--extra-params",
        r#"{ webapps = [ "webapp0" "webapp1" "webapp2" "webapp3" ]; }"#,
    ]);
    let ids = m.ids();
    assert_eq!(
        ids["ids"]["webappPorts"],
        serde_json::json!({ "webapp0": 5002, "webapp1": 5004, "webapp2": 5001, "webapp3": 5003 })
    );
}

#[test]
fn stdout_by_default_and_xml_on_request() {
    let m = Model::new();
    let nix = ok(&m.assign("idresources.nix", &[]));
    assert!(nix.contains("webapp1 = 5000;"), "{nix}");
    assert!(!m.path("ids.nix").exists());
    let xml = ok(&m.assign("idresources.nix", &["--output-xml"]));
    assert!(xml.starts_with("<?xml"), "{xml}");
    assert!(
        xml.contains("<assignment name=\"nginx proxy\">8080</assignment>"),
        "{xml}"
    );
}

#[test]
fn state_dir_and_user_change_options_reach_the_model() {
    let m = Model::new();
    // Defect 7: the options must reach the evaluation. This model wants
    // users only for system deployments.
    let out = ok(&m.assign("idresources.nix", &["--state-dir", "/tmp/somewhere"]));
    assert!(out.contains("uids = { };"), "{out}");
    assert!(out.contains("webapp1 = 5000;"), "{out}");
    let out = ok(&m.assign("idresources.nix", &["--force-disable-user-change"]));
    assert!(out.contains("uids = { };"), "{out}");
    let out = ok(&run(nixproc()
        .env("NIXPROC_STATE_DIR", "/tmp/elsewhere")
        .arg("id-assign")
        .arg("--id-resources")
        .arg(m.path("idresources.nix"))
        .arg(m.path("processes.nix"))));
    assert!(out.contains("uids = { };"), "{out}");
    let out = ok(&m.assign("idresources.nix", &[]));
    assert!(out.contains("webapp1 = 2000;"), "{out}");
}

#[test]
fn processes_model_from_environment() {
    let m = Model::new();
    let out = ok(&run(nixproc()
        .env("NIXPROC_PROCESSES", m.path("processes.nix"))
        .arg("id-assign")
        .arg("--id-resources")
        .arg(m.path("idresources.nix"))));
    assert!(out.contains("webapp2 = 5001;"), "{out}");
}

#[test]
fn custom_service_property() {
    let m = Model::new();
    // No instance has this property: every pool stays empty.
    let out = ok(&m.assign("idresources.nix", &["--service-property", "needsIdsFrom"]));
    assert!(out.contains("webappPorts = { };"), "{out}");
    assert!(out.contains("lastAssignments = {\n  };"), "{out}");
}

#[test]
fn packages_are_never_forced() {
    let m = Model::new();
    // The "nginx proxy" and "broken" instances' pkgs throw.
    let out = ok(&m.assign("idresources.nix", &["--extra-params", "{ broken = true; }"]));
    assert!(out.contains("broken = 5000;"), "{out}");
}

#[test]
fn exhausted_pool_is_an_error_naming_it() {
    let m = Model::new();
    // Unprivileged: the webapps want only ports (tiny has no uids).
    let err = failed(&m.assign("tiny-resources.nix", &["--force-disable-user-change"]));
    assert!(
        err.contains("id resource 'webappPorts' is exhausted"),
        "{err}"
    );
    assert!(!m.path("ids.nix").exists());
}

#[test]
fn unknown_resource_and_scope_are_errors() {
    let m = Model::new();
    // The webapps of a system deployment want uids and gids.
    std::fs::write(
        m.path("no-uids.nix"),
        "{ webappPorts = { min = 1; max = 9; }; proxyPorts = { min = 1; max = 9; }; }",
    )
    .unwrap();
    let err = failed(&m.assign("no-uids.nix", &[]));
    assert!(
        err.contains("instance 'webapp1' requires a unique id from 'gids'"),
        "{err}"
    );
    assert!(err.contains("defined: proxyPorts, webappPorts"), "{err}");

    let err = failed(&m.assign("scoped-resources.nix", &[]));
    assert!(
        err.contains("id resource 'webappPorts': scope 'target' is not supported"),
        "{err}"
    );
}

#[test]
fn bad_model_input_is_a_clear_error() {
    let m = Model::new();
    let err = failed(&m.assign(
        "idresources.nix",
        &["--extra-params", "{ wrongProperty = true; }"],
    ));
    assert!(
        err.contains("instance 'wrong': 'requiresUniqueIdsFor' must be a list"),
        "{err}"
    );
    std::fs::write(m.path("ids.nix"), "[ ]").unwrap();
    let ids = m.path("ids.nix");
    let err = failed(&m.assign("idresources.nix", &["--ids", ids.to_str().unwrap()]));
    assert!(err.contains("must be an attribute set"), "{err}");
}

#[test]
fn missing_arguments_are_clear_errors() {
    let m = Model::new();
    let err = failed(&run(nixproc()
        .arg("id-assign")
        .arg(m.path("processes.nix"))));
    assert!(err.contains("--id-resources"), "{err}");
    let err = failed(&run(nixproc()
        .arg("id-assign")
        .arg("--id-resources")
        .arg(m.path("idresources.nix"))));
    assert!(err.contains("no processes model given"), "{err}");
    let err = failed(&m.assign("missing.nix", &[]));
    assert!(err.contains("id resources file"), "{err}");
    assert!(err.contains("not found"), "{err}");
}

#[test]
fn original_tool_name() {
    let m = Model::new();
    let link = m.path("nixproc-id-assign");
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_nixproc"), &link).unwrap();
    let ids = m.path("ids.nix");
    let out = run(tool(&link)
        .arg("--id-resources")
        .arg(m.path("idresources.nix"))
        .arg("--output-file")
        .arg(&ids)
        .arg(m.path("processes.nix")));
    ok(&out);
    assert!(std::fs::read_to_string(ids)
        .unwrap()
        .contains("webapp1 = 5000;"));
}
