use super::*;
use crate::agnostic::{create_managed_process, translate_managed_process};
use crate::value::attrs;

const HELLO: &str = "/nix/store/11111111111111111111111111111111-hello/bin/hello";
const COREUTILS: &str = "/nix/store/33333333333333333333333333333333-coreutils";
const PROXY: &str = "/nix/store/44444444444444444444444444444444-nixproc/bin/nixproc-builder";

fn gen_with(pairs: Vec<(&str, Value)>) -> Result<PackageSpec> {
    create_cygrunsrv_params(&attrs(pairs))
}

fn gen(pairs: Vec<(&str, Value)>) -> PackageSpec {
    gen_with(pairs).unwrap()
}

fn err(pairs: Vec<(&str, Value)>) -> String {
    gen_with(pairs).unwrap_err().to_string()
}

fn lines(p: &PackageSpec) -> Vec<&str> {
    p.files[0].text.lines().collect()
}

fn basic() -> Vec<(&'static str, Value)> {
    vec![("name", "hello".into()), ("path", HELLO.into())]
}

fn with(
    mut base: Vec<(&'static str, Value)>,
    more: Vec<(&'static str, Value)>,
) -> Vec<(&'static str, Value)> {
    base.extend(more);
    base
}

fn dep(name: &str) -> Value {
    attrs([("name", Value::from(name))])
}

#[test]
fn params_file_name_mode_and_lines() {
    let p = gen(basic());
    assert_eq!(p.name, "nix-process-hello");
    assert_eq!(p.files.len(), 1);
    assert_eq!(p.files[0].path, "nix-process-hello-cygrunsrvparams");
    assert_eq!(p.files[0].mode, 0o444);
    assert!(p.links.is_empty());
    assert_eq!(
        p.files[0].text,
        format!("--path\n{HELLO}\n--disp\nnix-process-hello\n")
    );
}

#[test]
fn the_reference_example() {
    // Reference §3.6.3 (with the quotes of --env gone, defect 8).
    let p = gen(with(
        vec![("name", "hello2".into()), ("path", HELLO.into())],
        vec![
            ("args", Value::from(vec!["--port-from-env"])),
            ("environment", attrs([("PORT", Value::Int(7000))])),
            ("dependencies", Value::List(vec![dep("nix-process-dep")])),
        ],
    ));
    assert_eq!(
        lines(&p),
        [
            "--path",
            HELLO,
            "--disp",
            "nix-process-hello2",
            "--args",
            "--port-from-env",
            "--env",
            "PORT=7000",
            "--dep",
            "nix-process-dep"
        ]
    );
}

#[test]
fn every_option_in_order() {
    let p = gen(with(
        basic(),
        vec![
            ("displayName", "Hello service".into()),
            ("description", "Says hello".into()),
            ("type", "manual".into()),
            ("args", Value::from(vec!["a b", "it's"])),
            (
                "environment",
                attrs([("B", Value::from("2")), ("A", Value::from("x y"))]),
            ),
            ("environmentPath", Value::from(vec![COREUTILS])),
            ("user", "svc_account".into()),
            ("stdin", "/dev/null".into()),
            ("stdout", "/var/log/o.log".into()),
            ("stderr", "/var/log/e.log".into()),
            ("terminateSignal", "INT".into()),
            ("terminateOnShutdown", true.into()),
            (
                "dependencies",
                Value::List(vec![dep("nix-process-a"), dep("nix-process-b")]),
            ),
            ("postInstall", "true".into()),
        ],
    ));
    assert_eq!(
        lines(&p),
        [
            "--path",
            HELLO,
            "--disp",
            "Hello service",
            "--desc",
            "Says hello",
            "--type",
            "manual",
            "--args",
            "'a b' 'it'\\''s'",
            "--env",
            "A=x y",
            "--env",
            "B=2",
            "--env",
            &format!("PATH={COREUTILS}/bin"),
            "--user",
            "svc_account",
            "--stdin",
            "/dev/null",
            "--stdout",
            "/var/log/o.log",
            "--stderr",
            "/var/log/e.log",
            "--termsig",
            "INT",
            "--shutdown",
            "--dep",
            "nix-process-a",
            "--dep",
            "nix-process-b",
        ]
    );
    let m = &p.manifest;
    assert_eq!(m.name, "nix-process-hello");
    assert_eq!(m.description, "Says hello");
    assert_eq!(m.dependencies, ["nix-process-a", "nix-process-b"]);
    assert_eq!(m.user.as_deref(), Some("svc_account"));
    assert_eq!(m.log_file.as_deref(), Some("/var/log/o.log"));
    assert_eq!(
        m.backend,
        Backend::Cygrunsrv {
            service: "nix-process-hello".into(),
            params: "nix-process-hello-cygrunsrvparams".into()
        }
    );
}

#[test]
fn explicit_path_variable_wins() {
    let p = gen(with(
        basic(),
        vec![
            ("environment", attrs([("PATH", Value::from("/mine"))])),
            ("environmentPath", Value::from(vec![COREUTILS])),
        ],
    ));
    assert_eq!(lines(&p)[4..], ["--env", "PATH=/mine"]);
}

#[test]
fn prefix_and_instance_name() {
    let p = gen(vec![
        ("instanceName", "web1".into()),
        ("path", HELLO.into()),
        ("prefix", "svc-".into()),
    ]);
    assert_eq!(p.name, "svc-web1");
    assert_eq!(p.files[0].path, "svc-web1-cygrunsrvparams");
    assert_eq!(p.manifest.description, "web1");
}

#[test]
fn line_breaks_and_controls_are_errors() {
    assert_eq!(
        err(with(basic(), vec![("args", Value::from(vec!["a\nb"]))])),
        "attribute 'args[0]': \"a\\nb\" contains a line break; the cygrunsrv parameters file \
         holds one argument per line"
    );
    assert_eq!(
        err(with(
            basic(),
            vec![("environment", attrs([("A", Value::from("x\ry"))]))]
        )),
        "attribute 'environment.A': \"x\\ry\" contains a line break; the cygrunsrv parameters \
         file holds one argument per line"
    );
    assert_eq!(
        err(with(basic(), vec![("displayName", "a\u{1}".into())])),
        "attribute 'displayName': \"a\\u{1}\" contains the control character U+0001; the \
         cygrunsrv parameters file holds one argument per line"
    );
    assert!(err(with(
        basic(),
        vec![("path", "/bin/x\n--user\nAdmin".into())]
    ))
    .starts_with("attribute 'path': "));
}

#[test]
fn bad_input() {
    assert_eq!(
        err(vec![("name", "x".into())]),
        "attribute 'path' is required: the executable the service runs"
    );
    assert_eq!(
        err(vec![("path", HELLO.into())]),
        "attribute 'name' is required: the service is called <prefix><name> (set name or \
         instanceName)"
    );
    assert_eq!(
        err(with(basic(), vec![("type", "disabled".into())])),
        "attribute 'type': must be \"auto\" or \"manual\", but it is \"disabled\""
    );
    assert_eq!(
        err(with(basic(), vec![("terminateSignal", "-9; x".into())])),
        "attribute 'terminateSignal': must be a signal name or number such as \"TERM\", but it \
         is \"-9; x\""
    );
    assert!(err(with(basic(), vec![("password", "hunter2".into())]))
        .starts_with("attribute 'password': would be stored in the world-readable Nix store"));
    assert_eq!(
        err(with(
            basic(),
            vec![("environment", attrs([("A-B", Value::from("x"))]))]
        )),
        "attribute 'environment.A-B': variable names must match [A-Za-z_][A-Za-z0-9_]*"
    );
    assert_eq!(
        err(with(
            basic(),
            vec![("environmentPath", Value::from(vec!["a:b"]))]
        )),
        "attribute 'environmentPath[0]': \"a:b\" cannot be a PATH entry (empty or contains ':')"
    );
    assert_eq!(
        err(with(basic(), vec![("prefix", "a\\".into())])),
        "attribute 'prefix': \"a\\\\hello\" is not a valid Windows service name (no '\\', at \
         most 256 bytes)"
    );
    assert_eq!(
        err(with(basic(), vec![("credentials", attrs::<_, &str>([]))])),
        "unknown parameter 'credentials'"
    );
    assert_eq!(
        err(with(basic(), vec![("arg", Value::List(vec![]))])),
        "unknown parameter 'arg' (did you mean 'args'?)"
    );
    assert_eq!(
        err(with(
            basic(),
            vec![("dependencies", Value::List(vec![dep("a b")]))]
        )),
        "attribute 'dependencies[0].name': \"a b\" is not a valid process name (it must be a \
         file name: non-empty, not '.' or '..', without '/', whitespace or control characters)"
    );
}

#[test]
fn composition_keys_are_accepted() {
    let mut args = basic();
    for k in COMPOSITION_KEYS {
        let v = match *k {
            "forceDisableUserChange" => false.into(),
            "ids" => attrs::<_, &str>([]),
            "prefix" => "nix-process-".into(),
            _ => Value::from("/x"),
        };
        args.push((k, v));
    }
    gen(args);
}

// --- translation ------------------------------------------------------------

fn composition() -> Vec<(&'static str, Value)> {
    vec![
        ("processManager", "cygrunsrv".into()),
        ("runtimeDir", "/run".into()),
        ("logDir", "/var/log".into()),
        ("tmpDir", "/tmp".into()),
        (
            "foregroundProxy",
            format!("{PROXY} foreground-proxy").into(),
        ),
    ]
}

fn translated(pairs: Vec<(&'static str, Value)>) -> Result<BTreeMap<String, Value>> {
    let v = translate_managed_process(&attrs(with(composition(), pairs)))?;
    Ok(v.as_attrs().unwrap().clone())
}

fn managed(pairs: Vec<(&'static str, Value)>) -> Result<PackageSpec> {
    create_managed_process(&attrs(with(composition(), pairs)))
}

#[test]
fn foreground_process_runs_directly() {
    let p = managed(vec![
        ("instanceName", "hello2".into()),
        ("process", HELLO.into()),
        ("args", Value::from(vec!["--port-from-env"])),
        ("environment", attrs([("PORT", Value::Int(7000))])),
        ("path", Value::from(vec![COREUTILS])),
        ("dependencies", Value::List(vec![dep("nix-process-dep")])),
    ])
    .unwrap();
    assert_eq!(
        lines(&p),
        [
            "--path",
            HELLO,
            "--disp",
            "nix-process-hello2",
            "--desc",
            "hello2",
            "--args",
            "--port-from-env",
            "--env",
            &format!("PATH={COREUTILS}/bin"),
            "--env",
            "PORT=7000",
            "--stdout",
            "/var/log/nixproc-hello2.log",
            "--stderr",
            "/var/log/nixproc-hello2.log",
            "--dep",
            "nix-process-dep",
        ]
    );
    assert_eq!(p.manifest.name, "nix-process-hello2");
    assert_eq!(
        p.manifest.log_file.as_deref(),
        Some("/var/log/nixproc-hello2.log")
    );
}

#[test]
fn settings_cygrunsrv_lacks_go_through_the_proxy() {
    let t = translated(vec![
        ("name", "web".into()),
        ("process", HELLO.into()),
        ("args", Value::from(vec!["-v"])),
        ("initialize", "mkdir -p /srv/web".into()),
        ("nice", Value::Int(5)),
        ("directory", "/srv/web".into()),
        ("umask", "077".into()),
    ])
    .unwrap();
    assert_eq!(t["path"], Value::str(PROXY));
    assert_eq!(
        t["args"],
        Value::from(vec![
            "foreground-proxy",
            "--initialize",
            "mkdir -p /srv/web",
            "--shell",
            "/bin/sh",
            "--nice",
            "5",
            "--directory",
            "/srv/web",
            "--umask",
            "077",
            "--",
            HELLO,
            "-v"
        ])
    );
    // Each alone is enough.
    for (k, v) in [
        ("nice", Value::Int(1)),
        ("directory", "/d".into()),
        ("umask", "022".into()),
    ] {
        let t = translated(vec![
            ("name", "w".into()),
            ("process", HELLO.into()),
            (k, v),
        ])
        .unwrap();
        assert_eq!(t["path"], Value::str(PROXY), "{k}");
    }
}

#[test]
fn daemon_is_wrapped() {
    let t = translated(vec![
        ("instanceName", "webapp".into()),
        ("daemon", HELLO.into()),
        ("daemonArgs", Value::from(vec!["-D"])),
    ])
    .unwrap();
    assert_eq!(
        t["args"],
        Value::from(vec![
            "foreground-proxy",
            "--wrap-daemon",
            "--pidfile",
            "/run/webapp.pid",
            "--",
            HELLO,
            "-D"
        ])
    );
}

#[test]
fn line_breaks_are_escaped_for_the_proxy() {
    let p = managed(vec![
        ("name", "x".into()),
        ("description", "two\nlines".into()),
        ("process", HELLO.into()),
        ("args", Value::from(vec!["a\nb"])),
        (
            "environment",
            attrs([("E", Value::from("1\n2")), ("F", Value::from("ok"))]),
        ),
    ])
    .unwrap();
    let l = lines(&p);
    assert_eq!(
        l[..8],
        ["--path", PROXY, "--disp", "nix-process-x", "--desc", "two lines", "--args", "foreground-proxy --escaped --setenv 'E=1\\n2' --setenv 'F=ok' -- /nix/store/11111111111111111111111111111111-hello/bin/hello 'a\\nb'"]
    );
    assert!(!l.contains(&"--env"));
    assert_eq!(p.manifest.description, "two lines");
}

#[test]
fn users_and_credentials_are_refused_unless_user_change_is_disabled() {
    let creds = attrs([("users", attrs([("web", attrs::<_, &str>([]))]))]);
    let e = translated(vec![
        ("name", "x".into()),
        ("process", HELLO.into()),
        ("credentials", creds.clone()),
    ])
    .unwrap_err()
    .to_string();
    assert_eq!(
        e,
        "attribute 'credentials': cygrunsrv services run as Windows accounts (Cygwin maps \
         Windows users and groups), so nixproc cannot create these users and groups; build \
         with forceDisableUserChange = true to leave them out"
    );
    let e = translated(vec![
        ("name", "x".into()),
        ("process", HELLO.into()),
        ("user", "web".into()),
    ])
    .unwrap_err()
    .to_string();
    assert!(
        e.starts_with("attribute 'user': cygrunsrv services run as Windows accounts"),
        "{e}"
    );

    // Empty credentials are nothing to refuse.
    translated(vec![
        ("name", "x".into()),
        ("process", HELLO.into()),
        (
            "credentials",
            attrs([("users", attrs::<_, &str>([])), ("groups", Value::Null)]),
        ),
    ])
    .unwrap();

    // forceDisableUserChange: both dropped.
    let p = managed(vec![
        ("name", "x".into()),
        ("process", HELLO.into()),
        ("user", "web".into()),
        ("credentials", creds),
        ("forceDisableUserChange", true.into()),
    ])
    .unwrap();
    assert!(!p.files[0].text.contains("--user"));
    assert_eq!(p.manifest.user, None);
    assert_eq!(p.files.len(), 1);

    // A Windows account through the override.
    let p = managed(vec![
        ("name", "x".into()),
        ("process", HELLO.into()),
        (
            "overrides",
            attrs([("cygrunsrv", attrs([("user", Value::from("svc"))]))]),
        ),
    ])
    .unwrap();
    assert!(p.files[0].text.contains("--user\nsvc\n"));
}

#[test]
fn proxy_is_required_when_needed() {
    let e = create_managed_process(&attrs(vec![
        ("processManager", "cygrunsrv".into()),
        ("name", "x".into()),
        ("process", HELLO.into()),
        ("nice", Value::Int(3)),
    ]))
    .unwrap_err();
    assert!(
        e.to_string().starts_with(
            "attribute 'foregroundProxy' is required: process \"x\" needs the foreground proxy"
        ),
        "{e}"
    );
}
