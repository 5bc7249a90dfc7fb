use super::*;
use crate::agnostic::{create_managed_process, translate_managed_process};
use crate::quote::c_unescape;
use crate::value::attrs;

const HELLO: &str = "/nix/store/11111111111111111111111111111111-hello/bin/hello";
const BUILDER: &str =
    "/nix/store/44444444444444444444444444444444-nixproc-builder/bin/nixproc-builder";
const COREUTILS: &str = "/nix/store/33333333333333333333333333333333-coreutils";
const BASE: &str = "/nix/store/0123456789abcdfghijklmnpqrsvwxyz-nixproc-docker-base.tar";
const SHELL: &str = "/nix/store/55555555555555555555555555555555-bash/bin/sh";

const HOSTILE: &[&str] = &[
    "plain",
    "with space",
    "quote ' \" mix",
    "$(touch pwned) `touch pwned` ${HOME}",
    "semi; rm -rf / ; && # not a comment",
    "100% %s %%",
    "\\backslash\\ \\n",
    "ünïcödé\u{a0};\u{2028}#",
    "",
    " ",
    "--name evil",
];

// --- helpers --------------------------------------------------------------

fn composition() -> Vec<(&'static str, Value)> {
    vec![
        ("dockerBaseImage", Value::from(BASE)),
        (
            "foregroundProxy",
            Value::from(format!("{BUILDER} foreground-proxy")),
        ),
        ("shell", Value::from(SHELL)),
    ]
}

fn create(pairs: Vec<(&str, Value)>) -> Result<PackageSpec> {
    let mut all = composition();
    all.extend(pairs);
    create_docker_container(&attrs(all))
}

fn file<'a>(p: &'a PackageSpec, path: &str) -> Option<&'a str> {
    p.files
        .iter()
        .find(|f| f.path == path)
        .map(|f| f.text.as_str())
}

fn params(p: &PackageSpec) -> Vec<String> {
    parse_lines(file(p, &format!("{}-docker-createparams", p.name)).unwrap())
}

fn cmd(p: &PackageSpec) -> Vec<String> {
    parse_lines(file(p, &format!("{}-docker-cmd", p.name)).unwrap())
}

fn managed(pairs: Vec<(&str, Value)>) -> Result<PackageSpec> {
    let mut all = composition();
    all.push(("processManager", Value::from("docker")));
    all.extend(pairs);
    create_managed_process(&attrs(all))
}

fn translated(pairs: Vec<(&str, Value)>) -> BTreeMap<String, Value> {
    let mut all = composition();
    all.push(("processManager", Value::from("docker")));
    all.extend(pairs);
    match translate_managed_process(&attrs(all)).unwrap() {
        Value::Attrs(m) => m,
        other => panic!("{other:?}"),
    }
}

fn words(v: &Value) -> Vec<String> {
    match v {
        Value::List(l) => l.iter().map(|v| v.as_str().unwrap().to_string()).collect(),
        other => panic!("{other:?}"),
    }
}

fn err(r: Result<PackageSpec>) -> String {
    r.unwrap_err().to_string()
}

fn hello() -> Vec<(&'static str, Value)> {
    vec![
        ("name", "hello".into()),
        ("cmd", vec![HELLO, "--port", "7000"].into()),
    ]
}

// --- createDockerContainer --------------------------------------------------

#[test]
fn minimal_container_files_and_manifest() {
    let p = create(hello()).unwrap();
    let paths: Vec<&str> = p.files.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "hello-docker-settings",
            "hello-docker-createparams",
            "01-hello-docker-priority",
            "hello-docker-cmd",
        ]
    );
    assert!(p.files.iter().all(|f| f.mode == 0o444));
    assert_eq!(
        file(&p, "hello-docker-settings").unwrap(),
        format!("dockerImage={BASE}\ndockerImageTag=nixproc-base:0123456789ab\nstateDir=/var\n")
    );
    assert_eq!(file(&p, "hello-docker-createparams").unwrap(), "");
    assert_eq!(file(&p, "01-hello-docker-priority").unwrap(), "");
    assert_eq!(cmd(&p), [HELLO, "--port", "7000"]);
    assert_eq!(
        p.manifest.backend,
        Backend::Docker {
            container: "nixproc-hello".into(),
            image_tag: "nixproc-base:0123456789ab".into(),
            image: BASE.into(),
            create_params: "hello-docker-createparams".into(),
            priority: 1,
        }
    );
    assert_eq!(p.manifest.description, "hello");
    assert_eq!(p.manifest.user, None);
    assert_eq!(p.passthru["priority"], Value::Int(1));
    assert_eq!(p.name, "hello");
}

