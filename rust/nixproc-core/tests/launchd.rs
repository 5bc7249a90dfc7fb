//! Golden plists, and proof that they are valid property lists: every
//! generated document is parsed by the `plist` crate and by Python's
//! `plistlib` (an independent implementation of Apple's format), and the
//! hostile strings come back byte for byte.

use std::io::Write;
use std::process::{Command, Stdio};

use nixproc_core::agnostic::create_managed_process;
use nixproc_core::launchd::create_launchd_daemon;
use nixproc_core::package::PackageSpec;
use nixproc_core::value::attrs;
use nixproc_core::Value;

const HELLO: &str = "/nix/store/11111111111111111111111111111111-hello-2.12/bin/hello";
const WEBAPP: &str = "/nix/store/22222222222222222222222222222222-webapp/bin/webapp";
const COREUTILS: &str = "/nix/store/33333333333333333333333333333333-coreutils-9.1";
const BUILDER: &str = "/nix/store/44444444444444444444444444444444-nixproc/bin/nixproc-builder";

/// Strings that break naive quoting, XML included.
const HOSTILE: &[&str] = &[
    "plain",
    "with space",
    "quote ' \" mix",
    "$(echo pwned) `echo pwned` ${HOME}",
    "semi ; rm -rf / ; &&",
    "new\nline\ttab",
    "carriage\r\nreturn",
    "100% %i %%",
    "\\backslash\\",
    "ünïcødé ✓",
    "",
    "<tag attr=\"v\">&amp; &lt;]]></tag>",
    "<!-- comment --> <![CDATA[x]]>",
];

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

fn plist_of(p: &PackageSpec) -> &str {
    &p.files[0].text
}

/// Parses with the `plist` crate; the top level must be a dictionary.
fn parse(text: &str) -> plist::Dictionary {
    plist::Value::from_reader_xml(text.as_bytes())
        .unwrap_or_else(|e| panic!("not a valid plist: {e}\n{text}"))
        .into_dictionary()
        .expect("the top level is a dict")
}

/// Parses with Python's plistlib and returns its JSON rendering.
fn python_parse(text: &str) -> serde_json::Value {
    let mut child = Command::new("python3")
        .arg("-c")
        .arg(
            "import json, plistlib, sys\n\
             d = plistlib.loads(sys.stdin.buffer.read(), fmt=plistlib.FMT_XML)\n\
             print(json.dumps(d))",
        )
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "plistlib rejects the plist: {}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn foreground_package() -> PackageSpec {
    create_managed_process(&attrs([
        ("processManager", "launchd".into()),
        (
            "foregroundProxy",
            format!("{BUILDER} foreground-proxy").into(),
        ),
        ("instanceName", "hello2".into()),
        ("process", HELLO.into()),
        ("args", Value::from(vec!["--port-from-env"])),
        ("environment", attrs([("PORT", Value::Int(7000))])),
        ("path", Value::from(vec![COREUTILS])),
        ("user", "hello2".into()),
        ("umask", "022".into()),
        ("nice", Value::Int(5)),
        ("directory", "/var/lib/hello2".into()),
        (
            "credentials",
            attrs([
                ("groups", attrs([("hello2", attrs::<_, &str>([]))])),
                (
                    "users",
                    attrs([(
                        "hello2",
                        attrs([
                            ("group", Value::from("hello2")),
                            ("description", "Hello".into()),
                        ]),
                    )]),
                ),
            ]),
        ),
        (
            "dependencies",
            Value::List(vec![attrs([("name", Value::from("dep"))])]),
        ),
    ]))
    .unwrap()
}

#[test]
fn foreground_example() {
    let p = foreground_package();
    insta::assert_snapshot!("foreground_example_plist", plist_of(&p));
    insta::assert_snapshot!("foreground_example_layout", layout(&p));
    insta::assert_snapshot!("foreground_example_manifest", manifest_json(&p));
}

#[test]
fn generated_plists_have_the_expected_keys() {
    let d = parse(plist_of(&foreground_package()));
    let keys: Vec<&str> = d.keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "EnvironmentVariables",
            "KeepAlive",
            "Label",
            "Nice",
            "Program",
            "ProgramArguments",
            "RunAtLoad",
            "StandardErrorPath",
            "StandardOutPath",
            "Umask",
            "UserName",
            "WorkingDirectory",
        ]
    );
    assert_eq!(d["Label"].as_string(), Some("org.nixos.hello2"));
    assert_eq!(d["Umask"].as_signed_integer(), Some(18));
    assert_eq!(d["Nice"].as_signed_integer(), Some(5));
    assert_eq!(d["RunAtLoad"].as_boolean(), Some(true));
    let env = d["EnvironmentVariables"].as_dictionary().unwrap();
    assert_eq!(env["PORT"].as_string(), Some("7000"));
    assert_eq!(
        env["PATH"].as_string().unwrap(),
        format!("{COREUTILS}/bin:/usr/bin:/bin:/usr/sbin:/sbin")
    );
    let argv: Vec<&str> = d["ProgramArguments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_string().unwrap())
        .collect();
    assert_eq!(argv, [HELLO, "--port-from-env"]);
    // Python agrees.
    let j = python_parse(plist_of(&foreground_package()));
    assert_eq!(j["Umask"], 18);
    assert_eq!(j["KeepAlive"]["SuccessfulExit"], false);
}

