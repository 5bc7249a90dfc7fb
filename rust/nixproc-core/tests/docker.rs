//! Golden files of whole docker container packages: the §3.9.3 example
//! through `createManagedProcess` (base image, shared store and network,
//! state dir volume, host accounts, foreground proxy for initialize) and a
//! daemon wrapped by the proxy.

use nixproc_core::agnostic::create_managed_process;
use nixproc_core::docker::create_docker_container;
use nixproc_core::package::PackageSpec;
use nixproc_core::value::attrs;
use nixproc_core::Value;

const HELLO: &str = "/nix/store/11111111111111111111111111111111-hello-2.12/bin/hello";
const COREUTILS: &str = "/nix/store/33333333333333333333333333333333-coreutils-9.1";
const BUILDER: &str = "/nix/store/44444444444444444444444444444444-nixproc-builder";
const BASE: &str = "/nix/store/0123456789abcdfghijklmnpqrsvwxyz-nixproc-docker-base.tar";
const SHELL: &str = "/nix/store/55555555555555555555555555555555-bash-5.2/bin/sh";

fn composition() -> Vec<(&'static str, Value)> {
    vec![
        ("processManager", "docker".into()),
        ("dockerBaseImage", BASE.into()),
        (
            "foregroundProxy",
            format!("{BUILDER} foreground-proxy").into(),
        ),
        ("shell", SHELL.into()),
        ("stateDir", "/var".into()),
        ("runtimeDir", "/var/run".into()),
        (
            "ids",
            attrs([
                ("uids", attrs([("hello2", Value::Int(2000))])),
                ("gids", attrs([("hello2", Value::Int(2000))])),
            ]),
        ),
    ]
}

/// Every file of the package, `== path (mode) ==` then its text.
fn layout(p: &PackageSpec) -> String {
    let mut out = String::new();
    for f in &p.files {
        out.push_str(&format!("== {} ({:o}) ==\n{}", f.path, f.mode, f.text));
    }
    out
}

fn manifest(p: &PackageSpec) -> String {
    serde_json::to_string_pretty(&p.manifest).unwrap()
}

/// hello2 (foreground) with a user, an environment, a PATH, credentials and
/// a dependency of priority 1.
fn hello2(extra: Vec<(&'static str, Value)>) -> PackageSpec {
    let mut all = composition();
    all.extend([
        ("instanceName", "hello2".into()),
        ("foregroundProcess", HELLO.into()),
        ("args", vec!["-g", "Hello 'world' $(id)"].into()),
        ("user", "hello2".into()),
        ("environment", attrs([("PORT", Value::Int(7000))])),
        ("path", vec![COREUTILS].into()),
        (
            "dependencies",
            Value::List(vec![attrs([
                ("name", "webapp".into()),
                ("priority", Value::Int(1)),
            ])]),
        ),
        (
            "credentials",
            attrs([
                ("groups", attrs([("hello2", attrs::<_, &str>([]))])),
                (
                    "users",
                    attrs([("hello2", attrs([("group", "hello2".into())]))]),
                ),
            ]),
        ),
    ]);
    all.extend(extra);
    create_managed_process(&attrs(all)).unwrap()
}

#[test]
fn snapshot_foreground_example() {
    let p = hello2(vec![]);
    insta::assert_snapshot!("foreground_example_layout", layout(&p));
    insta::assert_snapshot!("foreground_example_manifest", manifest(&p));
}

#[test]
fn snapshot_foreground_with_initialize() {
    let p = hello2(vec![
        (
            "initialize",
            "mkdir -p /var/hello2\nchown hello2 /var/hello2".into(),
        ),
        ("directory", "/var/hello2".into()),
        ("umask", "027".into()),
    ]);
    insta::assert_snapshot!("initialize_proxy_layout", layout(&p));
}

#[test]
fn snapshot_wrapped_daemon() {
    let mut all = composition();
    all.extend([
        ("name", "db".into()),
        ("daemon", HELLO.into()),
        ("daemonArgs", vec!["--fork"].into()),
        ("forceDisableUserChange", true.into()),
        ("user", "db".into()),
    ]);
    let p = create_managed_process(&attrs(all)).unwrap();
    insta::assert_snapshot!("wrapped_daemon_layout", layout(&p));
    insta::assert_snapshot!("wrapped_daemon_manifest", manifest(&p));
}

#[test]
fn snapshot_direct_container_with_own_image() {
    let p = create_docker_container(&attrs([
        ("name", "nginx".into()),
        (
            "dockerImage",
            "/nix/store/66666666666666666666666666666666-nginx-image.tar.gz".into(),
        ),
        ("dockerImageTag", "nginx:1.25".into()),
        ("useHostNetwork", true.into()),
        ("storePaths", vec![COREUTILS].into()),
        (
            "dockerCreateParameters",
            Value::List(vec![
                attrs([("name", "memory".into()), ("value", "256m".into())]),
                attrs([("name", "e".into()), ("value", "MODE=a;b `c`".into())]),
                attrs([("name", "read-only".into())]),
            ]),
        ),
    ]))
    .unwrap();
    insta::assert_snapshot!("own_image_layout", layout(&p));
}
