use super::*;
use crate::agnostic::create_managed_process;
use crate::value::attrs;

const HELLO: &str = "/nix/store/11111111111111111111111111111111-hello/bin/hello";
const COREUTILS: &str = "/nix/store/33333333333333333333333333333333-coreutils";

fn gen_with(pairs: Vec<(&str, Value)>) -> Result<PackageSpec> {
    create_systemd_service(&attrs(pairs))
}

fn gen(pairs: Vec<(&str, Value)>) -> PackageSpec {
    gen_with(pairs).unwrap()
}

fn err(pairs: Vec<(&str, Value)>) -> String {
    gen_with(pairs).unwrap_err().to_string()
}

fn text(p: &PackageSpec) -> &str {
    &p.files[0].text
}

fn service(props: Vec<(&str, Value)>) -> (&'static str, Value) {
    ("Service", attrs(props))
}

fn basic() -> Vec<(&'static str, Value)> {
    vec![
        ("name", "hello".into()),
        service(vec![("ExecStart", HELLO.into())]),
    ]
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

// --- layout and manifest ---------------------------------------------------

#[test]
fn unit_file_path_name_and_mode() {
    let p = gen(basic());
    assert_eq!(p.name, "nix-process-hello");
    assert_eq!(p.files.len(), 1);
    assert_eq!(
        p.files[0].path,
        "etc/systemd/system/nix-process-hello.service"
    );
    assert_eq!(p.files[0].mode, 0o444);
    assert!(p.links.is_empty());
    assert_eq!(text(&p), format!("[Service]\nExecStart={HELLO}\n"));
    assert_eq!(p.passthru["unit"], Value::str("nix-process-hello.service"));
}

#[test]
fn custom_and_empty_prefix() {
    let p = gen(with(basic(), vec![("prefix", "my-".into())]));
    assert_eq!(p.name, "my-hello");
    assert_eq!(p.manifest.name, "my-hello");
    let p = gen(with(basic(), vec![("prefix", "".into())]));
    assert_eq!(p.files[0].path, "etc/systemd/system/hello.service");
}

#[test]
fn manifest_entry() {
    let p = gen(vec![
        ("name", "hello".into()),
        ("description", "Hello, world".into()),
        ("dependencies", Value::List(vec![dep("nix-process-db")])),
        service(vec![
            ("ExecStart", HELLO.into()),
            ("Type", "forking".into()),
            ("PIDFile", "/run/hello.pid".into()),
            ("User", "hello".into()),
        ]),
    ]);
    let m = &p.manifest;
    assert_eq!(m.name, "nix-process-hello");
    assert_eq!(m.description, "Hello, world");
    assert_eq!(m.dependencies, ["nix-process-db"]);
    assert_eq!(m.pid_file.as_deref(), Some("/run/hello.pid"));
    assert_eq!(m.user.as_deref(), Some("hello"));
    assert_eq!(m.log_file, None);
    assert_eq!(
        m.backend,
        Backend::Systemd {
            unit: "nix-process-hello.service".into(),
            path: "etc/systemd/system/nix-process-hello.service".into(),
        }
    );
    assert_eq!(m.revision.len(), 32);
}

#[test]
fn manifest_description_falls_back_to_unit_description_then_name() {
    let p = gen(with(
        basic(),
        vec![("Unit", attrs([("Description", "From unit".into())]))],
    ));
    assert_eq!(p.manifest.description, "From unit");
    assert_eq!(gen(basic()).manifest.description, "hello");
}

#[test]
fn instance_name_and_post_install_are_accepted() {
    let p = gen(with(
        basic(),
        vec![
            ("instanceName", "hello1".into()),
            ("postInstall", "echo hi".into()),
            ("runtimeDir", "/run".into()),
            ("shell", "/bin/sh".into()),
            ("callingUser", "me".into()),
        ],
    ));
    assert_eq!(p.manifest.name, "nix-process-hello");
    assert!(err(with(basic(), vec![("instanceName", "a b".into())]))
        .starts_with("attribute 'instanceName':"));
}

#[test]
fn credentials_become_dysnomia_files() {
    let p = gen(with(
        basic(),
        vec![(
            "credentials",
            attrs([
                ("groups", attrs([("hello", attrs::<_, &str>([]))])),
                (
                    "users",
                    attrs([("hello", attrs([("group", "hello".into())]))]),
                ),
            ]),
        )],
    ));
    let paths: Vec<&str> = p.files.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "etc/systemd/system/nix-process-hello.service",
            "dysnomia-support/groups/hello",
            "dysnomia-support/users/hello",
        ]
    );
}