#[test]
fn create_parameters_in_order() {
    let mut args = hello();
    args.extend([
        ("useHostNixStore", true.into()),
        ("useHostNetwork", true.into()),
        ("mapStateDirVolumes", vec!["/var", "/srv/data"].into()),
        ("path", vec![COREUTILS].into()),
        (
            "environment",
            attrs([("PORT", Value::Int(7000)), ("A", "x y".into())]),
        ),
        ("workingDir", "/var/lib/hello".into()),
        ("user", "hello".into()),
        (
            "dockerCreateParameters",
            Value::List(vec![
                attrs([("name", "memory".into()), ("value", "512m".into())]),
                attrs([("name", "p".into()), ("value", "8080:80".into())]),
                attrs([("name", "init".into())]),
            ]),
        ),
    ]);
    let p = create(args).unwrap();
    assert_eq!(
        params(&p),
        [
            "--volume",
            "/nix/store:/nix/store:ro",
            "--network",
            "host",
            "--volume",
            "/var:/var",
            "--volume",
            "/srv/data:/srv/data",
            "--volume",
            "/etc/passwd:/etc/passwd:ro",
            "--volume",
            "/etc/group:/etc/group:ro",
            "--env",
            &format!("PATH={COREUTILS}/bin"),
            "--env",
            "A=x y",
            "--env",
            "PORT=7000",
            "--workdir",
            "/var/lib/hello",
            "--user",
            "hello",
            "--memory",
            "512m",
            "-p",
            "8080:80",
            "--init",
        ]
    );
    assert_eq!(p.manifest.user.as_deref(), Some("hello"));
}

#[test]
fn create_parameters_as_a_set() {
    let mut args = hello();
    args.push((
        "dockerCreateParameters",
        attrs([
            ("publish", vec!["80:80", "443:443"].into()),
            ("read-only", true.into()),
            ("privileged", false.into()),
            ("cpus", Value::Int(2)),
        ]),
    ));
    assert_eq!(
        params(&create(args).unwrap()),
        [
            "--cpus",
            "2",
            "--publish",
            "80:80",
            "--publish",
            "443:443",
            "--read-only"
        ]
    );
}

#[test]
fn bad_create_parameters() {
    let with = |v: Value| {
        let mut args = hello();
        args.push(("dockerCreateParameters", v));
        err(create(args))
    };
    assert_eq!(
        with(attrs([("name", "x".into())])),
        "attribute 'dockerCreateParameters.name': --name is set by nixproc (the container is \
         nixproc-<name>)"
    );
    assert!(with(attrs([("--memory", "1g".into())])).contains("is not a docker create option name"));
    assert_eq!(
        with(attrs([("label", "a\nb".into())])),
        "attribute 'dockerCreateParameters.label': \"a\\nb\" contains a line break, which a \
         one-argument-per-line file cannot hold"
    );
    assert_eq!(
        with(Value::List(vec![attrs([("value", "1".into())])])),
        "attribute 'dockerCreateParameters[0].name' is required: the docker create option, e.g. \
         \"memory\" for --memory"
    );
    assert!(with(Value::List(vec![attrs([
        ("name", "m".into()),
        ("vaule", "1".into())
    ])]))
    .starts_with("unknown parameter 'dockerCreateParameters[0].vaule'"),);
    assert_eq!(
        with("--memory 1g".into()),
        "attribute 'dockerCreateParameters' must be a list of { name; value; } sets or a set of \
         option names to values, but it is string"
    );
}

