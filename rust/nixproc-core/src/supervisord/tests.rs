use super::*;
use crate::agnostic::create_managed_process;
use crate::quote::c_unescape;
use crate::value::attrs;

const HELLO: &str = "/nix/store/11111111111111111111111111111111-hello/bin/hello";
const PROXY: &str =
    "/nix/store/44444444444444444444444444444444-nixproc-builder/bin/nixproc-builder";
const COREUTILS: &str = "/nix/store/33333333333333333333333333333333-coreutils";

const HOSTILE: &[&str] = &[
    "plain",
    "with space",
    "quote ' \" mix",
    "$(touch pwned) `touch pwned` ${HOME}",
    "semi; rm -rf / ; && # not a comment",
    "a\t;b\t#c",
    "new\nline\r\nend",
    "100% %(here)s %(ENV_HOME)s %%",
    "\\backslash\\ \\n",
    "ünïcödé\u{a0};\u{2028}#",
    "'leading and trailing'",
    "\"dq\"",
    "",
    " ",
];

// --- helpers --------------------------------------------------------------

fn create(pairs: Vec<(&str, Value)>) -> Result<PackageSpec> {
    create_supervisord_program(&attrs(pairs))
}

fn conf(p: &PackageSpec) -> &str {
    &p.files[0].text
}

fn key<'a>(p: &'a PackageSpec, k: &str) -> Option<&'a str> {
    conf(p)
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{k}=")))
}

fn managed(pairs: Vec<(&str, Value)>) -> Result<PackageSpec> {
    let mut all = vec![
        ("processManager", Value::from("supervisord")),
        (
            "foregroundProxy",
            Value::from(format!("{PROXY} foreground-proxy")),
        ),
    ];
    all.extend(pairs);
    create_managed_process(&attrs(all))
}

fn translated(pairs: Vec<(&str, Value)>) -> BTreeMap<String, Value> {
    let mut all = vec![
        ("processManager", Value::from("supervisord")),
        (
            "foregroundProxy",
            Value::from(format!("{PROXY} foreground-proxy")),
        ),
    ];
    all.extend(pairs);
    match crate::agnostic::translate_managed_process(&attrs(all)).unwrap() {
        Value::Attrs(m) => m,
        other => panic!("{other:?}"),
    }
}

fn argv(t: &BTreeMap<String, Value>) -> Vec<String> {
    match &t["command"] {
        Value::List(l) => l.iter().map(|v| v.as_str().unwrap().to_string()).collect(),
        other => panic!("{other:?}"),
    }
}

/// `shlex.split` in POSIX mode (whitespace ` \t\r\n`, `'…'` literal, `\`
/// escapes outside quotes, in `"…"` only before `"` and `\`).
pub(crate) fn shlex_split(s: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut cur: Option<String> = None;
    let mut it = s.chars();
    while let Some(c) = it.next() {
        match c {
            ' ' | '\t' | '\r' | '\n' => {
                if let Some(w) = cur.take() {
                    words.push(w);
                }
            }
            '\'' => {
                let w = cur.get_or_insert_with(String::new);
                for c in it.by_ref() {
                    if c == '\'' {
                        break;
                    }
                    w.push(c);
                }
            }
            '"' => {
                let w = cur.get_or_insert_with(String::new);
                while let Some(c) = it.next() {
                    match c {
                        '"' => break,
                        '\\' => match it.next() {
                            Some(n @ ('"' | '\\')) => w.push(n),
                            Some(n) => {
                                w.push('\\');
                                w.push(n);
                            }
                            None => panic!("unterminated"),
                        },
                        c => w.push(c),
                    }
                }
            }
            '\\' => cur
                .get_or_insert_with(String::new)
                .push(it.next().expect("escape at end")),
            c => cur.get_or_insert_with(String::new).push(c),
        }
    }
    words.extend(cur);
    words
}

/// What supervisord's `%` expansion leaves of a value without expansions
/// (`%%` → `%`); panics on any other `%`.
fn unpercent(s: &str) -> String {
    let mut out = String::new();
    let mut it = s.chars();
    while let Some(c) = it.next() {
        if c == '%' {
            assert_eq!(it.next(), Some('%'), "lone % in {s:?}");
        }
        out.push(c);
    }
    out
}

