use super::*;
use crate::agnostic::{create_managed_process, translate_managed_process};
use crate::value::attrs;

const HELLO: &str = "/nix/store/11111111111111111111111111111111-hello/bin/hello";
const COREUTILS: &str = "/nix/store/33333333333333333333333333333333-coreutils";
const PROXY: &str = "/nix/store/44444444444444444444444444444444-nixproc/bin/nixproc-builder";

fn gen_with(pairs: Vec<(&str, Value)>) -> Result<PackageSpec> {
    create_launchd_daemon(&attrs(pairs))
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

fn basic() -> Vec<(&'static str, Value)> {
    vec![("name", "hello".into()), ("Program", HELLO.into())]
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

/// The body of the top-level dict, one line per element, tabs removed.
fn body(p: &PackageSpec) -> Vec<String> {
    let t = text(p);
    let lines: Vec<&str> = t.lines().collect();
    lines[4..lines.len() - 2]
        .iter()
        .map(|l| l.trim_start_matches('\t').to_string())
        .collect()
}

// --- layout and manifest ---------------------------------------------------

#[test]
fn plist_path_name_mode_and_document() {
    let p = gen(basic());
    assert_eq!(p.name, "hello");
    assert_eq!(p.files.len(), 1);
    assert_eq!(
        p.files[0].path,
        "Library/LaunchDaemons/org.nixos.hello.plist"
    );
    assert_eq!(p.files[0].mode, 0o444);
    assert!(p.links.is_empty());
    assert_eq!(
        text(&p),
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
             <!DOCTYPE plist PUBLIC \"-//Apple//DTD PLIST 1.0//EN\" \
             \"http://www.apple.com/DTDs/PropertyList-1.0.dtd\">\n\
             <plist version=\"1.0\">\n\
             <dict>\n\
             \t<key>Label</key>\n\
             \t<string>org.nixos.hello</string>\n\
             \t<key>Program</key>\n\
             \t<string>{HELLO}</string>\n\
             </dict>\n\
             </plist>\n"
        )
    );
    assert_eq!(p.passthru["label"], Value::str("org.nixos.hello"));
}

#[test]
fn manifest_entry() {
    let p = gen(with(
        basic(),
        vec![
            ("dependencies", Value::List(vec![dep("db")])),
            ("UserName", "hello".into()),
            ("StandardOutPath", "/var/log/hello.log".into()),
            ("description", "Hello, world".into()),
        ],
    ));
    let m = &p.manifest;
    assert_eq!(m.name, "hello");
    assert_eq!(m.description, "Hello, world");
    assert_eq!(m.dependencies, ["db"]);
    assert_eq!(m.user.as_deref(), Some("hello"));
    assert_eq!(m.log_file.as_deref(), Some("/var/log/hello.log"));
    assert_eq!(m.pid_file, None);
    assert_eq!(
        m.backend,
        Backend::Launchd {
            label: "org.nixos.hello".into(),
            plist: "Library/LaunchDaemons/org.nixos.hello.plist".into()
        }
    );
    assert_eq!(m.revision.len(), 32);
    // description defaults to the name.
    assert_eq!(gen(basic()).manifest.description, "hello");
}

#[test]
fn label_prefix_and_explicit_label() {
    let p = gen(with(basic(), vec![("prefix", "com.example.".into())]));
    assert_eq!(
        p.manifest.backend,
        Backend::Launchd {
            label: "com.example.hello".into(),
            plist: "Library/LaunchDaemons/com.example.hello.plist".into()
        }
    );
    let p = gen(with(basic(), vec![("Label", "my.own.label".into())]));
    assert!(text(&p).contains("<string>my.own.label</string>"));
    assert_eq!(p.files[0].path, "Library/LaunchDaemons/my.own.label.plist");
    // instanceName names the job when name is absent.
    let p = gen(vec![
        ("instanceName", "hello2".into()),
        ("Program", HELLO.into()),
    ]);
    assert_eq!(p.name, "hello2");
    assert!(text(&p).contains("<string>org.nixos.hello2</string>"));
}

#[test]
fn bad_names_and_labels() {
    assert_eq!(
        err(vec![("Program", HELLO.into())]),
        "attribute 'name' is required: the job is called <prefix><name> (set name or instanceName)"
    );
    assert!(err(with(basic(), vec![("name", "a/b".into())])).starts_with("attribute 'name': "));
    assert_eq!(
        err(with(basic(), vec![("Label", "../etc".into())])),
        "attribute 'Label': \"../etc\" is not a valid launchd label (it names the file \
         <Label>.plist: non-empty, without '/', whitespace or control characters)"
    );
    assert_eq!(
        err(with(basic(), vec![("Label", "-x".into())])),
        "attribute 'Label': \"-x\" is not a valid launchd label (it must not start with '-' or '.')"
    );
    assert!(err(with(basic(), vec![("prefix", "a b.".into())])).starts_with("attribute 'prefix'"));
    assert_eq!(
        err(with(basic(), vec![("Label", Value::Int(3))])),
        "attribute 'Label': must be a string"
    );
}

#[test]
fn program_or_arguments_required() {
    assert_eq!(
        err(vec![("name", "x".into())]),
        "attribute 'Program' is required: launchd needs Program or ProgramArguments to know \
         what to run"
    );
    let p = gen(vec![
        ("name", "x".into()),
        ("ProgramArguments", Value::from(vec![HELLO, "--port", "80"])),
    ]);
    assert!(text(&p).contains("<array>"));
    assert_eq!(
        err(vec![
            ("name", "x".into()),
            ("ProgramArguments", Value::List(vec![]))
        ]),
        "attribute 'ProgramArguments': must not be empty (its first element is the program's \
         argv[0])"
    );
    assert_eq!(
        err(vec![
            ("name", "x".into()),
            (
                "ProgramArguments",
                Value::List(vec![HELLO.into(), Value::Bool(true)])
            )
        ]),
        "attribute 'ProgramArguments[1]' must be a string, but it is bool"
    );
    // Numbers in ProgramArguments become strings (launchd only takes strings).
    let p = gen(vec![
        ("name", "x".into()),
        (
            "ProgramArguments",
            Value::List(vec![HELLO.into(), Value::Int(8080)]),
        ),
    ]);
    assert!(text(&p).contains("<string>8080</string>"));
}

// --- value mapping ----------------------------------------------------------

#[test]
fn every_value_type_and_sorted_keys() {
    let p = gen(with(
        basic(),
        vec![
            ("RunAtLoad", true.into()),
            ("Disabled", false.into()),
            ("ThrottleInterval", Value::Int(5)),
            ("CustomReal", Value::Float(1.5)),
            ("WatchPaths", Value::from(vec!["/a", "/b"])),
            ("QueueDirectories", Value::List(vec![])),
            (
                "KeepAlive",
                attrs([
                    ("SuccessfulExit", false.into()),
                    ("Crashed", Value::Null),
                    ("PathState", attrs([("/tmp/x", true.into())])),
                ]),
            ),
            ("SoftResourceLimits", attrs::<_, &str>([])),
            ("AbandonProcessGroup", Value::Null),
        ],
    ));
    assert_eq!(
        body(&p),
        [
            "<key>CustomReal</key>",
            "<real>1.5</real>",
            "<key>Disabled</key>",
            "<false/>",
            "<key>KeepAlive</key>",
            "<dict>",
            "<key>PathState</key>",
            "<dict>",
            "<key>/tmp/x</key>",
            "<true/>",
            "</dict>",
            "<key>SuccessfulExit</key>",
            "<false/>",
            "</dict>",
            "<key>Label</key>",
            "<string>org.nixos.hello</string>",
            "<key>Program</key>",
            &format!("<string>{HELLO}</string>"),
            "<key>QueueDirectories</key>",
            "<array/>",
            "<key>RunAtLoad</key>",
            "<true/>",
            "<key>SoftResourceLimits</key>",
            "<dict/>",
            "<key>ThrottleInterval</key>",
            "<integer>5</integer>",
            "<key>WatchPaths</key>",
            "<array>",
            "<string>/a</string>",
            "<string>/b</string>",
            "</array>",
        ]
    );
    // Nesting is indented with tabs.
    assert!(text(&p)
        .contains("\t<dict>\n\t\t<key>PathState</key>\n\t\t<dict>\n\t\t\t<key>/tmp/x</key>\n"));
}

#[test]
fn bad_values_name_the_attribute() {
    assert_eq!(
        err(with(
            basic(),
            vec![("WatchPaths", Value::List(vec![Value::Null]))]
        )),
        "attribute 'WatchPaths[0]': a list element cannot be null in a property list"
    );
    assert_eq!(
        err(with(basic(), vec![("Custom", Value::Float(f64::NAN))])),
        "attribute 'Custom': NaN cannot be a property list <real>"
    );
    assert_eq!(
        err(with(basic(), vec![("RunAtLoad", "yes".into())])),
        "attribute 'RunAtLoad': must be a boolean"
    );
    assert_eq!(
        err(with(basic(), vec![("KeepAlive", Value::Int(1))])),
        "attribute 'KeepAlive': must be a boolean or a set of conditions (e.g. { SuccessfulExit \
         = false; })"
    );
    assert_eq!(
        err(with(
            basic(),
            vec![("Custom", attrs([("a\u{1}", Value::Int(1))]))]
        )),
        "attribute 'Custom.a\u{1}': the key contains the character U+0001, which an XML \
         property list cannot hold"
    );
    assert_eq!(
        err(with(basic(), vec![("Program", "/bin/x\u{7}".into())])),
        "attribute 'Program': contains the character U+0007, which an XML property list cannot \
         hold"
    );
}

#[test]
fn lowercase_keys_are_not_plist_properties() {
    assert_eq!(
        err(with(basic(), vec![("credential", attrs::<_, &str>([]))])),
        "unknown parameter 'credential' (did you mean 'credentials'?)"
    );
    assert_eq!(
        err(with(basic(), vec![("environment", attrs::<_, &str>([]))])),
        "unknown parameter 'environment'"
    );
    // launchd's one lower-case key is a property.
    let p = gen(with(
        basic(),
        vec![("inetdCompatibility", attrs([("Wait", false.into())]))],
    ));
    assert!(text(&p).contains("<key>inetdCompatibility</key>"));
}

#[test]
fn xml_escaping_of_strings_and_keys() {
    let p = gen(with(
        basic(),
        vec![(
            "EnvironmentVariables",
            attrs([("A<&>", Value::from("x < y && z > \"q\" 'r' ]]> \r\n\tü"))]),
        )],
    ));
    assert!(
        text(&p).contains(
            "<key>A&lt;&amp;&gt;</key>\n\t\t<string>x &lt; y &amp;&amp; z &gt; \"q\" 'r' ]]&gt; \
             &#13;\n\tü</string>"
        ),
        "{}",
        text(&p)
    );
}

#[test]
fn nice_and_umask_are_integers() {
    let p = gen(with(
        basic(),
        vec![("Nice", "-5".into()), ("Umask", "022".into())],
    ));
    let b = body(&p);
    assert!(b
        .windows(2)
        .any(|w| w == ["<key>Nice</key>", "<integer>-5</integer>"]));
    assert!(b
        .windows(2)
        .any(|w| w == ["<key>Umask</key>", "<integer>18</integer>"]));
    let p = gen(with(
        basic(),
        vec![("Nice", Value::Int(3)), ("Umask", Value::Int(63))],
    ));
    assert!(text(&p).contains("<integer>63</integer>"));
    assert_eq!(
        err(with(basic(), vec![("Umask", "0x12".into())])),
        "attribute 'Umask': must be an integer (e.g. 18) or a string of 1 to 4 octal digits \
         (e.g. \"022\")"
    );
    assert_eq!(
        err(with(basic(), vec![("Nice", Value::Int(40))])),
        "attribute 'Nice': must be an integer between -20 and 19 (or a string of one)"
    );
}

#[test]
fn environment_values_are_strings_and_path_is_composed() {
    let p = gen(with(
        basic(),
        vec![
            (
                "EnvironmentVariables",
                attrs([
                    ("PORT", Value::Int(7000)),
                    ("ON", true.into()),
                    ("GONE", Value::Null),
                ]),
            ),
            ("path", Value::from(vec![COREUTILS, "/opt/x/"])),
        ],
    ));
    let t = text(&p);
    assert!(t.contains("<key>ON</key>\n\t\t<string>1</string>"), "{t}");
    assert!(t.contains("<key>PORT</key>\n\t\t<string>7000</string>"));
    assert!(!t.contains("GONE"));
    assert!(t.contains(&format!(
        "<key>PATH</key>\n\t\t<string>{COREUTILS}/bin:/opt/x/bin:/usr/bin:/bin:/usr/sbin:/sbin</string>"
    )));
    // An explicit PATH wins.
    let p = gen(with(
        basic(),
        vec![
            (
                "EnvironmentVariables",
                attrs([("PATH", Value::from("/mine"))]),
            ),
            ("path", Value::from(vec![COREUTILS])),
        ],
    ));
    assert!(text(&p).contains("<string>/mine</string>"));
    assert!(!text(&p).contains(COREUTILS));
    // PATH alone, without other variables.
    let p = gen(with(basic(), vec![("path", Value::from(vec![COREUTILS]))]));
    assert!(text(&p).contains("<key>EnvironmentVariables</key>"));
    assert_eq!(
        err(with(
            basic(),
            vec![("EnvironmentVariables", attrs([("A=B", Value::from("x"))]))]
        )),
        "attribute 'EnvironmentVariables.A=B': a variable name must be non-empty and without '='"
    );
    assert_eq!(
        err(with(
            basic(),
            vec![("EnvironmentVariables", attrs([("A", Value::List(vec![]))]))]
        )),
        "attribute 'EnvironmentVariables.A' must be a string or a number, but it is list"
    );
    assert!(err(with(basic(), vec![("path", Value::from(vec!["a:b"]))]))
        .starts_with("attribute 'path[0]'"));
}

#[test]
fn user_and_group_dropped_under_force_disable_user_change() {
    let args = with(
        basic(),
        vec![("UserName", "web".into()), ("GroupName", "web".into())],
    );
    let p = gen(args.clone());
    assert!(text(&p).contains("<key>UserName</key>") && text(&p).contains("<key>GroupName</key>"));
    let p = gen(with(args, vec![("forceDisableUserChange", true.into())]));
    assert!(!text(&p).contains("UserName") && !text(&p).contains("GroupName"));
    assert_eq!(p.manifest.user, None);
}

#[test]
fn credentials_become_dysnomia_files() {
    let creds = attrs([
        ("groups", attrs([("web", attrs::<_, &str>([]))])),
        (
            "users",
            attrs([("web", attrs([("group", Value::from("web"))]))]),
        ),
    ]);
    let p = gen(with(
        basic(),
        vec![
            ("credentials", creds.clone()),
            ("ids", attrs([("uids", attrs([("web", Value::Int(1234))]))])),
        ],
    ));
    let paths: Vec<&str> = p.files.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "Library/LaunchDaemons/org.nixos.hello.plist",
            "dysnomia-support/groups/web",
            "dysnomia-support/users/web"
        ]
    );
    assert!(p.files[2].text.contains("uid=1234"));
    let p = gen(with(
        basic(),
        vec![
            ("credentials", creds),
            ("forceDisableUserChange", true.into()),
        ],
    ));
    assert_eq!(p.files.len(), 1);
}

