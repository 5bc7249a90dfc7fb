use super::*;
use crate::agnostic::create_managed_process;
use crate::value::attrs;

const HELLO: &str = "/nix/store/11111111111111111111111111111111-hello/bin/hello";
const PROXY: &str = "/nix/store/44444444444444444444444444444444-nixproc-builder foreground-proxy";
const DAEMONIZE: &str = "/nix/store/44444444444444444444444444444444-nixproc-builder daemonize";

/// A set of strings.
fn set(pairs: &[(&str, &str)]) -> Value {
    attrs(pairs.iter().map(|(k, v)| (*k, Value::from(*v))))
}

fn create(pairs: Vec<(&str, Value)>) -> Result<PackageSpec> {
    create_process_script(&attrs(pairs))
}

fn err(pairs: Vec<(&str, Value)>) -> String {
    create(pairs).unwrap_err().to_string()
}

fn file<'a>(p: &'a PackageSpec, path: &str) -> &'a FileSpec {
    p.files
        .iter()
        .find(|f| f.path == path)
        .unwrap_or_else(|| panic!("no {path} in {:?}", p.files))
}

fn paths(p: &PackageSpec) -> Vec<&str> {
    p.files.iter().map(|f| f.path.as_str()).collect()
}

fn composition() -> Vec<(&'static str, Value)> {
    vec![
        ("runtimeDir", "/state/run".into()),
        ("logDir", "/state/log".into()),
        ("tmpDir", "/state/tmp".into()),
        ("foregroundProxy", PROXY.into()),
        ("daemonize", DAEMONIZE.into()),
    ]
}

/// `createManagedProcess` with processManager = "disnix".
fn managed(pairs: Vec<(&str, Value)>) -> Result<PackageSpec> {
    let mut all = composition();
    all.push(("processManager", "disnix".into()));
    all.extend(pairs);
    create_managed_process(&attrs(all))
}

fn wrapper(p: &PackageSpec) -> &str {
    &file(p, &wrapper_path(&p.name)).text
}

fn exec_line(p: &PackageSpec) -> String {
    wrapper(p)
        .lines()
        .find(|l| l.starts_with("exec "))
        .unwrap_or_else(|| panic!("no exec in\n{}", wrapper(p)))
        .to_string()
}

/// nix-base32 (Nix's own alphabet and bit order).
fn nix_base32(bytes: &[u8]) -> String {
    const ALPHABET: &[u8] = b"0123456789abcdfghijklmnpqrsvwxyz";
    let len = (bytes.len() * 8).div_ceil(5);
    (0..len)
        .rev()
        .map(|n| {
            let b = n * 5;
            let (i, j) = (b / 8, b % 8);
            let low = u32::from(bytes[i]) >> j;
            let high = if i + 1 < bytes.len() {
                u32::from(bytes[i + 1]) << (8 - j)
            } else {
                0
            };
            ALPHABET[((low | high) & 0x1f) as usize] as char
        })
        .collect()
}

#[test]
fn placeholder_is_the_hash_nix_uses() {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(b"nix-output:out");
    assert_eq!(OUT_PLACEHOLDER, format!("/{}", nix_base32(&digest)));
}

// --- createProcessScript called directly --------------------------------

#[test]
fn component_file_with_default_pid_file() {
    let p = create(vec![
        ("name", "hello".into()),
        ("process", HELLO.into()),
        ("runtimeDir", "/state/run".into()),
    ])
    .unwrap();
    assert_eq!(paths(&p), ["etc/dysnomia/process/hello"]);
    let f = file(&p, "etc/dysnomia/process/hello");
    assert_eq!(
        f.text,
        format!("process={HELLO}\npidFile=/state/run/hello.pid\n")
    );
    assert_eq!(f.mode, 0o444);
    assert_eq!(p.manifest.pid_file.as_deref(), Some("/state/run/hello.pid"));
    assert_eq!(p.manifest.description, "hello");
    assert_eq!(p.manifest.user, None);
    assert_eq!(p.manifest.log_file, None);
    assert_eq!(
        p.manifest.backend,
        Backend::Disnix {
            component: "etc/dysnomia/process/hello".into(),
            process: HELLO.into(),
        }
    );
    assert!(p.links.is_empty());
}

#[test]
fn default_runtime_dir_is_var_run() {
    let p = create(vec![("name", "hello".into()), ("process", HELLO.into())]).unwrap();
    assert_eq!(p.manifest.pid_file.as_deref(), Some("/var/run/hello.pid"));
}