/// The argv supervisord would exec for a `command=` line, as far as the
/// value's text goes (configparser comment/strip rules are checked by
/// `plain_problem`-style assertions and by the real parser in
/// tests/supervisord.rs).
fn supervisord_argv(line: &str) -> Vec<String> {
    assert!(!line.contains(['\n', '\r']));
    assert!(!line.contains("%(here)s"), "{line}");
    let mut prev_space = false;
    for c in line.chars() {
        assert!(
            !(prev_space && (c == ';' || c == '#')),
            "comment in {line:?}"
        );
        prev_space = python_isspace(c);
    }
    shlex_split(&unpercent(line))
}

/// Strips the proxy prefix and options; decodes the program words.
fn proxied_program(words: &[String]) -> (Vec<String>, Vec<String>) {
    let prefix_len = 2;
    assert_eq!(words[0], PROXY);
    assert_eq!(words[1], "foreground-proxy");
    let sep = words.iter().position(|w| w == "--").expect("--");
    let opts = words[prefix_len..sep].to_vec();
    let escaped = opts.first().map(String::as_str) == Some("--escaped");
    let dec = |w: &String| {
        if escaped {
            c_unescape(w).unwrap()
        } else {
            w.clone()
        }
    };
    let opts = opts
        .iter()
        .map(|o| {
            if o.starts_with("--") {
                o.clone()
            } else {
                dec(o)
            }
        })
        .collect();
    (opts, words[sep + 1..].iter().map(dec).collect())
}

// --- quoting --------------------------------------------------------------

#[test]
fn command_words_round_trip_through_shlex_and_expansion() {
    for h in HOSTILE.iter().filter(|h| !h.contains(['\n', '\r'])) {
        let line = format!("{} {}", command_word("/bin/x"), command_word(h));
        assert_eq!(
            supervisord_argv(&line),
            vec!["/bin/x".to_string(), h.to_string()],
            "{line}"
        );
    }
}

#[test]
fn command_word_breaks_comments_and_here() {
    assert_eq!(command_word("a ;b"), "'a '';b'");
    assert_eq!(command_word("a\t#b"), "'a\t''#b'");
    assert_eq!(command_word("a;b"), "'a;b'");
    assert_eq!(command_word("%(here)s"), "'%%''(here)s'");
    assert_eq!(command_word("100%"), "100%%");
    assert_eq!(command_word("it's"), "'it'\\''s'");
    assert_eq!(command_word(""), "''");
}

#[test]
fn env_values_follow_supervisords_non_posix_rules() {
    assert_eq!(render::env_value("a b", ""), "\"a b\"");
    assert_eq!(render::env_value("it\"s", ""), "'it\"s'");
    assert_eq!(render::env_value("50%", ""), "\"50%%\"");
    assert!(env_value_problem("a\"b'c").is_some());
    assert!(env_value_problem("'q").is_some());
    assert!(env_value_problem("q\"").is_some());
    assert!(env_value_problem("x ;y").is_some());
    assert!(env_value_problem("%(here)s").is_some());
    assert!(env_value_problem("a\nb").is_some());
    assert!(env_value_problem(" leading, trailing ").is_none());
    assert!(env_value_problem("a\\b;c#d").is_none());
}

#[test]
fn plain_values_reject_what_configparser_would_change() {
    assert!(plain_problem("/var/lib/x").is_none());
    assert!(plain_problem(" x").is_some());
    assert!(plain_problem("x\u{1f}").is_some());
    assert!(plain_problem("a #b").is_some());
    assert!(plain_problem("a\nb").is_some());
    assert!(plain_problem("%(here)s/x").is_some());
}

// --- createSupervisordProgram ----------------------------------------------

#[test]
fn minimal_program() {
    let p = create(vec![
        ("name", "hello".into()),
        ("command", vec![HELLO, "-g", "hi there"].into()),
    ])
    .unwrap();
    assert_eq!(
        conf(&p),
        format!("[program:hello]\ncommand={HELLO} -g 'hi there'\npriority=1\n")
    );
    assert_eq!(p.files[0].path, "conf.d/hello.conf");
    assert_eq!(p.files[0].mode, 0o444);
    assert_eq!(p.passthru["priority"], Value::Int(1));
    assert_eq!(
        p.manifest.backend,
        Backend::Supervisord {
            config: "conf.d/hello.conf".into(),
            priority: 1
        }
    );
    assert_eq!(p.manifest.user, None);
    assert_eq!(p.manifest.pid_file, None);
}