#[test]
fn daemon_through_the_proxy() {
    let p = create_managed_process(&attrs([
        ("processManager", "launchd".into()),
        (
            "foregroundProxy",
            format!("{BUILDER} foreground-proxy").into(),
        ),
        ("runtimeDir", "/var/run".into()),
        ("instanceName", "webapp".into()),
        ("daemon", WEBAPP.into()),
        ("daemonArgs", Value::from(vec!["-D"])),
        (
            "initialize",
            "mkdir -p /var/lib/webapp\nchown webapp /var/lib/webapp".into(),
        ),
        ("user", "webapp".into()),
    ]))
    .unwrap();
    insta::assert_snapshot!("daemon_wrapped_plist", plist_of(&p));
    let d = parse(plist_of(&p));
    assert!(!d.contains_key("UserName"), "the proxy switches the user");
    let argv = d["ProgramArguments"].as_array().unwrap();
    assert_eq!(argv[0].as_string(), Some(BUILDER));
    assert_eq!(d["Program"].as_string(), Some(BUILDER));
}

#[test]
fn hostile_strings_survive_both_parsers() {
    let env: Vec<(String, Value)> = HOSTILE
        .iter()
        .enumerate()
        .map(|(i, h)| (format!("V{i:02}"), Value::from(*h)))
        .collect();
    let p = create_launchd_daemon(&attrs([
        ("name", "hostile".into()),
        ("ProgramArguments", Value::from(HOSTILE.to_vec())),
        ("EnvironmentVariables", attrs(env)),
        (
            "Custom",
            attrs(
                HOSTILE
                    .iter()
                    .filter(|h| !h.is_empty())
                    .map(|h| (*h, Value::from(*h))),
            ),
        ),
        ("WorkingDirectory", "/tmp/<&>".into()),
    ]))
    .unwrap();
    insta::assert_snapshot!("hostile_plist", plist_of(&p));
    let d = parse(plist_of(&p));
    let argv: Vec<&str> = d["ProgramArguments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_string().unwrap())
        .collect();
    assert_eq!(argv, HOSTILE);
    let envd = d["EnvironmentVariables"].as_dictionary().unwrap();
    for (i, h) in HOSTILE.iter().enumerate() {
        assert_eq!(envd[&format!("V{i:02}")].as_string(), Some(*h));
    }
    let custom = d["Custom"].as_dictionary().unwrap();
    for h in HOSTILE.iter().filter(|h| !h.is_empty()) {
        assert_eq!(custom[*h].as_string(), Some(*h), "key {h:?}");
    }
    assert_eq!(d["WorkingDirectory"].as_string(), Some("/tmp/<&>"));

    let j = python_parse(plist_of(&p));
    let pargv: Vec<&str> = j["ProgramArguments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(pargv, HOSTILE);
    for h in HOSTILE.iter().filter(|h| !h.is_empty()) {
        assert_eq!(j["Custom"][*h].as_str(), Some(*h), "key {h:?}");
    }
}

#[test]
fn hostile_agnostic_values_reach_the_plist_or_the_proxy_verbatim() {
    for h in HOSTILE.iter().chain(&["control \u{1} char"]) {
        let p = create_managed_process(&attrs([
            ("processManager", "launchd".into()),
            (
                "foregroundProxy",
                format!("{BUILDER} foreground-proxy").into(),
            ),
            ("name", "h".into()),
            ("description", Value::from(*h)),
            ("process", HELLO.into()),
            ("args", Value::from(vec![*h])),
            ("environment", attrs([("H", Value::from(*h))])),
        ]))
        .unwrap();
        let d = parse(plist_of(&p));
        let argv: Vec<String> = d["ProgramArguments"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_string().unwrap().to_string())
            .collect();
        if h.contains('\u{1}') {
            // Through the proxy, encoded.
            assert_eq!(argv[2], "--escaped");
            let last = argv.last().unwrap();
            assert_eq!(nixproc_core::quote::c_unescape(last).unwrap(), *h);
        } else {
            assert_eq!(argv, [HELLO, h]);
            let env = d["EnvironmentVariables"].as_dictionary().unwrap();
            assert_eq!(env["H"].as_string(), Some(*h));
        }
        assert_eq!(p.manifest.description, *h);
    }
}