#[test]
fn explicit_pid_file_description_and_dependencies() {
    let p = create(vec![
        ("name", "hello".into()),
        ("description", "Hello, world".into()),
        ("process", HELLO.into()),
        ("pidFile", "/tmp/h.pid".into()),
        (
            "dependencies",
            Value::List(vec![
                set(&[("name", "webapp1")]),
                set(&[("name", "webapp2")]),
            ]),
        ),
        ("postInstall", "touch $out/x".into()),
    ])
    .unwrap();
    assert_eq!(
        file(&p, "etc/dysnomia/process/hello").text,
        format!("process={HELLO}\npidFile=/tmp/h.pid\n")
    );
    assert_eq!(p.manifest.description, "Hello, world");
    assert_eq!(p.manifest.dependencies, ["webapp1", "webapp2"]);
}

#[test]
fn credentials_become_dysnomia_support_files() {
    let creds = attrs([
        ("groups", attrs([("hello", attrs::<_, &str>([]))])),
        ("users", attrs([("hello", set(&[("group", "hello")]))])),
    ]);
    let base = || {
        vec![
            ("name", Value::from("hello")),
            ("process", HELLO.into()),
            ("credentials", creds.clone()),
            (
                "ids",
                attrs([("uids", attrs([("hello", Value::Int(2001))]))]),
            ),
        ]
    };
    let p = create(base()).unwrap();
    assert_eq!(
        paths(&p),
        [
            "etc/dysnomia/process/hello",
            "dysnomia-support/groups/hello",
            "dysnomia-support/users/hello",
        ]
    );
    assert_eq!(
        file(&p, "dysnomia-support/users/hello").text,
        "uid=2001\ngroup=hello\n"
    );
    let mut unprivileged = base();
    unprivileged.push(("forceDisableUserChange", Value::Bool(true)));
    let p = create(unprivileged).unwrap();
    assert_eq!(paths(&p), ["etc/dysnomia/process/hello"]);
}

#[test]
fn missing_and_conflicting_program() {
    assert_eq!(
        err(vec![("name", "hello".into())]),
        "attribute 'process' is required: the program Dysnomia runs; it must daemonize and \
         write the PID file"
    );
    assert_eq!(
        err(vec![("process", HELLO.into())]),
        "attribute 'name' is required: the component (and process) name"
    );
    assert_eq!(
        err(vec![
            ("name", "hello".into()),
            ("process", HELLO.into()),
            ("wrapper", set(&[("text", "#!/bin/sh\n")])),
        ]),
        "attribute 'process': cannot be combined with wrapper (the generated program \
         process= points at)"
    );
    assert_eq!(
        err(vec![("name", "hello".into()), ("process", "".into())]),
        "attribute 'process': must not be empty"
    );
}

#[test]
fn bad_names_and_values() {
    assert!(err(vec![("name", "a/b".into()), ("process", HELLO.into())])
        .starts_with("attribute 'name': \"a/b\" is not a valid process name"));
    assert_eq!(
        err(vec![
            ("name", "hello".into()),
            ("process", "/bin/x\nrm -rf /".into())
        ]),
        "attribute 'process': \"/bin/x\\nrm -rf /\" cannot be written to a Dysnomia component \
         file (one key=value per line): it must not contain a line break"
    );
    assert!(err(vec![
        ("name", "hello".into()),
        ("process", HELLO.into()),
        ("pidFile", "/tmp/a\r.pid".into())
    ])
    .starts_with("attribute 'pidFile': "));
    assert!(err(vec![("name", "hello".into()), ("process", "/".into())])
        .contains("cannot derive a PID file name from \"/\"; give pidFile"));
    assert_eq!(
        err(vec![
            ("name", "hello".into()),
            ("process", HELLO.into()),
            ("shell", "/bin/sh -x".into()),
        ]),
        "attribute 'shell': must be a non-empty interpreter path on one line, without blanks"
    );
}

#[test]
fn unknown_keys_are_rejected_with_a_hint() {
    let e = err(vec![
        ("name", "hello".into()),
        ("process", HELLO.into()),
        ("pidfile", "/tmp/h.pid".into()),
    ]);
    assert!(e.starts_with("unknown parameter 'pidfile'"), "{e}");
    assert!(e.contains("pidFile"), "{e}");
    let e = err(vec![
        ("name", "hello".into()),
        ("wrapper", set(&[("text", "#!/bin/sh\n"), ("usr", "x")])),
    ]);
    assert!(e.starts_with("unknown parameter 'wrapper.usr'"), "{e}");
}

#[test]
fn bad_dependencies_and_wrapper() {
    assert_eq!(
        err(vec![
            ("name", "hello".into()),
            ("process", HELLO.into()),
            ("dependencies", Value::List(vec!["webapp".into()])),
        ]),
        "attribute 'dependencies[0]': is not a disnix process package (it is a string)"
    );
    assert_eq!(
        err(vec![
            ("name", "hello".into()),
            ("wrapper", attrs::<_, &str>([]))
        ]),
        "attribute 'wrapper.text' is required: the wrapper script"
    );
    assert_eq!(
        err(vec![
            ("name", "hello".into()),
            ("wrapper", set(&[("text", "exec /bin/true\n")]))
        ]),
        "attribute 'wrapper.text': must start with an interpreter line (#!)"
    );
}