// --- sections and properties -------------------------------------------------

#[test]
fn sections_and_properties_are_sorted() {
    let p = gen(vec![
        ("name", "hello".into()),
        (
            "Unit",
            attrs([("Description", "d".into()), ("Before", "x.service".into())]),
        ),
        (
            "Service",
            attrs([("Type", "simple".into()), ("ExecStart", HELLO.into())]),
        ),
        ("Install", attrs([("WantedBy", "multi-user.target".into())])),
    ]);
    assert_eq!(
        text(&p),
        format!(
            "[Install]\nWantedBy=multi-user.target\n\n[Service]\nExecStart={HELLO}\nType=simple\n\n\
             [Unit]\nBefore=x.service\nDescription=d\n"
        )
    );
}

#[test]
fn value_types_render() {
    let p = gen(vec![
        ("name", "hello".into()),
        service(vec![
            ("ExecStart", HELLO.into()),
            ("PrivateTmp", true.into()),
            ("RemainAfterExit", false.into()),
            ("Nice", Value::Int(-5)),
            (
                "SupplementaryGroups",
                Value::List(vec!["a".into(), "b".into(), Value::Int(3)]),
            ),
            ("User", Value::Null),
        ]),
    ]);
    assert_eq!(
        text(&p),
        format!(
            "[Service]\nExecStart={HELLO}\nNice=-5\nPrivateTmp=true\nRemainAfterExit=false\n\
             SupplementaryGroups=a b 3\n"
        )
    );
}

#[test]
fn values_are_written_as_given() {
    // Specifiers and variables are the author's business in raw properties.
    let p = gen(vec![
        ("name", "hello".into()),
        service(vec![(
            "ExecStart",
            format!("{HELLO} --id %i $PORT \"a b\"").into(),
        )]),
    ]);
    assert!(text(&p).contains(&format!("ExecStart={HELLO} --id %i $PORT \"a b\"\n")));
}

#[test]
fn line_breaks_in_values_are_errors() {
    for bad in ["a\nGroup=root", "a\rb", "a\0b"] {
        assert_eq!(
            err(vec![
                ("name", "hello".into()),
                service(vec![("ExecStart", bad.into())]),
            ]),
            "attribute 'Service.ExecStart': a unit file value cannot contain a newline, \
             carriage return or NUL (write \\n inside a quoted ExecStart word, or use an \
             Environment= escape)"
        );
    }
    let e = err(vec![
        ("name", "hello".into()),
        ("Unit", attrs([("After", Value::List(vec!["a\n".into()]))])),
    ]);
    assert!(e.starts_with("attribute 'Unit.After':"), "{e}");
}

#[test]
fn trailing_backslash_is_an_error() {
    assert_eq!(
        err(vec![
            ("name", "hello".into()),
            service(vec![("ExecStart", "/bin/echo \\".into())]),
        ]),
        "attribute 'Service.ExecStart': a unit file value cannot end with a backslash (systemd \
         would join the next line to it)"
    );
}

#[test]
fn bad_section_and_property_names() {
    assert_eq!(
        err(with(basic(), vec![("X-Custom", attrs::<_, &str>([]))])),
        "attribute 'X-Custom': a key starting with an uppercase letter is a unit section; \
         section names must match [A-Z][A-Za-z0-9]*"
    );
    assert_eq!(
        err(vec![
            ("name", "hello".into()),
            service(vec![("Exec Start", HELLO.into())]),
        ]),
        "attribute 'Service.Exec Start': property names must match [A-Za-z][A-Za-z0-9]*"
    );
    assert!(err(vec![
        ("name", "hello".into()),
        service(vec![("ExecStart=x\nUser", HELLO.into())]),
    ])
    .starts_with("attribute 'Service.ExecStart=x\nUser': property names"));
}