#[test]
fn string_command_is_a_command_line_with_percent_escaped() {
    let p = create(vec![
        ("name", "x".into()),
        ("command", "/bin/x --rate=50% 'a b'".into()),
    ])
    .unwrap();
    assert_eq!(key(&p, "command"), Some("/bin/x --rate=50%% 'a b'"));
    let e = create(vec![
        ("name", "x".into()),
        ("command", "/bin/x ; rm".into()),
    ])
    .unwrap_err();
    assert!(e.to_string().contains("attribute 'command'"), "{e}");
    assert!(e.to_string().contains("comment"), "{e}");
    let e = create(vec![("name", "x".into()), ("command", "a\nb".into())]).unwrap_err();
    assert!(e.to_string().contains("line break"), "{e}");
    let e = create(vec![
        ("name", "x".into()),
        ("command", vec!["a", "b\nc"].into()),
    ])
    .unwrap_err();
    assert!(e.to_string().starts_with("attribute 'command[1]'"), "{e}");
}

#[test]
fn command_and_name_are_required_and_checked() {
    let e = create(vec![("name", "x".into())]).unwrap_err();
    assert!(
        e.to_string().starts_with("attribute 'command' is required"),
        "{e}"
    );
    let e = create(vec![("command", "x".into())]).unwrap_err();
    assert!(
        e.to_string().starts_with("attribute 'name' is required"),
        "{e}"
    );
    for bad in ["a:b", ".hidden", "a b", ""] {
        let e = create(vec![("name", bad.into()), ("command", "x".into())]).unwrap_err();
        assert!(e.to_string().starts_with("attribute 'name'"), "{bad}: {e}");
    }
    let e = create(vec![("name", "x".into()), ("command", Value::List(vec![]))]).unwrap_err();
    assert!(e.to_string().contains("non-empty program"), "{e}");
}

#[test]
fn priority_follows_dependencies_unless_given() {
    let dep = |n: &str, p: i64| attrs([("name", Value::from(n)), ("priority", Value::Int(p))]);
    let base = || vec![("name", Value::from("x")), ("command", Value::from("x"))];
    let with = |more: Vec<(&'static str, Value)>| {
        let mut v = base();
        v.extend(more);
        create(v).unwrap()
    };
    let p = with(vec![(
        "dependencies",
        Value::List(vec![dep("a", 1), dep("b", 4)]),
    )]);
    assert_eq!(key(&p, "priority"), Some("5"));
    assert_eq!(p.manifest.dependencies, vec!["a", "b"]);
    let p = with(vec![
        ("dependencies", Value::List(vec![dep("a", 1)])),
        ("priority", Value::Int(900)),
    ]);
    assert_eq!(key(&p, "priority"), Some("900"));
    assert_eq!(p.passthru["priority"], Value::Int(900));
    let mut v = base();
    v.push((
        "dependencies",
        Value::List(vec![attrs([("name", Value::from("a"))])]),
    ));
    let e = create(v).unwrap_err().to_string();
    assert!(
        e.contains("dependencies[0]") && e.contains("no priority"),
        "{e}"
    );
    let mut v = base();
    v.push(("priority", Value::Int(-1)));
    assert!(create(v).unwrap_err().to_string().contains("negative"));
}

#[test]
fn path_keeps_the_inherited_path_unless_environment_sets_it() {
    let p = create(vec![
        ("name", "x".into()),
        ("command", "x".into()),
        ("path", vec![COREUTILS, "/opt/50%"].into()),
        ("environment", attrs([("PORT", Value::Int(7000))])),
    ])
    .unwrap();
    assert_eq!(
        key(&p, "environment").unwrap(),
        format!("PATH=\"{COREUTILS}/bin:/opt/50%%/bin:%(ENV_PATH)s\",PORT=\"7000\"")
    );
    let p = create(vec![
        ("name", "x".into()),
        ("command", "x".into()),
        ("path", vec![COREUTILS].into()),
        ("environment", attrs([("PATH", Value::from("/only"))])),
    ])
    .unwrap();
    assert_eq!(key(&p, "environment"), Some("PATH=\"/only\""));
}