#[test]
fn composition_keys_are_accepted() {
    let mut all = composition();
    all.extend([
        ("name", Value::from("hello")),
        ("process", HELLO.into()),
        ("forceDisableUserChange", Value::Bool(false)),
        ("ids", attrs::<_, &str>([])),
        ("shell", "/bin/sh".into()),
        ("callingUser", "me".into()),
        ("callingGroup", "us".into()),
    ]);
    let keys: Vec<&str> = all.iter().map(|(k, _)| *k).collect();
    for k in COMPOSITION_KEYS {
        assert!(keys.contains(k), "{k} not covered");
    }
    create(all).unwrap();
}

// --- the agnostic layer ---------------------------------------------------

#[test]
fn daemon_is_preferred_and_wrapped() {
    let p = managed(vec![
        ("instanceName", "hello".into()),
        ("process", HELLO.into()),
        ("daemonExtraArgs", vec!["--fork"].into()),
        ("foregroundProcessExtraArgs", vec!["--fg"].into()),
    ])
    .unwrap();
    assert_eq!(
        paths(&p),
        ["etc/dysnomia/process/hello", "bin/hello-process-wrapper"]
    );
    let process = format!("{OUT_PLACEHOLDER}/bin/hello-process-wrapper");
    assert_eq!(
        file(&p, "etc/dysnomia/process/hello").text,
        format!("process={process}\npidFile=/state/run/hello.pid\n")
    );
    assert_eq!(file(&p, "bin/hello-process-wrapper").mode, 0o555);
    assert_eq!(wrapper(&p), format!("#!/bin/sh -e\nexec {HELLO} --fork\n"));
    assert_eq!(
        p.manifest.backend,
        Backend::Disnix {
            component: "etc/dysnomia/process/hello".into(),
            process,
        }
    );
    assert_eq!(p.manifest.pid_file.as_deref(), Some("/state/run/hello.pid"));
    assert_eq!(p.manifest.log_file, None);
}

#[test]
fn daemon_pid_file_rules() {
    // A declared user puts the PID file into tmpDir, even when user
    // switching is disabled; without instanceName the daemon's name counts.
    let p = managed(vec![
        ("name", "hello".into()),
        ("process", HELLO.into()),
        ("user", "hello".into()),
        ("forceDisableUserChange", Value::Bool(true)),
    ])
    .unwrap();
    assert_eq!(p.manifest.pid_file.as_deref(), Some("/state/tmp/hello.pid"));
    assert_eq!(p.manifest.user, None);
    assert_eq!(exec_line(&p), format!("exec {HELLO}"));
    let p = managed(vec![
        ("name", "x".into()),
        ("process", HELLO.into()),
        ("pidFile", "/p/x.pid".into()),
    ])
    .unwrap();
    assert_eq!(p.manifest.pid_file.as_deref(), Some("/p/x.pid"));
}

#[test]
fn daemon_user_switch_goes_through_the_proxy() {
    let p = managed(vec![
        ("instanceName", "hello".into()),
        ("process", HELLO.into()),
        ("args", vec!["--port", "7000"].into()),
        ("user", "hello".into()),
        ("nice", Value::Int(-5)),
    ])
    .unwrap();
    assert_eq!(
        exec_line(&p),
        format!("exec nice -n -5 {PROXY} --user hello -- {HELLO} --port 7000")
    );
    assert!(!wrapper(&p).contains("su "));
    assert_eq!(p.manifest.user.as_deref(), Some("hello"));
    assert_eq!(p.manifest.pid_file.as_deref(), Some("/state/tmp/hello.pid"));
}

#[test]
fn foreground_only_is_daemonized_with_a_log() {
    let p = managed(vec![
        ("instanceName", "hello".into()),
        ("foregroundProcess", HELLO.into()),
        ("foregroundProcessArgs", vec!["-v"].into()),
        ("nice", Value::Int(3)),
    ])
    .unwrap();
    assert_eq!(
        exec_line(&p),
        format!(
            "exec {DAEMONIZE} --output /state/log/nixproc-hello.log --pidfile \
             /state/run/hello.pid --nice 3 -- {HELLO} -v"
        )
    );
    assert_eq!(
        p.manifest.log_file.as_deref(),
        Some("/state/log/nixproc-hello.log")
    );
    // With a user switch the log goes to tmpDir (reference §2.1).
    let p = managed(vec![
        ("name", "hello".into()),
        ("foregroundProcess", HELLO.into()),
        ("user", "hello".into()),
    ])
    .unwrap();
    assert_eq!(
        exec_line(&p),
        format!(
            "exec {DAEMONIZE} --output /state/tmp/nixproc-hello.log --pidfile \
             /state/tmp/hello.pid --user hello -- {HELLO}"
        )
    );
    assert_eq!(p.manifest.user.as_deref(), Some("hello"));
}