#[test]
fn priority_follows_dependencies() {
    let dep = |n: &str, p: i64| attrs([("name", Value::from(n)), ("priority", Value::Int(p))]);
    let mut args = hello();
    args.push((
        "dependencies",
        Value::List(vec![dep("db", 1), dep("cache", 4)]),
    ));
    let p = create(args).unwrap();
    assert_eq!(p.passthru["priority"], Value::Int(5));
    assert!(file(&p, "05-hello-docker-priority").is_some());
    assert_eq!(p.manifest.dependencies, ["db", "cache"]);
    let Backend::Docker { priority, .. } = p.manifest.backend else {
        panic!()
    };
    assert_eq!(priority, 5);

    let mut args = hello();
    args.push((
        "dependencies",
        Value::List(vec![attrs([("name", "db".into())])]),
    ));
    assert_eq!(
        err(create(args)),
        "attribute 'dependencies[0]': is not a docker container package (it has no priority)"
    );
}

#[test]
fn image_and_tag() {
    // An explicit tag is honoured (defect 27).
    let mut args = hello();
    args.push((
        "dockerImageTag",
        "registry.local:5000/team/base:v1.2".into(),
    ));
    let p = create(args).unwrap();
    let Backend::Docker { image_tag, .. } = &p.manifest.backend else {
        panic!()
    };
    assert_eq!(image_tag, "registry.local:5000/team/base:v1.2");

    // An own image needs its tag.
    let mut args = hello();
    args.push(("dockerImage", "/nix/store/x-my-image.tar.gz".into()));
    assert_eq!(
        err(create(args.clone())),
        "attribute 'dockerImageTag' is required: dockerImage is given, so say which tag to load \
         it under and create the container from (e.g. \"myimage:latest\")"
    );
    args.push(("dockerImageTag", "my-image:latest".into()));
    let p = create(args).unwrap();
    assert!(file(&p, "hello-docker-settings")
        .unwrap()
        .starts_with("dockerImage=/nix/store/x-my-image.tar.gz\ndockerImageTag=my-image:latest\n"));

    // An own image may bring its own command.
    let p = create(vec![
        ("name", "own".into()),
        ("dockerImage", "/nix/store/x-own.tar".into()),
        ("dockerImageTag", "own".into()),
    ])
    .unwrap();
    assert!(file(&p, "own-docker-cmd").is_none());

    for bad in [
        "Upper:1",
        "a:b:c",
        "x:",
        "-x",
        "a//b",
        "a:.v",
        "name with space",
    ] {
        let mut args = hello();
        args.push(("dockerImageTag", bad.into()));
        assert!(
            err(create(args)).starts_with(&format!(
                "attribute 'dockerImageTag': {bad:?} is not a docker image tag"
            )),
            "{bad}"
        );
    }
    for good in [
        "a",
        "team/a.b-c_d:1",
        "localhost/x",
        "localhost:5000/x:y",
        "nixproc-base:0123",
    ] {
        check_image_tag("t", good).unwrap();
    }
}

#[test]
fn default_tag_from_store_hash_or_digest() {
    assert_eq!(default_tag(BASE), "nixproc-base:0123456789ab");
    let t = default_tag("/tmp/image.tar");
    assert!(t.starts_with("nixproc-base:") && t.len() == "nixproc-base:".len() + 12);
    assert_ne!(t, default_tag("/tmp/other.tar"));
}

#[test]
fn missing_image_or_cmd() {
    let no_base = attrs([("name", "x".into()), ("cmd", vec![HELLO].into())]);
    assert_eq!(
        create_docker_container(&no_base).unwrap_err().to_string(),
        "attribute 'dockerImage' is required: no image tarball given and the composition has \
         no dockerBaseImage"
    );
    assert_eq!(
        err(create(vec![("name", "x".into())])),
        "attribute 'cmd' is required: the base image has no command of its own; give the \
         program and its arguments"
    );
    // The original's default, cmd = "", is accepted for an own image.
    create(vec![
        ("name", "x".into()),
        ("cmd", "".into()),
        ("dockerImage", "/nix/store/x-i.tar".into()),
        ("dockerImageTag", "i".into()),
    ])
    .unwrap();
    assert_eq!(
        err(create(vec![
            ("name", "x".into()),
            ("cmd", "hello --x".into())
        ])),
        "attribute 'cmd' must be a list of words (the program and its arguments), but it is \
         string"
    );
    assert_eq!(
        err(create(vec![
            ("name", "x".into()),
            ("cmd", vec!["", "a"].into())
        ])),
        "attribute 'cmd': must start with a non-empty program"
    );
}