#[test]
fn unrepresentable_environment_is_an_error_naming_the_variable() {
    let e = create(vec![
        ("name", "x".into()),
        ("command", "x".into()),
        ("environment", attrs([("EVIL", Value::from("a'b\"c"))])),
    ])
    .unwrap_err()
    .to_string();
    assert!(e.starts_with("attribute 'environment.EVIL'"), "{e}");
    assert!(e.contains("foreground proxy"), "{e}");
}

#[test]
fn keys_are_validated_rendered_and_sorted() {
    let p = create(vec![
        ("name", "x".into()),
        ("command", "x".into()),
        ("autorestart", true.into()),
        ("startsecs", Value::Int(0)),
        ("stopsignal", "QUIT".into()),
        ("directory", "/srv/50%".into()),
        ("umask", "022".into()),
        ("user", "alice".into()),
        ("process_name", "%(program_name)s".into()),
    ])
    .unwrap();
    let lines: Vec<&str> = conf(&p).lines().skip(3).collect();
    assert_eq!(
        lines,
        [
            "autorestart=true",
            "directory=/srv/50%%",
            "process_name=%(program_name)s",
            "startsecs=0",
            "stopsignal=QUIT",
            "umask=022",
            "user=alice",
        ]
    );
    assert_eq!(p.manifest.user.as_deref(), Some("alice"));
}

#[test]
fn unknown_key_gets_a_hint() {
    let e = create(vec![
        ("name", "x".into()),
        ("command", "x".into()),
        ("autorestrt", true.into()),
    ])
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "unknown parameter 'autorestrt' (did you mean 'autorestart'?)"
    );
}

#[test]
fn nice_is_rejected_with_a_pointer() {
    let e = create(vec![
        ("name", "x".into()),
        ("command", "x".into()),
        ("nice", Value::Int(5)),
    ])
    .unwrap_err()
    .to_string();
    assert!(
        e.starts_with("attribute 'nice': supervisord has no nice option"),
        "{e}"
    );
    assert!(e.contains("createManagedProcess"), "{e}");
}

#[test]
fn bad_key_values_name_the_key() {
    let e = create(vec![
        ("name", "x".into()),
        ("command", "x".into()),
        ("stdout_logfile", "/log #x".into()),
    ])
    .unwrap_err();
    assert!(
        e.to_string().starts_with("attribute 'stdout_logfile'"),
        "{e}"
    );
    let e = create(vec![
        ("name", "x".into()),
        ("command", "x".into()),
        ("autostart", Value::List(vec![])),
    ])
    .unwrap_err();
    assert!(
        e.to_string().starts_with("attribute 'autostart' must be"),
        "{e}"
    );
    let e = create(vec![
        ("name", "x".into()),
        ("command", "x".into()),
        ("umask", "999".into()),
    ])
    .unwrap_err();
    assert!(e.to_string().starts_with("attribute 'umask'"), "{e}");
}

#[test]
fn force_disable_user_change_drops_user() {
    let p = create(vec![
        ("name", "x".into()),
        ("command", "x".into()),
        ("user", "alice".into()),
        ("forceDisableUserChange", true.into()),
    ])
    .unwrap();
    assert_eq!(key(&p, "user"), None);
    assert_eq!(p.manifest.user, None);
}

#[test]
fn credentials_become_dysnomia_files() {
    let p = create(vec![
        ("name", "x".into()),
        ("command", "x".into()),
        (
            "credentials",
            attrs([("groups", attrs([("x", attrs::<_, &str>([]))]))]),
        ),
        ("ids", attrs([("gids", attrs([("x", Value::Int(2000))]))])),
    ])
    .unwrap();
    assert_eq!(p.files[1].path, "dysnomia-support/groups/x");
    assert_eq!(p.files[1].text, "gid=2000\n");
}