#[test]
fn section_must_be_a_set_and_values_scalars() {
    assert_eq!(
        err(with(basic(), vec![("Unit", "Description=x".into())])),
        "attribute 'Unit' must be a set of unit properties (a unit section), but it is string"
    );
    assert_eq!(
        err(vec![
            ("name", "hello".into()),
            service(vec![("Nice", Value::Float(1.5))]),
        ]),
        "attribute 'Service.Nice' must be a string, an integer or a boolean, but it is float"
    );
    assert_eq!(
        err(vec![
            ("name", "hello".into()),
            service(vec![("ExecStart", Value::List(vec![Value::List(vec![])]))]),
        ]),
        "attribute 'Service.ExecStart[0]' must be a string, an integer or a boolean, but it is \
         list"
    );
}

#[test]
fn null_section_is_absent() {
    let p = gen(with(basic(), vec![("Install", Value::Null)]));
    assert!(!text(&p).contains("[Install]"));
}

#[test]
fn unknown_lowercase_key_has_hint() {
    assert_eq!(
        err(with(
            basic(),
            vec![("enviroment", attrs([("A", "b".into())]))]
        )),
        "unknown parameter 'enviroment' (did you mean 'environment'?)"
    );
    assert_eq!(
        err(with(basic(), vec![("runlevels", Value::List(vec![]))])),
        "unknown parameter 'runlevels'"
    );
}

#[test]
fn name_is_required_and_checked() {
    assert_eq!(
        err(vec![service(vec![("ExecStart", HELLO.into())])]),
        "attribute 'name' is required: the unit is called <prefix><name>.service"
    );
    assert!(err(vec![("name", "a/b".into())])
        .starts_with("attribute 'name': \"a/b\" is not a valid process name"));
    assert_eq!(
        err(vec![("name", "web$app".into())]),
        "attribute 'name': \"nix-process-web$app\" is not a valid systemd unit name (non-empty, \
         at most 247 characters of ASCII letters, digits, ':', '_', '.', '-', not starting \
         with '.')"
    );
    assert!(err(vec![("name", "x".repeat(240).into())]).contains("not a valid systemd unit name"));
    assert!(err(vec![("name", "a@b".into())]).contains("not a valid systemd unit name"));
}

#[test]
fn prefix_is_checked() {
    assert!(err(with(basic(), vec![("prefix", "my prefix-".into())]))
        .starts_with("attribute 'prefix': \"my prefix-\" cannot start a systemd unit name"));
    assert!(
        err(vec![("name", "x".into()), ("prefix", ".".into())]).contains("not starting with '.'")
    );
}

// --- forceDisableUserChange ------------------------------------------------

#[test]
fn force_disable_user_change_drops_user_and_group_everywhere() {
    let args = vec![
        ("name", "hello".into()),
        ("forceDisableUserChange", true.into()),
        service(vec![
            ("ExecStart", HELLO.into()),
            ("User", "hello".into()),
            ("Group", "hello".into()),
        ]),
        ("Unit", attrs([("User", "odd".into())])),
        (
            "credentials",
            attrs([("users", attrs([("hello", attrs::<_, &str>([]))]))]),
        ),
    ];
    let p = gen(args);
    assert_eq!(
        text(&p),
        format!("[Service]\nExecStart={HELLO}\n\n[Unit]\n")
    );
    assert_eq!(p.manifest.user, None);
    assert_eq!(p.files.len(), 1, "no credentials without user change");
}

// --- environment -----------------------------------------------------------

#[test]
fn environment_lines_end_the_service_section_quoted() {
    let p = gen(with(
        basic(),
        vec![(
            "environment",
            attrs([
                ("PORT", Value::Int(5000)),
                ("GREETING", "hello world".into()),
            ]),
        )],
    ));
    assert_eq!(
        text(&p),
        format!(
            "[Service]\nExecStart={HELLO}\nEnvironment=\"GREETING=hello world\"\n\
             Environment=\"PORT=5000\"\n"
        )
    );
}

#[test]
fn environment_escapes() {
    assert_eq!(
        environment_assignment("A", "x\\y\"z\n%i $HOME 'q' ü\t"),
        "\"A=x\\\\y\\\"z\\n%%i $HOME 'q' ü\\t\""
    );
}

#[test]
fn environment_control_characters_are_errors() {
    assert_eq!(
        err(with(
            basic(),
            vec![("environment", attrs([("A", "x\ry".into())]))]
        )),
        "attribute 'environment.A': systemd refuses environment values with control \
         characters other than tab and newline"
    );
    assert!(err(with(
        basic(),
        vec![("environment", attrs([("A B", "x".into())]))]
    ))
    .starts_with("attribute 'environment.A B'"));
}