#[test]
fn names_must_make_container_names() {
    for bad in ["a b", "ü", "a:b", "a@b"] {
        let e = err(create(vec![
            ("name", bad.into()),
            ("cmd", vec![HELLO].into()),
        ]));
        assert!(e.starts_with("attribute 'name': "), "{e}");
    }
    assert!(
        err(create(vec![("cmd", vec![HELLO].into())])).starts_with("attribute 'name' is required")
    );
    create(vec![
        ("name", "web_app-1.2".into()),
        ("cmd", vec![HELLO].into()),
    ])
    .unwrap();
}

#[test]
fn volumes_must_be_absolute_paths_without_colons() {
    for (bad, why) in [
        ("var", "cannot be bind-mounted"),
        ("/a:b", "cannot be bind-mounted"),
        ("/a\nb", "contains a line break"),
    ] {
        let mut args = hello();
        args.push(("mapStateDirVolumes", vec![bad].into()));
        let e = err(create(args));
        assert!(
            e.starts_with("attribute 'mapStateDirVolumes[0]': ") && e.contains(why),
            "{e}"
        );
    }
    let mut args = hello();
    args.push(("stateDir", "relative".into()));
    assert!(
        err(create(args)).starts_with("attribute 'stateDir': \"relative\" cannot be bind-mounted")
    );
    let mut args = hello();
    args.push(("workingDir", "rel".into()));
    assert_eq!(
        err(create(args)),
        "attribute 'workingDir': \"rel\" must be an absolute path"
    );
}

#[test]
fn force_disable_user_change_drops_the_user() {
    let mut args = hello();
    args.extend([
        ("user", "hello".into()),
        ("forceDisableUserChange", true.into()),
    ]);
    let p = create(args).unwrap();
    assert!(params(&p).is_empty());
    assert_eq!(p.manifest.user, None);
}

#[test]
fn credentials_become_dysnomia_files() {
    let mut args = hello();
    args.push((
        "credentials",
        attrs([
            ("groups", attrs([("hello", attrs::<_, &str>([]))])),
            (
                "users",
                attrs([("hello", attrs([("group", "hello".into())]))]),
            ),
        ]),
    ));
    args.push((
        "ids",
        attrs([
            ("uids", attrs([("hello", Value::Int(2001))])),
            ("gids", attrs([("hello", Value::Int(2001))])),
        ]),
    ));
    let p = create(args).unwrap();
    assert_eq!(
        file(&p, "dysnomia-support/groups/hello"),
        Some("gid=2001\n")
    );
    assert!(file(&p, "dysnomia-support/users/hello")
        .unwrap()
        .starts_with("uid=2001\n"));
}

#[test]
fn store_paths_are_recorded() {
    let mut args = hello();
    args.push(("storePaths", vec![COREUTILS, HELLO].into()));
    let p = create(args).unwrap();
    assert_eq!(
        file(&p, "hello-storepaths").unwrap(),
        format!("{COREUTILS}\n{HELLO}\n")
    );
}

#[test]
fn unknown_parameters_are_errors() {
    let mut args = hello();
    args.push(("useHostNetwrok", true.into()));
    assert_eq!(
        err(create(args)),
        "unknown parameter 'useHostNetwrok' (did you mean 'useHostNetwork'?)"
    );
}

#[test]
fn hostile_values_reach_the_argument_files_verbatim() {
    for h in HOSTILE {
        let mut args = vec![
            ("name", Value::from("h")),
            ("cmd", vec![HELLO, h].into()),
            ("environment", attrs([("V", Value::from(*h))])),
            (
                "dockerCreateParameters",
                attrs([("label", Value::from(format!("x={h}")))]),
            ),
        ];
        if !h.is_empty() {
            args.push(("workingDir", format!("/w/{h}").into()));
        }
        let p = create(args).unwrap();
        assert_eq!(cmd(&p), [HELLO, h]);
        let ps = params(&p);
        assert!(ps.contains(&format!("V={h}")), "{ps:?}");
        assert!(ps.contains(&format!("x={h}")), "{ps:?}");
        if !h.is_empty() {
            assert!(ps.contains(&format!("/w/{h}")), "{ps:?}");
        }
    }
    // Line breaks cannot be written; the attribute is named.
    let mut args = hello();
    args.push(("environment", attrs([("V", "a\nb".into())])));
    assert!(err(create(args)).starts_with("attribute 'environment.V': "));
    let e = err(create(vec![
        ("name", "h".into()),
        ("cmd", vec![HELLO, "a\r\nb"].into()),
    ]));
    assert!(e.starts_with("attribute 'cmd[1]': "), "{e}");
}