#[test]
fn log_file_percent_survives_the_double_expansion() {
    let p = create(vec![
        ("name", "x".into()),
        ("command", "x".into()),
        ("stdout_logfile", "/log/50%.log".into()),
        ("stderr_logfile", "/log/%e.log".into()),
        ("directory", "/srv/50%".into()),
    ])
    .unwrap();
    assert_eq!(key(&p, "stdout_logfile"), Some("/log/50%%%%.log"));
    assert_eq!(key(&p, "stderr_logfile"), Some("/log/%%%%e.log"));
    assert_eq!(key(&p, "directory"), Some("/srv/50%%"));
    assert_eq!(p.manifest.log_file.as_deref(), Some("/log/50%.log"));
}

#[test]
fn log_file_in_manifest_only_for_paths() {
    let with_log = |l: &str| {
        create(vec![
            ("name", "x".into()),
            ("command", "x".into()),
            ("stdout_logfile", l.into()),
        ])
        .unwrap()
        .manifest
        .log_file
    };
    assert_eq!(
        with_log("/var/log/x.log").as_deref(),
        Some("/var/log/x.log")
    );
    assert_eq!(with_log("AUTO"), None);
    assert_eq!(with_log("none"), None);
}

// --- translation ------------------------------------------------------------

#[test]
fn foreground_without_initialize_runs_directly() {
    let t = translated(vec![
        ("instanceName", "hello".into()),
        ("process", HELLO.into()),
        ("args", vec!["--port", "80"].into()),
        ("foregroundProcessExtraArgs", vec!["--foreground"].into()),
        ("user", "hello".into()),
        ("directory", "/srv".into()),
        ("umask", "027".into()),
        ("environment", attrs([("A", Value::from("1"))])),
    ]);
    assert_eq!(argv(&t), [HELLO, "--port", "80", "--foreground"]);
    assert_eq!(t["user"], Value::from("hello"));
    assert_eq!(t["directory"], Value::from("/srv"));
    assert_eq!(t["umask"], Value::from("027"));
    assert_eq!(t["stdout_logfile"], Value::from("/tmp/nixproc-hello.log"));
    assert_eq!(t["redirect_stderr"], Value::Bool(true));
    assert!(t.contains_key("environment"));
    for composition_key in COMPOSITION_KEYS {
        assert!(!t.contains_key(*composition_key), "{composition_key}");
    }
}

#[test]
fn log_goes_to_log_dir_without_effective_user() {
    let t = translated(vec![
        ("process", HELLO.into()),
        ("name", "h".into()),
        ("logDir", "/l".into()),
    ]);
    assert_eq!(t["stdout_logfile"], Value::from("/l/nixproc-h.log"));
    let t = translated(vec![
        ("process", HELLO.into()),
        ("name", "h".into()),
        ("logDir", "/l".into()),
        ("user", "u".into()),
        ("forceDisableUserChange", true.into()),
    ]);
    assert_eq!(t["stdout_logfile"], Value::from("/l/nixproc-h.log"));
    assert!(!t.contains_key("user"));
}

#[test]
fn initialize_goes_through_the_proxy_as_root_then_user() {
    let t = translated(vec![
        ("name", "h".into()),
        ("process", HELLO.into()),
        ("args", vec!["-x"].into()),
        ("initialize", "mkdir -p /var/lib/h".into()),
        ("user", "h".into()),
        ("directory", "/var/lib/h".into()),
        ("umask", "077".into()),
        ("shell", "/bin/bash".into()),
    ]);
    assert_eq!(
        argv(&t),
        [
            PROXY,
            "foreground-proxy",
            "--initialize",
            "mkdir -p /var/lib/h",
            "--shell",
            "/bin/bash",
            "--user",
            "h",
            "--directory",
            "/var/lib/h",
            "--umask",
            "077",
            "--",
            HELLO,
            "-x"
        ]
    );
    assert!(!t.contains_key("user"));
    assert!(!t.contains_key("directory"));
    assert!(!t.contains_key("umask"));
}

#[test]
fn proxy_user_is_dropped_under_force_disable_user_change() {
    let t = translated(vec![
        ("name", "h".into()),
        ("process", HELLO.into()),
        ("initialize", "true".into()),
        ("user", "h".into()),
        ("forceDisableUserChange", true.into()),
    ]);
    assert!(!argv(&t).contains(&"--user".to_string()));
    assert!(!t.contains_key("user"));
}