#[test]
fn composition_keys_and_post_install_are_accepted() {
    let mut args = basic();
    for k in COMPOSITION_KEYS {
        let v = match *k {
            "forceDisableUserChange" => false.into(),
            "ids" => attrs::<_, &str>([]),
            _ => Value::from("/x"),
        };
        args.push((k, v));
    }
    args.push(("prefix", "org.nixos.".into()));
    args.push(("postInstall", "true".into()));
    gen(args);
}

#[test]
fn dependencies_must_be_packages() {
    assert_eq!(
        err(with(
            basic(),
            vec![("dependencies", Value::List(vec!["x".into()]))]
        )),
        "attribute 'dependencies[0]': is not a launchd process package (it is a string)"
    );
}

// --- translation ------------------------------------------------------------

fn composition() -> Vec<(&'static str, Value)> {
    vec![
        ("processManager", "launchd".into()),
        ("runtimeDir", "/run".into()),
        ("logDir", "/var/log".into()),
        ("tmpDir", "/tmp".into()),
        (
            "foregroundProxy",
            format!("{PROXY} foreground-proxy").into(),
        ),
    ]
}

fn translated(pairs: Vec<(&'static str, Value)>) -> BTreeMap<String, Value> {
    let v = translate_managed_process(&attrs(with(composition(), pairs))).unwrap();
    v.as_attrs().unwrap().clone()
}

fn managed(pairs: Vec<(&'static str, Value)>) -> Result<PackageSpec> {
    create_managed_process(&attrs(with(composition(), pairs)))
}

fn strs(v: &Value) -> Vec<String> {
    match v {
        Value::List(l) => l.iter().map(|x| x.as_str().unwrap().to_string()).collect(),
        _ => panic!("not a list: {v:?}"),
    }
}

#[test]
fn foreground_process_runs_directly() {
    let t = translated(vec![
        ("instanceName", "hello2".into()),
        ("process", HELLO.into()),
        ("args", Value::from(vec!["--port", "7000"])),
        ("environment", attrs([("PORT", Value::from("7000"))])),
        ("directory", "/srv/hello".into()),
        ("umask", "022".into()),
        ("nice", Value::Int(5)),
        ("user", "hello2".into()),
    ]);
    assert_eq!(t["Program"], Value::str(HELLO));
    assert_eq!(strs(&t["ProgramArguments"]), [HELLO, "--port", "7000"]);
    assert_eq!(
        t["EnvironmentVariables"],
        attrs([("PORT", Value::from("7000"))])
    );
    assert_eq!(t["WorkingDirectory"], Value::str("/srv/hello"));
    assert_eq!(t["Umask"], Value::Int(18));
    assert_eq!(t["Nice"], Value::Int(5));
    assert_eq!(t["UserName"], Value::str("hello2"));
    assert_eq!(t["RunAtLoad"], Value::Bool(true));
    assert_eq!(
        t["KeepAlive"],
        attrs([("SuccessfulExit", Value::Bool(false))])
    );
    // A process with a user logs into tmpDir (§2.1).
    assert_eq!(t["StandardOutPath"], Value::str("/tmp/nixproc-hello2.log"));
    assert_eq!(
        t["StandardErrorPath"],
        Value::str("/tmp/nixproc-hello2.log")
    );
    assert!(!t.contains_key("environment"));
}

#[test]
fn argv0_is_always_in_program_arguments() {
    let t = translated(vec![
        ("name", "x".into()),
        ("foregroundProcess", HELLO.into()),
    ]);
    assert_eq!(strs(&t["ProgramArguments"]), [HELLO]);
    assert_eq!(t["StandardOutPath"], Value::str("/var/log/nixproc-x.log"));
}

#[test]
fn initialize_goes_through_the_proxy_which_switches_user() {
    let t = translated(vec![
        ("name", "web".into()),
        ("process", HELLO.into()),
        ("args", Value::from(vec!["-v"])),
        ("initialize", "mkdir -p /srv/web".into()),
        ("directory", "/srv/web".into()),
        ("umask", "077".into()),
        ("user", "web".into()),
        ("environment", attrs([("A", Value::from("b"))])),
    ]);
    assert_eq!(
        strs(&t["ProgramArguments"]),
        [
            PROXY,
            "foreground-proxy",
            "--initialize",
            "mkdir -p /srv/web",
            "--shell",
            "/bin/sh",
            "--user",
            "web",
            "--directory",
            "/srv/web",
            "--umask",
            "077",
            "--",
            HELLO,
            "-v"
        ]
    );
    assert_eq!(t["Program"], Value::str(PROXY));
    assert!(!t.contains_key("UserName"));
    assert!(!t.contains_key("WorkingDirectory"));
    assert!(!t.contains_key("Umask"));
    assert_eq!(t["EnvironmentVariables"], attrs([("A", Value::from("b"))]));
}

#[test]
fn daemon_is_wrapped_with_its_pid_file() {
    let t = translated(vec![
        ("instanceName", "webapp".into()),
        ("daemon", HELLO.into()),
        ("daemonArgs", Value::from(vec!["-D"])),
    ]);
    assert_eq!(
        strs(&t["ProgramArguments"]),
        [
            PROXY,
            "foreground-proxy",
            "--wrap-daemon",
            "--pidfile",
            "/run/webapp.pid",
            "--",
            HELLO,
            "-D"
        ]
    );
}

#[test]
fn values_xml_cannot_hold_are_escaped_for_the_proxy() {
    let t = translated(vec![
        ("name", "x".into()),
        ("process", HELLO.into()),
        ("args", Value::from(vec!["a\u{1}b"])),
        ("environment", attrs([("E", Value::from("\u{2}"))])),
    ]);
    assert_eq!(
        strs(&t["ProgramArguments"]),
        [
            PROXY,
            "foreground-proxy",
            "--escaped",
            "--setenv",
            "E=\\x02",
            "--",
            HELLO,
            "a\\x01b"
        ]
    );
    assert!(!t.contains_key("EnvironmentVariables"));
    // Line breaks fit a plist: no proxy needed.
    let t = translated(vec![
        ("name", "x".into()),
        ("process", HELLO.into()),
        ("args", Value::from(vec!["a\nb"])),
    ]);
    assert_eq!(t["Program"], Value::str(HELLO));
}

#[test]
fn proxy_is_required_when_needed() {
    let e = create_managed_process(&attrs(vec![
        ("processManager", "launchd".into()),
        ("name", "x".into()),
        ("daemon", HELLO.into()),
    ]))
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "attribute 'foregroundProxy' is required: process \"x\" needs the foreground proxy (it \
         has an initialize script, only a daemon, or values an XML property list cannot hold)"
    );
}

#[test]
fn force_disable_user_change_drops_the_user() {
    let t = translated(vec![
        ("name", "x".into()),
        ("process", HELLO.into()),
        ("user", "web".into()),
        ("forceDisableUserChange", true.into()),
    ]);
    assert!(!t.contains_key("UserName"));
    // The log then goes to logDir.
    assert_eq!(t["StandardOutPath"], Value::str("/var/log/nixproc-x.log"));
}

#[test]
fn dependencies_are_recorded_not_refused() {
    let p = managed(vec![
        ("name", "web".into()),
        ("process", HELLO.into()),
        ("dependencies", Value::List(vec![dep("db")])),
    ])
    .unwrap();
    assert_eq!(p.manifest.dependencies, ["db"]);
}

#[test]
fn overrides_replace_the_defaults() {
    let p = managed(vec![
        ("name", "x".into()),
        ("process", HELLO.into()),
        (
            "overrides",
            attrs([(
                "launchd",
                attrs([
                    ("KeepAlive", true.into()),
                    ("ThrottleInterval", Value::Int(30)),
                ]),
            )]),
        ),
    ])
    .unwrap();
    let b = body(&p);
    assert!(b
        .windows(2)
        .any(|w| w == ["<key>KeepAlive</key>", "<true/>"]));
    assert!(b
        .windows(2)
        .any(|w| w == ["<key>ThrottleInterval</key>", "<integer>30</integer>"]));
    let e = managed(vec![
        ("name", "x".into()),
        ("process", HELLO.into()),
        (
            "overrides",
            attrs([("launchd", attrs([("keepAlive", true.into())]))]),
        ),
    ])
    .unwrap_err();
    let e = e.to_string();
    assert!(
        e.starts_with("unknown parameter 'keepAlive' (from overrides.launchd"),
        "{e}"
    );
    assert!(e.ends_with("(did you mean 'KeepAlive'?)"), "{e}");
}