#[test]
fn environment_alone_creates_a_service_section() {
    let p = gen(vec![
        ("name", "hello".into()),
        ("Unit", attrs([("Description", "d".into())])),
        ("environment", attrs([("A", "1".into())])),
    ]);
    assert_eq!(
        text(&p),
        "[Service]\nEnvironment=\"A=1\"\n\n[Unit]\nDescription=d\n"
    );
}

#[test]
fn path_is_followed_by_systemd_default_path() {
    let p = gen(with(
        basic(),
        vec![("path", vec![COREUTILS, "/opt/x/"].into())],
    ));
    assert!(text(&p).contains(&format!(
        "Environment=\"PATH={COREUTILS}/bin:/opt/x/bin:{SYSTEMD_DEFAULT_PATH}\"\n"
    )));
    let p = gen(with(
        basic(),
        vec![
            ("path", vec![COREUTILS].into()),
            ("environment", attrs([("PATH", "/only".into())])),
        ],
    ));
    assert!(text(&p).contains("Environment=\"PATH=/only\"\n"));
    assert!(!text(&p).contains(COREUTILS));
    assert!(
        err(with(basic(), vec![("path", vec!["/a\rb"].into())])).starts_with("attribute 'path':")
    );
    assert!(
        err(with(basic(), vec![("path", vec!["a:b"].into())])).starts_with("attribute 'path[0]':")
    );
}

// --- dependencies ----------------------------------------------------------

#[test]
fn dependencies_end_the_unit_section_and_get_wants_links() {
    let p = gen(with(
        basic(),
        vec![
            ("Unit", attrs([("Description", "d".into())])),
            (
                "dependencies",
                Value::List(vec![
                    dep("nix-process-db"),
                    dep("nix-process-cache"),
                    dep("nix-process-db"),
                ]),
            ),
        ],
    ));
    assert!(text(&p).ends_with(
        "[Unit]\nDescription=d\nWants=nix-process-db.service nix-process-cache.service\n\
         After=nix-process-db.service nix-process-cache.service\n"
    ));
    let links: Vec<(String, String)> = p
        .links
        .iter()
        .map(|l| (l.path.clone(), l.target.clone()))
        .collect();
    assert_eq!(
        links,
        [
            (
                "etc/systemd/system/nix-process-hello.service.wants/nix-process-db.service".into(),
                "../nix-process-db.service".into()
            ),
            (
                "etc/systemd/system/nix-process-hello.service.wants/nix-process-cache.service"
                    .into(),
                "../nix-process-cache.service".into()
            ),
        ]
    );
    assert_eq!(
        p.manifest.dependencies,
        ["nix-process-db", "nix-process-cache"]
    );
}

#[test]
fn dependencies_alone_create_a_unit_section() {
    let p = gen(with(
        basic(),
        vec![("dependencies", Value::List(vec![dep("a")]))],
    ));
    assert_eq!(
        text(&p),
        format!("[Service]\nExecStart={HELLO}\n\n[Unit]\nWants=a.service\nAfter=a.service\n")
    );
}

#[test]
fn bad_dependencies() {
    assert_eq!(
        err(with(
            basic(),
            vec![("dependencies", Value::List(vec!["db".into()]))]
        )),
        "attribute 'dependencies[0]': is not a systemd process package (it is a string)"
    );
    assert_eq!(
        err(with(
            basic(),
            vec![("dependencies", Value::List(vec![attrs::<_, &str>([])]))]
        )),
        "attribute 'dependencies[0]': is not a systemd process package (it has no name)"
    );
    assert_eq!(
        err(with(
            basic(),
            vec![("dependencies", Value::List(vec![dep("db.service")]))]
        )),
        "attribute 'dependencies[0].name': \"db.service\": give the unit's base name, without \
         \".service\""
    );
    assert!(err(with(
        basic(),
        vec![("dependencies", Value::List(vec![dep("../x")]))]
    ))
    .starts_with("attribute 'dependencies[0].name': \"../x\" is not a valid systemd unit name"));
}

// --- exec syntax -----------------------------------------------------------

