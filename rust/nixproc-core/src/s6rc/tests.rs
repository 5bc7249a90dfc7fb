use std::process::Command;

use super::*;
use crate::agnostic::create_managed_process;
use crate::value::attrs;

const HELLO: &str = "/nix/store/11111111111111111111111111111111-hello/bin/hello";
const RUN: &str = "#!/usr/lib/execline/bin/execlineb -P\n/bin/true\n";

fn gen_with(pairs: Vec<(&str, Value)>) -> Result<PackageSpec> {
    create_s6rc_service(&attrs(pairs))
}

fn gen(pairs: Vec<(&str, Value)>) -> PackageSpec {
    gen_with(pairs).unwrap()
}

fn err(pairs: Vec<(&str, Value)>) -> String {
    gen_with(pairs).unwrap_err().to_string()
}

fn file<'a>(p: &'a PackageSpec, path: &str) -> &'a FileSpec {
    p.files
        .iter()
        .find(|f| f.path == path)
        .unwrap_or_else(|| panic!("no {path} in {:?}", paths(p)))
}

fn paths(p: &PackageSpec) -> Vec<String> {
    p.files.iter().map(|f| f.path.clone()).collect()
}

fn dep(name: &str) -> Value {
    attrs([("name", Value::from(name))])
}

fn longrun() -> Vec<(&'static str, Value)> {
    vec![("name", "web".into()), ("run", RUN.into())]
}