#[test]
fn wrapper_settings_in_order() {
    let p = managed(vec![
        ("instanceName", "hello".into()),
        ("process", HELLO.into()),
        (
            "path",
            vec!["/nix/store/c-coreutils", "/nix/store/g-gnused/"].into(),
        ),
        (
            "environment",
            attrs([("ZED", Value::from("last")), ("A_B", Value::from("it's"))]),
        ),
        ("umask", "022".into()),
        (
            "initialize",
            "mkdir -p /state/lib/hello\nchmod 700 /state/lib/hello".into(),
        ),
        ("directory", "/state/lib/hello dir".into()),
    ])
    .unwrap();
    assert_eq!(
        wrapper(&p),
        format!(
            "#!/bin/sh -e\n\
             export A_B='it'\\''s'\n\
             export PATH=/nix/store/c-coreutils/bin:/nix/store/g-gnused/bin:\"$PATH\"\n\
             export ZED=last\n\
             umask 022\n\
             mkdir -p /state/lib/hello\n\
             chmod 700 /state/lib/hello\n\
             cd '/state/lib/hello dir'\n\
             exec {HELLO}\n"
        )
    );
}

#[test]
fn explicit_path_variable_wins() {
    let p = managed(vec![
        ("name", "hello".into()),
        ("process", HELLO.into()),
        ("path", vec!["/nix/store/c-coreutils"].into()),
        ("environment", set(&[("PATH", "/opt/bin")])),
    ])
    .unwrap();
    assert!(wrapper(&p).contains("export PATH=/opt/bin:\"$PATH\"\n"));
}

#[test]
fn missing_helpers_are_named() {
    let e = create_managed_process(&attrs([
        ("processManager", Value::from("disnix")),
        ("name", "hello".into()),
        ("foregroundProcess", HELLO.into()),
    ]))
    .unwrap_err()
    .to_string();
    assert_eq!(
        e,
        "attribute 'daemonize' is required: a foreground-only process must be daemonized by it"
    );
    let e = create_managed_process(&attrs([
        ("processManager", Value::from("disnix")),
        ("name", "hello".into()),
        ("process", HELLO.into()),
        ("user", "hello".into()),
    ]))
    .unwrap_err()
    .to_string();
    assert!(
        e.starts_with("attribute 'foregroundProxy' is required"),
        "{e}"
    );
}

#[test]
fn agnostic_dependencies_credentials_and_overrides() {
    let p = managed(vec![
        ("name", "nginx".into()),
        ("process", HELLO.into()),
        ("description", "Reverse proxy".into()),
        (
            "dependencies",
            Value::List(vec![set(&[("name", "webapp1")])]),
        ),
        (
            "credentials",
            attrs([("groups", attrs([("nginx", attrs::<_, &str>([]))]))]),
        ),
        (
            "overrides",
            attrs([("disnix", set(&[("pidFile", "/other/nginx.pid")]))]),
        ),
    ])
    .unwrap();
    assert_eq!(p.manifest.dependencies, ["webapp1"]);
    assert_eq!(p.manifest.description, "Reverse proxy");
    assert_eq!(p.manifest.pid_file.as_deref(), Some("/other/nginx.pid"));
    assert!(paths(&p).contains(&"dysnomia-support/groups/nginx"));
    // A typo in the override is named as such.
    let e = managed(vec![
        ("name", "nginx".into()),
        ("process", HELLO.into()),
        ("overrides", attrs([("disnix", set(&[("pidfile", "/x")]))])),
    ])
    .unwrap_err()
    .to_string();
    assert!(e.contains("from overrides.disnix"), "{e}");
}

#[test]
fn translate_output_has_no_placeholder() {
    // In builder mode a primop argument is the input of a derivation, whose
    // own output path would replace the placeholder.
    let mp = crate::agnostic::translate_managed_process(&attrs({
        let mut all = composition();
        all.extend([
            ("processManager", Value::from("disnix")),
            ("name", "hello".into()),
            ("process", HELLO.into()),
        ]);
        all
    }))
    .unwrap();
    let json = serde_json::to_string(&mp.to_json()).unwrap();
    assert!(!json.contains(OUT_PLACEHOLDER), "{json}");
    assert!(json.contains("\"wrapper\""), "{json}");
}