#[test]
fn exec_words() {
    assert_eq!(exec_word("--port=5000"), "--port=5000");
    assert_eq!(exec_word("/nix/store/x-a/bin/a"), "/nix/store/x-a/bin/a");
    assert_eq!(exec_word(""), "\"\"");
    assert_eq!(exec_word("a b"), "\"a b\"");
    assert_eq!(exec_word(";"), "\";\"");
    assert_eq!(exec_word("100%"), "\"100%%\"");
    assert_eq!(exec_word("$HOME"), "\"$$HOME\"");
    assert_eq!(exec_word("it's \"q\""), "\"it's \\\"q\\\"\"");
    assert_eq!(exec_word("a\\b\nc\x01"), "\"a\\\\b\\nc\\x01\"");
    assert_eq!(exec_word("ünï"), "\"ünï\"");
}

#[test]
fn exec_command_checks_the_program() {
    assert_eq!(
        exec_command("daemon", "/bin/x", &["a b".into(), "$1".into()]).unwrap(),
        "/bin/x \"a b\" \"$$1\""
    );
    // The executable is not variable-expanded by systemd.
    assert_eq!(
        exec_command("daemon", "/opt/a $b/x", &[]).unwrap(),
        "\"/opt/a $b/x\""
    );
    for bad in ["-x", "@x", "+x", "!x", ":x"] {
        assert!(exec_command("daemon", bad, &[])
            .unwrap_err()
            .to_string()
            .contains("as a command prefix; give an absolute path"));
    }
    assert!(exec_command("daemon", "", &[]).is_err());
    assert!(exec_command("daemon", "/a\nb", &[]).is_err());
}

// --- translation -----------------------------------------------------------

fn managed(pairs: Vec<(&str, Value)>) -> Result<PackageSpec> {
    let mut all = vec![("processManager", Value::from("systemd"))];
    all.extend(pairs);
    create_managed_process(&attrs(all))
}

fn translated(pairs: Vec<(&str, Value)>) -> BTreeMap<String, Value> {
    let mut all = vec![("processManager", Value::from("systemd"))];
    all.extend(pairs);
    match crate::agnostic::translate_managed_process(&attrs(all)).unwrap() {
        Value::Attrs(m) => m,
        other => panic!("{other:?}"),
    }
}

fn service_of(t: &BTreeMap<String, Value>) -> BTreeMap<String, Value> {
    t["Service"].as_attrs().unwrap().clone()
}

#[test]
fn translate_foreground_is_preferred() {
    let t = translated(vec![
        ("name", "hello".into()),
        ("process", HELLO.into()),
        ("args", vec!["-p", "5000"].into()),
        ("foregroundProcessExtraArgs", vec!["--fg"].into()),
        ("daemonExtraArgs", vec!["-D"].into()),
    ]);
    let s = service_of(&t);
    assert_eq!(s["ExecStart"], Value::str(format!("{HELLO} -p 5000 --fg")));
    assert_eq!(s["Type"], Value::str("simple"));
    assert!(!s.contains_key("PIDFile"));
    assert_eq!(t["name"], Value::str("hello"));
}

#[test]
fn translate_daemon_uses_forking_and_pid_file_rules() {
    let base = || {
        vec![
            ("daemon", Value::from(HELLO)),
            ("daemonArgs", vec!["-D"].into()),
            ("instanceName", "hello1".into()),
        ]
    };
    let s = service_of(&translated(base()));
    assert_eq!(s["ExecStart"], Value::str(format!("{HELLO} -D")));
    assert_eq!(s["Type"], Value::str("forking"));
    assert_eq!(s["PIDFile"], Value::str("/var/run/hello1.pid"));

    // A declared user puts it into tmpDir, even when user change is off.
    let s = service_of(&translated(with(
        base(),
        vec![
            ("user", "hello".into()),
            ("tmpDir", "/tmp/x/".into()),
            ("forceDisableUserChange", true.into()),
        ],
    )));
    assert_eq!(s["PIDFile"], Value::str("/tmp/x/hello1.pid"));
    assert!(!s.contains_key("User"));

    let s = service_of(&translated(with(
        base(),
        vec![("pidFile", "/run/100%.pid".into())],
    )));
    assert_eq!(s["PIDFile"], Value::str("/run/100%%.pid"));

    let s = service_of(&translated(vec![
        ("name", "x".into()),
        ("daemon", HELLO.into()),
    ]));
    assert!(!s.contains_key("PIDFile"));
}