// --- translation ------------------------------------------------------------

#[test]
fn foreground_process_runs_directly() {
    let t = translated(vec![
        ("name", "web".into()),
        ("process", HELLO.into()),
        ("args", vec!["-p", "80"].into()),
        ("foregroundProcessExtraArgs", vec!["--foreground"].into()),
        ("user", "web".into()),
        ("directory", "/srv/web".into()),
        ("environment", attrs([("PORT", "80".into())])),
    ]);
    assert_eq!(words(&t["cmd"]), [HELLO, "-p", "80", "--foreground"]);
    assert_eq!(t["user"], Value::from("web"));
    assert_eq!(t["workingDir"], Value::from("/srv/web"));
    assert_eq!(t["useHostNixStore"], Value::Bool(true));
    assert_eq!(t["useHostNetwork"], Value::Bool(true));
    assert_eq!(words(&t["mapStateDirVolumes"]), ["/var"]);
    assert_eq!(t["mapHostAccounts"], Value::Bool(true));
    assert!(t.contains_key("environment"));
    assert!(!t.contains_key("dockerImage"));

    // The state dir of the composition is what is mounted.
    let t = translated(vec![
        ("name", "web".into()),
        ("process", HELLO.into()),
        ("stateDir", "/home/u/state".into()),
        ("forceDisableUserChange", true.into()),
        ("user", "web".into()),
    ]);
    assert_eq!(words(&t["mapStateDirVolumes"]), ["/home/u/state"]);
    assert!(!t.contains_key("user"));
    assert!(!t.contains_key("mapHostAccounts"));
}

#[test]
fn initialize_nice_umask_use_the_proxy() {
    let t = translated(vec![
        ("name", "web".into()),
        ("process", HELLO.into()),
        ("args", vec!["-p", "80"].into()),
        ("initialize", "mkdir -p /var/web".into()),
        ("user", "web".into()),
        ("nice", Value::Int(5)),
        ("umask", "022".into()),
        ("directory", "/var/web".into()),
    ]);
    assert_eq!(
        words(&t["cmd"]),
        [
            BUILDER,
            "foreground-proxy",
            "--initialize",
            "mkdir -p /var/web",
            "--shell",
            SHELL,
            "--user",
            "web",
            "--nice",
            "5",
            "--directory",
            "/var/web",
            "--umask",
            "022",
            "--",
            HELLO,
            "-p",
            "80",
        ]
    );
    // docker does not switch users itself here (initialize runs as root),
    // but the proxy needs the accounts.
    assert!(!t.contains_key("user"));
    assert!(!t.contains_key("workingDir"));
    assert_eq!(t["mapHostAccounts"], Value::Bool(true));

    let p = managed(vec![
        ("name", "web".into()),
        ("process", HELLO.into()),
        ("nice", Value::Int(5)),
        ("user", "web".into()),
    ])
    .unwrap();
    assert_eq!(p.manifest.user.as_deref(), Some("web"));
    assert!(params(&p).contains(&"/etc/passwd:/etc/passwd:ro".to_string()));
    assert!(!params(&p).contains(&"--user".to_string()));
}

#[test]
fn daemon_only_is_wrapped() {
    let t = translated(vec![
        ("name", "db".into()),
        ("daemon", HELLO.into()),
        ("daemonArgs", vec!["--fork"].into()),
        ("instanceName", "db1".into()),
    ]);
    assert_eq!(
        words(&t["cmd"]),
        [
            BUILDER,
            "foreground-proxy",
            "--wrap-daemon",
            "--pidfile",
            "/var/run/db1.pid",
            "--",
            HELLO,
            "--fork",
        ]
    );
    let t = translated(vec![
        ("name", "db".into()),
        ("daemon", HELLO.into()),
        ("user", "db".into()),
    ]);
    assert!(words(&t["cmd"]).contains(&"/tmp/hello.pid".to_string()));
}

