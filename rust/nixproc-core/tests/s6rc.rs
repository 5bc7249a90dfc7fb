//! Golden files of generated s6-rc service directories (reference §3.7.5
//! example, a daemon as oneshot, a bundle), with Nix store paths for
//! execline, s6 and the foreground proxy as the Nix layer passes them.

use nixproc_core::agnostic::create_managed_process;
use nixproc_core::package::PackageSpec;
use nixproc_core::s6rc::create_s6rc_service;
use nixproc_core::value::attrs;
use nixproc_core::Value;

const HELLO: &str = "/nix/store/11111111111111111111111111111111-hello-2.12/bin/hello";
const COREUTILS: &str = "/nix/store/33333333333333333333333333333333-coreutils-9.1";
const EXECLINE: &str = "/nix/store/55555555555555555555555555555555-execline-2.9.3.0";
const S6: &str = "/nix/store/66666666666666666666666666666666-s6-2.11.3.2";
const PROXY: &str = "/nix/store/44444444444444444444444444444444-nixproc-builder foreground-proxy";

fn composition() -> Vec<(&'static str, Value)> {
    vec![
        ("processManager", "s6-rc".into()),
        ("execline", EXECLINE.into()),
        ("s6", S6.into()),
        ("foregroundProxy", PROXY.into()),
        ("logDir", "/var/log".into()),
        ("runtimeDir", "/var/run".into()),
        ("tmpDir", "/tmp".into()),
    ]
}

fn layout(p: &PackageSpec) -> String {
    p.files
        .iter()
        .map(|f| format!("{} ({:o})", f.path, f.mode))
        .collect::<Vec<_>>()
        .join("\n")
}

fn text<'a>(p: &'a PackageSpec, path: &str) -> &'a str {
    &p.files.iter().find(|f| f.path == path).unwrap().text
}

fn manifest(p: &PackageSpec) -> String {
    let mut m = serde_json::to_value(&p.manifest).unwrap();
    m["revision"] = "<revision>".into();
    serde_json::to_string_pretty(&m).unwrap()
}

/// The §3.7.5 example: `hello2` in the foreground, as a user, with an
/// environment, a PATH, initialization, nice and a dependency.
#[test]
fn snapshot_foreground_example() {
    let mut v = composition();
    v.extend([
        ("instanceName", "hello2".into()),
        ("process", HELLO.into()),
        ("args", vec!["-g", "Hello \"$USER\" ${HOME}"].into()),
        ("user", "hello2".into()),
        ("environment", attrs([("PORT", Value::Int(7000))])),
        ("path", vec![COREUTILS].into()),
        (
            "initialize",
            "mkdir -p /var/lib/hello2\nchown hello2 /var/lib/hello2".into(),
        ),
        ("nice", Value::Int(5)),
        (
            "dependencies",
            Value::List(vec![attrs([("name", Value::from("dep-srv"))])]),
        ),
        (
            "credentials",
            attrs([
                ("groups", attrs([("hello2", attrs::<_, &str>([]))])),
                (
                    "users",
                    attrs([("hello2", attrs([("group", Value::from("hello2"))]))]),
                ),
            ]),
        ),
    ]);
    let p = create_managed_process(&attrs(v)).unwrap();
    insta::assert_snapshot!("foreground_example_layout", layout(&p));
    insta::assert_snapshot!(
        "foreground_example_run",
        text(&p, "etc/s6/sv/hello2-srv/run")
    );
    insta::assert_snapshot!(
        "foreground_example_log_run",
        text(&p, "etc/s6/sv/hello2-log/run")
    );
    insta::assert_snapshot!("foreground_example_manifest", manifest(&p));
}

#[test]
fn snapshot_daemon_oneshot() {
    let mut v = composition();
    v.extend([
        ("instanceName", "webapp".into()),
        ("daemon", HELLO.into()),
        ("daemonArgs", vec!["-D"].into()),
        ("user", "webapp".into()),
        ("umask", "022".into()),
        ("directory", "/var/lib/webapp".into()),
    ]);
    let p = create_managed_process(&attrs(v)).unwrap();
    insta::assert_snapshot!("daemon_oneshot_layout", layout(&p));
    insta::assert_snapshot!("daemon_oneshot_up", text(&p, "etc/s6/sv/webapp/up"));
    insta::assert_snapshot!("daemon_oneshot_down", text(&p, "etc/s6/sv/webapp/down"));
    insta::assert_snapshot!("daemon_oneshot_manifest", manifest(&p));
}

#[test]
fn snapshot_bundle() {
    let p = create_s6rc_service(&attrs([
        ("type", Value::from("bundle")),
        ("name", "webapps".into()),
        ("flagEssential", true.into()),
        ("contents", vec!["webapp1-srv", "webapp2-srv"].into()),
    ]))
    .unwrap();
    insta::assert_snapshot!("bundle_layout", layout(&p));
    insta::assert_snapshot!("bundle_manifest", manifest(&p));
}