fn with(
    mut base: Vec<(&'static str, Value)>,
    more: Vec<(&'static str, Value)>,
) -> Vec<(&'static str, Value)> {
    base.extend(more);
    base
}

// --- createS6RCService ---------------------------------------------------

#[test]
fn logged_longrun_layout() {
    let p = gen(with(
        longrun(),
        vec![(
            "dependencies",
            Value::List(vec![dep("db-srv"), dep("init")]),
        )],
    ));
    assert_eq!(p.name, "web-srv");
    assert_eq!(
        paths(&p),
        [
            "etc/s6/sv/web-srv/type",
            "etc/s6/sv/web-srv/dependencies",
            "etc/s6/sv/web-srv/run",
            "etc/s6/sv/web-srv/producer-for",
            "etc/s6/sv/web-log/type",
            "etc/s6/sv/web-log/run",
            "etc/s6/sv/web-log/consumer-for",
            "etc/s6/sv/web-log/notification-fd",
            "etc/s6/sv/web-log/pipeline-name",
        ]
    );
    assert_eq!(file(&p, "etc/s6/sv/web-srv/type").text, "longrun\n");
    assert_eq!(file(&p, "etc/s6/sv/web-srv/run").text, RUN);
    assert_eq!(file(&p, "etc/s6/sv/web-srv/run").mode, 0o555);
    assert_eq!(file(&p, "etc/s6/sv/web-srv/type").mode, 0o444);
    assert_eq!(
        file(&p, "etc/s6/sv/web-srv/dependencies").text,
        "db-srv\ninit\n"
    );
    assert_eq!(file(&p, "etc/s6/sv/web-srv/producer-for").text, "web-log\n");
    assert_eq!(file(&p, "etc/s6/sv/web-log/consumer-for").text, "web-srv\n");
    assert_eq!(file(&p, "etc/s6/sv/web-log/notification-fd").text, "3\n");
    assert_eq!(file(&p, "etc/s6/sv/web-log/pipeline-name").text, "web\n");
    assert_eq!(file(&p, "etc/s6/sv/web-log/run").mode, 0o555);

    let m = &p.manifest;
    assert_eq!(m.name, "web-srv");
    assert_eq!(m.description, "web");
    assert_eq!(m.dependencies, ["db-srv", "init"]);
    assert_eq!(m.log_file.as_deref(), Some("/var/log/s6-log/web/current"));
    assert_eq!(
        m.backend,
        Backend::S6Rc {
            kind: S6Kind::Longrun,
            dir: "etc/s6/sv/web-srv".into(),
            log_dir: Some("etc/s6/sv/web-log".into()),
        }
    );
    assert!(!m.revision.is_empty());
    assert!(p.passthru.is_empty());
    assert!(p.links.is_empty());
}

#[test]
fn longrun_settings_become_files() {
    let p = gen(with(
        longrun(),
        vec![
            ("autoGenerateLogService", false.into()),
            ("flagEssential", true.into()),
            ("finish", "#!/bin/sh\nexit 0\n".into()),
            ("notificationFd", Value::Int(4)),
            ("timeoutKill", Value::Int(5000)),
            ("timeoutFinish", Value::Int(100)),
            ("nosetsid", true.into()),
            ("maxDeathTally", Value::Int(10)),
            ("downSignal", "SIGHUP".into()),
            ("producerFor", "web-logger".into()),
            ("consumerFor", vec!["a", "b"].into()),
            ("pipelineName", "pipe".into()),
        ],
    ));
    assert_eq!(p.name, "web");
    let text = |f: &str| file(&p, &format!("etc/s6/sv/web/{f}")).text.clone();
    assert_eq!(text("flag-essential"), "");
    assert_eq!(text("finish"), "#!/bin/sh\nexit 0\n");
    assert_eq!(file(&p, "etc/s6/sv/web/finish").mode, 0o555);
    assert_eq!(text("notification-fd"), "4\n");
    assert_eq!(text("timeout-kill"), "5000\n");
    assert_eq!(text("timeout-finish"), "100\n");
    assert_eq!(text("nosetsid"), "");
    assert_eq!(text("max-death-tally"), "10\n");
    assert_eq!(text("down-signal"), "SIGHUP\n");
    assert_eq!(text("producer-for"), "web-logger\n");
    assert_eq!(text("consumer-for"), "a\nb\n");
    assert_eq!(text("pipeline-name"), "pipe\n");
    assert_eq!(p.manifest.log_file, None);
    assert!(matches!(
        p.manifest.backend,
        Backend::S6Rc { log_dir: None, .. }
    ));
}

#[test]
fn oneshot_and_bundle() {
    let p = gen(vec![
        ("type", "oneshot".into()),
        ("name", "init".into()),
        ("up", "/bin/mkdir -p /x\n".into()),
        ("down", "/bin/rmdir /x\n".into()),
        ("pidFile", "/run/d.pid".into()),
    ]);
    assert_eq!(p.name, "init");
    assert_eq!(
        paths(&p),
        [
            "etc/s6/sv/init/type",
            "etc/s6/sv/init/up",
            "etc/s6/sv/init/down"
        ]
    );
    assert_eq!(file(&p, "etc/s6/sv/init/type").text, "oneshot\n");
    assert_eq!(file(&p, "etc/s6/sv/init/up").mode, 0o444);
    assert_eq!(p.manifest.pid_file.as_deref(), Some("/run/d.pid"));
    assert!(matches!(
        p.manifest.backend,
        Backend::S6Rc {
            kind: S6Kind::Oneshot,
            log_dir: None,
            ..
        }
    ));

    let b = gen(vec![
        ("type", "bundle".into()),
        ("name", "all".into()),
        ("contents", vec!["a-srv", "b"].into()),
    ]);
    assert_eq!(file(&b, "etc/s6/sv/all/contents").text, "a-srv\nb\n");
    let empty = gen(vec![("type", "bundle".into()), ("name", "none".into())]);
    assert_eq!(file(&empty, "etc/s6/sv/none/contents").text, "");
    assert_eq!(empty.manifest.dependencies, Vec::<String>::new());
}

fn credentials() -> Value {
    attrs([
        ("groups", attrs([("web", attrs::<_, &str>([]))])),
        (
            "users",
            attrs([("web", attrs([("group", Value::from("web"))]))]),
        ),
    ])
}

#[test]
fn credentials_and_user() {
    let p = gen(with(
        longrun(),
        vec![("credentials", credentials()), ("user", "web".into())],
    ));
    assert!(paths(&p).contains(&"dysnomia-support/groups/web".to_string()));
    assert_eq!(file(&p, "dysnomia-support/users/web").text, "group=web\n");
    assert_eq!(p.manifest.user.as_deref(), Some("web"));

    let p = gen(with(
        longrun(),
        vec![
            ("credentials", credentials()),
            ("user", "web".into()),
            ("forceDisableUserChange", true.into()),
        ],
    ));
    assert!(!paths(&p).iter().any(|f| f.starts_with("dysnomia-support")));
    assert_eq!(p.manifest.user, None);
}

#[test]
fn parameter_errors_name_the_attribute() {
    assert_eq!(
        err(vec![("name", "x".into())]),
        "attribute 'run' is required: a longrun needs the text of its run script"
    );
    assert_eq!(
        err(vec![("run", RUN.into())]),
        "attribute 'name' is required: the service name"
    );
    assert_eq!(
        err(with(longrun(), vec![("type", "daemon".into())])),
        "attribute 'type': \"daemon\" is not an s6-rc service type (longrun, oneshot or bundle)"
    );
    assert_eq!(
        err(with(longrun(), vec![("up", "x".into())])),
        "attribute 'up': is a parameter of oneshot services, but type is \"longrun\""
    );
    assert_eq!(
        err(vec![
            ("type", "oneshot".into()),
            ("name", "x".into()),
            ("up", "x".into()),
            ("run", RUN.into()),
        ]),
        "attribute 'run': is a parameter of longrun services, but type is \"oneshot\""
    );
    assert_eq!(
        err(vec![
            ("type", "bundle".into()),
            ("name", "x".into()),
            ("dependencies", Value::List(vec![dep("a")])),
        ]),
        "attribute 'dependencies': a bundle runs nothing: it only groups services (use contents)"
    );
    assert_eq!(
        err(vec![
            ("type", "bundle".into()),
            ("name", "x".into()),
            ("credentials", credentials()),
        ]),
        "attribute 'credentials': a bundle runs nothing: it only groups services (use contents)"
    );
    assert_eq!(
        err(with(longrun(), vec![("runn", "x".into())])),
        "unknown parameter 'runn' (did you mean 'run'?)"
    );
    assert_eq!(
        err(with(longrun(), vec![("flagEssentail", true.into())])),
        "unknown parameter 'flagEssentail' (did you mean 'flagEssential'?)"
    );
    assert!(err(vec![("name", "x".into()), ("run", "/bin/true".into())])
        .starts_with("attribute 'run': must start with an interpreter line"));
    assert!(err(with(longrun(), vec![("data", "/x".into())]))
        .starts_with("attribute 'data': service data/env directories are not supported yet"));
    assert!(err(with(longrun(), vec![("env", "/x".into())])).starts_with("attribute 'env'"));
    assert!(err(with(longrun(), vec![("producerFor", "x".into())]))
        .starts_with("attribute 'producerFor': is set by the generated log service"));
    assert!(err(with(longrun(), vec![("pipelineName", "x".into())]))
        .starts_with("attribute 'pipelineName': is set by the generated log service"));
    assert_eq!(
        err(with(longrun(), vec![("notificationFd", Value::Int(1))])),
        "attribute 'notificationFd': 1 is not between 3 and 1048576"
    );
    assert!(err(with(longrun(), vec![("downSignal", "HUP; x".into())]))
        .starts_with("attribute 'downSignal'"));
    assert_eq!(
        err(with(longrun(), vec![("dependencies", vec!["a"].into())])),
        "attribute 'dependencies[0]': is not an s6-rc service package (it is a string)"
    );
    assert!(err(with(
        longrun(),
        vec![("dependencies", Value::List(vec![dep("a b")]))]
    ))
    .starts_with("attribute 'dependencies[0].name'"));
    assert!(err(vec![("name", "s6rc-x".into()), ("run", RUN.into())])
        .contains("not a valid s6-rc service name"));
    assert!(err(vec![("name", ".x".into()), ("run", RUN.into())])
        .contains("not a valid s6-rc service name"));
    assert!(err(vec![
        ("type", "oneshot".into()),
        ("name", "x".into()),
        ("up", "".into())
    ])
    .starts_with("attribute 'up': must not be empty"));
    assert_eq!(
        err(with(longrun(), vec![("logDir", "log".into())])),
        "attribute 'logDir': \"log\" must be an absolute path"
    );
    assert!(err(with(longrun(), vec![("logDirUser", "a:b".into())]))
        .starts_with("attribute 'logDirUser'"));
}

#[test]
fn log_service_run_script() {
    let comp = parse_composition(&Args::new(&attrs::<_, &str>([]), "x").unwrap()).unwrap();
    assert_eq!(
        log_run_script(&comp, "web"),
        "#!/usr/lib/execline/bin/execlineb -P\n\
         \"/usr/lib/execline/bin/if\" { \"/bin/sh\" -ec \"mkdir -p -- \\\"$1\\\" && chown -R -- \\\"$2\\\" \\\"$1\\\"\" \"nixproc-s6-log\" \"/var/log/s6-log/web\" \"s6-log:s6-log\" }\n\
         \"/usr/bin/s6-setuidgid\" \"s6-log\"\n\
         \"/usr/lib/execline/bin/exec\" -c\n\
         \"/usr/bin/s6-log\" -d3 -- \"/var/log/s6-log/web\"\n"
    );
    let v = attrs([("forceDisableUserChange", Value::from(true))]);
    let comp = parse_composition(&Args::new(&v, "x").unwrap()).unwrap();
    let s = log_run_script(&comp, "web");
    assert!(!s.contains("chown") && !s.contains("s6-setuidgid"), "{s}");
    assert!(s.contains("mkdir -p"));
}

#[test]
fn default_bundle() {
    let files = profile_files(&attrs::<_, &str>([]), &["a-srv".into(), "b".into()]).unwrap();
    assert_eq!(files.len(), 2);
    assert_eq!(files[0].path, "etc/s6/sv/default/type");
    assert_eq!(files[0].text, "bundle\n");
    assert_eq!(files[1].path, "etc/s6/sv/default/contents");
    assert_eq!(files[1].text, "a-srv\nb\n");
    let e = profile_files(&attrs::<_, &str>([]), &["default".into()]).unwrap_err();
    assert!(
        e.to_string().contains("cannot be called \"default\""),
        "{e}"
    );
    let none = profile_files(&attrs::<_, &str>([]), &[]).unwrap();
    assert_eq!(none[1].text, "");
}

// --- translation -----------------------------------------------------------

fn managed(pairs: Vec<(&str, Value)>) -> Result<PackageSpec> {
    let mut all = vec![("processManager", Value::from("s6-rc"))];
    all.extend(pairs);
    create_managed_process(&attrs(all))
}

fn run_text(p: &PackageSpec) -> String {
    let dir = match &p.manifest.backend {
        Backend::S6Rc { dir, .. } => dir.clone(),
        other => panic!("{other:?}"),
    };
    file(p, &format!("{dir}/run")).text.clone()
}

#[test]
fn foreground_becomes_logged_longrun() {
    let p = managed(vec![
        ("instanceName", "hello".into()),
        ("process", HELLO.into()),
        ("args", vec!["--port", "80"].into()),
    ])
    .unwrap();
    assert_eq!(p.name, "hello-srv");
    assert_eq!(
        run_text(&p),
        "#!/usr/lib/execline/bin/execlineb -P\n\
         \"/usr/lib/execline/bin/fdmove\" -c 2 1\n\
         \"/nix/store/11111111111111111111111111111111-hello/bin/hello\" \"--port\" \"80\"\n"
    );
    assert!(paths(&p).contains(&"etc/s6/sv/hello-log/run".to_string()));
}

#[test]
fn prologue_lines_in_order() {
    let p = managed(vec![
        ("name", "hello".into()),
        ("foregroundProcess", HELLO.into()),
        ("path", vec!["/nix/store/c-coreutils"].into()),
        ("environment", attrs([("PORT", Value::Int(80))])),
        ("initialize", "mkdir -p /srv".into()),
        ("umask", "022".into()),
        ("directory", "/srv".into()),
        ("nice", Value::Int(-5)),
        ("user", "www".into()),
        (
            "foregroundProxy",
            "/nix/store/b-builder foreground-proxy".into(),
        ),
        ("execline", "/nix/store/e-execline".into()),
        ("s6", "/nix/store/s-s6".into()),
        ("shell", "/nix/store/b-bash/bin/sh".into()),
    ])
    .unwrap();
    let run = run_text(&p);
    let lines: Vec<&str> = run.lines().collect();
    assert_eq!(
        lines,
        [
            "#!/nix/store/e-execline/bin/execlineb -P",
            "\"/nix/store/e-execline/bin/importas\" -D \"/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\" nixproc_inherited_path PATH",
            "\"/nix/store/e-execline/bin/export\" \"PATH\" \"/nix/store/c-coreutils/bin:${nixproc_inherited_path}\"",
            "\"/nix/store/e-execline/bin/export\" \"PORT\" \"80\"",
            "\"/nix/store/e-execline/bin/if\" { \"/nix/store/b-bash/bin/sh\" -ec \"mkdir -p /srv\" }",
            "\"/nix/store/e-execline/bin/execline-umask\" \"022\"",
            "\"/nix/store/e-execline/bin/execline-cd\" \"/srv\"",
            "\"/nix/store/b-builder\" \"foreground-proxy\" --nice \"-5\" --",
            "\"/nix/store/s-s6/bin/s6-setuidgid\" \"www\"",
            "\"/nix/store/e-execline/bin/fdmove\" -c 2 1",
            "\"/nix/store/11111111111111111111111111111111-hello/bin/hello\"",
        ]
    );
    assert_eq!(p.manifest.user.as_deref(), Some("www"));
}

#[test]
fn no_user_switch_when_disabled() {
    let p = managed(vec![
        ("name", "hello".into()),
        ("process", HELLO.into()),
        ("user", "www".into()),
        ("forceDisableUserChange", true.into()),
    ])
    .unwrap();
    assert!(!run_text(&p).contains("s6-setuidgid"));
    assert_eq!(p.manifest.user, None);
}

#[test]
fn nice_needs_the_proxy() {
    let e = managed(vec![
        ("name", "hello".into()),
        ("process", HELLO.into()),
        ("nice", Value::Int(5)),
    ])
    .unwrap_err();
    assert!(
        e.to_string()
            .starts_with("attribute 'foregroundProxy' is required: nice is set"),
        "{e}"
    );
}

#[test]
fn daemon_becomes_oneshot_with_pid_file_rules() {
    let up_down = |pairs: Vec<(&str, Value)>| {
        let p = managed(pairs).unwrap();
        let up = file(&p, &format!("etc/s6/sv/{}/up", p.name)).text.clone();
        let down = file(&p, &format!("etc/s6/sv/{}/down", p.name)).text.clone();
        (p, up, down)
    };
    let (p, up, down) = up_down(vec![
        ("name", "d".into()),
        ("daemon", HELLO.into()),
        ("daemonArgs", vec!["-D"].into()),
    ]);
    assert_eq!(p.name, "d");
    assert_eq!(
        up,
        "\"/usr/lib/execline/bin/fdmove\" -c 2 1\n\
         \"/nix/store/11111111111111111111111111111111-hello/bin/hello\" \"-D\"\n"
    );
    assert_eq!(
        down,
        "\"/bin/sh\" -ec \"read -r pid < \\\"$1\\\" && kill -TERM \\\"$pid\\\"\" \
         \"nixproc-s6-down\" \"/var/run/hello.pid\"\n"
    );
    assert_eq!(p.manifest.pid_file.as_deref(), Some("/var/run/hello.pid"));
    assert!(matches!(
        p.manifest.backend,
        Backend::S6Rc {
            kind: S6Kind::Oneshot,
            ..
        }
    ));

    // instanceName, and tmpDir for a declared user (even when disabled).
    let (p, _, down) = up_down(vec![
        ("instanceName", "web1".into()),
        ("daemon", HELLO.into()),
        ("user", "web".into()),
        ("forceDisableUserChange", true.into()),
        ("tmpDir", "/state/tmp".into()),
    ]);
    assert!(down.contains("\"/state/tmp/web1.pid\""), "{down}");
    assert_eq!(p.manifest.pid_file.as_deref(), Some("/state/tmp/web1.pid"));
    // An explicit pidFile wins (defect 23: the original used only this).
    let (p, _, down) = up_down(vec![
        ("instanceName", "web1".into()),
        ("daemon", HELLO.into()),
        ("pidFile", "/x/y.pid".into()),
    ]);
    assert!(down.contains("\"/x/y.pid\""));
    assert_eq!(p.manifest.pid_file.as_deref(), Some("/x/y.pid"));
    // Foreground is preferred when both exist.
    let p = managed(vec![("name", "both".into()), ("process", HELLO.into())]).unwrap();
    assert_eq!(p.name, "both-srv");
}

#[test]
fn overrides_reach_the_generator() {
    let p = managed(vec![
        ("name", "hello".into()),
        ("process", HELLO.into()),
        (
            "overrides",
            attrs([(
                "s6-rc",
                attrs([
                    ("autoGenerateLogService", Value::from(false)),
                    ("flagEssential", true.into()),
                ]),
            )]),
        ),
    ])
    .unwrap();
    assert_eq!(p.name, "hello");
    assert!(paths(&p).contains(&"etc/s6/sv/hello/flag-essential".to_string()));
    let e = managed(vec![
        ("name", "hello".into()),
        ("process", HELLO.into()),
        (
            "overrides",
            attrs([("s6-rc", attrs([("flagEsential", Value::from(true))]))]),
        ),
    ])
    .unwrap_err();
    assert!(e.to_string().contains("from overrides.s6-rc"), "{e}");
}

// --- scripts run by execlineb ----------------------------------------------

const HOSTILE: &[&str] = &[
    "plain",
    "with space",
    "quote ' \" mix",
    "$(echo pwned) `echo pwned` ${HOME} $HOME",
    "${nixproc_inherited_path} $nixproc_inherited_path \\${nixproc_inherited_path} \\\\$nixproc_inherited_path",
    "$1 $@ $# ${1}",
    "semi; rm -rf / ; && { } #",
    "new\nline\ttab\r",
    "100% * ? [a] ~ ! \\ \\\\ \\n \\\"",
    "ünïcødé ✓",
    "",
];

fn have_execline() -> bool {
    std::path::Path::new("/usr/lib/execline/bin/execlineb").exists()
}

/// Runs `text` with execlineb and returns stdout.
fn run_execline(text: &str, env_path: Option<&str>) -> String {
    let dir = tempfile_dir();
    let script = dir.join("script");
    std::fs::write(&script, text).unwrap();
    let mut cmd = Command::new("/usr/lib/execline/bin/execlineb");
    cmd.arg("-P").arg(&script).env_clear();
    if let Some(p) = env_path {
        cmd.env("PATH", p);
    }
    let out = cmd.output().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        out.status.success(),
        "{}\n---\n{}",
        String::from_utf8_lossy(&out.stderr),
        text
    );
    String::from_utf8(out.stdout).unwrap()
}

fn tempfile_dir() -> std::path::PathBuf {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static N: AtomicUsize = AtomicUsize::new(0);
    let d = std::env::temp_dir().join(format!(
        "nixproc-s6rc-test-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A program that prints its arguments, `$V` and `$PATH`, NUL-separated.
const PRINTER: &str = "printf '%s\\0' \"$@\" \"$V\" \"$PATH\" \"$(pwd)\" \"$(umask)\"";

#[test]
fn hostile_values_reach_the_program_verbatim() {
    if !have_execline() {
        eprintln!("execline not installed; skipped");
        return;
    }
    for h in HOSTILE {
        let p = managed(vec![
            ("name", "h".into()),
            ("foregroundProcess", "/bin/sh".into()),
            (
                "foregroundProcessArgs",
                vec!["-c", PRINTER, "sh", h, "second"].into(),
            ),
            ("environment", attrs([("V", Value::from(*h))])),
            ("path", vec!["/nonexistent/p1", "/p2"].into()),
            ("directory", "/tmp".into()),
            ("umask", "027".into()),
            (
                "initialize",
                format!(
                    "test \"$1\" = '' && printf '%s\\0' {}",
                    crate::quote::shell_escape(h)
                )
                .into(),
            ),
        ])
        .unwrap();
        let out = run_execline(&run_text(&p), Some("/usr/bin:/bin"));
        let fields: Vec<&str> = out.split('\0').collect();
        assert_eq!(
            fields,
            [
                *h,
                *h,
                "second",
                *h,
                "/nonexistent/p1/bin:/p2/bin:/usr/bin:/bin",
                "/tmp",
                "0027",
                ""
            ],
            "value {h:?}"
        );
    }
}

#[test]
fn inherited_path_default_and_hostile_path_entries() {
    if !have_execline() {
        return;
    }
    let p = managed(vec![
        ("name", "h".into()),
        ("foregroundProcess", "/bin/sh".into()),
        ("foregroundProcessArgs", vec!["-c", PRINTER, "sh"].into()),
        ("path", vec!["/a\"b\\${nixproc_inherited_path}"].into()),
    ])
    .unwrap();
    let out = run_execline(&run_text(&p), None);
    let fields: Vec<&str> = out.split('\0').collect();
    assert_eq!(
        fields[1],
        format!(
            "/a\"b\\${{nixproc_inherited_path}}/bin:{}",
            translate::DEFAULT_INHERITED_PATH
        )
    );
}

#[test]
fn failing_initialize_fails_the_script() {
    if !have_execline() {
        return;
    }
    let p = managed(vec![
        ("name", "h".into()),
        ("foregroundProcess", "/bin/echo".into()),
        ("foregroundProcessArgs", vec!["started"].into()),
        ("initialize", "exit 3".into()),
    ])
    .unwrap();
    let dir = tempfile_dir();
    std::fs::write(dir.join("run"), run_text(&p)).unwrap();
    let out = Command::new("/usr/lib/execline/bin/execlineb")
        .arg("-P")
        .arg(dir.join("run"))
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(!out.status.success());
    assert!(!String::from_utf8_lossy(&out.stdout).contains("started"));
}

#[test]
fn oneshot_up_and_down_run() {
    if !have_execline() {
        return;
    }
    let dir = tempfile_dir();
    let pid_file = dir.join("it's a \"pid\" file");
    let p = managed(vec![
        ("name", "d".into()),
        ("daemon", "/bin/sh".into()),
        (
            "daemonArgs",
            vec![
                "-c",
                "sleep 30 </dev/null >/dev/null 2>&1 & echo $! > \"$1\"",
                "sh",
                pid_file.to_str().unwrap(),
            ]
            .into(),
        ),
        ("pidFile", pid_file.to_str().unwrap().into()),
    ])
    .unwrap();
    run_execline(&file(&p, "etc/s6/sv/d/up").text, Some("/usr/bin:/bin"));
    let pid: i32 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(std::path::Path::new(&format!("/proc/{pid}")).exists());
    run_execline(&file(&p, "etc/s6/sv/d/down").text, Some("/usr/bin:/bin"));
    // Killed: gone or a zombie (nothing may reap it here).
    let gone = (0..100).any(|_| {
        let state = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let dead = state.is_empty()
            || state
                .rsplit_once(')')
                .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z'));
        if !dead {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        dead
    });
    let _ = std::fs::remove_dir_all(&dir);
    assert!(gone, "pid {pid} still running");
}