#[test]
fn proxy_is_required_when_needed() {
    let e = create_managed_process(&attrs([
        ("processManager", Value::from("docker")),
        ("dockerBaseImage", BASE.into()),
        ("name", "db".into()),
        ("daemon", HELLO.into()),
    ]))
    .unwrap_err()
    .to_string();
    assert!(
        e.starts_with(
            "attribute 'foregroundProxy' is required: process \"db\" needs the foreground proxy"
        ),
        "{e}"
    );
}

#[test]
fn initialize_needs_a_shell_in_the_store() {
    let e = create_managed_process(&attrs([
        ("processManager", Value::from("docker")),
        ("dockerBaseImage", BASE.into()),
        (
            "foregroundProxy",
            format!("{BUILDER} foreground-proxy").into(),
        ),
        ("name", "db".into()),
        ("process", HELLO.into()),
        ("initialize", "true".into()),
    ]))
    .unwrap_err()
    .to_string();
    assert!(
        e.starts_with(
            "attribute 'shell': process \"db\" has an initialize script, which runs inside its \
             container, but the shell \"/bin/sh\" is not in /nix/store"
        ),
        "{e}"
    );
}

#[test]
fn line_breaks_go_through_the_escaped_proxy() {
    let p = managed(vec![
        ("name", "h".into()),
        ("process", HELLO.into()),
        ("args", vec!["a\nb", "\\n"].into()),
        (
            "environment",
            attrs([("V", "x\ny".into()), ("W", "plain".into())]),
        ),
    ])
    .unwrap();
    let c = cmd(&p);
    assert_eq!(
        c,
        [
            BUILDER,
            "foreground-proxy",
            "--escaped",
            "--setenv",
            "V=x\\ny",
            "--setenv",
            "W=plain",
            "--",
            HELLO,
            "a\\nb",
            "\\\\n",
        ]
    );
    assert_eq!(c_unescape(&c[9]).unwrap(), "a\nb");
    assert_eq!(c_unescape(&c[10]).unwrap(), "\\n");
    // The environment moved to the proxy entirely.
    assert!(!params(&p).contains(&"--env".to_string()));
}

#[test]
fn overrides_apply_to_the_container_arguments() {
    let p = managed(vec![
        ("name", "h".into()),
        ("process", HELLO.into()),
        (
            "overrides",
            attrs([(
                "docker",
                attrs([
                    ("useHostNetwork", false.into()),
                    ("dockerCreateParameters", attrs([("memory", "1g".into())])),
                ]),
            )]),
        ),
    ])
    .unwrap();
    let ps = params(&p);
    assert!(!ps.contains(&"--network".to_string()));
    assert_eq!(ps[ps.len() - 2..], ["--memory", "1g"]);

    let e = managed(vec![
        ("name", "h".into()),
        ("process", HELLO.into()),
        (
            "overrides",
            attrs([("docker", attrs([("image", attrs::<_, &str>([]))]))]),
        ),
    ])
    .unwrap_err()
    .to_string();
    assert!(
        e.starts_with("unknown parameter 'image' (from overrides.docker"),
        "{e}"
    );
}

#[test]
fn managed_package_is_the_same_as_direct_creation() {
    let via_agnostic = managed(vec![
        ("name", "web".into()),
        ("process", HELLO.into()),
        ("path", vec![COREUTILS].into()),
    ])
    .unwrap();
    let direct = create(vec![
        ("name", "web".into()),
        ("cmd", vec![HELLO].into()),
        ("path", vec![COREUTILS].into()),
        ("useHostNixStore", true.into()),
        ("useHostNetwork", true.into()),
        ("mapStateDirVolumes", vec!["/var"].into()),
    ])
    .unwrap();
    assert_eq!(via_agnostic.files, direct.files);
    assert_eq!(via_agnostic.manifest, direct.manifest);
}