#[test]
fn nice_goes_through_the_proxy() {
    let t = translated(vec![
        ("name", "h".into()),
        ("process", HELLO.into()),
        ("nice", Value::Int(-5)),
    ]);
    assert_eq!(argv(&t)[2..], ["--nice", "-5", "--", HELLO]);
}

#[test]
fn daemon_only_is_wrapped_with_a_pid_file() {
    let daemon = |more: Vec<(&'static str, Value)>| {
        let mut v = vec![("name", Value::from("d")), ("daemon", Value::from(HELLO))];
        v.extend(more);
        argv(&translated(v))
    };
    let tail = |a: Vec<String>| a[2..].to_vec();
    assert_eq!(
        tail(daemon(vec![("daemonArgs", vec!["-D"].into())])),
        [
            "--wrap-daemon",
            "--pidfile",
            "/var/run/hello.pid",
            "--",
            HELLO,
            "-D"
        ]
    );
    assert_eq!(
        tail(daemon(vec![
            ("instanceName", "d1".into()),
            ("runtimeDir", "/run/x/".into())
        ])),
        ["--wrap-daemon", "--pidfile", "/run/x/d1.pid", "--", HELLO]
    );
    // A declared user puts it under tmpDir, even when user change is off.
    assert_eq!(
        tail(daemon(vec![
            ("instanceName", "d1".into()),
            ("user", "u".into()),
            ("forceDisableUserChange", true.into()),
        ])),
        ["--wrap-daemon", "--pidfile", "/tmp/d1.pid", "--", HELLO]
    );
    assert_eq!(
        tail(daemon(vec![
            ("pidFile", "/run/own.pid".into()),
            ("instanceName", "d1".into())
        ])),
        ["--wrap-daemon", "--pidfile", "/run/own.pid", "--", HELLO]
    );
}

#[test]
fn manifest_learns_user_and_pid_file_from_the_proxy() {
    let p = managed(vec![
        ("name", "d".into()),
        ("daemon", HELLO.into()),
        ("user", "u".into()),
        ("instanceName", "d".into()),
    ])
    .unwrap();
    assert_eq!(p.manifest.user.as_deref(), Some("u"));
    assert_eq!(p.manifest.pid_file.as_deref(), Some("/tmp/d.pid"));
    assert_eq!(p.manifest.log_file.as_deref(), Some("/tmp/nixproc-d.log"));
    assert_eq!(key(&p, "user"), None);
    // Foreground through the proxy: no PID file to track.
    let p = managed(vec![
        ("name", "f".into()),
        ("process", HELLO.into()),
        ("initialize", "true".into()),
    ])
    .unwrap();
    assert_eq!(p.manifest.pid_file, None);
}

#[test]
fn missing_proxy_is_an_error_naming_it() {
    let e = crate::agnostic::create_managed_process(&attrs([
        ("processManager", Value::from("supervisord")),
        ("name", "d".into()),
        ("daemon", HELLO.into()),
    ]))
    .unwrap_err()
    .to_string();
    assert!(
        e.starts_with("attribute 'foregroundProxy' is required"),
        "{e}"
    );
    assert!(e.contains("\"d\""), "{e}");
}

#[test]
fn unrepresentable_environment_moves_to_setenv() {
    let t = translated(vec![
        ("name", "h".into()),
        ("process", HELLO.into()),
        (
            "environment",
            attrs([("A", Value::from("it's \"x\"")), ("B", Value::from("ok"))]),
        ),
    ]);
    assert!(!t.contains_key("environment"));
    assert_eq!(
        argv(&t)[2..],
        ["--setenv", "A=it's \"x\"", "--setenv", "B=ok", "--", HELLO]
    );
}

#[test]
fn newline_anywhere_means_escaped() {
    let t = translated(vec![
        ("name", "h".into()),
        ("process", HELLO.into()),
        ("args", vec!["a\nb", "c\\d"].into()),
    ]);
    assert_eq!(argv(&t)[2..], ["--escaped", "--", HELLO, "a\\nb", "c\\\\d"]);
    let t = translated(vec![
        ("name", "h".into()),
        ("process", HELLO.into()),
        ("args", vec!["c\\d"].into()),
        ("initialize", "true".into()),
    ]);
    assert!(!argv(&t).contains(&"--escaped".to_string()));
    assert!(argv(&t).contains(&"c\\d".to_string()));
}