#[test]
fn translate_initialize_and_settings() {
    let t = translated(vec![
        ("name", "web".into()),
        ("description", "Web 100%".into()),
        ("process", HELLO.into()),
        ("initialize", "mkdir -p \"$DIR\"\nchown web /srv".into()),
        ("user", "web".into()),
        ("directory", "/srv/web".into()),
        ("umask", "022".into()),
        ("nice", Value::Int(5)),
        ("shell", "/bin/bash".into()),
    ]);
    let s = service_of(&t);
    assert_eq!(
        s["ExecStartPre"],
        Value::str("+/bin/bash -ec \"mkdir -p \\\"$$DIR\\\"\\nchown web /srv\"")
    );
    assert_eq!(s["WorkingDirectory"], Value::str("/srv/web"));
    assert_eq!(s["UMask"], Value::str("022"));
    assert_eq!(s["Nice"], Value::Int(5));
    assert_eq!(s["User"], Value::str("web"));
    assert_eq!(
        t["Unit"],
        attrs([("Description", Value::from("Web 100%%"))])
    );
    assert_eq!(t["description"], Value::str("Web 100%"));

    // No user, or user change disabled: no `+`.
    for extra in [
        vec![],
        vec![
            ("user", Value::from("web")),
            ("forceDisableUserChange", true.into()),
        ],
    ] {
        let s = service_of(&translated(with(
            vec![
                ("name", "web".into()),
                ("process", HELLO.into()),
                ("initialize", "true".into()),
            ],
            extra,
        )));
        assert_eq!(s["ExecStartPre"], Value::str("/bin/sh -ec true"));
        assert!(!s.contains_key("User"));
    }
}

#[test]
fn translate_description_becomes_one_line() {
    let p = managed(vec![
        ("name", "x".into()),
        ("description", "two\nlines\r\nand\rmore %i".into()),
        ("process", HELLO.into()),
    ])
    .unwrap();
    assert!(text(&p).contains("\nDescription=two lines and more %%i\n"));
    assert_eq!(p.manifest.description, "two\nlines\r\nand\rmore %i");
}

#[test]
fn translate_errors_name_the_agnostic_attribute() {
    let e = managed(vec![
        ("name", "x".into()),
        ("description", "ends in \\".into()),
        ("process", HELLO.into()),
    ])
    .unwrap_err()
    .to_string();
    assert!(
        e.starts_with("attribute 'description': cannot end with a backslash"),
        "{e}"
    );
    let e = managed(vec![
        ("name", "x".into()),
        ("foregroundProcess", "-x".into()),
    ])
    .unwrap_err()
    .to_string();
    assert!(e.starts_with("attribute 'foregroundProcess':"), "{e}");
    let e = managed(vec![("name", "x".into()), ("daemon", "+x".into())])
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("attribute 'daemon':"), "{e}");
}

#[test]
fn managed_process_end_to_end_with_override() {
    let p = managed(vec![
        ("name", "web".into()),
        ("process", HELLO.into()),
        ("path", vec![COREUTILS].into()),
        ("environment", attrs([("PORT", Value::Int(80))])),
        ("dependencies", Value::List(vec![dep("nix-process-db")])),
        (
            "overrides",
            attrs([(
                "systemd",
                attrs([("Service", attrs([("Restart", "always".into())]))]),
            )]),
        ),
    ])
    .unwrap();
    assert_eq!(p.name, "nix-process-web");
    assert_eq!(p.manifest.description, "web");
    assert_eq!(
        text(&p),
        format!(
            "[Service]\nExecStart={HELLO}\nRestart=always\nType=simple\n\
             Environment=\"PATH={COREUTILS}/bin:{SYSTEMD_DEFAULT_PATH}\"\nEnvironment=\"PORT=80\"\n\n\
             [Unit]\nDescription=web\nWants=nix-process-db.service\nAfter=nix-process-db.service\n"
        )
    );
    // An override with a typo is reported as coming from the override.
    let e = managed(vec![
        ("name", "web".into()),
        ("process", HELLO.into()),
        (
            "overrides",
            attrs([("systemd", attrs([("servce", attrs::<_, &str>([]))]))]),
        ),
    ])
    .unwrap_err()
    .to_string();
    assert!(e.contains("'servce' (from overrides.systemd"), "{e}");
    assert!(e.ends_with("(did you mean 'Service'?)"), "{e}");
}