/// Hostile strings in every field: the generated `command=` line, read the
/// way supervisord reads it, gives back the original program, arguments
/// and (through the proxy or `environment=`) values.
#[test]
fn hostile_strings_in_every_field_round_trip() {
    for h in HOSTILE {
        let p = managed(vec![
            ("name", "h".into()),
            ("description", Value::from(*h)),
            ("process", HELLO.into()),
            ("args", vec![*h, "x"].into()),
            ("environment", attrs([("HOSTILE", Value::from(*h))])),
            ("directory", Value::from(format!("/srv/{h}"))),
            ("initialize", Value::from(format!("echo {h}"))),
        ])
        .unwrap();
        let line = key(&p, "command").unwrap();
        let words = supervisord_argv(line);
        let (opts, program) = proxied_program(&words);
        assert_eq!(program, [HELLO, h, "x"], "{line}");
        let opt = |name: &str| {
            let i = opts
                .iter()
                .position(|o| o == name)
                .unwrap_or_else(|| panic!("{name} in {opts:?}"));
            opts[i + 1].clone()
        };
        assert_eq!(opt("--initialize"), format!("echo {h}"));
        assert_eq!(opt("--directory"), format!("/srv/{h}"));
        match key(&p, "environment") {
            Some(env) => {
                assert!(env_value_problem(h).is_none());
                assert_eq!(env, format!("HOSTILE={}", render::env_value(h, "")));
            }
            None => assert_eq!(opt("--setenv"), format!("HOSTILE={h}")),
        }
        assert_eq!(p.manifest.description, *h);
    }
}

/// Without initialize, strings supervisord can hold stay direct.
#[test]
fn hostile_args_without_line_breaks_stay_direct() {
    for h in HOSTILE.iter().filter(|h| !h.contains(['\n', '\r'])) {
        let p = managed(vec![
            ("name", "h".into()),
            ("process", HELLO.into()),
            ("args", vec![*h].into()),
        ])
        .unwrap();
        assert_eq!(supervisord_argv(key(&p, "command").unwrap()), [HELLO, h]);
    }
}

#[test]
fn overrides_merge_into_the_program() {
    let p = managed(vec![
        ("name", "h".into()),
        ("process", HELLO.into()),
        (
            "overrides",
            attrs([(
                "supervisord",
                attrs([("autorestart", Value::from("unexpected"))]),
            )]),
        ),
    ])
    .unwrap();
    assert_eq!(key(&p, "autorestart"), Some("unexpected"));
    let e = managed(vec![
        ("name", "h".into()),
        ("process", HELLO.into()),
        (
            "overrides",
            attrs([("supervisord", attrs([("autorestrt", Value::from(true))]))]),
        ),
    ])
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("autorestrt") && e.contains("overrides.supervisord"),
        "{e}"
    );
}

// --- profile ---------------------------------------------------------------

#[test]
fn base_config_uses_the_composition_dirs() {
    let files = profile_files(
        &attrs([
            ("runtimeDir", Value::from("/home/u/run%/")),
            ("logDir", Value::from("/home/u/log")),
        ]),
        &[],
    )
    .unwrap();
    assert_eq!(files.len(), 1);
    assert_eq!(files[0].path, "supervisord.conf");
    assert_eq!(files[0].mode, 0o444);
    let t = &files[0].text;
    assert!(t.contains("\nfile=/home/u/run%%/supervisord.sock\n"), "{t}");
    assert!(
        t.contains("\nserverurl=unix:///home/u/run%%/supervisord.sock\n"),
        "{t}"
    );
    assert!(t.contains("\nlogfile=/home/u/log/supervisord.log\n"), "{t}");
    let e = profile_files(&attrs([("logDir", Value::from("/a #b"))]), &[]).unwrap_err();
    assert!(
        e.to_string().starts_with("attribute 'composition.logDir'"),
        "{e}"
    );
}
